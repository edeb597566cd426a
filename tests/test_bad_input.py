"""Bad input is a 4xx, never a 500: NUL characters, JSON nested too deeply, forged cursors,
over-long URIs and assignees that are not the caller - on SQLite as on PostgreSQL."""
from __future__ import annotations

import base64

import pytest

from models_db import WebhookEvent, db
from tests.channels.conftest import sign
from tests.helpers import assert_error, seed_conversation
from utils.pagination import encode_cursor

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000


def _fields(resp) -> set[str]:
    return {d["field"] for d in resp.get_json()["error"].get("details", [])}


# --- NUL characters -----------------------------------------------------------------------


def test_nul_in_register_is_400_naming_the_field(client):
    resp = client.post("/api/auth/register", json={
        "email": "nul@example.com", "password": "correct horse battery", "name": "Ann\x00"})
    assert_error(resp, 400, "validation_error")
    assert _fields(resp) == {"name"}
    login = client.post("/api/auth/login", json={"email": "nul@example.com",
                                                 "password": "pass\x00word"})
    assert_error(login, 400, "validation_error")
    assert _fields(login) == {"password"}


def test_nul_nested_in_lists_and_objects_is_400(client, user):
    conv = seed_conversation(user["user"]["id"], texts=["hi"])
    labels = client.patch(f"/api/conversations/{conv['id']}", headers=user["headers"],
                          json={"labels": ["ok", "bad\x00"]})
    assert_error(labels, 400, "validation_error")
    assert _fields(labels) == {"labels"}
    doc = client.post("/api/knowledge", headers=user["headers"],
                      json={"title": "t", "content": "c", "tags": ["x\x00"]})
    assert _fields(doc) == {"tags"} and doc.status_code == 400
    workflow = client.post("/api/workflows", headers=user["headers"], json={
        "name": "w", "definition": {"trigger": {"type": "message_received"},
                                    "actions": [{"type": "send_text", "text": "a\x00"}]}})
    assert_error(workflow, 400, "validation_error")
    assert _fields(workflow) == {"definition"}


def test_nul_in_query_and_path_parameters_is_4xx(client, user):
    h = user["headers"]
    assert_error(client.get("/api/contacts?q=a%00b", headers=h), 400, "validation_error")
    for path in ("/api/tasks/%00", "/api/conversations/a%00b", "/api/contacts/%00",
                 "/api/knowledge/x%00", "/api/workflows/%00", "/api/platforms/%00"):
        method = client.patch if path.startswith("/api/platforms") else client.get
        resp = method(path, headers=h, json={"name": "x"})
        assert_error(resp, 404, resp.get_json()["error"]["code"])


# --- JSON nested too deeply ---------------------------------------------------------------


@pytest.mark.parametrize("raw", [DEEP, DEEP_OBJECT])
def test_deeply_nested_json_is_400_on_rest(client, user, raw):
    for path, headers in (("/api/auth/register", {}), ("/api/auth/login", {}),
                          ("/api/tasks", user["headers"])):
        resp = client.post(path, data=raw, headers={**headers, "Content-Type": "application/json"})
        assert resp.status_code == 400, (path, resp.status_code)
        assert resp.get_json()["error"]["code"] in ("invalid_json", "bad_request")


def test_deeply_nested_signed_webhook_is_stored_as_rejected(client):
    resp = client.post("/webhooks/facebook", data=DEEP_OBJECT,
                       headers={"X-Hub-Signature-256": sign(DEEP_OBJECT),
                                "Content-Type": "application/json"})
    assert_error(resp, 400, "invalid_json")
    events = list(db.session.scalars(db.select(WebhookEvent)))
    assert [(e.status, len(e.raw_body)) for e in events] == [("rejected", len(DEEP_OBJECT))]


# --- forged cursors -----------------------------------------------------------------------

SOME_ID = "00000000-0000-4000-8000-000000000001"


def _raw_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


FORGED = [
    _raw_cursor('["2026-03-01T12:00:00+00:00", "\\ud800"]'),        # lone surrogate id
    _raw_cursor('["2026-03-01T12:00:00+00:00", "a\\u0000b"]'),      # NUL in the id
    _raw_cursor('["\\udfff", "x"]'),                                 # lone surrogate time
    encode_cursor(["2026-03-01T12:00:00+00:00", 10 ** 30]),          # huge integer id
    encode_cursor(["2026-03-01T12:00:00+00:00", ["nested"]]),        # wrong type
    encode_cursor(["2026-03-01T12:00:00+00:00", "x" * 5000]),        # absurdly long id
    _raw_cursor("[" * 1500 + "]" * 1500),                            # nested too deeply
]


