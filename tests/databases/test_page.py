"""The console's "Try a lookup" on /app/integrations, as a browser without JS, on MariaDB."""
from __future__ import annotations

import pytest

from tests.databases.conftest import configure
from tests.pages.conftest import FreshContextClient, csrf_of, sign_in


@pytest.fixture
def browser(app, shopkeeper):
    app.test_client_class = FreshContextClient
    client = app.test_client()
    assert sign_in(client, shopkeeper["user"]["email"], shopkeeper["password"]).status_code == 302
    client.csrf = csrf_of(client, "/app")
    yield client
    app.test_client_class = None


def test_try_a_lookup_shows_the_row_and_refusals(client, shopkeeper, browser, mariadb_shop):
    assert configure(client, shopkeeper, "mysql", mariadb_shop.config()).status_code == 201
    page = browser.get("/app/integrations").get_data(as_text=True)
    assert 'id="mysql-try-query"' in page and '<option value="order_status"' in page
    resp = browser.post("/app/integrations/mysql/try", data={
        "csrf_token": browser.csrf, "query": "order_status", "params": '{"order_number": "55821"}'})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert '<th scope="col">status</th>' in body and "<td>shipped</td>" in body
    assert "DHL 00340434161234567890" in body and "1 row" in body
    bad = browser.post("/app/integrations/mysql/try", data={
        "csrf_token": browser.csrf, "query": "order_status", "params": "[1]"})
    assert bad.status_code == 400 and "JSON object" in bad.get_data(as_text=True)
    missing = browser.post("/app/integrations/mysql/try", data={
        "csrf_token": browser.csrf, "query": "order_status", "params": "{}"})
    assert missing.status_code == 400 and "missing: order_number" in missing.get_data(
        as_text=True)
    # a script in a value comes back escaped
    xss = browser.post("/app/integrations/mysql/try", data={
        "csrf_token": browser.csrf, "query": "order_status",
        "params": '{"order_number": "<script>alert(1)</script>"}'}).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in xss
    no_csrf = browser.post("/app/integrations/mysql/try", data={"query": "order_status"})
    assert no_csrf.status_code in (400, 403)
