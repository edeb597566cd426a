"""The logs of the real servers (`python main.py` and gunicorn): the app's own lines are there
after the start-up migrations, the verify token and other secret query parameters never are,
and a failing INSERT logs its error without the bound values (password hash, tokens)."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.realtime.conftest import api, register, wait_until


def _ddl(database_url: str, statement: str) -> None:
    url = make_url(database_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["main", "gunicorn"])
def test_secrets_never_reach_the_server_log(make_stack, kind):
    stack = make_stack()
    server = stack.server(kind, gunicorn=kind == "gunicorn").wait_ready()
    verify_token = stack.env["META_VERIFY_TOKEN"]
    with api(server.base_url) as c:
        ok = c.get("/webhooks/facebook", params={"hub.mode": "subscribe",
                                                 "hub.verify_token": verify_token,
                                                 "hub.challenge": "1158201444"})
        assert ok.status_code == 200 and ok.text == "1158201444"
        guessed = c.get("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=guessed-Xy9"
                        "&hub.challenge=5&access_token=EAAG-in-a-url&password=hunter2-in-a-url")
        assert guessed.status_code == 403
    wait_until(lambda: "1158201444" in server.log() and "/webhooks/whatsapp" in server.log(),
               15, "both access lines")

    # A failing INSERT (the column it writes is gone) answers 500 and is logged, without the
    # values it was binding: the new user's password hash, a Page's encrypted token.
    user = register(server.base_url)
    stack.graph.manage("EAAG-live-page-token", "104578263458921", name="Live Page")
    _ddl(stack.database_url,
         "ALTER TABLE platform_accounts RENAME COLUMN display_phone_number TO number_gone")
    with api(server.base_url) as c:
        failed = c.post("/api/platforms", headers=user["headers"], json={
            "platform": "facebook", "external_id": "104578263458921",
            "access_token": "EAAG-live-page-token"})
    assert failed.status_code == 500
    _ddl(stack.database_url, "ALTER TABLE users RENAME COLUMN timezone TO timezone_gone")
    with api(server.base_url) as c:
        failed = c.post("/api/auth/register", json={
            "email": "broken@example.com", "password": "correct horse battery", "name": "B"})
    assert failed.status_code == 500
    wait_until(lambda: server.log().count("unhandled error on POST") >= 2, 15,
               "the two failing inserts in the log")

    log = server.log()
    assert "hub.verify_token=[redacted]" in log
    for secret in (verify_token, "guessed-Xy9", "EAAG-in-a-url", "hunter2-in-a-url",
                   "EAAG-live-"):
        assert secret not in log, secret
    assert "INSERT INTO users" in log and "INSERT INTO platform_accounts" in log
    for hash_prefix in ("pbkdf2:", "scrypt:", "gAAAAA"):   # Werkzeug hashes, Fernet tokens
        assert hash_prefix not in log


def test_app_log_lines_follow_the_start_up_migrations(make_stack):
    """`python main.py` migrates with Alembic, whose logging set-up used to silence `dana.*`."""
    stack = make_stack()
    server = stack.server("main").wait_ready()
    with api(server.base_url) as c:
        resp = c.post("/api/auth/login", json={"email": "nobody@example.com",
                                               "password": "not the password"})
    assert resp.status_code == 401
    wait_until(lambda: "dana.audit: audit login_failed" in server.log(), 15,
               "the dana.audit line of the failed login")
    log = server.log()
    assert log.index("alembic.runtime.migration") < log.index("dana.audit: audit login_failed")
