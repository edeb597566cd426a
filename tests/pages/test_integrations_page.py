"""The console's integrations page (/app/integrations), driven as a browser without JS,
against a real SMTP server (aiosmtpd) for the e-mail integration."""
from __future__ import annotations

import re

import pytest

from tests.fakes.smtp import SmtpServer
from tests.integrations.conftest import LOGIN, PASSWORD
from tests.pages.conftest import csrf_of


@pytest.fixture
def smtp():
    """A real SMTP server requiring AUTH (plain SMTP on loopback)."""
    server = SmtpServer(users={LOGIN: PASSWORD}).start()
    yield server
    server.stop()


def html(resp) -> str:
    return resp.get_data(as_text=True)


def on_starter(user) -> None:
    """Put the user on the Starter plan (it has the e-mail integration)."""
    from services.subscriptions import subscribe
    subscribe(user["user"]["id"], "starter", None, actor_id=user["user"]["id"])


def email_form(server, csrf: str, **changes) -> dict:
    """What a person types into the e-mail integration's form."""
    form = {"smtp_host": server.host, "smtp_port": str(server.port), "security": "none",
            "username": LOGIN, "password": PASSWORD, "from_address": "dana@shop.example.com",
            "to_addresses": "team@shop.example.com, owner@shop.example.com",
            "enabled": "on", "csrf_token": csrf}
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def section(page: str, type_: str) -> str:
    """The HTML of one integration type's card."""
    match = re.search(rf'<section class="card integration" id="integration-{type_}".*?</section>',
                      page, re.DOTALL)
    assert match, f"no card for {type_}"
    return match.group(0)


def test_lists_every_type_with_plan_and_availability(browser, monkeypatch):
    # every type is built now; one put back to "specified, not built" shows as coming soon
    from automation.integrations.catalogue import PLANNED
    from automation.registry import INTEGRATIONS
    monkeypatch.setitem(INTEGRATIONS, "mongodb", PLANNED["mongodb"])
    page = html(browser.get("/app/integrations"))
    assert 'href="/app/integrations"' in page  # in the navigation
    for name in ("Slack", "E-mail (SMTP)", "HubSpot", "MongoDB", "Microsoft SQL Server"):
        assert name in page
    assert "coming soon" in section(page, "mongodb")
    assert "coming soon" not in section(page, "hubspot")
    assert "not in your plan" in section(page, "email")  # the free plan has no integrations
    email = section(page, "email")
    assert 'type="password" id="email-password"' in email and 'id="email-smtp_port"' in email
    assert '<select id="email-security"' in email and 'type="email" id="email-from_address"' \
        in email
    assert 'name="csrf_token"' in email


def test_connect_shows_active_and_masks_the_secret(browser, user, smtp):
    on_starter(user)
    resp = browser.post("/app/integrations/email", data=email_form(smtp, browser.csrf))
    assert resp.status_code == 302, html(resp)
    assert smtp.logins == [(LOGIN, True)]  # checked with the real server before being kept
    card = section(html(browser.get("/app/integrations")), "email")
    assert "active" in card and PASSWORD not in card and "••••7781" in card
    assert "team@shop.example.com, owner@shop.example.com" in card  # the form is filled in
    assert re.search(r'<input type="password" id="email-password" name="password"[^>]*value="">',
                     card)  # never pre-filled


def test_update_with_an_empty_password_keeps_the_stored_one(browser, user, smtp, client):
    on_starter(user)
    assert browser.post("/app/integrations/email",
                        data=email_form(smtp, browser.csrf)).status_code == 302
    resp = browser.post("/app/integrations/email", data=email_form(
        smtp, browser.csrf, password="", to_addresses="desk@shop.example.com"))
    assert resp.status_code == 302, html(resp)
    assert smtp.logins[-1] == (LOGIN, True)  # the stored password was used for the check
    stored = client.get("/api/integrations/email", headers=user["headers"]).get_json()
    assert stored["config"]["to_addresses"] == ["desk@shop.example.com"]
    assert stored["config"]["password"] == "••••7781"


