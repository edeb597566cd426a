"""Inbound webhooks, `/webhooks/<channel>`: GET answers the channel's handshake, POST hands
the raw delivery to the intake (services/intake.py). Nothing channel-specific lives here: the
channel's hook (automation.registry.INBOUND_HOOKS) verifies signatures and handshakes.

A signed delivery is machine-to-machine traffic at volume, so POST /webhooks/<channel> first
meets LeanWebhooks, in front of the whole app: the usual delivery (authentic, a JSON object to
store) is verified, stored, handed on and answered without Flask's per-request machinery;
everything else goes on to the app below, unchanged.
"""
from __future__ import annotations

import io

from flask import Blueprint, Flask, current_app, g, request
from werkzeug.datastructures import EnvironHeaders

from services import intake
from utils.http import SECURITY_HEADERS
from utils.logging import request_id_for
from utils.ratelimit import signed_webhook

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.get("/<channel>")
def verify(channel: str):
    """The channel's subscription handshake (Meta: echo hub.challenge when the token matches)."""
    answer = intake.handshake(channel, request.args)
    return current_app.response_class(answer, status=200, mimetype="text/plain")


@bp.post("/<channel>")
@signed_webhook
def receive(channel: str):
    """Verify, store and dispatch an authentic delivery; answer 200 once it is stored."""
    raw = request.get_data(cache=True)  # raw bytes, whatever the Content-Type says
    return intake.receive(channel, request.headers, raw, g.get("request_id"))


class LeanWebhooks:
    """WSGI middleware in front of the app: POST /webhooks/<channel> without Flask's request
    machinery (request object, URL routing, before/after hooks, the limiter, the session,
    error handler lookup) for the usual delivery, which needs none of it.

    It reads the body (Content-Length bytes, at most MAX_CONTENT_LENGTH), then in an app
    context, with the request id (X-Request-ID when safe, else a new one) in g for the log
    lines, asks intake.receive_plain to verify the signature over the raw bytes, store the
    event and hand it on (a wake-up: inline, the routing was read before the INSERT, see
    intake._store_and_dispatch). The 200 carries what the app's would: the JSON body, the
    security headers and X-Request-ID. A delivery that could not be stored (503 not_stored),
    or any error, is answered through the app's own error handlers and after-request hooks.

    Every other request goes on to the app unchanged, with the body it sent: another method
    or path, a query string, no or too large a Content-Length, and every delivery that
    receive_plain declines before storing anything (unknown channel, no secret, missing or
    wrong signature, counted as forged by the app, a body that is not a JSON object).
    """

    def __init__(self, app: Flask, wsgi_app):
        """Wrap `wsgi_app` (the app's WSGI callable so far) for `app`."""
        self.app, self.wsgi_app = app, wsgi_app
        self.paths = {f"{bp.url_prefix}/{channel}": channel for channel in intake.channels()}
        self.max_length = app.config.get("MAX_CONTENT_LENGTH")

    def __call__(self, environ, start_response):
        """Serve the usual delivery here; pass anything else on to the app."""
        channel = self.paths.get(environ.get("PATH_INFO"))
        if channel is None or environ.get("REQUEST_METHOD") != "POST" \
                or environ.get("QUERY_STRING"):
            return self.wsgi_app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:  # none (chunked) or malformed: the app's reading of it applies
            return self.wsgi_app(environ, start_response)
        if length < 0 or (self.max_length is not None and length > self.max_length):
            return self.wsgi_app(environ, start_response)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)  # the body, if the app gets the request
        if len(raw) != length:  # the client went away mid-body: the app says so as usual
            return self.wsgi_app(environ, start_response)
        with self.app.app_context():
            g.request_id = request_id = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
            try:
                answer = intake.receive_plain(channel, EnvironHeaders(environ), raw,
                                              request_id)
            except Exception as exc:  # noqa: BLE001 - answered as the app answers it
                with self.app.request_context(environ):
                    response = self.app.finalize_request(self.app.handle_user_exception(exc))
                return response(environ, start_response)
            if answer is not None:
                body = (self.app.json.dumps(answer, separators=(",", ":")) + "\n").encode()
                start_response("200 OK", [
                    ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                    *SECURITY_HEADERS, ("X-Request-ID", request_id)])
                return [body]
        return self.wsgi_app(environ, start_response)


def install_lean_path(app: Flask) -> None:
    """Put LeanWebhooks in front of the app's WSGI stack (after every other middleware)."""
    app.wsgi_app = LeanWebhooks(app, app.wsgi_app)
