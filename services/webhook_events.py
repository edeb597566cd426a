"""Stored webhook deliveries for operators: list them, read one, replay one.

Replaying is safe at any time: messages are unique per platform message id and automated
replies per inbound message, so a replay never stores or sends anything twice.
"""
from __future__ import annotations

from sqlalchemy import select

from automation.core.event_runner import reset_for_replay, run_event
from models_db import WebhookEvent, db
from utils.audit import audit
from utils.errors import Conflict, NotFound
from utils.pagination import decode_cursor, encode_cursor


def list_events(status: str | None, platform: str | None, limit: int, cursor: str | None) -> dict:
    """Newest first (by id), without the raw bodies."""
    stmt = select(WebhookEvent).order_by(WebhookEvent.id.desc())
    if status:
        stmt = stmt.where(WebhookEvent.status == status)
    if platform:
        stmt = stmt.where(WebhookEvent.platform == platform)
    if cursor:
        (before,) = decode_cursor(cursor, 1)
        if not isinstance(before, int):
            decode_cursor("", 1)  # the one invalid_cursor error
        stmt = stmt.where(WebhookEvent.id < before)
    rows = list(db.session.scalars(stmt.limit(limit + 1)))
    next_cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return {"items": [e.to_dict() for e in rows[:limit]], "next_cursor": next_cursor}


def get_event(event_id: int) -> WebhookEvent:
    """A stored delivery by id (operators), or 404."""
    event = db.session.get(WebhookEvent, event_id)
    if event is None:
        raise NotFound("No such webhook event.", code="webhook_event_not_found")
    return event


def replay_event(event_id: int) -> str:
    """Run one stored event again now, whatever its status; returns its status afterwards.

    A finished, failed or dead event is reset so that it runs; one still 'processing' whose
    run died (lease expired) is claimed as is, so the run first settles the replies its
    interrupted predecessor left unfinished. One that a live run holds is left to it (its
    status, 'processing', is returned). The run goes through the same claim as every queue.
    """
    event = get_event(event_id)
    if event.status == "rejected":
        raise Conflict("This delivery is not JSON; it is kept for inspection and cannot be "
                       "replayed.", code="event_not_replayable")
    db.session.rollback()
    reset_for_replay(event_id)
    return run_event(event_id)


def admin_replay(actor_id: str, event_id: int) -> dict:
    """Replay on behalf of an administrator (audited); the event as it ends up."""
    get_event(event_id)
    status = replay_event(event_id)
    audit("webhook_event_replayed", actor_id=actor_id, event_id=event_id, status=status)
    return get_event(event_id).to_dict()
