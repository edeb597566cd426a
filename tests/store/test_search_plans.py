"""The SQL backend answers a search `q=` by one of two plans (utils.store.sql.SEARCH_CAP): from
the list of matches, or by walking the inbox newest first and checking each conversation
(PostgreSQL: from the thread index's search_head, migration 0015). Whichever it picks, the
pages must be the same: the conversations whose contact's name or any message contains q
(case-insensitive), of this owner only, newest first, with the same cursors.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from utils.store import ConversationFilters, NewMessage

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
LONG = "x" * 600 + " and at the very end: a REFUND please"  # past search_head's 500 characters


@pytest.fixture
def backend():
    """The plans are the SQL backend's (the Supabase one has a single SQL function)."""
    return "sql"


@pytest.fixture
def plan(monkeypatch):
    """Force one plan: "walk" (every search walks the inbox) or "matches"."""
    import utils.store.sql as sql

    def force(which: str) -> None:
        walk = which == "walk"
        monkeypatch.setattr(sql, "SEARCH_CAP", 1 if walk else 10**6)
        monkeypatch.setattr(sql, "SAMPLE_HITS", 0 if walk else 10**6)
    return force


def _seed(store, owner, tag):
    """An inbox where `refund` is frequent, some matches are only in old messages, in a
    contact's name, or past the 500th character of a long message; ties in time.
    """
    texts = {}
    for i in range(24):
        name = ["Ada Refundson", "Bob", None, "Zoë Ünal"][i % 4]
        contact, _ = store.upsert_contact(owner, "facebook", f"{tag}-{i}",
                                          {"name": name} if name else {})
        conv, _ = store.open_conversation(owner, "facebook", "page-1", contact["id"])
        thread = ["Hello, where is my parcel?",
                  "I want a refund for order #12" if i % 3 == 0 else "Thanks a lot",
                  LONG if i % 7 == 0 else None,
                  "Got it" if i % 5 else "order #1234 arrived"]
        at = T0 + timedelta(minutes=i // 2)  # pairs of conversations share their last time
        for k, text in enumerate(thread):
            store.add_message(owner, NewMessage(
                conversation_id=conv["id"], direction="inbound", sender_type="contact",
                text=text, platform="facebook", platform_message_id=f"{tag}-{i}-{k}",
                created_at=at - timedelta(hours=len(thread) - k)))
        if i % 4 == 1:
            store.update_conversation(owner, conv["id"], {"status": "pending"})
        texts[conv["id"]] = (name, [t for t in thread if t])
    return texts


def _expected(store, owner, texts, q, status=None):
    """The search by its definition, in Python, over the owner's inbox order."""
    inbox = store.list_conversations(owner, ConversationFilters(status=status), 100, None).items
    needle = q.lower()
    return [c["id"] for c in inbox
            if needle in (texts[c["id"]][0] or "").lower()
            or any(needle in t.lower() for t in texts[c["id"]][1])]


def _pages(store, owner, q, limit, status=None):
    ids, cursors, cursor = [], [], None
    while True:
        page = store.list_conversations(owner, ConversationFilters(q=q, status=status), limit,
                                        cursor)
        ids += [c["id"] for c in page.items]
        cursor = page.next_cursor
        cursors.append(cursor)
        if cursor is None:
            return ids, cursors


@pytest.mark.parametrize("q", ["refund", "REFUND", "rder #12", "refundson", "ünal", "very end",
                               "parcel", "nothing-like-this"])
def test_both_plans_give_the_same_pages(app, owners, plan, q):
    from utils.store import get_store

    store = get_store()
    a, b = owners
    texts = _seed(store, a, "a")
    _seed(store, b, "b")  # another owner with the same words: never in a's results
    for status in (None, "pending"):
        expected = _expected(store, a, texts, q, status)
        results = {}
        for which in ("walk", "matches"):
            plan(which)
            results[which] = [_pages(store, a, q, limit, status) for limit in (5, 50)]
        assert results["walk"] == results["matches"]
        for ids, _cursors in results["walk"]:
            assert ids == expected
    if q == "refund":  # the frequent word: most of the inbox, and the long message's match
        assert len(_expected(store, a, texts, q)) > 12
        long_only = [cid for cid, (name, thread) in texts.items()
                     if LONG in thread and "Refund" not in (name or "")
                     and not any("refund for" in t for t in thread)]
        assert long_only and set(long_only) <= set(_pages(store, a, q, 50)[0])


def test_the_default_plan_gives_the_same_pages(app, owners):
    """Without forcing: whatever the sample and the cap decide, the definition holds."""
    from utils.store import get_store

    store = get_store()
    a, _ = owners
    texts = _seed(store, a, "a")
    for q in ("refund", "order #1234", "zzz"):
        assert _pages(store, a, q, 4)[0] == _expected(store, a, texts, q)


def test_a_search_takes_no_write_lock(app, owners):
    """SQLite: a search is a read; the session that ran it must not hold the database's write
    lock (other processes' deliveries would wait on it until the request ends).
    """
    import sqlite3

    from models_db import db
    from utils.store import get_store

    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's single write lock")
    store = get_store()
    a, _ = owners
    _seed(store, a, "a")
    for q in ("refund", "zzz", "ad"):  # the walk, the matches, a 2-character scan
        assert store.list_conversations(a, ConversationFilters(q=q), 5, None) is not None
        other = sqlite3.connect(db.engine.url.database, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")  # "database is locked" if the search holds it
            other.rollback()
        finally:
            other.close()
    db.session.rollback()
