"""One error vocabulary and one JSON error shape for every /api and /webhooks path.

Shape: {"error": {"code": "snake_case", "message": "human sentence", "details": [...]?}}.
Handlers are registered in one function; nothing else in the app builds an error body.
"""
from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger("dana.errors")


class ApiError(Exception):
    """An error a client should see: HTTP status, machine code, human message."""

    status = 400
    code = "bad_request"
    message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 status: int | None = None, details: list | None = None,
                 extra: dict | None = None):
        """Override the class's message, code, status or details (or add fields) for one error."""
        super().__init__(message or self.message)
        self.message = message or self.message
        self.code = code or self.code
        self.status = status or self.status
        self.details = details
        self.extra = extra  # more fields of the error object (e.g. 402's checkout_url)

    def to_dict(self) -> dict:
        """The one JSON error shape: {"error": {"code", "message", "details"?}}."""
        body = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        for key, value in (self.extra or {}).items():
            body.setdefault(key, value)
        return {"error": body}


class BadRequest(ApiError):
    """400: the request is malformed."""

    status, code, message = 400, "bad_request", "The request could not be processed."


class ValidationFailed(ApiError):
    """400 with `details`: a body, query or form field is invalid."""

    status, code, message = 400, "validation_error", "Some fields are missing or invalid."


class Unauthorized(ApiError):
    """401: no valid credentials."""

    status, code, message = 401, "unauthorized", "Authentication is required."


class Forbidden(ApiError):
    """403: authenticated, but not allowed."""

    status, code, message = 403, "forbidden", "You are not allowed to do this."


class NotFound(ApiError):
    """404: missing, or another user's (indistinguishable on purpose)."""

    status, code, message = 404, "not_found", "Not found."


class Conflict(ApiError):
    """409: the change conflicts with existing data."""

    status, code, message = 409, "conflict", "This conflicts with existing data."


class PaymentRequired(ApiError):
    """402: the plan does not allow it (names the cheapest plan that does)."""

    status, code, message = 402, "plan_limit", "Your plan does not include this."


class ServiceUnavailable(ApiError):
    """503: a service Dana depends on (database, Redis, a provider) cannot be reached."""

    status, code, message = 503, "service_unavailable", "A service we depend on is unavailable."


class Unprocessable(ApiError):
    """422: well-formed, but it cannot be carried out."""

    status, code, message = 422, "unprocessable", "The request cannot be carried out."


# Codes for werkzeug's own HTTP errors, so routing errors share the shape.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def validation_details(exc: ValidationError) -> list[dict]:
    """Turn a Pydantic error into [{field, message, type}] naming each field."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in err["loc"]) or "body"
        out.append({"field": field, "message": err["msg"], "type": err["type"]})
    return out


def api_error_response(exc: ApiError):
    """The one JSON error response for an ApiError (inside an app context)."""
    resp = jsonify(exc.to_dict())
    resp.status_code = exc.status
    return resp


def error_response(status: int, code: str, message: str, details=None):
    """Build the one JSON error response."""
    body = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return jsonify({"error": body}), status


def _wants_json() -> bool:
    path = request.path
    return path.startswith("/api") or path.startswith("/webhooks") or path == "/health" \
        or request.accept_mimetypes.best == "application/json"


def register_error_handlers(app: Flask) -> None:
    """Register the handlers that give every error the one JSON shape."""
    app.register_error_handler(ApiError, api_error_response)

    @app.errorhandler(ValidationError)
    def _pydantic_error(exc: ValidationError):
        return error_response(400, "validation_error", "Some fields are missing or invalid.",
                              validation_details(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not _wants_json():
            return exc
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        message = {
            404: "No such endpoint.",
            405: f"Method {request.method} is not allowed here.",
            413: "The request body is too large.",
            429: "Too many requests; try again later.",
        }.get(status, exc.description or exc.name)
        if status == 429:
            message = f"Too many requests ({exc.description}); try again later."
        resp, _ = error_response(status, code, message)
        resp.status_code = status
        if status == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
            resp.headers["Allow"] = ", ".join(exc.valid_methods)
        for name, value in (exc.get_headers() if status == 429 else []):
            if name.lower() == "retry-after":
                resp.headers[name] = value
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        sqlalchemy = current_app.extensions.get("sqlalchemy")
        if sqlalchemy is not None:  # a failed statement must not poison the next request
            sqlalchemy.session.rollback()
        return error_response(500, "internal_error",
                              "Something went wrong on our side; it has been logged.")
