"""Logging with the request id on every line, as plain text or JSON lines (LOG_FORMAT), and
with secrets in URLs (hub.verify_token, any *token / *secret / *password query parameter)
redacted from the access log of `python main.py` (werkzeug) and gunicorn (gunicorn.conf.py).
"""
from __future__ import annotations

import json
import logging
import re
import sys
import uuid

from flask import Flask, g, has_app_context, request

from utils.config import current_settings

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# A query parameter whose name says it carries a secret (Meta's hub.verify_token, access_token,
# client_secret, password, api_key, ...; also percent-encoded names): its value is replaced.
_SECRET_PARAM = re.compile(
    r"(?P<name>(?:^|[?&;\s\"'])[^=&;\s\"'?]*"
    r"(?:token|secret|passw(?:or)?d|api[_-]?key|apikey|signature)[^=&;\s\"']*=)"
    r"(?P<value>[^&;\s\"']*)", re.IGNORECASE)
REDACTED = "[redacted]"


def redact_secrets(text: str) -> str:
    """The text (a request line, URL or query string) with secret query values replaced."""
    if not text or "=" not in text:
        return text
    return _SECRET_PARAM.sub(lambda m: m.group("name") + (REDACTED if m.group("value") else ""),
                             text)


class RedactSecretsFilter(logging.Filter):
    """Redact secret query parameters from a record (werkzeug's and gunicorn's request lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message when it carries a secret; never drop a record."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's problem, not ours
            return True
        redacted = redact_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACT_FILTER = RedactSecretsFilter()


def redact_werkzeug_access_log() -> None:
    """`python main.py` serves with werkzeug, whose request lines carry the query string."""
    werkzeug_logger = logging.getLogger("werkzeug")
    if _REDACT_FILTER not in werkzeug_logger.filters:
        werkzeug_logger.addFilter(_REDACT_FILTER)


def request_id_for(incoming: str | None) -> str:
    """A request's id: the caller's X-Request-ID when it is a safe token, else a new one."""
    return incoming if incoming and _SAFE_ID.match(incoming) else uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Attach the current request id (or '-') to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `request_id` to the record (g.request_id: set per request, also by the
        webhooks' lean path, which runs in an app context only); never drops one.
        """
        record.request_id = getattr(g, "request_id", "-") if has_app_context() else "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        out = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def configure_logging(app: Flask) -> None:
    """Install one handler on the 'dana' logger and give each request an id."""
    settings = current_settings(app)
    logger = logging.getLogger("dana")
    logger.setLevel(settings.LOG_LEVEL.upper())
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if settings.LOG_FORMAT == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    logger.addHandler(handler)
    redact_werkzeug_access_log()

    @app.before_request
    def _assign_request_id():
        g.request_id = request_id_for(request.headers.get("X-Request-ID"))

    @app.after_request
    def _echo_request_id(response):
        response.headers["X-Request-ID"] = getattr(g, "request_id", "") or uuid.uuid4().hex
        return response
