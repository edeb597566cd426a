"""Browser sign-in: /login, /logout, the cookie session and its expiry, CSRF, limits, audit."""
from __future__ import annotations

import pytest

from tests.conftest import auth_header, register
from tests.helpers import audit_rows
from tests.pages.conftest import CSRF, csrf_of, sign_in


def test_console_without_a_session_redirects_to_login(client):
    resp = client.get("/app/tasks")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/login?next=/app/tasks"


def test_login_page_has_the_three_fields(client):
    html = client.get("/login").get_data(as_text=True)
    for name in ('name="email"', 'name="password"', 'name="csrf_token"', 'type="hidden"'):
        assert name in html
    assert '<label for="email">' in html and '<label for="password">' in html


def test_sign_in_sets_a_hardened_cookie_and_opens_the_inbox(client, user):
    resp = sign_in(client, user["user"]["email"], user["password"])
    assert resp.status_code == 302 and resp.headers["Location"] == "/app"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    assert "Secure" not in cookie  # plain HTTP on a laptop still works
    page = client.get("/app")
    assert page.status_code == 200 and user["user"]["email"] in page.get_data(as_text=True)


def test_cookie_is_secure_over_https(app, user):
    client = app.test_client()
    html = client.get("/login", base_url="https://dana.example").get_data(as_text=True)
    token = CSRF.search(html).group(1)
    resp = client.post("/login", base_url="https://dana.example", headers={
        "Referer": "https://dana.example/login"}, data={
        "email": user["user"]["email"], "password": user["password"], "csrf_token": token})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert "Secure" in resp.headers["Set-Cookie"]


def test_wrong_password_is_said_next_to_the_field_and_audited(client, user):
    resp = sign_in(client, user["user"]["email"], "not the password")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 401
    assert 'id="password-error"' in html and "The e-mail or password is wrong." in html
    assert 'aria-invalid="true"' in html
    assert [r.user_id for r in audit_rows("login_failed")] == [user["user"]["id"]]
    assert client.get("/app").status_code == 302


def test_invalid_email_is_said_next_to_the_email_field(client):
    resp = sign_in(client, "not-an-email", "whatever")
    assert resp.status_code == 400
    assert 'id="email-error"' in resp.get_data(as_text=True)


def test_login_without_csrf_token_is_refused_with_a_clear_page(client, user):
    client.get("/login")
    resp = client.post("/login", data={"email": user["user"]["email"],
                                       "password": user["password"]})
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert "Form refused" in html and "Reload the page" in html
    assert client.get("/app").status_code == 302


def test_a_token_from_another_session_is_refused(app, user):
    attacker = app.test_client()
    stolen = csrf_of(attacker)
    victim = app.test_client()
    victim.get("/login")
    resp = victim.post("/login", data={"email": user["user"]["email"],
                                       "password": user["password"], "csrf_token": stolen})
    assert resp.status_code == 400


def test_logout_needs_post_and_csrf_and_revokes_the_session(app, browser):
    assert browser.get("/logout").status_code == 405
    assert browser.post("/logout").status_code == 400  # no token: still signed in
    assert browser.get("/app").status_code == 200
    cookie = browser.get_cookie("dana_session").value
    resp = browser.post("/logout", data={"csrf_token": browser.csrf})
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    assert browser.get("/app").status_code == 302
    replay = app.test_client()   # the old cookie, replayed: revoked server-side
    replay.set_cookie("dana_session", cookie)
    assert replay.get("/app").status_code == 302


def test_deactivated_user_is_signed_out_at_once(client, browser, user, admin):
    assert browser.get("/app").status_code == 200
    resp = client.patch(f"/api/users/{user['user']['id']}", headers=admin["headers"],
                        json={"is_active": False})
    assert resp.status_code == 200, resp.get_json()
    assert browser.get("/app").status_code == 302
    again = sign_in(browser, user["user"]["email"], user["password"])
    assert again.status_code == 401
    assert "This account is deactivated." in again.get_data(as_text=True)


def test_password_change_through_the_api_signs_the_browser_out(client, browser, user):
    resp = client.post("/api/auth/password", headers=user["headers"], json={
        "current_password": user["password"], "new_password": "another long password"})
    assert resp.status_code == 200, resp.get_json()
    assert browser.get("/app").status_code == 302


def test_idle_session_expires_and_is_revoked(browser, app):
    from models_db import AuthSession, db
    with browser.session_transaction() as s:
        s["seen"] -= 31 * 60
        sid = s["sid"]
    assert browser.get("/app").status_code == 302
    db.session.expire_all()
    assert db.session.get(AuthSession, sid).revoked_reason == "expired"


def test_session_expires_after_the_absolute_lifetime_even_when_active(browser):
    with browser.session_transaction() as s:
        s["iat"] -= 13 * 3600
    assert browser.get("/app").status_code == 302


def test_login_redirects_only_to_local_paths(client, user):
    for target, expected in (("/app/tasks", "/app/tasks"), ("//evil.example/x", "/app"),
                             ("https://evil.example/", "/app"), ("/\\evil.example", "/app")):
        client.get("/login")
        token = csrf_of(client, f"/login?next={target}")
        resp = client.post("/login", data={"email": user["user"]["email"],
                                           "password": user["password"], "csrf_token": token,
                                           "next": target})
        assert resp.headers["Location"] == expected, target
        client.post("/logout", data={"csrf_token": csrf_of(client, "/app")})


@pytest.mark.parametrize("settings_overrides", [{"RATE_LIMIT_AUTH": "3 per minute"}],
                         indirect=True)
def test_login_form_is_rate_limited_per_account(app, user):
    for i in range(3):
        other_ip = app.test_client()
        resp = sign_in(other_ip, user["user"]["email"], "wrong password",
                       environ_base={"REMOTE_ADDR": f"10.0.0.{i + 1}"})
        assert resp.status_code == 401, resp.get_data(as_text=True)[-1500:]
    last = app.test_client()
    resp = sign_in(last, user["user"]["email"], user["password"],
                   environ_base={"REMOTE_ADDR": "10.0.0.99"})
    assert resp.status_code == 429
    assert "Too many attempts" in resp.get_data(as_text=True)


def test_the_api_does_not_need_csrf_tokens(client):
    # bearer-token clients are unaffected by the pages' CSRF protection
    body = register(client)
    assert client.get("/api/auth/me", headers=auth_header(body)).status_code == 200
    assert client.post("/api/auth/logout", headers=auth_header(body)).status_code == 200
