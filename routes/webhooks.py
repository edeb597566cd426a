"""Meta webhooks: GET verification handshake, POST deliveries (signed, stored, processed).

An authentic delivery is stored raw before anything else and always answered 200 once
stored, even if processing fails later (it can be retried). Processing runs after the
response is sent (inline mode) or on an RQ worker (AUTOMATION_QUEUE=rq).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging

from flask import Blueprint, current_app, g, request

from automation.registry import PLATFORMS
from sqlalchemy import insert

from models_db import WebhookEvent, db, utcnow
from services import automation_queue
from utils.errors import ApiError, Forbidden, NotFound, Unauthorized

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
# Built once: a plain table INSERT ... RETURNING id with bound parameters (the hot path).
_INSERT_EVENT = insert(WebhookEvent.__table__).returning(WebhookEvent.__table__.c.id)
log = logging.getLogger("dana.webhooks")


def _connector_class(platform: str):
    cls = PLATFORMS.get(platform)
    if cls is None:
        raise NotFound("No such webhook.")
    return cls


def verify_signature(secret: str, raw_body: bytes, header: str | None) -> None:
    """Check X-Hub-Signature-256 over the raw bytes (constant time); 401 missing, 403 wrong."""
    if not header:
        raise Unauthorized("The X-Hub-Signature-256 header is missing.", code="signature_missing")
    scheme, _, received = header.partition("=")
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    if scheme != "sha256" or not hmac.compare_digest(expected, received.strip().lower()):
        raise Forbidden("The signature does not match the body.", code="signature_invalid")


@bp.get("/<platform>")
def verify(platform: str):
    """Meta's subscription handshake: echo hub.challenge when the verify token matches."""
    _connector_class(platform)
    settings = current_app.config["DANA_SETTINGS"]
    mode = request.args.get("hub.mode")
    token = request.args.get("hub.verify_token")
    challenge = request.args.get("hub.challenge")
    if token is None or challenge is None:
        raise ApiError("hub.verify_token and hub.challenge are required.", code="bad_verification")
    expected = settings.META_VERIFY_TOKEN or ""
    if mode != "subscribe" or not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Forbidden("The verify token does not match.", code="verify_token_mismatch")
    return current_app.response_class(challenge, status=200, mimetype="text/plain")


@bp.post("/<platform>")
def receive(platform: str):
    """Store an authentic delivery, hand it to the automation, answer 200."""
    cls = _connector_class(platform)
    settings = current_app.config["DANA_SETTINGS"]
    secret = getattr(settings, cls.secret_setting) or settings.META_APP_SECRET
    if not secret:
        log.error("%s is not set: cannot verify %s webhooks", cls.secret_setting, platform)
        raise ApiError("Webhook signature secret is not configured.", status=503,
                       code="webhook_not_configured")
    raw = request.get_data(cache=True)  # raw bytes, whatever the Content-Type says
    verify_signature(secret, raw, request.headers.get("X-Hub-Signature-256"))
    text = raw.decode("utf-8", errors="replace")
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to parse
        payload = None
    if not isinstance(payload, dict):
        # Authentic but unusable: keep it for inspection, tell the sender.
        db.session.add(WebhookEvent(platform=platform, raw_body=text, status="rejected",
                                    error="body is not a JSON object", request_id=g.get("request_id")))
        db.session.commit()
        raise ApiError("The body is not a JSON object.", code="invalid_json")
    # A Core INSERT ... RETURNING: one round trip, and no reload of the raw body after commit.
    event_id = db.session.execute(_INSERT_EVENT, {
        "platform": platform, "raw_body": text, "status": "received", "attempts": 0,
        "received_at": utcnow(), "request_id": g.get("request_id")}).scalar_one()
    db.session.commit()
    automation_queue.dispatch(event_id)
    return {"status": "received", "event_id": event_id}
