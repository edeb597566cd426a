"""Intake of inbound deliveries, whatever the channel: verify, store raw, hand on.

The channel's hook (automation.registry.INBOUND_HOOKS) checks that the request is authentic;
then the delivery is stored raw (`webhook_events`) before anything else, so nothing is lost,
and handed to the configured queue (services/automation_queue.py). An authentic delivery is
answered 200 once stored, even if processing fails later (it can be replayed).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from sqlalchemy import insert
from sqlalchemy.exc import InterfaceError, OperationalError

from automation.inbound import InboundHook
from automation.registry import INBOUND_HOOKS
from models_db import WebhookEvent, db, utcnow
from services import automation_queue
from utils.db import SoloStatement, is_locked, retry_locked
from utils.errors import ApiError, NotFound, ServiceUnavailable

log = logging.getLogger("dana.intake")

# Built once: the event INSERT ... RETURNING id, run alone on a raw connection (the hot path).
INSERT_EVENT = SoloStatement(
    insert(WebhookEvent.__table__).returning(WebhookEvent.__table__.c.id),
    ["platform", "raw_body", "status", "attempts", "received_at", "request_id", "claimed_by",
     "claimed_until", "processed_at"], rowid=True)


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
    payload = _parse(raw_body)
    if not isinstance(payload, dict):
        # Authentic but unusable: keep it for inspection, tell the sender.
        def _keep() -> None:
            db.session.add(WebhookEvent(platform=channel, raw_body=_text(raw_body),
                                        status="rejected", error="body is not a JSON object",
                                        request_id=request_id))
            db.session.commit()

        stored_or_503(_keep)
        raise ApiError("The body is not a JSON object.", code="invalid_json")
    instant = hook.instant_reply(payload)
    if instant is not None:
        return instant
    return _store_and_dispatch(channel, raw_body, payload, request_id)


def receive_plain(channel: str, headers: Mapping[str, str], raw_body: bytes,
                  request_id: str | None) -> dict | None:
    """receive() for the usual delivery only, for the webhooks' lean path (routes/webhooks.py):
    an authentic JSON object to store is stored and handed on exactly as receive() does it;
    returns its answer. Anything else (no such channel, no secret configured, a missing or
    wrong signature, a body that is not a JSON object, a delivery owed an instant reply)
    returns None before anything is stored or counted: the caller then hands the request to
    the full app, whose receive() answers it (and counts a forgery).
    """
    hook = INBOUND_HOOKS.get(channel)
    if hook is None:
        return None
    try:
        hook.verify_request(headers, raw_body)
    except ApiError:
        return None
    payload = _parse(raw_body)
    if not isinstance(payload, dict) or hook.instant_reply(payload) is not None:
        return None
    return _store_and_dispatch(channel, raw_body, payload, request_id)


def channels() -> list[str]:
    """The channels of /webhooks/<channel> that this intake serves."""
    return list(INBOUND_HOOKS)


def _parse(raw_body: bytes):
    try:
        return json.loads(raw_body)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to parse
        return None


def _text(raw_body: bytes) -> str:
    return raw_body.decode("utf-8", errors="replace")


def _store_and_dispatch(channel: str, raw_body: bytes, payload: dict,
                        request_id: str | None) -> dict:
    """Store an authentic delivery (503 when it cannot be), hand it on, and the 200's body.

    Inline, the delivery's first step is taken before the INSERT, which then also claims the
    event for its run, or finishes it (automation_queue.first_step): one write per delivery.
    """
    text = _text(raw_body)
    new = automation_queue.first_step(channel, payload, text)
    event_id = _store_event(channel, text, request_id, new.columns if new is not None else {})
    automation_queue.dispatch(event_id, new)
    return _answer(event_id)


def _store_event(channel: str, text: str, request_id: str | None, columns: dict) -> int:
    """Store an authentic delivery as an event (503 when it cannot be); its id. `received`,
    unless `columns` (the first step's) say otherwise.

    Stored = safe: if the hand-off that follows is lost, the sweep finds the event (the row
    is the outbox).
    """
    row = {"platform": channel, "raw_body": text, "status": "received", "attempts": 0,
           "received_at": utcnow(), "request_id": request_id, **columns}

    def _store() -> int:
        # One autocommitted INSERT on its own connection (PostgreSQL: ... RETURNING id, one
        # round trip; SQLite: the id from lastrowid), no session; committed when it returns.
        return INSERT_EVENT.run(**row)[1][0][0]

    return stored_or_503(_store)


def _answer(event_id: int) -> dict:
    """The 200's body for a stored delivery."""
    return {"status": "received", "event_id": event_id}


def stored_or_503(store):
    """Run a storing unit (locked writes retried); 503 when the delivery could not be stored,
    so that Meta delivers it again. Nothing else answers 503: once stored, it is 200.
    """
    try:
        return retry_locked(store)
    except Exception as exc:
        if not (is_locked(exc) or isinstance(exc, (OperationalError, InterfaceError))):
            raise  # a bug, not an unavailable database: the ordinary 500
        db.session.rollback()
        log.error("webhook delivery not stored (%s): answered 503 so that it is delivered "
                  "again", type(exc).__name__)
        raise ServiceUnavailable("The delivery could not be stored right now; it will be "
                                 "delivered again.", code="not_stored") from None
