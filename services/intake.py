"""Intake of inbound deliveries, whatever the channel: verify, store raw, hand on.

The channel's hook (automation.registry.INBOUND_HOOKS) checks that the request is authentic;
then the delivery is stored raw (`webhook_events`) before anything else, so nothing is lost,
and handed to the configured queue (services/automation_queue.py). An authentic delivery is
answered 200 once stored, even if processing fails later (it can be replayed).
"""
from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import insert

from automation.inbound import InboundHook
from automation.registry import INBOUND_HOOKS
from models_db import WebhookEvent, db, utcnow
from services import automation_queue
from utils.errors import ApiError, NotFound

# Built once: a plain table INSERT ... RETURNING id with bound parameters (the hot path).
_INSERT_EVENT = insert(WebhookEvent.__table__).returning(WebhookEvent.__table__.c.id)


def hook_for(channel: str) -> InboundHook:
    """The channel's inbound hook; 404 for a channel Dana does not have."""
    hook = INBOUND_HOOKS.get(channel)
    if hook is None:
        raise NotFound("No such webhook.")
    return hook


def handshake(channel: str, args: Mapping[str, str]) -> str:
    """Answer a channel's subscription handshake (the text to send back)."""
    return hook_for(channel).handshake(args)


def receive(channel: str, headers: Mapping[str, str], raw_body: bytes,
            request_id: str | None) -> dict:
    """Verify, store and dispatch one delivery; {"status": "received", "event_id"}."""
    hook = hook_for(channel)
    hook.verify_request(headers, raw_body)
    text = raw_body.decode("utf-8", errors="replace")
    try:
        payload = json.loads(raw_body)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to parse
        payload = None
    if not isinstance(payload, dict):
        # Authentic but unusable: keep it for inspection, tell the sender.
        db.session.add(WebhookEvent(platform=channel, raw_body=text, status="rejected",
                                    error="body is not a JSON object", request_id=request_id))
        db.session.commit()
        raise ApiError("The body is not a JSON object.", code="invalid_json")
    instant = hook.instant_reply(payload)
    if instant is not None:
        return instant
    # A Core INSERT ... RETURNING on a pooled connection of its own: one round trip, and none
    # of the ORM session's per-request work (unit of work, identity map, reload after commit).
    with db.engine.begin() as conn:
        event_id = conn.execute(_INSERT_EVENT, {
            "platform": channel, "raw_body": text, "status": "received", "attempts": 0,
            "received_at": utcnow(), "request_id": request_id}).scalar_one()
    automation_queue.dispatch(event_id)
    return {"status": "received", "event_id": event_id}
