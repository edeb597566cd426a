"""The store contract: every backend behaves the same, and never crosses owners."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from utils.errors import ApiError
from utils.pagination import encode_cursor
from utils.store import ConversationFilters, DuplicateMessage, NewMessage, TaskFilters

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _conv(store, owner, platform="facebook", account="page-1", puid="psid-1", name="Ada"):
    contact, _ = store.upsert_contact(owner, platform, puid, {"name": name})
    conv, created = store.open_conversation(owner, platform, account, contact["id"])
    return contact, conv, created


def _msg(conv_id, mid, at, text="hi", direction="inbound", sender="contact", **kw):
    return NewMessage(conversation_id=conv_id, direction=direction, sender_type=sender, text=text,
                      platform="facebook", platform_message_id=mid, created_at=at, **kw)


def test_contact_upsert_updates_profile_and_is_per_owner(store, owners):
    a, b = owners
    c1, created1 = store.upsert_contact(
        a, "facebook", "psid-1", {"first_name": "Ada", "last_name": "L"}
    )
    c2, created2 = store.upsert_contact(a, "facebook", "psid-1", {"profile_pic": "https://x/p.jpg"})
    assert (created1, created2) == (True, False)
    assert c1["id"] == c2["id"]
    assert c2["name"] == "Ada L" and c2["profile_pic"] == "https://x/p.jpg"
    other, created_other = store.upsert_contact(b, "facebook", "psid-1", {"name": "Someone"})
    assert created_other is True
    assert other["id"] != c1["id"]
    assert store.get_contact(b, c1["id"]) is None
    assert store.update_contact(b, c1["id"], {"name": "x"}) is None
    assert store.get_contact(a, c1["id"])["name"] == "Ada L"


def test_open_conversation_is_idempotent(store, owners):
    a, _ = owners
    contact, conv, created = _conv(store, a)
    again, created_again = store.open_conversation(a, "facebook", "page-1", contact["id"])
    assert created and not created_again and again["id"] == conv["id"]
    assert conv["status"] == "open" and conv["ai_enabled"] is True and conv["labels"] == []
    assert conv["contact"] == {
        "id": contact["id"],
        "name": "Ada",
        "platform_user_id": "psid-1",
        "profile_pic": None,
    }


def test_open_conversation_refuses_a_contact_that_is_not_the_owners(store, owners):
    a, b = owners
    contact, _ = store.upsert_contact(a, "facebook", "psid-1", {"name": "Ada"})
    for contact_id in (contact["id"], str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(LookupError):
            store.open_conversation(b, "facebook", "page-1", contact_id)
    with pytest.raises(LookupError):
        store.open_conversation(a, "facebook", "page-1", str(uuid.uuid4()))
    assert store.list_conversations(b, ConversationFilters(), 10, None).items == []
    assert store.list_conversations(a, ConversationFilters(), 10, None).items == []
    _, created = store.open_conversation(a, "facebook", "page-1", contact["id"])
    assert created


def test_messages_dedupe_and_order_by_platform_time(store, owners):
    a, _ = owners
    _, conv, _ = _conv(store, a)
    store.add_message(a, _msg(conv["id"], "m2", T0 + timedelta(seconds=2), "second"))
    store.add_message(a, _msg(conv["id"], "m1", T0 + timedelta(seconds=1), "first"))
    with pytest.raises(DuplicateMessage) as dup:
        store.add_message(a, _msg(conv["id"], "m1", T0, "again"))
    assert dup.value.existing["text"] == "first"
    page = store.list_messages(a, conv["id"], 50, None)
    assert [m["text"] for m in page.items] == ["first", "second"]
    conv = store.get_conversation(a, conv["id"])
    assert conv["unread_count"] == 2
    assert conv["last_message_at"] == (T0 + timedelta(seconds=2)).isoformat()
    assert conv["last_message_preview"] == "second"
    assert store.find_message(a, "facebook", "m1")["text"] == "first"


def test_add_message_in_returns_the_conversation_as_the_message_left_it(store, owners):
    a, b = owners
    contact, conv, _ = _conv(store, a)
    m2, after2 = store.add_message_in(a, _msg(conv["id"], "m2", T0 + timedelta(seconds=2),
                                              "second"), conv)
    assert after2 == store.get_conversation(a, conv["id"])
    assert after2["contact"] == conv["contact"]
    assert (after2["message_count"], after2["unread_count"]) == (1, 1)
    assert after2["last_inbound_at"] == (T0 + timedelta(seconds=2)).isoformat()
    # an older message (a late redelivery) counts, but is not the newest
    _, after1 = store.add_message_in(a, _msg(conv["id"], "m1", T0 + timedelta(seconds=1),
                                             "first"), after2)
    assert after1 == store.get_conversation(a, conv["id"])
    assert (after1["message_count"], after1["unread_count"]) == (2, 2)
    assert after1["last_message_preview"] == "second"
    assert after1["last_inbound_at"] == after1["last_message_at"] == after2["last_message_at"]
    # a reply is the newest; the customer's last time stays
    _, after3 = store.add_message_in(a, _msg(conv["id"], None, T0 + timedelta(seconds=3),
                                             "reply", direction="outbound", sender="ai",
                                             status="queued"), after1)
    assert after3 == store.get_conversation(a, conv["id"])
    assert after3["last_message_preview"] == "reply" and after3["unread_count"] == 2
    assert after3["last_inbound_at"] == after2["last_inbound_at"]
    with pytest.raises(DuplicateMessage):
        store.add_message_in(a, _msg(conv["id"], "m2", T0, "again"), after3)
    # another owner's conversation, or none: nothing is stored
    for owner, conv_id in ((b, conv["id"]), (a, str(uuid.uuid4()))):
        with pytest.raises(LookupError):
            store.add_message_in(owner, _msg(conv_id, "m9", T0, "x"), after3)
    assert store.find_message(a, "facebook", "m9") is None
    assert store.get_conversation(a, conv["id"]) == after3


def test_set_message_meta_sets_one_key_and_keeps_the_others(store, owners):
    a, b = owners
    _, conv, _ = _conv(store, a)
    m = store.add_message(a, _msg(conv["id"], "m1", T0, metadata={"kind": "message",
                                                                 "automation": {"old": 1}}))
    assert store.set_message_meta(a, m["id"], "automation", {"outcome": "fallback", "ms": 3})
    assert store.set_message_meta(a, m["id"], "answered_by", ["r1", "r2"])
    assert store.get_message(a, m["id"])["metadata"] == {
        "kind": "message", "automation": {"outcome": "fallback", "ms": 3},
        "answered_by": ["r1", "r2"]}
    assert not store.set_message_meta(b, m["id"], "automation", {"x": 1})
    assert not store.set_message_meta(a, str(uuid.uuid4()), "automation", {"x": 1})
    assert store.get_message(a, m["id"])["metadata"]["automation"]["outcome"] == "fallback"


def test_message_pages_go_back_in_time(store, owners):
    a, _ = owners
    _, conv, _ = _conv(store, a)
    for i in range(7):
        store.add_message(a, _msg(conv["id"], f"m{i}", T0 + timedelta(seconds=i), f"t{i}"))
    p1 = store.list_messages(a, conv["id"], 3, None)
    assert [m["text"] for m in p1.items] == ["t4", "t5", "t6"]
    p2 = store.list_messages(a, conv["id"], 3, p1.next_cursor)
    assert [m["text"] for m in p2.items] == ["t1", "t2", "t3"]
    p3 = store.list_messages(a, conv["id"], 3, p2.next_cursor)
    assert [m["text"] for m in p3.items] == ["t0"] and p3.next_cursor is None


def test_status_never_moves_backwards(store, owners):
    a, b = owners
    _, conv, _ = _conv(store, a)
    out = store.add_message(
        a, _msg(conv["id"], None, T0, "reply", direction="outbound", sender="ai", status="queued")
    )
    sent = store.update_message_status(a, out["id"], "sent", platform_message_id="wamid.1")
    assert sent["status"] == "sent" and sent["platform_message_id"] == "wamid.1"
    assert store.update_message_status(a, out["id"], "read")["status"] == "read"
    assert store.update_message_status(a, out["id"], "delivered")["status"] == "read"
    assert store.update_message_status(a, out["id"], "sent")["status"] == "read"
    assert store.update_message_status(b, out["id"], "failed", error="x") is None
    failed = store.add_message(
        a, _msg(conv["id"], None, T0, "r2", direction="outbound", sender="ai", status="queued")
    )
    f = store.update_message_status(a, failed["id"], "failed", error="outside_window")
    assert f["status"] == "failed" and f["error"] == "outside_window"
    # a failed message stays failed; a platform id is kept once known, given once missing
    assert store.update_message_status(a, failed["id"], "sent", platform_message_id="w.2") \
        == {**f, "platform_message_id": "w.2"}
    assert store.update_message_status(a, failed["id"], "read", platform_message_id="w.3") \
        == {**f, "platform_message_id": "w.2"}
    # a read message does not fail afterwards, and keeps its error empty
    late = store.update_message_status(a, out["id"], "failed", error="x")
    assert (late["status"], late["error"], late["platform_message_id"]) == ("read", None,
                                                                           "wamid.1")
    assert store.get_message(a, out["id"]) == late
    assert store.update_message_status(a, str(uuid.uuid4()), "sent") is None


def test_conversation_list_filters_and_keyset(store, owners):
    a, b = owners
    convs = []
    for i in range(5):
        _, conv, _ = _conv(
            store, a, puid=f"p{i}", name=f"Name{i}", platform="instagram" if i % 2 else "facebook"
        )
        store.add_message(
            a,
            NewMessage(
                conversation_id=conv["id"],
                direction="inbound",
                sender_type="contact",
                text=f"about order {i}",
                platform=conv["platform"],
                platform_message_id=f"x{i}",
                created_at=T0 + timedelta(minutes=i),
            ),
        )
        convs.append(conv)
    _conv(store, b, puid="theirs")
    store.update_conversation(
        a, convs[1]["id"], {"labels": ["vip", "billing"], "status": "pending"}
    )
    store.update_conversation(a, convs[3]["id"], {"assignee_id": "agent-7"})

    everything = store.list_conversations(a, ConversationFilters(), 100, None)
    assert [c["id"] for c in everything.items] == [c["id"] for c in reversed(convs)]
    seen, cursor = [], None
    while True:
        page = store.list_conversations(a, ConversationFilters(), 2, cursor)
        seen += [c["id"] for c in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [c["id"] for c in reversed(convs)]

    def ids(**kw):
        return [
            c["id"] for c in store.list_conversations(a, ConversationFilters(**kw), 100, None).items
        ]

    assert ids(label="vip") == [convs[1]["id"]]
    assert ids(status="pending") == [convs[1]["id"]]
    assert set(ids(platform="instagram")) == {convs[1]["id"], convs[3]["id"]}
    assert ids(assignee_id="agent-7") == [convs[3]["id"]]
    assert ids(q="ORDER 2") == [convs[2]["id"]]
    assert ids(q="name4") == [convs[4]["id"]]
    assert ids(q="100%") == []


def test_cross_owner_conversation_access_is_none(store, owners):
    a, b = owners
    _, conv, _ = _conv(store, a)
    assert store.get_conversation(b, conv["id"]) is None
    assert store.update_conversation(b, conv["id"], {"status": "resolved"}) is None
    assert store.mark_conversation_read(b, conv["id"]) is None
    assert store.list_messages(b, conv["id"], 10, None).items == []
    with pytest.raises(LookupError):
        store.add_message(b, _msg(conv["id"], "mx", T0))
    assert store.get_conversation(a, conv["id"])["status"] == "open"


def test_tasks_crud_filters_and_scoping(store, owners):
    a, b = owners
    _, conv, _ = _conv(store, a)
    t1 = store.create_task(
        a, {"title": "Call back", "priority": "high", "conversation_id": conv["id"], "due_at": T0}
    )
    t2 = store.create_task(a, {"title": "Refund", "description": "order 42"})
    assert t1["status"] == "open" and t1["due_at"] == T0.isoformat()
    assert t2["priority"] == "normal"
    assert [t["id"] for t in store.list_tasks(a, TaskFilters(priority="high"), 10, None).items] == [
        t1["id"]
    ]
    assert [
        t["id"]
        for t in store.list_tasks(a, TaskFilters(conversation_id=conv["id"]), 10, None).items
    ] == [t1["id"]]
    assert store.list_tasks(b, TaskFilters(), 10, None).items == []
    assert store.get_task(b, t1["id"]) is None
    assert store.update_task(b, t1["id"], {"status": "done"}) is None
    assert store.delete_task(b, t1["id"]) is False
    assert store.update_task(a, t1["id"], {"status": "done"})["status"] == "done"
    assert store.delete_task(a, t2["id"]) is True
    assert store.get_task(a, t2["id"]) is None


SOME_ID = "00000000-0000-4000-8000-000000000001"
UNUSABLE_CURSORS = {
    "not-base64-json": "garbage",
    "wrong-length": encode_cursor([T0.isoformat()]),
    "not-a-date": encode_cursor(["not-a-date", SOME_ID]),
    "date-not-a-string": encode_cursor([12345, SOME_ID]),
    "id-not-a-string": encode_cursor([T0.isoformat(), 12345]),
    "date-out-of-range": encode_cursor(["9999-12-31T23:59:59-14:00", SOME_ID]),
}
LISTS = {
    "contacts": lambda store, owner, cursor: store.list_contacts(owner, None, None, 10, cursor),
    "conversations": lambda store, owner, cursor: store.list_conversations(
        owner, ConversationFilters(), 10, cursor
    ),
    "messages": lambda store, owner, cursor: store.list_messages(owner, SOME_ID, 10, cursor),
    "tasks": lambda store, owner, cursor: store.list_tasks(owner, TaskFilters(), 10, cursor),
    "subscriptions": lambda store, owner, cursor: store.list_subscriptions(10, cursor),
}


@pytest.mark.parametrize("listing", LISTS.values(), ids=LISTS.keys())
def test_unusable_cursor_is_invalid_cursor(store, owners, listing):
    """A cursor of the right shape with values no list could have made is a 400, never a
    database error."""
    for name, cursor in UNUSABLE_CURSORS.items():
        with pytest.raises(ApiError) as refused:
            listing(store, owners[0], cursor)
        assert (refused.value.status, refused.value.code) == (400, "invalid_cursor"), name
