"""REST API over the store: conversations, messages, notes, contacts, tasks, admin reads."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.helpers import seed_conversation


@pytest.fixture
def conv(app, user):
    return seed_conversation(user["user"]["id"], texts=["Hello", "Do you ship to Oslo?"])


def test_list_shape_and_item_fields(client, user, conv):
    resp = client.get("/api/conversations", headers=user["headers"])
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) == {"items", "next_cursor"} and body["next_cursor"] is None
    item = body["items"][0]
    for key in ("id", "platform", "status", "ai_enabled", "contact", "last_message_at",
                "unread_count", "labels"):
        assert key in item
    assert item["contact"]["name"] == "Ada Lovelace" and item["unread_count"] == 2
    assert item["contact"]["platform_user_id"].startswith("psid-")


def test_pagination_and_filters(client, user):
    owner = user["user"]["id"]
    ids = [seed_conversation(owner, texts=[f"m{i}"],
                             start=datetime(2026, 1, 1, i, tzinfo=timezone.utc))["id"]
           for i in range(5)]
    got, cursor = [], None
    while True:
        url = "/api/conversations?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url, headers=user["headers"]).get_json()
        got += [c["id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert got == list(reversed(ids))
    client.patch(f"/api/conversations/{ids[0]}", json={"labels": ["vip"], "status": "pending"},
                 headers=user["headers"])
    assert [c["id"] for c in client.get("/api/conversations?label=vip",
                                        headers=user["headers"]).get_json()["items"]] == [ids[0]]
    assert [c["id"] for c in client.get("/api/conversations?status=pending",
                                        headers=user["headers"]).get_json()["items"]] == [ids[0]]
    assert [c["id"] for c in client.get("/api/conversations?q=m3",
                                        headers=user["headers"]).get_json()["items"]] == [ids[3]]


@pytest.mark.parametrize("query,field", [("status=closed", "status"), ("limit=0", "limit"),
                                         ("limit=101", "limit"), ("platform=telegram", "platform")])
def test_bad_filters_are_400_with_field(client, user, query, field):
    resp = client.get(f"/api/conversations?{query}", headers=user["headers"])
    assert resp.status_code == 400
    err = resp.get_json()["error"]
    assert err["code"] == "validation_error" and err["details"][0]["field"] == field


def test_bad_cursor_is_400(client, user):
    resp = client.get("/api/conversations?cursor=garbage", headers=user["headers"])
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_cursor"


def test_patch_read_and_messages(client, user, conv):
    h = user["headers"]
    resp = client.patch(f"/api/conversations/{conv['id']}",
                        json={"status": "resolved", "assignee_id": user["user"]["id"],
                              "labels": ["a", "a", " b "], "ai_enabled": False}, headers=h)
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["status"], body["assignee_id"], body["labels"], body["ai_enabled"]) == \
        ("resolved", user["user"]["id"], ["a", "b"], False)
    assert (
        client.post(f"/api/conversations/{conv['id']}/read", headers=h).get_json()["unread_count"]
        == 0
    )
    msgs = client.get(f"/api/conversations/{conv['id']}/messages", headers=h).get_json()
    assert [m["text"] for m in msgs["items"]] == ["Hello", "Do you ship to Oslo?"]
    m = msgs["items"][0]
    for key in (
        "id",
        "direction",
        "sender_type",
        "text",
        "status",
        "platform_message_id",
        "error",
        "created_at",
    ):
        assert key in m
    assert m["direction"] == "inbound" and m["sender_type"] == "contact"


def test_patch_rejects_bad_body(client, user, conv):
    resp = client.patch(
        f"/api/conversations/{conv['id']}",
        json={"status": "done", "colour": "red"},
        headers=user["headers"],
    )
    assert resp.status_code == 400
    fields = {d["field"] for d in resp.get_json()["error"]["details"]}
    assert fields == {"status", "colour"}


def test_notes_are_internal(client, user, conv):
    h = user["headers"]
    resp = client.post(
        f"/api/conversations/{conv['id']}/notes", json={"text": "VIP, be nice"}, headers=h
    )
    assert resp.status_code == 201
    note = resp.get_json()
    assert note["is_note"] is True and note["platform_message_id"] is None
    assert note["sender_type"] == "agent"
    # a note is not customer activity: it does not change the inbox preview
    assert (
        client.get(f"/api/conversations/{conv['id']}", headers=h).get_json()["last_message_preview"]
        == "Do you ship to Oslo?"
    )


def test_other_users_conversation_is_404_like_missing(client, user, other_user, conv):
    h = other_user["headers"]
    missing = client.get("/api/conversations/00000000-0000-0000-0000-000000000000", headers=h)
    for method, path, kwargs in [
        ("get", f"/api/conversations/{conv['id']}", {}),
        ("patch", f"/api/conversations/{conv['id']}", {"json": {"status": "resolved"}}),
        ("post", f"/api/conversations/{conv['id']}/read", {}),
        ("get", f"/api/conversations/{conv['id']}/messages", {}),
        ("post", f"/api/conversations/{conv['id']}/notes", {"json": {"text": "x"}}),
        ("get", f"/api/contacts/{conv['contact']['id']}", {}),
        ("patch", f"/api/contacts/{conv['contact']['id']}", {"json": {"name": "x"}}),
    ]:
        resp = getattr(client, method)(path, headers=h, **kwargs)
        assert resp.status_code == 404, (method, path)
        assert resp.get_json()["error"]["message"] in {
            missing.get_json()["error"]["message"],
            "No such contact.",
        }
    assert client.get("/api/conversations", headers=h).get_json()["items"] == []
    assert (
        client.get(f"/api/conversations/{conv['id']}", headers=user["headers"]).get_json()["status"]
        == "open"
    )


def test_contacts(client, user, conv):
    h = user["headers"]
    items = client.get("/api/contacts", headers=h).get_json()["items"]
    assert [c["id"] for c in items] == [conv["contact"]["id"]]
    resp = client.patch(
        f"/api/contacts/{conv['contact']['id']}",
        json={"email": "ada@example.com", "notes": "likes tea"},
        headers=h,
    )
    assert resp.status_code == 200 and resp.get_json()["email"] == "ada@example.com"
    assert (
        client.get("/api/contacts?q=ada@", headers=h).get_json()["items"][0]["notes"] == "likes tea"
    )
    bad = client.patch(f"/api/contacts/{conv['contact']['id']}", json={"email": "nope"}, headers=h)
    assert bad.status_code == 400 and bad.get_json()["error"]["details"][0]["field"] == "email"


def test_tasks_crud(client, user, other_user, conv):
    h = user["headers"]
    resp = client.post(
        "/api/tasks",
        json={
            "title": "Call Ada",
            "priority": "high",
            "conversation_id": conv["id"],
            "due_at": "2026-12-01T10:00:00Z",
        },
        headers=h,
    )
    assert resp.status_code == 201
    task = resp.get_json()
    assert task["status"] == "open" and task["due_at"].startswith("2026-12-01T10:00:00")
    client.post("/api/tasks", json={"title": "Low one", "priority": "low"}, headers=h)
    high = client.get("/api/tasks?priority=high", headers=h).get_json()["items"]
    assert [t["id"] for t in high] == [task["id"]]
    by_conv = client.get(f"/api/tasks?conversation_id={conv['id']}", headers=h).get_json()["items"]
    assert [t["id"] for t in by_conv] == [task["id"]]
    upd = client.patch(f"/api/tasks/{task['id']}", json={"status": "in_progress"}, headers=h)
    assert upd.status_code == 200 and upd.get_json()["status"] == "in_progress"
    assert (
        client.get("/api/tasks?status=in_progress", headers=h).get_json()["items"][0]["id"]
        == task["id"]
    )
    # someone else's task and conversation are 404
    oh = other_user["headers"]
    assert client.get(f"/api/tasks/{task['id']}", headers=oh).status_code == 404
    assert (
        client.patch(f"/api/tasks/{task['id']}", json={"title": "x"}, headers=oh).status_code == 404
    )
    assert client.delete(f"/api/tasks/{task['id']}", headers=oh).status_code == 404
    assert (
        client.post(
            "/api/tasks", json={"title": "x", "conversation_id": conv["id"]}, headers=oh
        ).status_code
        == 404
    )
    assert client.delete(f"/api/tasks/{task['id']}", headers=h).status_code == 204
    assert client.get(f"/api/tasks/{task['id']}", headers=h).status_code == 404


@pytest.mark.parametrize(
    "body,fields",
    [
        ({}, {"title"}),
        ({"title": ""}, {"title"}),
        ({"title": "x", "priority": "urgent"}, {"priority"}),
        ({"title": "x", "due_at": "tomorrow"}, {"due_at"}),
    ],
)
def test_task_validation(client, user, body, fields):
    resp = client.post("/api/tasks", json=body, headers=user["headers"])
    assert resp.status_code == 400
    assert {d["field"] for d in resp.get_json()["error"]["details"]} == fields


def test_admin_reads_through_admin_endpoints_only(client, user, admin, conv):
    uid = user["user"]["id"]
    # an admin's own inbox does not show other users' conversations
    assert client.get("/api/conversations", headers=admin["headers"]).get_json()["items"] == []
    assert (
        client.get(f"/api/conversations/{conv['id']}", headers=admin["headers"]).status_code == 404
    )
    resp = client.get(f"/api/admin/users/{uid}/conversations", headers=admin["headers"])
    assert resp.status_code == 200 and resp.get_json()["items"][0]["id"] == conv["id"]
    msgs = client.get(
        f"/api/admin/users/{uid}/conversations/{conv['id']}/messages", headers=admin["headers"]
    ).get_json()["items"]
    assert len(msgs) == 2
    assert (
        client.get(f"/api/admin/users/{uid}/conversations", headers=user["headers"]).status_code
        == 403
    )
    from models_db import AuditLog, db

    assert db.session.scalar(db.select(AuditLog).where(AuditLog.event == "admin_read")) is not None


def test_requires_auth(client):
    for path in ("/api/conversations", "/api/tasks", "/api/contacts"):
        resp = client.get(path)
        assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthorized"
