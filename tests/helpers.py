"""Shared test helpers: seeding the store the way ingest will."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from utils.store import NewMessage, get_store


def seed_conversation(owner_id: str, platform: str = "facebook", account: str = "page-1",
                      name: str = "Ada Lovelace", texts: list[str] | None = None,
                      start: datetime | None = None) -> dict:
    """A contact, its conversation and inbound messages (one per text), oldest first."""
    store = get_store()
    contact, _ = store.upsert_contact(owner_id, platform, f"psid-{uuid.uuid4().hex[:12]}",
                                   {"name": name})
    conv, _ = store.open_conversation(owner_id, platform, account, contact["id"])
    start = start or datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i, text in enumerate(texts or []):
        store.add_message(owner_id, NewMessage(
            conversation_id=conv["id"], direction="inbound", sender_type="contact", text=text,
            platform=platform, platform_message_id=f"mid.{uuid.uuid4().hex}",
            created_at=start + timedelta(seconds=i)))
    return store.get_conversation(owner_id, conv["id"])


USER_KEYS = {"id", "email", "name", "role", "is_active", "timezone", "created_at", "updated_at"}


def assert_error(resp, status: int, code: str) -> dict:
    """The response is the one JSON error shape with this status and code."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.is_json, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def audit_rows(event: str) -> list:
    """The audit_log rows of one event kind, read fresh."""
    from models_db import AuditLog, db

    db.session.expire_all()
    return list(db.session.scalars(db.select(AuditLog).where(AuditLog.event == event)))
