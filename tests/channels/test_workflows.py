"""Workflows: API and validation, conditions, actions, recorded runs, hand-off, suggestions."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.channels.conftest import (
    conversations,
    fb_text,
    messages,
    now_ms,
    post_webhook,
    wa_status,
    wa_text,
)


def _workflow(client, user, definition, name="wf", position=10, **extra):
    resp = client.post("/api/workflows", json={"name": name, "position": position,
                                               "definition": definition, **extra},
                       headers=user["headers"])
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_new_user_has_default_ai_workflow(client, user):
    items = client.get("/api/workflows", headers=user["headers"]).get_json()["items"]
    assert len(items) == 1
    assert items[0]["definition"]["trigger"]["type"] == "message_received"
    assert [a["type"] for a in items[0]["definition"]["actions"]] == ["ai_reply"]


def test_crud_scoping_and_openapi(client, user, other_user):
    wf = _workflow(client, user, {"trigger": {"type": "message_received"},
                                  "actions": [{"type": "add_label", "label": "new"}]})
    assert (
        client.get(f"/api/workflows/{wf['id']}", headers=other_user["headers"]).status_code == 404
    )
    assert (
        client.patch(
            f"/api/workflows/{wf['id']}", json={"enabled": False}, headers=other_user["headers"]
        ).status_code
        == 404
    )
    assert (
        client.delete(f"/api/workflows/{wf['id']}", headers=other_user["headers"]).status_code
        == 404
    )
    upd = client.patch(
        f"/api/workflows/{wf['id']}", json={"enabled": False}, headers=user["headers"]
    )
    assert upd.status_code == 200 and upd.get_json()["enabled"] is False
    assert client.delete(f"/api/workflows/{wf['id']}", headers=user["headers"]).status_code == 204
    spec = client.get("/api/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    assert (
        "WorkflowDefinition" in schemas and "requestBody" in spec["paths"]["/api/workflows"]["post"]
    )


@pytest.mark.parametrize(
    "definition,field",
    [
        (
            {"trigger": {"type": "on_tuesday"}, "actions": [{"type": "ai_reply"}]},
            "definition.trigger.type",
        ),
        ({"trigger": {"type": "message_received"}, "actions": []}, "definition.actions"),
        (
            {"trigger": {"type": "message_received"}, "actions": [{"type": "launch_rocket"}]},
            "definition.actions.0",
        ),
        (
            {
                "trigger": {"type": "message_received"},
                "conditions": [{"type": "regex", "pattern": "(["}],
                "actions": [{"type": "ai_reply"}],
            },
            "definition.conditions.0.regex.pattern",
        ),
        (
            {
                "trigger": {"type": "message_received"},
                "conditions": [{"type": "business_hours", "start": "25:00"}],
                "actions": [{"type": "ai_reply"}],
            },
            "definition.conditions.0.business_hours.start",
        ),
    ],
)
def test_invalid_definitions_are_400_with_field(client, user, definition, field):
    resp = client.post(
        "/api/workflows", json={"name": "x", "definition": definition}, headers=user["headers"]
    )
    assert resp.status_code == 400
    fields = [d["field"] for d in resp.get_json()["error"]["details"]]
    assert any(f.startswith(field) for f in fields), fields


def test_keyword_workflow_sends_template_and_records_run(client, business, fake_graph):
    _workflow(
        client,
        business,
        {
            "trigger": {"type": "message_received"},
            "conditions": [{"type": "keywords", "any": ["opening hours", "open"]}],
            "actions": [
                {"type": "send_text", "text": "Hi {{contact.first_name}}, we are open 9-17."},
                {"type": "add_label", "label": "hours"},
            ],
        },
    )
    post_webhook(client, "whatsapp", wa_text("When are you open today?", name="Sheena Nelson"))
    [conv] = conversations(client, business)
    assert conv["labels"] == ["hours"]
    reply = messages(client, business, conv["id"])[-1]
    assert reply["text"] == "Hi Sheena, we are open 9-17." and reply["status"] == "sent"
    runs = client.get("/api/workflows/runs", headers=business["headers"]).get_json()["items"]
    matched = [r for r in runs if r["matched"]]
    assert len(matched) == 1
    run = matched[0]
    assert run["trigger"] == "message_received" and run["status"] == "completed"
    assert [a["type"] for a in run["actions"]] == ["send_text", "add_label"]
    assert all(a["status"] == "ok" for a in run["actions"]) and run["duration_ms"] >= 0
    assert run["conditions"] == [{"type": "keywords", "matched": True}]
    # the non-matching message falls through to the default AI workflow instead
    post_webhook(client, "whatsapp", wa_text("Is the blue vase in stock?"))
    assert (
        len(client.get("/api/workflows/runs", headers=business["headers"]).get_json()["items"]) == 3
    )


def test_failing_action_is_recorded_and_others_still_run(client, business, fake_graph):
    _workflow(
        client,
        business,
        {
            "trigger": {"type": "message_received"},
            "actions": [
                {"type": "notify", "channel": "slack", "message": "New message"},
                {"type": "create_task", "title": "Follow up {{contact.name}}"},
            ],
        },
    )
    post_webhook(client, "facebook", fb_text("hello"))
    run = [
        r
        for r in client.get("/api/workflows/runs", headers=business["headers"]).get_json()["items"]
        if r["matched"]
    ][0]
    assert run["status"] == "failed" and "slack" in run["error"]
    assert [a["status"] for a in run["actions"]] == ["failed", "ok"]
    assert len(client.get("/api/tasks", headers=business["headers"]).get_json()["items"]) == 1


def test_stop_on_error_stops(client, business, fake_graph):
    _workflow(
        client,
        business,
        {
            "trigger": {"type": "message_received"},
            "stop_on_error": True,
            "actions": [
                {"type": "notify", "channel": "slack", "message": "x"},
                {"type": "create_task", "title": "never"},
            ],
        },
    )
    post_webhook(client, "facebook", fb_text("hello"))
    assert client.get("/api/tasks", headers=business["headers"]).get_json()["items"] == []


@pytest.mark.parametrize("hour,expected", [(10, True), (20, False)])
def test_business_hours_in_users_timezone(client, business, fake_graph, hour, expected):
    client.patch("/api/users/me", json={"timezone": "Asia/Tokyo"}, headers=business["headers"])
    _workflow(
        client,
        business,
        {
            "trigger": {"type": "message_received"},
            "conditions": [
                {
                    "type": "business_hours",
                    "days": [0, 1, 2, 3, 4, 5, 6],
                    "start": "09:00",
                    "end": "17:00",
                    "inside": False,
                }
            ],
            "actions": [{"type": "add_label", "label": "after-hours"}],
        },
    )
    # 10:00 and 20:00 Tokyo time, expressed in UTC (Tokyo is UTC+9)
    when = datetime(2026, 11, 27, hour - 9, 0, tzinfo=timezone.utc)
    post_webhook(client, "facebook", fb_text("hi", ts=int(when.timestamp() * 1000)))
    [conv] = conversations(client, business)
    assert ("after-hours" in conv["labels"]) is (not expected)


def test_postback_trigger_matches_payload(client, business, fake_graph):
    _workflow(
        client,
        business,
        {
            "trigger": {"type": "postback", "payload": "TALK_TO_HUMAN"},
            "actions": [{"type": "handoff", "reason": "asked for a person"}],
        },
    )
    postback = {
        "object": "page",
        "entry": [
            {
                "id": "104578263458921",
                "time": now_ms(),
                "messaging": [
                    {
                        "sender": {"id": "42"},
                        "recipient": {"id": "104578263458921"},
                        "timestamp": now_ms(),
                        "postback": {
                            "mid": "m_pb1",
                            "title": "Talk to a human",
                            "payload": "TALK_TO_HUMAN",
                        },
                    }
                ],
            }
        ],
    }
    post_webhook(client, "facebook", postback)
    [conv] = conversations(client, business)
    assert conv["ai_enabled"] is False
    [task] = client.get("/api/tasks", headers=business["headers"]).get_json()["items"]
    assert "asked for a person" in task["description"]


def test_paused_ai_skips_customer_facing_actions(client, business, fake_graph):
    post_webhook(client, "facebook", fb_text("hi", psid="77"))
    [conv] = conversations(client, business)
    client.patch(
        f"/api/conversations/{conv['id']}", json={"ai_enabled": False}, headers=business["headers"]
    )
    fake_graph.requests.clear()
    _workflow(
        client,
        business,
        {
            "trigger": {"type": "message_received"},
            "actions": [
                {"type": "send_text", "text": "auto"},
                {"type": "add_label", "label": "seen"},
            ],
        },
    )
    post_webhook(client, "facebook", fb_text("anyone?", psid="77"))
    assert fake_graph.requests == []
    [conv] = conversations(client, business)
    assert conv["labels"] == ["seen"]


def test_handoff_emits_task_created(app, client, business, fake_graph):
    from utils.realtime import socketio

    sock = socketio.test_client(app, auth={"token": business["access_token"]})
    post_webhook(client, "facebook", fb_text("I want to speak to a human please"))
    names = [e["name"] for e in sock.get_received()]
    assert "task_created" in names and "new_message" in names and "conversation_updated" in names
    sock.disconnect()


def test_message_failed_trigger(client, business, fake_graph):
    _workflow(
        client,
        business,
        {
            "trigger": {"type": "message_failed"},
            "actions": [{"type": "create_task", "title": "Delivery failed", "priority": "high"}],
        },
    )
    post_webhook(client, "whatsapp", wa_text("hi"))
    [conv] = conversations(client, business)
    client.patch(
        f"/api/conversations/{conv['id']}", json={"ai_enabled": True}, headers=business["headers"]
    )
    sent = client.post(
        f"/api/conversations/{conv['id']}/messages",
        json={"text": "Hello", "pause_ai": False},
        headers=business["headers"],
    ).get_json()
    post_webhook(
        client,
        "whatsapp",
        wa_status(
            sent["platform_message_id"],
            "failed",
            errors=[{"code": 131026, "title": "Undeliverable"}],
        ),
    )
    tasks = client.get("/api/tasks?priority=high", headers=business["headers"]).get_json()["items"]
    assert [t["title"] for t in tasks] == ["Delivery failed"]


def test_suggest_replies_for_agent(client, business, fake_graph, other_user):
    from tests.channels.conftest import add_knowledge

    add_knowledge(
        client,
        business,
        "Returns",
        "Returns. You can return any item within 30 days "
        "for a full refund; send it back with the prepaid label in the box.",
    )
    post_webhook(client, "facebook", fb_text("How many days do I have to return an item?"))
    [conv] = conversations(client, business)
    resp = client.post(f"/api/conversations/{conv['id']}/suggest", headers=business["headers"])
    assert resp.status_code == 200
    suggestions = resp.get_json()["suggestions"]
    assert suggestions and any("30 days" in s for s in suggestions)
    assert (
        client.post(
            f"/api/conversations/{conv['id']}/suggest", headers=other_user["headers"]
        ).status_code
        == 404
    )


def test_business_profile(client, user):
    resp = client.put(
        "/api/business",
        json={"name": "Nora's", "handoff_message": "A human will answer soon.", "persona": "warm"},
        headers=user["headers"],
    )
    assert resp.status_code == 200 and resp.get_json()["name"] == "Nora's"
    assert (
        client.get("/api/business", headers=user["headers"]).get_json()["handoff_message"]
        == "A human will answer soon."
    )
    bad = client.put("/api/business", json={"language": "english"}, headers=user["headers"])
    assert bad.status_code == 400


def test_new_contact_condition_matches_only_the_first_time(client, business, fake_graph):
    [default] = client.get("/api/workflows", headers=business["headers"]).get_json()["items"]
    client.patch(
        f"/api/workflows/{default['id']}", json={"enabled": False}, headers=business["headers"]
    )
    _workflow(
        client,
        business,
        {
            "trigger": {"type": "message_received"},
            "conditions": [{"type": "new_contact", "value": True}],
            "actions": [{"type": "add_label", "label": "welcome"}],
        },
    )
    post_webhook(client, "facebook", fb_text("hi", psid="55"))
    [conv] = conversations(client, business)
    assert conv["labels"] == ["welcome"]
    client.patch(
        f"/api/conversations/{conv['id']}", json={"labels": []}, headers=business["headers"]
    )
    post_webhook(client, "facebook", fb_text("hi again", psid="55"))
    [conv] = conversations(client, business)
    assert conv["labels"] == []  # a returning contact is not new


@pytest.mark.timeout(60)  # Python's backtracking `re` needed minutes here and froze the process
def test_catastrophic_regex_on_a_long_message_completes_with_the_right_answer(
    client, business, fake_graph
):
    """`(a+)+$` is exponential for a backtracking engine; RE2 answers in linear time."""
    _workflow(
        client,
        business,
        {
            "trigger": {"type": "message_received"},
            "conditions": [{"type": "regex", "pattern": "(a+)+$"}],
            "actions": [{"type": "add_label", "label": "all-a"}],
        },
    )
    post_webhook(client, "facebook", fb_text("a" * 29 + "!", psid="801"))
    post_webhook(client, "facebook", fb_text("A" * 30, psid="802"))  # case-insensitive
    labels = {
        c["contact"]["platform_user_id"]: c["labels"] for c in conversations(client, business)
    }
    assert labels == {"801": [], "802": ["all-a"]}


@pytest.mark.parametrize(
    "pattern",
    [
        "(a)\\1",  # backreference: needs backtracking
        "(?=a)b",
        "(?<!a)b",  # look-around
        "([",  # invalid
        "(\\pL|\\d){500}x{500}",  # compiles to a program over RE2's memory budget
        "a" * 501,  # over-long
    ],
)
def test_patterns_re2_cannot_run_safely_are_a_400_naming_the_field(client, user, pattern):
    resp = client.post(
        "/api/workflows",
        json={
            "name": "x",
            "definition": {
                "trigger": {"type": "message_received"},
                "conditions": [
                    {"type": "keywords", "any": ["hi"]},
                    {"type": "regex", "pattern": pattern},
                ],
                "actions": [{"type": "ai_reply"}],
            },
        },
        headers=user["headers"],
    )
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "validation_error"
    assert [d["field"] for d in error["details"]] == ["definition.conditions.1.regex.pattern"]
    wf = client.get("/api/workflows", headers=user["headers"]).get_json()["items"]
    assert len(wf) == 1  # only the default workflow: nothing was saved


def test_regex_patch_is_checked_too(client, user):
    wf = _workflow(
        client,
        user,
        {"trigger": {"type": "message_received"}, "actions": [{"type": "add_label", "label": "x"}]},
    )
    resp = client.patch(
        f"/api/workflows/{wf['id']}",
        json={
            "definition": {
                "trigger": {"type": "message_received"},
                "conditions": [{"type": "regex", "pattern": "(\\w+)\\s\\1"}],
                "actions": [{"type": "add_label", "label": "x"}],
            }
        },
        headers=user["headers"],
    )
    assert resp.status_code == 400
    assert resp.get_json()["error"]["details"][0]["field"].startswith("definition.conditions.0")


def _runs(client, user) -> list[dict]:
    return client.get("/api/workflows/runs", headers=user["headers"]).get_json()["items"]


def test_a_run_is_on_record_before_the_next_workflow_acts(app, client, business, fake_graph,
                                                         monkeypatch):
    """Run records wait to join the message's `automation` mark (one commit), but never
    while further actions run: those see the earlier runs committed (another connection).
    """
    from sqlalchemy import func, select

    from automation.core import actions
    from models_db import WorkflowRun, db

    first = _workflow(client, business, {
        "trigger": {"type": "message_received"}, "stop_processing": False,
        "actions": [{"type": "add_label", "label": "seen"}]}, name="first", position=1)
    _workflow(client, business, {
        "trigger": {"type": "message_received"},
        "actions": [{"type": "send_text", "text": "Thanks!"}]}, name="second", position=2)
    committed_when_sending = []
    send_text = actions.ACTIONS["send_text"]

    def watched(ctx, spec):
        with db.engine.connect() as other:  # sees only what was committed
            committed_when_sending.append(other.scalar(
                select(func.count()).select_from(WorkflowRun)
                .where(WorkflowRun.workflow_id == first["id"])))
        return send_text(ctx, spec)

    monkeypatch.setitem(actions.ACTIONS, "send_text", watched)
    post_webhook(client, "facebook", fb_text("hello"))
    assert committed_when_sending == [1]
    [conv] = conversations(client, business)
    assert conv["labels"] == ["seen"] and messages(client, business, conv["id"])[-1]["text"] \
        == "Thanks!"
    matched = [r for r in _runs(client, business) if r["matched"]]
    assert len(matched) == 2 and all(r["status"] == "completed" for r in matched)


def test_runs_of_a_failed_automation_are_kept(client, business, fake_graph, monkeypatch):
    """A run whose automation raises after its workflows acted keeps their records (the
    retry then knows they ran).
    """
    from automation.core import workflow_engine

    def broken(ctx):
        raise RuntimeError("boom after the actions")

    monkeypatch.setattr(workflow_engine, "_run_handoff_workflows", broken)
    _workflow(client, business, {"trigger": {"type": "message_received"},
                                 "actions": [{"type": "add_label", "label": "x"}]}, position=1)
    post_webhook(client, "facebook", fb_text("hello"))
    runs = [r for r in _runs(client, business) if r["matched"]]
    assert len(runs) == 1 and runs[0]["actions"][0]["type"] == "add_label"