def test_forged_cursors_are_400_invalid_cursor(client, user, admin):
    seed_conversation(user["user"]["id"], texts=["hi"])
    lists = [("/api/conversations", user), ("/api/tasks", user), ("/api/contacts", user),
             ("/api/knowledge", user), ("/api/workflows/runs", user), ("/api/users", admin),
             ("/api/subscriptions/users", admin)]
    for path, who in lists:
        for cursor in FORGED:
            resp = client.get(path, headers=who["headers"], query_string={"cursor": cursor})
            assert (resp.status_code, resp.get_json()["error"]["code"]) == \
                (400, "invalid_cursor"), (path, cursor)
    for value in (10 ** 30, -1, True, 2 ** 63):
        resp = client.get("/api/admin/webhook-events", headers=admin["headers"],
                          query_string={"cursor": encode_cursor([value])})
        assert_error(resp, 400, "invalid_cursor")


# --- 414 ----------------------------------------------------------------------------------


def test_uri_too_long_is_414_in_the_error_shape(client, user):
    resp = client.get("/api/conversations?q=" + "a" * 9000, headers=user["headers"])
    assert_error(resp, 414, "uri_too_long")
    assert_error(client.get("/api/" + "x" * 9000), 414, "uri_too_long")


# --- assignees ----------------------------------------------------------------------------


def test_tasks_can_be_assigned_to_the_caller_only(client, user, other_user):
    h = user["headers"]
    mine = client.post("/api/tasks", headers=h,
                       json={"title": "call back", "assignee_id": user["user"]["id"]})
    assert mine.status_code == 201 and mine.get_json()["assignee_id"] == user["user"]["id"]
    for assignee in (other_user["user"]["id"], SOME_ID, "agent-1"):
        assert_error(client.post("/api/tasks", headers=h,
                                 json={"title": "t", "assignee_id": assignee}),
                     404, "assignee_not_found")
        assert_error(client.patch(f"/api/tasks/{mine.get_json()['id']}", headers=h,
                                  json={"assignee_id": assignee}), 404, "assignee_not_found")
    unassigned = client.patch(f"/api/tasks/{mine.get_json()['id']}", headers=h,
                              json={"assignee_id": None})
    assert unassigned.status_code == 200 and unassigned.get_json()["assignee_id"] is None


def test_conversations_and_assign_actions_name_the_caller_only(client, user, other_user):
    conv = seed_conversation(user["user"]["id"], texts=["hi"])
    assert_error(client.patch(f"/api/conversations/{conv['id']}", headers=user["headers"],
                              json={"assignee_id": other_user["user"]["id"]}),
                 404, "assignee_not_found")
    definition = {"trigger": {"type": "message_received"},
                  "actions": [{"type": "assign", "assignee_id": other_user["user"]["id"]}]}
    assert_error(client.post("/api/workflows", headers=user["headers"],
                             json={"name": "w", "definition": definition}),
                 404, "assignee_not_found")
    definition["actions"][0]["assignee_id"] = user["user"]["id"]
    assert client.post("/api/workflows", headers=user["headers"],
                       json={"name": "w", "definition": definition}).status_code == 201


# --- the spec lists 402, 415 and 429 where they happen ---------------------------------------


def test_spec_lists_402_415_and_429_where_they_happen(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path, ops in paths.items():
        for method, op in ops.items():
            if "requestBody" in op and "application/json" in op["requestBody"]["content"]:
                assert "415" in op["responses"], (method, path)
    assert "402" in paths["/api/platforms"]["post"]["responses"]
    assert "402" in paths["/api/knowledge"]["post"]["responses"]
    assert "402" in paths["/api/knowledge/import"]["post"]["responses"]
    for path in ("/api/auth/register", "/api/auth/login"):
        assert "429" in paths[path]["post"]["responses"]
    sent = client.post("/api/tasks", data="title=x", content_type="text/plain")
    assert sent.status_code in (401, 415)


def test_login_with_an_unknown_email_and_the_timing_dummy_password_is_401(client):
    """Found by schemathesis: the password of the timing-equalizing dummy hash passed the
    check for an e-mail without an account, and the login crashed with a 500."""
    resp = client.post("/api/auth/login", json={"email": "nobody@example.com",
                                                "password": "not-a-real-password"})
    assert_error(resp, 401, "invalid_credentials")
