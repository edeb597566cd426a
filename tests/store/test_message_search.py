"""The inbox search (`q=` of the conversation list) on every backend: a case-insensitive
substring of the contact's name or of any message, per owner, and in step with edits and
deletions (SQLite answers it from the messages_fts full-text index, PostgreSQL from pg_trgm).
Also: a list call sends one SQL statement (no N+1).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event

from utils.store import ConversationFilters, NewMessage

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _conversation(store, owner, puid, name, texts):
    contact, _ = store.upsert_contact(owner, "facebook", puid, {"name": name})
    conv, _ = store.open_conversation(owner, "facebook", "page-1", contact["id"])
    messages = [
        store.add_message(owner, NewMessage(
            conversation_id=conv["id"], direction="inbound", sender_type="contact", text=text,
            platform="facebook", platform_message_id=f"{puid}-{i}",
            created_at=T0 + timedelta(minutes=i)))
        for i, text in enumerate(texts)
    ]
    return conv, messages


def _found(store, owner, q):
    page = store.list_conversations(owner, ConversationFilters(q=q), 50, None)
    return [c["id"] for c in page.items]


def test_search_matches_words_and_case_different_substrings_per_owner(store, owners):
    a, b = owners
    refund, _ = _conversation(store, a, "p1", "Ada", ["Hello", "I want a Refund for order #1234"])
    parcel, _ = _conversation(store, a, "p2", "Bob", ["Where is my parcel?"])
    theirs, _ = _conversation(store, b, "p3", "Eve", ["refund please, order #1234"])

    assert _found(store, a, "refund") == [refund["id"]]  # a word
    assert _found(store, a, "RDER #12") == [refund["id"]]  # a substring, other case
    assert _found(store, a, "arce") == [parcel["id"]]
    assert _found(store, a, "bob") == [parcel["id"]]  # the contact's name
    assert _found(store, b, "refund") == [theirs["id"]]  # never another owner's
    assert _found(store, a, "Eve") == []
    assert _found(store, a, "refunds") == []
    assert sorted(_found(store, a, "e")) == sorted([refund["id"], parcel["id"]])  # 1 character


@pytest.mark.parametrize("q", ['"', 'a"b', "*", "refund OR parcel", "NEAR(a b)", "^re", "-x",
                               "100%", "_", "\\", "'; drop"])
def test_search_text_is_literal_never_query_syntax(store, owners, q):
    a, _ = owners
    conv, _ = _conversation(store, a, "p1", "Ada", ["plain text", f"literal {q} here"])
    _conversation(store, a, "p2", "Bob", ["refund parcel a b re x 100 drop"])
    assert _found(store, a, q) == [conv["id"]]


def test_search_follows_edits(store, owners):
    a, _ = owners
    conv, (first,) = _conversation(store, a, "p1", "Ada", ["my tracking number is lost"])
    assert _found(store, a, "tracking") == [conv["id"]]
    store.update_message(a, first["id"], text="never mind, it arrived")
    assert _found(store, a, "tracking") == []
    assert _found(store, a, "ARRIVED") == [conv["id"]]
    store.update_message_status(a, first["id"], "read")  # a status change keeps the index
    assert _found(store, a, "arrived") == [conv["id"]]
    store.update_contact(a, conv["contact"]["id"], {"name": "Zelda Quill"})
    assert _found(store, a, "ada") == []
    assert _found(store, a, "zelda q") == [conv["id"]]


def test_search_forgets_deleted_messages(app, owners, backend):
    if backend != "sql":
        pytest.skip("deleting rows directly is the SQL backend's concern")
    from sqlalchemy import delete

    from models_db import db
    from utils.store import get_store
    from utils.store.sql_models import Conversation, Message

    store = get_store()
    a, _ = owners
    conv, (gone, kept) = _conversation(store, a, "p1", "Ada", ["invoice 77 missing", "thanks"])
    other, _ = _conversation(store, a, "p2", "Bob", ["invoice 78 missing"])
    db.session.execute(delete(Message).where(Message.id == gone["id"]))
    db.session.commit()
    assert _found(store, a, "invoice") == [other["id"]]
    assert _found(store, a, "thanks") == [conv["id"]]
    db.session.execute(delete(Conversation).where(Conversation.id == other["id"]))  # cascades
    db.session.commit()
    assert _found(store, a, "invoice") == []
    if db.engine.dialect.name == "sqlite":  # the full-text indexes agree with the tables
        one = lambda sql: db.session.execute(db.text(sql)).scalar()  # noqa: E731
        assert one("SELECT count(*) FROM messages_fts_docsize") == \
            one("SELECT count(*) FROM messages")
        db.session.execute(db.text(
            "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')"))
        db.session.execute(db.text(
            "INSERT INTO contacts_fts(contacts_fts, rank) VALUES ('integrity-check', 1)"))


def test_list_calls_send_one_statement(app, owners, backend):
    if backend != "sql":
        pytest.skip("counts the SQL backend's statements")
    from models_db import db
    from utils.store import get_store

    store = get_store()
    a, _ = owners
    for i in range(3):
        conv, _ = _conversation(store, a, f"p{i}", f"Name {i}", ["hello", "refund"])
    statements = []

    def count(*_args):
        statements.append(1)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        calls = {
            "conversations": lambda: store.list_conversations(a, ConversationFilters(), 2, None),
            "search": lambda: store.list_conversations(a, ConversationFilters(q="refund"), 2,
                                                       None),
            "messages": lambda: store.list_messages(a, conv["id"], 1, None),
        }
        for name, call in calls.items():
            db.session.expunge_all()
            statements.clear()
            page = call()
            assert page.next_cursor and len(statements) == 1, name
            statements.clear()
            call_next = {"conversations": lambda c: store.list_conversations(
                a, ConversationFilters(), 2, c), "search": lambda c: store.list_conversations(
                a, ConversationFilters(q="refund"), 2, c),
                "messages": lambda c: store.list_messages(a, conv["id"], 1, c)}[name]
            call_next(page.next_cursor)
            assert len(statements) == 1, name
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_a_conversation_update_is_one_write_and_an_unchanged_value_writes_nothing(
        app, owners, backend):
    """update_conversation: the UPDATE and the read of the result, no read before; a value
    the row already has is no change (updated_at stays, as the ORM's unit of work did)."""
    if backend != "sql":
        pytest.skip("counts the SQL backend's statements")
    from models_db import db
    from utils.store import get_store

    store = get_store()
    a, _ = owners
    conv, _ = _conversation(store, a, "p1", "Ada", ["hello"])
    statements = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement.split(None, 1)[0].upper())

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        changed = store.update_conversation(a, conv["id"], {"status": "pending",
                                                            "ai_enabled": False})
        assert [s for s in statements if s != "BEGIN"] == ["UPDATE", "SELECT"]
        assert (changed["status"], changed["ai_enabled"]) == ("pending", False)
        again = store.update_conversation(a, conv["id"], {"status": "pending"})
        assert again["updated_at"] == changed["updated_at"]
        assert store.update_conversation(a, "no-such-id", {"status": "open"}) is None
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
