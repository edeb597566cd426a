"""/api/auth: registration, login, token verification, rotation, logout, password, rate limits."""
from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from tests.conftest import auth_header, register
from tests.helpers import USER_KEYS, assert_error, audit_rows

TOKEN_KEYS = {"access_token", "refresh_token", "token_type", "expires_in", "user"}
def jwt_secret(app) -> str:
    return app.config["DANA_SETTINGS"].JWT_SECRET_KEY


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def mint(app, claims: dict, secret: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret or jwt_secret(app), algorithm=algorithm)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def login(client, email, password, **kwargs):
    return client.post("/api/auth/login", json={"email": email, "password": password}, **kwargs)


def me(client, token):
    return client.get("/api/auth/me", headers=auth_header(token))


def refresh(client, token):
    return client.post("/api/auth/refresh", json={"refresh_token": token})


def stored_hash(user_id: str) -> str:
    from models_db import User, db

    return db.session.get(User, user_id).password_hash


# --- register and login -----------------------------------------------------------------


def test_register_answers_a_token_pair_without_password_hash(client):
    resp = client.post("/api/auth/register", json={
        "email": "new.person@example.com", "password": "correct horse battery",
        "name": "New Person", "timezone": "Europe/Paris"})
    assert resp.status_code == 201
    body = resp.get_json()
    assert set(body) == TOKEN_KEYS
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert set(body["user"]) == USER_KEYS
    assert body["user"]["email"] == "new.person@example.com"
    assert body["user"]["name"] == "New Person"
    assert body["user"]["timezone"] == "Europe/Paris"
    assert body["user"]["role"] == "user"
    assert body["user"]["is_active"] is True
    text = resp.get_data(as_text=True)
    assert "password" not in text
    assert stored_hash(body["user"]["id"]) not in text
    # The tokens work.
    assert me(client, body["access_token"]).get_json()["id"] == body["user"]["id"]
    access = claims_of(body["access_token"])
    assert access["type"] == "access"
    assert access["exp"] - access["iat"] == 900


def test_login_answers_a_token_pair_without_password_hash(client, user):
    resp = login(client, user["user"]["email"], user["password"])
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) == TOKEN_KEYS
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["user"]["id"] == user["user"]["id"]
    text = resp.get_data(as_text=True)
    assert "password" not in text
    assert stored_hash(user["user"]["id"]) not in text
    assert me(client, body["access_token"]).status_code == 200
    # A new login is a new session, distinct from the registration's one.
    assert claims_of(body["access_token"])["sid"] != claims_of(user["access_token"])["sid"]


def test_duplicate_email_in_other_case_is_409(client):
    register(client, email="Dup.Person@Example.com")
    resp = client.post("/api/auth/register", json={
        "email": "dup.person@EXAMPLE.COM", "password": "another password"})
    assert_error(resp, 409, "email_taken")
    from models_db import User, db

    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 1


def test_email_is_stored_lower_case_and_login_ignores_case(client):
    body = register(client, email="Mixed.Case@Example.COM")
    assert body["user"]["email"] == "mixed.case@example.com"
    resp = login(client, "MIXED.case@example.com", body["password"])
    assert resp.status_code == 200
    assert resp.get_json()["user"]["id"] == body["user"]["id"]


def test_register_validation_names_each_field(client):
    resp = client.post("/api/auth/register", json={
        "email": "not-an-email", "password": "short", "nickname": "x"})
    err = assert_error(resp, 400, "validation_error")
    fields = {d["field"] for d in err["details"]}
    assert fields == {"email", "password", "nickname"}
    for d in err["details"]:
        assert d["message"]
    from models_db import User, db

    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 0


