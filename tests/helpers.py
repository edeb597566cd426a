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
    contact = store.upsert_contact(owner_id, platform, f"psid-{uuid.uuid4().hex[:12]}",
                                   {"name": name})
    conv, _ = store.open_conversation(owner_id, platform, account, contact["id"])
    start = start or datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i, text in enumerate(texts or []):
        store.add_message(owner_id, NewMessage(
            conversation_id=conv["id"], direction="inbound", sender_type="contact", text=text,
            platform=platform, platform_message_id=f"mid.{uuid.uuid4().hex}",
            created_at=start + timedelta(seconds=i)))
    return store.get_conversation(owner_id, conv["id"])