def test_check_failure_is_shown_next_to_the_password(browser, user, smtp, client):
    on_starter(user)
    resp = browser.post("/app/integrations/email",
                        data=email_form(smtp, browser.csrf, password="wrong-password-1"))
    assert resp.status_code == 422
    card = section(html(resp), "email")
    error = re.search(r'<p class="error" id="email-password-error">(.*?)</p>', card, re.DOTALL)
    assert error and "refused" in error.group(1) and "535" in error.group(1)
    assert 'aria-describedby="email-password-error"' in card
    assert "wrong-password-1" not in html(resp)  # a secret is never sent back
    assert f'value="{smtp.port}"' in card  # what was typed is kept
    assert client.get("/api/integrations/email", headers=user["headers"]).status_code == 404


def test_bad_fields_are_named_and_plan_limit_said(browser, user, smtp):
    resp = browser.post("/app/integrations/email", data=email_form(smtp, browser.csrf))
    assert resp.status_code == 402
    assert "plan does not allow" in section(html(resp), "email")
    on_starter(user)
    resp = browser.post("/app/integrations/email", data=email_form(
        smtp, browser.csrf, smtp_port="99999", from_address="not-an-address"))
    assert resp.status_code == 400
    card = section(html(resp), "email")
    assert re.search(r'id="email-smtp_port-error">[^<]*65535', card)
    assert 'id="email-from_address-error"' in card
    assert smtp.logins == []  # nothing reached the server


def test_test_button_records_the_outcome_and_remove(browser, user, smtp):
    on_starter(user)
    browser.post("/app/integrations/email", data=email_form(smtp, browser.csrf))
    smtp.users[LOGIN] = "changed-by-the-admin"  # the mail server's password changes
    resp = browser.post("/app/integrations/email/test", data={"csrf_token": browser.csrf},
                        follow_redirects=True)
    page = html(resp)
    assert "The check failed" in page
    card = section(page, "email")
    assert "status-error" in card and "535" in card  # status error, last error shown
    smtp.users[LOGIN] = PASSWORD
    page = html(browser.post("/app/integrations/email/test", data={"csrf_token": browser.csrf},
                             follow_redirects=True))
    assert "The check worked" in page and "status-active" in section(page, "email")
    resp = browser.post("/app/integrations/email/delete", data={"csrf_token": browser.csrf})
    assert resp.status_code == 302
    assert "status-" not in section(html(browser.get("/app/integrations")), "email")


def test_another_users_integration_is_nothing_to_me(app, browser, user, other_user, smtp):
    from tests.pages.conftest import sign_in
    on_starter(user)
    browser.post("/app/integrations/email", data=email_form(smtp, browser.csrf))
    other = app.test_client()
    assert sign_in(other, other_user["user"]["email"], other_user["password"]).status_code == 302
    token = csrf_of(other, "/app/integrations")
    card = section(html(other.get("/app/integrations")), "email")
    assert "status-" not in card and "dana@shop.example.com" not in card and "••••" not in card
    for path in ("/app/integrations/email/test", "/app/integrations/email/delete"):
        assert other.post(path, data={"csrf_token": token}).status_code == 404
    assert other.post("/app/integrations/nope", data={"csrf_token": token}).status_code == 404
    assert "status-active" in section(html(browser.get("/app/integrations")), "email")


def test_forms_without_the_csrf_token_are_refused(browser, user, smtp):
    on_starter(user)
    resp = browser.post("/app/integrations/email", data=email_form(smtp, "forged"))
    assert resp.status_code == 400 and "Form refused" in html(resp)
    assert smtp.logins == []
    browser.post("/app/integrations/email", data=email_form(smtp, browser.csrf))
    for path in ("/app/integrations/email/test", "/app/integrations/email/delete"):
        assert browser.post(path, data={}).status_code == 400
    assert "status-active" in section(html(browser.get("/app/integrations")), "email")


def test_a_rule_across_fields_is_shown_above_the_form(browser, user, smtp):
    on_starter(user)
    resp = browser.post("/app/integrations/email",
                        data=email_form(smtp, browser.csrf, username=""))
    assert resp.status_code == 400
    error = re.search(r'id="email-form-error">(.*?)</p>', section(html(resp), "email"), re.DOTALL)
    assert error and "username is required when a password is given" in error.group(1)
    assert smtp.logins == []