@pytest.mark.parametrize("payload, field", [
    ({"email": "a@example.com", "password": "1234567"}, "password"),  # 7 chars: too weak
    ({"email": "a@example.com", "password": "x" * 129}, "password"),
    ({"email": "a@@example.com", "password": "long enough pw"}, "email"),
    ({"password": "long enough pw"}, "email"),
    ({"email": "a@example.com", "password": "long enough pw", "timezone": "Mars/Base"}, "timezone"),
    ({"email": "a@example.com", "password": "long enough pw", "role": "admin"}, "role"),
])
def test_register_refuses_each_bad_field(client, payload, field):
    err = assert_error(client.post("/api/auth/register", json=payload), 400, "validation_error")
    assert [d["field"] for d in err["details"]] == [field]


def test_login_validation_names_fields(client):
    resp = client.post("/api/auth/login", json={"email": "nope", "password": "", "remember": True})
    err = assert_error(resp, 400, "validation_error")
    assert {d["field"] for d in err["details"]} == {"email", "password", "remember"}


def test_login_wrong_password_is_401_and_audited(client, user):
    resp = login(client, user["user"]["email"], "wrong password!")
    err = assert_error(resp, 401, "invalid_credentials")
    rows = audit_rows("login_failed")
    assert len(rows) == 1
    assert rows[0].user_id == user["user"]["id"]
    assert rows[0].ip == "127.0.0.1"
    assert rows[0].request_id
    # Unknown e-mail: same answer (no account enumeration), audited with the e-mail.
    resp2 = login(client, "nobody@example.com", "whatever pw")
    err2 = assert_error(resp2, 401, "invalid_credentials")
    assert err2["message"] == err["message"]
    rows = audit_rows("login_failed")
    assert len(rows) == 2
    unknown = [r for r in rows if r.user_id is None]
    assert len(unknown) == 1 and unknown[0].details["email"] == "nobody@example.com"


# --- access token verification ----------------------------------------------------------


def _full_claims(user: dict, **changes) -> dict:
    """Claims exactly like a real access token of `user`, with changes."""
    claims = claims_of(user["access_token"])
    claims.update(changes)
    return claims


def _bad_header(case: str, app, user) -> dict:
    now = datetime.now(timezone.utc)
    if case == "no_header":
        return {}
    if case == "wrong_scheme":
        return {"Authorization": f"Token {user['access_token']}"}
    if case == "bearer_without_token":
        return {"Authorization": "Bearer "}
    if case == "raw_token_without_scheme":
        return {"Authorization": user["access_token"]}
    if case == "not_a_jwt":
        return auth_header("not.a.jwt")
    if case == "wrong_key":
        return auth_header(mint(app, _full_claims(user), secret="another-secret-" + "z" * 40))
    if case == "tampered_payload":
        header, payload, sig = user["access_token"].split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["role"] = "admin"
        return auth_header(".".join([header, b64url(json.dumps(claims).encode()), sig]))
    if case == "alg_none":
        header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        claims = _full_claims(user)
        return auth_header(f"{header}.{b64url(json.dumps(claims).encode())}.")
    if case == "other_algorithm":
        return auth_header(mint(app, _full_claims(user), algorithm="HS512"))
    if case == "expired":
        return auth_header(mint(app, _full_claims(
            user, iat=now - timedelta(minutes=30), exp=now - timedelta(minutes=15))))
    if case.startswith("missing_"):
        claims = _full_claims(user)
        del claims[case.removeprefix("missing_")]
        return auth_header(mint(app, claims))
    if case == "refresh_as_access":
        return auth_header(user["refresh_token"])
    if case == "unknown_session":
        return auth_header(mint(app, _full_claims(user, sid=str(uuid.uuid4()))))
    if case == "sub_of_another_user":
        return auth_header(mint(app, _full_claims(user, sub=str(uuid.uuid4()))))
    raise AssertionError(case)


