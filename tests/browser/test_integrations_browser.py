"""Connect an integration from the console in a real browser, against a real SMTP server."""
from __future__ import annotations

import pytest

from tests.fakes.smtp import SmtpServer
from tests.realtime.conftest import register

pytestmark = pytest.mark.timeout(180)

LOGIN, SMTP_PASSWORD = "agent@shop.example.com", "smtp-Pa55word-7781"


@pytest.fixture
def smtp():
    """aiosmtpd on loopback, requiring AUTH; the live server's check logs in to it."""
    server = SmtpServer(users={LOGIN: SMTP_PASSWORD}).start()
    yield server
    server.stop()


def test_connect_the_email_integration_then_a_wrong_password_is_refused(make_stack, tabs,
                                                                         smtp):
    stack = make_stack()
    server = stack.server().wait_ready()
    user = register(server.base_url, "Mail Shop")
    granted = stack.flask("grant-plan", "--email", user["user"]["email"], "--tier", "Starter")
    assert granted.returncode == 0, granted.stderr

    tab = tabs(server.base_url, viewport={"width": 390, "height": 844})  # a phone
    tab.sign_in(user["user"]["email"])
    page = tab.page
    page.get_by_role("link", name="Integrations").click()
    page.wait_for_url("**/app/integrations")
    card = page.locator("#integration-email")
    card.get_by_label("SMTP host").fill(smtp.host)
    card.get_by_label("SMTP port").fill(str(smtp.port))
    card.get_by_label("Security").select_option("none")
    card.get_by_label("Username").fill(LOGIN)
    card.get_by_label("Password").fill(SMTP_PASSWORD)
    card.get_by_label("From address").fill("dana@shop.example.com")
    card.get_by_label("To addresses").fill("team@shop.example.com")
    card.get_by_role("button", name="Connect").click()
    page.wait_for_url("**/app/integrations")
    card = page.locator("#integration-email")
    assert card.locator(".integration-status").inner_text() == "active"
    assert smtp.logins == [(LOGIN, True)]
    assert SMTP_PASSWORD not in page.content() and "••••7781" in card.inner_text()

    # the password changes to a wrong one: the server's refusal, next to the field
    card.locator("summary").click()
    card.get_by_label("Password").fill("not-the-password")
    card.get_by_role("button", name="Update").click()
    error = page.locator("#email-password-error")
    error.wait_for()
    assert "refused" in error.inner_text() and "535" in error.inner_text()
    assert page.locator("#email-password").get_attribute("aria-invalid") == "true"
    assert smtp.logins[-1] == ("agent@shop.example.com", False)
    assert page.locator("#integration-email .integration-status").inner_text() == "active"
    # (the refused form's page itself answers 422, which chromium logs; nothing else)
    assert [e for e in tab.errors if "status of 422" not in e] == []
