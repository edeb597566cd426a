"""The store contract for what ingest and sending use: conversation lookup by platform user,
idempotency keys, message edits and read/delivery watermarks. Same tests on every backend."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from utils.store import DuplicateMessage, NewMessage

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _conv(store, owner, puid="psid-1", account="page-1"):
    contact, _ = store.upsert_contact(owner, "facebook", puid, {"name": "Ada"})
    conv, _ = store.open_conversation(owner, "facebook", account, contact["id"])
    return conv


def _out(conv_id, at, status="sent", **kw):
    return NewMessage(conversation_id=conv_id, direction="outbound", sender_type="ai",
                      text="reply", platform="facebook", status=status, created_at=at, **kw)


def test_find_conversation_by_platform_user(store, owners):
    a, b = owners
    conv = _conv(store, a)
    _conv(store, a, puid="psid-2")
    found = store.find_conversation(a, "facebook", "page-1", "psid-1")
    assert found["id"] == conv["id"] and found["contact"]["platform_user_id"] == "psid-1"
    assert store.find_conversation(a, "facebook", "page-2", "psid-1") is None
    assert store.find_conversation(a, "instagram", "page-1", "psid-1") is None
    assert store.find_conversation(b, "facebook", "page-1", "psid-1") is None


def test_idempotency_key_stores_one_message(store, owners):
    a, b = owners
    conv = _conv(store, a)
    first = store.add_message(a, _out(conv["id"], T0, idempotency_key="reply:m1"))
    with pytest.raises(DuplicateMessage) as dup:
        store.add_message(a, _out(conv["id"], T0, idempotency_key="reply:m1"))
    assert dup.value.existing["id"] == first["id"]
    assert store.find_message_by_key(a, "reply:m1")["id"] == first["id"]
    assert store.find_message_by_key(b, "reply:m1") is None
    assert store.get_conversation(a, conv["id"])["message_count"] == 1


def test_update_message_replaces_text_and_merges_metadata(store, owners):
    a, b = owners
    conv = _conv(store, a)
    m = store.add_message(a, _out(conv["id"], T0, metadata={"author": "ai"}))
    edited = store.update_message(a, m["id"], text="edited", metadata={"reactions": ["love"]})
    assert edited["text"] == "edited"
    assert edited["metadata"] == {"author": "ai", "reactions": ["love"]}
    again = store.update_message(a, m["id"], metadata={"error_detail": "x"})
    assert again["text"] == "edited" and again["metadata"]["reactions"] == ["love"]
    assert store.update_message(b, m["id"], text="x") is None
    assert store.get_message(a, m["id"])["text"] == "edited"


def test_concurrent_metadata_merges_are_all_kept(app, store, owners, backend):
    """Merges from several workers at once (reactions, send errors) never lose one another.
    SQL holds a row lock, so every merge succeeds. Supabase compares-and-sets and may give up
    (RuntimeError) after a few lost races, but never acknowledges a merge it then loses."""
    from models_db import db
    if backend == "sql" and db.engine.dialect.name == "sqlite":
        pytest.skip("row locks are PostgreSQL's; SQLite is the single-process backend")
    a, _ = owners
    m = store.add_message(a, _out(_conv(store, a)["id"], T0, metadata={"author": "ai"}))
    workers, rounds = 4, 5
    start = threading.Barrier(workers)
    acknowledged: dict[str, int] = {}

    def merge(worker: int) -> None:
        with app.app_context():  # its own database session, as in a request
            start.wait()
            for n in range(rounds):
                key = f"w{worker}.{n}"
                try:
                    store.update_message(a, m["id"], metadata={key: n})
                except RuntimeError:
                    if backend == "sql":
                        raise
                    continue
                acknowledged[key] = n

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(merge, range(workers)))
    merged = store.get_message(a, m["id"])["metadata"]
    assert acknowledged and merged == {"author": "ai", **acknowledged}
    if backend == "sql":
        assert len(acknowledged) == workers * rounds


def test_watermark_moves_earlier_outbound_messages_only(store, owners):
    a, b = owners
    conv = _conv(store, a)
    sent = store.add_message(a, _out(conv["id"], T0))
    delivered = store.add_message(a, _out(conv["id"], T0 + timedelta(seconds=1),
                                          status="delivered"))
    failed = store.add_message(a, _out(conv["id"], T0, status="failed"))
    later = store.add_message(a, _out(conv["id"], T0 + timedelta(minutes=5)))
    inbound = store.add_message(a, NewMessage(
        conversation_id=conv["id"], direction="inbound", sender_type="contact", text="hi",
        platform="facebook", platform_message_id="in.1", created_at=T0))
    note = store.add_message(a, NewMessage(
        conversation_id=conv["id"], direction="outbound", sender_type="agent", text="n",
        is_note=True, status="sent", created_at=T0))

    assert store.mark_outbound_up_to(b, conv["id"], "read", T0 + timedelta(minutes=1)) == 0
    assert store.mark_outbound_up_to(a, conv["id"], "read", T0 + timedelta(minutes=1)) == 2
    status = {k: store.get_message(a, m["id"])["status"] for k, m in {
        "sent": sent, "delivered": delivered, "failed": failed, "later": later,
        "inbound": inbound, "note": note}.items()}
    assert status == {"sent": "read", "delivered": "read", "failed": "failed", "later": "sent",
                      "inbound": "received", "note": "sent"}
    # delivery never moves a read message back, and only 'sent' ones move to delivered
    assert store.mark_outbound_up_to(a, conv["id"], "delivered", T0 + timedelta(hours=1)) == 1
    assert store.get_message(a, later["id"])["status"] == "delivered"
    assert store.get_message(a, sent["id"])["status"] == "read"