@pytest.mark.parametrize("case, code", [
    ("no_header", "unauthorized"),
    ("wrong_scheme", "unauthorized"),
    ("bearer_without_token", "unauthorized"),
    ("raw_token_without_scheme", "unauthorized"),
    ("not_a_jwt", "invalid_token"),
    ("wrong_key", "invalid_token"),
    ("tampered_payload", "invalid_token"),
    ("alg_none", "invalid_token"),
    ("other_algorithm", "invalid_token"),
    ("expired", "token_expired"),
    ("missing_exp", "invalid_token"),
    ("missing_iat", "invalid_token"),
    ("missing_sub", "invalid_token"),
    ("missing_jti", "invalid_token"),
    ("missing_type", "invalid_token"),
    ("missing_sid", "invalid_token"),
    ("refresh_as_access", "invalid_token"),
    ("unknown_session", "invalid_token"),
    ("sub_of_another_user", "invalid_token"),
])
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_me_refuses_bad_tokens(app, client, user, case, code):
    assert me(client, user["access_token"]).status_code == 200  # the real token works
    resp = client.get("/api/auth/me", headers=_bad_header(case, app, user))
    assert_error(resp, 401, code)


def test_hand_minted_token_with_all_claims_is_accepted(app, client, user):
    """Guards the negative cases above: the same minting with nothing wrong is accepted."""
    now = datetime.now(timezone.utc)
    token = mint(app, _full_claims(user, iat=now, exp=now + timedelta(minutes=5)))
    assert me(client, token).status_code == 200


def test_access_token_is_refused_as_refresh_token(client, user):
    assert_error(refresh(client, user["access_token"]), 401, "invalid_token")


def test_expired_refresh_token_is_refused(app, client, user):
    now = datetime.now(timezone.utc)
    claims = claims_of(user["refresh_token"])
    claims.update(iat=now - timedelta(days=31), exp=now - timedelta(days=1))
    assert_error(refresh(client, mint(app, claims)), 401, "token_expired")


def test_refresh_token_with_unknown_jti_is_refused(app, client, user):
    claims = claims_of(user["refresh_token"])
    claims["jti"] = str(uuid.uuid4())
    assert_error(refresh(client, mint(app, claims)), 401, "invalid_token")


# --- refresh rotation -------------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_the_family(client, user):
    first = user
    resp = refresh(client, first["refresh_token"])
    assert resp.status_code == 200
    second = resp.get_json()
    assert set(second) == TOKEN_KEYS
    assert second["token_type"] == "Bearer" and second["expires_in"] == 900
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert me(client, second["access_token"]).status_code == 200

    # The new refresh token rotates again.
    third = refresh(client, second["refresh_token"])
    assert third.status_code == 200
    third = third.get_json()

    # Replaying a spent token: 401 token_reused, and the whole family is now dead.
    assert_error(refresh(client, first["refresh_token"]), 401, "token_reused")
    assert_error(refresh(client, third["refresh_token"]), 401, "token_revoked")
    for tokens in (first, second, third):
        assert_error(me(client, tokens["access_token"]), 401, "token_revoked")

    rows = audit_rows("refresh_token_reuse")
    assert len(rows) == 1
    assert rows[0].user_id == user["user"]["id"]
    assert rows[0].details["session_id"] == claims_of(first["access_token"])["sid"]


def test_reuse_revokes_only_that_session(client, user):
    other_session = login(client, user["user"]["email"], user["password"]).get_json()
    assert refresh(client, user["refresh_token"]).status_code == 200
    assert_error(refresh(client, user["refresh_token"]), 401, "token_reused")
    assert me(client, other_session["access_token"]).status_code == 200
    assert refresh(client, other_session["refresh_token"]).status_code == 200


# --- logout -----------------------------------------------------------------------------


def test_logout_revokes_the_session(client, user):
    other_session = login(client, user["user"]["email"], user["password"]).get_json()
    resp = client.post("/api/auth/logout", headers=user["headers"])
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}
    assert_error(me(client, user["access_token"]), 401, "token_revoked")
    assert_error(refresh(client, user["refresh_token"]), 401, "token_revoked")
    assert_error(client.post("/api/auth/logout", headers=user["headers"]), 401, "token_revoked")
    # Only this session: the other login still works.
    assert me(client, other_session["access_token"]).status_code == 200


def test_logout_needs_a_token(client):
    assert_error(client.post("/api/auth/logout"), 401, "unauthorized")


# --- password change --------------------------------------------------------------------


