"""What reaches the logs: the app's own lines survive the migrations, secrets never appear
(query parameters in access lines, bound values of a failing SQL statement)."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import DBAPIError

from utils.logging import RedactSecretsFilter, redact_secrets


class _Records(logging.Handler):
    """Collects the records that reach a logger's handlers."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.mark.parametrize("settings_overrides", [{"LOG_LEVEL": "INFO"}], indirect=True)
def test_dana_log_lines_are_still_emitted_after_the_migrations_ran(app, client):
    """`python main.py` migrates in-process: Alembic's fileConfig must not silence `dana.*`."""
    from app import upgrade_database

    upgrade_database(app)   # what `python main.py` does before serving
    assert not logging.getLogger("dana.audit").disabled
    records = _Records()
    logging.getLogger("dana").addHandler(records)
    try:
        resp = client.post("/api/auth/login", json={"email": "nobody@example.com",
                                                    "password": "wrong password"})
    finally:
        logging.getLogger("dana").removeHandler(records)
    assert resp.status_code == 401
    assert any(r.name == "dana.audit" and "login_failed" in r.getMessage()
               for r in records.records)


def test_a_failing_insert_logs_no_bound_values(app, client, user):
    """A database error's message (logged with its traceback on a 500) hides the parameters:
    no password hash, no encrypted token."""
    from models_db import PlatformAccount, User, db
    from utils.crypto import encrypt

    stored = db.session.get(User, user["user"]["id"])
    password_hash = stored.password_hash
    encrypted = encrypt("EAAG-secret-page-token")
    db.session.expunge(stored)
    db.session.add(User(id=stored.id, email="copy@example.com", password_hash=password_hash))
    with pytest.raises(DBAPIError) as failed_user:
        db.session.commit()
    db.session.rollback()
    db.session.add(PlatformAccount(user_id="no-such-user", platform="facebook", external_id="1",
                                   access_token_encrypted=encrypted))
    with pytest.raises(DBAPIError) as failed_account:
        db.session.commit()
    db.session.rollback()
    for exc, secret in ((failed_user.value, password_hash), (failed_account.value, encrypted)):
        text = str(exc)
        assert "INSERT INTO" in text and secret not in text
        assert "hide_parameters=True" in text


@pytest.mark.parametrize("line", [
    "GET /webhooks/facebook?hub.mode=subscribe&hub.verify_token=S3CRET&hub.challenge=7 HTTP/1.1",
    "GET /x?access_token=S3CRET HTTP/1.1", "/x?a=1&client_secret=S3CRET&b=2",
    "/x?password=S3CRET", "/x?hub%2Everify_token=S3CRET", "/x?API_KEY=S3CRET",
])
def test_secret_query_parameters_are_redacted(line):
    redacted = redact_secrets(line)
    assert "S3CRET" not in redacted and "[redacted]" in redacted


def test_the_redaction_filter_rewrites_a_werkzeug_style_record():
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"%s" %s %s',
                               ("GET /webhooks/whatsapp?hub.verify_token=S3CRET HTTP/1.1",
                                "200", "-"), None)
    RedactSecretsFilter().filter(record)
    assert "S3CRET" not in record.getMessage() and "200" in record.getMessage()
