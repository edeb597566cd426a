"""The SQL backend's lists read raw driver values and convert them with the dialect's Codec
(utils.store.sql.sql_codec) instead of SQLAlchemy's per-column types: what they answer must be
byte for byte what the ORM's typed reading of the same rows gives (the API's JSON, key order
and cursors included), on SQLite and PostgreSQL.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from utils.pagination import time_cursor
from utils.store import ConversationFilters, NewMessage

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)  # zero microseconds: isoformat drops them


@pytest.fixture
def backend():
    """These tests are about the SQL backend's reading (the Supabase one has its own)."""
    return "sql"


def _orm_conversations(owner):
    """The owner's conversations as the ORM reads them, in inbox order, in the API's shape."""
    from models_db import db
    from utils.store.serialize import conversation_dict
    from utils.store.sql_models import Contact, Conversation

    rows = db.session.execute(
        select(Conversation, Contact).join(Contact, Contact.id == Conversation.contact_id)
        .where(Conversation.owner_id == owner)).all()
    rows.sort(key=lambda r: (r[0].last_message_at, r[0].id), reverse=True)
    return [conversation_dict(c, ct) for c, ct in rows], [c for c, _ in rows]


def _orm_messages(owner, conversation_id):
    from models_db import db
    from utils.store.serialize import message_dict
    from utils.store.sql_models import Message

    rows = list(db.session.scalars(select(Message).where(
        Message.owner_id == owner, Message.conversation_id == conversation_id)))
    rows.sort(key=lambda m: (m.created_at, m.id))
    return [message_dict(m) for m in rows]


def _same_json(got, expected):
    """Byte-for-byte the same API output (json.dumps keeps key order and tells 1 from true)."""
    assert json.dumps(got) == json.dumps(expected)


def _seed(store, owner):
    """Conversations and messages with every kind of value a list shows."""
    convs = []
    for i, name in enumerate(["Ada", "Zoë Ünal", None, "Bob"]):
        contact, _ = store.upsert_contact(owner, "facebook", f"psid-{i}",
                                          {"name": name} if name else {})
        conv, _ = store.open_conversation(owner, "facebook", "page-1", contact["id"])
        convs.append(conv)
    c0, c1, c2, c3 = (c["id"] for c in convs)
    add = store.add_message
    add(owner, NewMessage(conversation_id=c0, direction="inbound", sender_type="contact",
                          text="hello", platform="facebook", platform_message_id=f"{owner}-m0",
                          created_at=T0))
    add(owner, NewMessage(conversation_id=c0, direction="outbound", sender_type="ai",
                          text=None, attachments=[{"type": "image", "url": "https://x/1.png"}],
                          platform="facebook", platform_message_id=f"{owner}-m1",
                          status="delivered", metadata={"reaction": "❤", "n": 2},
                          created_at=T0 + timedelta(microseconds=123456)))
    add(owner, NewMessage(conversation_id=c0, direction="outbound", sender_type="agent",
                          text="internal", is_note=True, status="sent",
                          metadata={"author_id": "u1"}, created_at=T0 + timedelta(seconds=1)))
    # two conversations with the same last activity: the id breaks the tie
    for cid, mid in ((c1, f"{owner}-m2"), (c2, f"{owner}-m3")):
        add(owner, NewMessage(conversation_id=cid, direction="inbound", sender_type="contact",
                              text="same time", platform="facebook", platform_message_id=mid,
                              created_at=T0 + timedelta(minutes=5, microseconds=10)))
    store.update_conversation(owner, c1, {"labels": ["vip", "billing"], "status": "snoozed",
                                          "snoozed_until": T0 + timedelta(days=1),
                                          "ai_enabled": False, "assignee_id": "agent-7"})
    return c0, c1, c2, c3


def test_conversation_and_message_lists_answer_what_the_orm_reads(app, owners):
    from models_db import db
    from utils.store import get_store

    store = get_store()
    a, b = owners
    c0, *_ = _seed(store, a)
    _seed(store, b)
    expected, orm_rows = _orm_conversations(a)
    assert len(expected) == 4

    page = store.list_conversations(a, ConversationFilters(), 100, None)
    _same_json(page.items, expected)
    assert page.next_cursor is None
    for conv in expected:
        _same_json(store.get_conversation(a, conv["id"]), conv)
    _same_json(store.find_conversation(a, "facebook", "page-1", "psid-1"),
               next(c for c in expected if c["contact"]["platform_user_id"] == "psid-1"))

    # pages of 1: the same items, and the cursors the typed reading made (time_cursor)
    cursor, seen = None, []
    for i in range(4):
        page = store.list_conversations(a, ConversationFilters(), 1, cursor)
        seen += page.items
        cursor = page.next_cursor
        assert cursor == (time_cursor(orm_rows[i].last_message_at, orm_rows[i].id)
                          if i < 3 else None)
    _same_json(seen, expected)

    thread = _orm_messages(a, c0)
    _same_json(store.list_messages(a, c0, 100, None).items, thread)
    first = store.list_messages(a, c0, 2, None)
    _same_json(first.items, thread[1:])
    _same_json(store.list_messages(a, c0, 2, first.next_cursor).items, thread[:1])
    db.session.rollback()


def test_timestamps_stored_in_other_forms_read_as_the_orm_reads_them(app, owners):
    """SQLite: TZDateTime writes 'YYYY-MM-DD HH:MM:SS.ffffff' (the fast path); a value written
    otherwise (by hand, an older tool) still reads exactly as the typed column reads it.
    PostgreSQL: a timestamptz in another session time zone reads as the same instant.
    """
    from models_db import db
    from utils.store import get_store

    store = get_store()
    a, _ = owners
    c0, c1, c2, c3 = _seed(store, a)
    if db.engine.dialect.name == "sqlite":
        updates = [(c0, "last_inbound_at", "2026-03-01 12:00:00"),
                   (c1, "snoozed_until", "2026-03-02 08:30:00.000000"),
                   (c2, "created_at", "2026-03-01 12:00:00.5"),
                   (c3, "updated_at", "2026-03-01")]
    else:
        db.session.execute(text("SET TIME ZONE 'Europe/Paris'"))
        updates = [(c0, "last_inbound_at", "2026-03-01 12:00:00+05:30"),
                   (c1, "snoozed_until", "2026-03-02 08:30:00.000001+00")]
    for cid, column, value in updates:
        db.session.execute(text(f"UPDATE conversations SET {column} = :v WHERE id = :id"),
                           {"v": value, "id": cid})
    db.session.flush()
    expected, _ = _orm_conversations(a)
    _same_json(store.list_conversations(a, ConversationFilters(), 100, None).items, expected)
    db.session.rollback()