def change_password(client, tokens, current, new):
    return client.post("/api/auth/password", headers=auth_header(tokens),
                       json={"current_password": current, "new_password": new})


def test_password_change_with_wrong_current_password_is_401(client, user):
    resp = change_password(client, user, "not my password", "a brand new password")
    assert_error(resp, 401, "invalid_credentials")
    assert len(audit_rows("password_change_failed")) == 1
    # Nothing changed.
    assert me(client, user["access_token"]).status_code == 200
    assert login(client, user["user"]["email"], user["password"]).status_code == 200


def test_password_change_refuses_a_weak_new_password(client, user):
    err = assert_error(change_password(client, user, user["password"], "short"),
                       400, "validation_error")
    assert [d["field"] for d in err["details"]] == ["new_password"]


def test_password_change_revokes_other_sessions_only(client, user):
    email = user["user"]["email"]
    second = login(client, email, user["password"]).get_json()
    resp = change_password(client, user, user["password"], "a brand new password")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}

    # The other login's tokens are refused.
    assert_error(me(client, second["access_token"]), 401, "token_revoked")
    assert_error(refresh(client, second["refresh_token"]), 401, "token_revoked")
    # The current session keeps working, refresh included.
    assert me(client, user["access_token"]).status_code == 200
    assert refresh(client, user["refresh_token"]).status_code == 200
    # New password works, old one doesn't.
    assert login(client, email, "a brand new password").status_code == 200
    assert_error(login(client, email, user["password"]), 401, "invalid_credentials")
    rows = audit_rows("password_changed")
    assert len(rows) == 1 and rows[0].details["sessions_revoked"] == 1


# --- deactivated accounts ---------------------------------------------------------------


def test_deactivated_user_is_refused_at_once_and_cannot_log_in(client, user, admin):
    uid = user["user"]["id"]
    assert me(client, user["access_token"]).status_code == 200
    resp = client.patch(f"/api/users/{uid}", headers=admin["headers"], json={"is_active": False})
    assert resp.status_code == 200
    assert resp.get_json()["is_active"] is False

    assert_error(me(client, user["access_token"]), 401, "account_disabled")
    assert_error(client.get("/api/users/me", headers=user["headers"]), 401, "account_disabled")
    assert_error(refresh(client, user["refresh_token"]), 401, "account_disabled")
    assert_error(login(client, user["user"]["email"], user["password"]), 401, "account_disabled")
    # A wrong password still says invalid_credentials (no hint the account exists).
    assert_error(login(client, user["user"]["email"], "bad password"), 401, "invalid_credentials")

    # Reactivating lets the user log in again, but the old sessions stay signed out.
    resp = client.patch(f"/api/users/{uid}", headers=admin["headers"], json={"is_active": True})
    assert resp.status_code == 200
    assert_error(me(client, user["access_token"]), 401, "token_revoked")
    fresh = login(client, user["user"]["email"], user["password"])
    assert fresh.status_code == 200
    assert me(client, fresh.get_json()["access_token"]).status_code == 200


# --- rate limits ------------------------------------------------------------------------

TIGHT = pytest.mark.parametrize("settings_overrides", [{"RATE_LIMIT_AUTH": "3 per minute"}],
                                indirect=True)


@TIGHT
def test_login_is_rate_limited_per_ip(client):
    ip = {"REMOTE_ADDR": "203.0.113.7"}
    for i in range(3):
        resp = login(client, f"someone{i}@example.com", "wrong password", environ_base=ip)
        assert_error(resp, 401, "invalid_credentials")
    resp = login(client, "someone-else@example.com", "wrong password", environ_base=ip)
    err = assert_error(resp, 429, "rate_limited")
    assert "3 per 1 minute" in err["message"]
    assert int(resp.headers["Retry-After"]) > 0
    # Another IP (and another account) is not affected.
    resp = login(client, "fresh@example.com", "wrong password",
                 environ_base={"REMOTE_ADDR": "203.0.113.8"})
    assert_error(resp, 401, "invalid_credentials")


