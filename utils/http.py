"""Request-level guards: input no view could handle becomes a 4xx before any view runs.

- A JSON body nested too deeply for the parser (RecursionError) is invalid JSON: 400, also
  for code that reads the body before the view (the per-account rate-limit key).
- A NUL character in a path parameter names nothing that can exist: 404, before the database
  (PostgreSQL refuses NUL in text) is asked.
- A URI longer than MAX_URI_LENGTH is 414 in the JSON error shape (servers in front have
  their own, larger, limits: see JsonErrorRequestHandler for `python main.py`).

It also holds the security headers every response carries (SECURITY_HEADERS).
"""
from __future__ import annotations

from flask import Flask, Request, request
from werkzeug.exceptions import BadRequest
from werkzeug.serving import WSGIRequestHandler

from utils.errors import ApiError, NotFound

# Path plus query string. Every documented request fits in far less; gunicorn's own limit on
# the whole request line is 8190 bytes at most (`limit_request_line`).
MAX_URI_LENGTH = 8000

# On every response (unless a view set its own): no MIME sniffing, no framing, no referrer,
# a same-origin content policy, no cross-origin opener.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
                                "form-action 'self'; base-uri 'none'"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


def add_security_headers(response):
    """The SECURITY_HEADERS a response does not set itself (an after_request hook)."""
    headers = response.headers
    for name, value in SECURITY_HEADERS:
        headers.setdefault(name, value)
    return response


class DanaRequest(Request):
    """Flask's request whose JSON parsing never raises RecursionError."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True):
        """As Flask's, but a body nested too deeply to parse is invalid JSON (or None if silent)."""
        try:
            return super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            if silent:
                return None
            raise BadRequest("The body is nested too deeply to be parsed as JSON.") from None


def _no_nul_in_path() -> None:
    """404 for a path parameter holding a NUL character (percent-encoded as %00)."""
    if any(isinstance(v, str) and "\x00" in v for v in (request.view_args or {}).values()):
        raise NotFound("Not found.")


def _uri_not_too_long() -> None:
    """414 in the error shape for a path plus query string over MAX_URI_LENGTH."""
    environ = request.environ
    length = len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", ""))
    if length > MAX_URI_LENGTH:
        raise ApiError(f"The URI is too long (at most {MAX_URI_LENGTH} characters).",
                       status=414, code="uri_too_long")


def install_request_guards(app: Flask) -> None:
    """Use DanaRequest and check the URI and path parameters before every view."""
    app.request_class = DanaRequest
    app.before_request(_uri_not_too_long)
    app.before_request(_no_nul_in_path)


class JsonErrorRequestHandler(WSGIRequestHandler):
    """The development server's own errors (a request line over 64 KiB: 414, a malformed
    request line: 400) in the JSON error shape instead of http.server's HTML page.
    """

    error_content_type = "application/json"
    error_message_format = ('{"error": {"code": "http_%(code)d", '
                            '"message": "%(message)s. %(explain)s"}}')