@TIGHT
def test_login_is_rate_limited_per_account(client, user):
    email = user["user"]["email"]
    # Same account in varying case, from three different IPs, with the wrong password.
    for i, e in enumerate([email, email.upper(), email.title()]):
        resp = login(client, e, "wrong password", environ_base={"REMOTE_ADDR": f"198.51.100.{i}"})
        assert_error(resp, 401, "invalid_credentials")
    # The 4th attempt for this account is refused even from a fresh IP, right password or not.
    resp = login(client, email, user["password"], environ_base={"REMOTE_ADDR": "198.51.100.99"})
    assert_error(resp, 429, "rate_limited")
    # Another account from yet another IP still gets through.
    resp = login(client, "other@example.com", "wrong password",
                 environ_base={"REMOTE_ADDR": "198.51.100.100"})
    assert_error(resp, 401, "invalid_credentials")


@TIGHT
def test_register_is_rate_limited_per_ip(client):
    ip = {"REMOTE_ADDR": "192.0.2.1"}
    for i in range(3):
        resp = client.post("/api/auth/register", environ_base=ip,
                           json={"email": f"r{i}@example.com", "password": "long enough pw"})
        assert resp.status_code == 201
    resp = client.post("/api/auth/register", environ_base=ip,
                       json={"email": "r9@example.com", "password": "long enough pw"})
    assert_error(resp, 429, "rate_limited")


def test_concurrent_refresh_waits_for_the_row_lock(app, client, user):
    """PostgreSQL: a refresh that races another one on the same token waits for it and then
    sees the token spent (token_reused), so one refresh token can never yield two families."""
    import threading

    from sqlalchemy import text

    from models_db import db

    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks are a PostgreSQL feature (the PostgreSQL run covers this)")
    jti = claims_of(user["refresh_token"])["jti"]
    result = {}

    def racing_refresh():
        result["resp"] = refresh(app.test_client(), user["refresh_token"])

    with db.engine.connect() as holder:
        holder.execute(text("SELECT jti FROM refresh_tokens WHERE jti = :j FOR UPDATE"),
                       {"j": jti})
        thread = threading.Thread(target=racing_refresh)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive(), "the refresh did not wait for the row lock"
        # The other refresh wins: it spends the token and commits.
        holder.execute(text("UPDATE refresh_tokens SET spent_at = now() WHERE jti = :j"),
                       {"j": jti})
        holder.commit()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert_error(result["resp"], 401, "token_reused")


def test_thirty_concurrent_uses_of_one_refresh_token_have_exactly_one_winner(app, user):
    """30 threads spend the same refresh token at once (real concurrency on the database:
    each request has its own session and connection). Exactly one gets a new pair; every other
    one is refused with 401, and the family is revoked, so the winner's pair dies too."""
    import threading

    from models_db import AuthSession, RefreshToken, db

    barrier = threading.Barrier(30)
    results: list = [None] * 30

    def use(i: int) -> None:
        client = app.test_client()
        barrier.wait(timeout=30)
        resp = refresh(client, user["refresh_token"])
        results[i] = (resp.status_code, resp.get_json())

    threads = [threading.Thread(target=use, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    winners = [body for status, body in results if status == 200]
    losers = [body for status, body in results if status != 200]
    assert len(winners) == 1, [s for s, _ in results]
    assert {s for s, _ in results if s != 200} == {401} and len(losers) == 29
    assert {b["error"]["code"] for b in losers} <= {"token_reused", "token_revoked"}
    assert "token_reused" in {b["error"]["code"] for b in losers}
    db.session.expire_all()
    sid = claims_of(user["refresh_token"])["sid"]
    session = db.session.get(AuthSession, sid)
    assert session.revoked_reason == "refresh_reuse"
    # one new refresh token was minted (the winner's), besides the spent original
    assert db.session.query(RefreshToken).filter_by(session_id=sid).count() == 2
    assert refresh(app.test_client(), winners[0]["refresh_token"]).status_code == 401
