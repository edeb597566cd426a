"""The `lookup` workflow action end to end: a Messenger customer asks about an order, a
workflow reads the shop's MariaDB and the reply carries the real status (webhook in, fake
Graph out). Also: no match -> a person, database down -> `integration_error` and a person,
injection through the message harmless, the AI given the row as facts.
"""
from __future__ import annotations

import uuid

import pytest

from tests.channels.conftest import conversations, fb_text, messages, post_webhook
from tests.databases.conftest import closed_port, configure
from tests.fakes.openai_server import FakeOpenAI

ORDER_STATUS_WORKFLOW = {
    "trigger": {"type": "message_received"},
    "conditions": [{"type": "intent", "intents": ["order_status"]}],
    "actions": [
        {"type": "lookup", "integration": "mysql", "query": "order_status",
         "params": {"order_number": "{{entities.order_number}}"}},
        {"type": "send_text", "text": "Hi {{contact.first_name}}, order {{lookup.order_number}} "
                                      "is {{lookup.status}} (tracking: {{lookup.tracking}})."},
    ],
}


def _workflow(client, user, definition, position=10):
    resp = client.post("/api/workflows", headers=user["headers"], json={
        "name": "Order status", "position": position, "definition": definition})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _sent_texts(fake_graph) -> list[str]:
    return [(r.json or {}).get("message", {}).get("text") for r in fake_graph.requests_to(
        "/messages") if r.method == "POST" and (r.json or {}).get("message")]


def _runs(client, user) -> list[dict]:
    return client.get("/api/workflows/runs", headers=user["headers"]).get_json()["items"]


@pytest.fixture
def order_shop(client, business, mariadb_shop):
    """The business's MariaDB connected, with 55821's status set to something only the
    database knows (so the reply can only have read it there)."""
    status = f"out for delivery ({uuid.uuid4().hex[:8]})"
    cur = mariadb_shop.admin.cursor()
    cur.execute(f"UPDATE {mariadb_shop.table} SET status = %s WHERE order_number = '55821'",
                (status,))
    cur.close()
    assert configure(client, business, "mysql", mariadb_shop.config()).status_code == 201
    mariadb_shop.status = status
    return mariadb_shop


def test_messenger_customer_gets_the_order_status_from_mariadb(client, business, fake_graph,
                                                                order_shop):
    _workflow(client, business, ORDER_STATUS_WORKFLOW)
    post_webhook(client, "facebook", fb_text("Hi, where is my order 55821?", psid="2001"))
    [reply] = _sent_texts(fake_graph)
    assert f"order 55821 is {order_shop.status}" in reply
    assert "tracking: DHL 00340434161234567890" in reply
    [conv] = conversations(client, business)
    outbound = [m for m in messages(client, business, conv["id"]) if m["direction"] == "outbound"]
    assert [m["text"] for m in outbound] == [reply]
    [run] = [r for r in _runs(client, business) if r["workflow_id"]]
    lookup_outcome = run["actions"][0]
    assert lookup_outcome["type"] == "lookup" and lookup_outcome["status"] == "ok"
    assert lookup_outcome["columns"] == ["order_number", "status", "tracking", "total"]


def test_unknown_order_is_handed_to_a_person_not_answered_with_blanks(client, business,
                                                                       fake_graph, order_shop):
    _workflow(client, business, ORDER_STATUS_WORKFLOW)
    post_webhook(client, "facebook", fb_text("where is my order 99999?", psid="2002"))
    assert not any("order  is" in t for t in _sent_texts(fake_graph))  # no empty template
    [task] = client.get("/api/tasks", headers=business["headers"]).get_json()["items"]
    [conv] = conversations(client, business)
    assert task["conversation_id"] == conv["id"]
    assert conv["ai_enabled"] is False        # handed off: a person answers now
    notices = [m for m in messages(client, business, conv["id"]) if m["sender_type"] == "system"]
    assert notices and notices[0]["status"] == "sent"   # the customer is told
    [run] = [r for r in _runs(client, business) if r["workflow_id"]]
    assert "no row matched" in run["actions"][0]["detail"]
    assert run["actions"][1]["status"] == "skipped"


def test_message_without_an_order_number_does_not_query(client, business, fake_graph,
                                                        order_shop):
    _workflow(client, business, ORDER_STATUS_WORKFLOW)
    post_webhook(client, "facebook", fb_text("where is my order??", psid="2003"))
    [run] = [r for r in _runs(client, business) if r["workflow_id"]]
    assert "no value for order_number" in run["actions"][0]["detail"]


def test_database_down_at_run_time_is_visible_and_the_customer_still_gets_a_person(
        app, client, business, fake_graph, order_shop):
    from models_db import Integration, db
    from utils.realtime import socketio

    row = db.session.query(Integration).filter_by(user_id=business["user"]["id"],
                                                  type="mysql").one()
    row.config = {**row.config, "port": closed_port()}
    db.session.commit()
    _workflow(client, business, ORDER_STATUS_WORKFLOW)
    sock = socketio.test_client(app, auth={"token": business["access_token"]})
    post_webhook(client, "facebook", fb_text("where is my order 55821?", psid="2004"))
    stored = client.get("/api/integrations/mysql", headers=business["headers"]).get_json()
    assert stored["status"] == "error" and "could not be reached" in stored["last_error"]
    events = [e["args"][0] for e in sock.get_received() if e["name"] == "integration_error"]
    assert events and events[0]["type"] == "mysql"
    [conv] = conversations(client, business)
    assert conv["ai_enabled"] is False        # handed off instead of silence
    assert any(m["sender_type"] == "system" for m in messages(client, business, conv["id"]))
    sock.disconnect()


def test_injection_through_the_message_is_harmless(client, business, fake_graph, order_shop):
    config = order_shop.config({"by_tracking": f"SELECT status FROM {order_shop.table} "
                                               "WHERE tracking = :tracking"})
    assert configure(client, business, "mysql", config).status_code == 200
    _workflow(client, business, {
        "trigger": {"type": "message_received"}, "conditions": [],
        "actions": [{"type": "lookup", "integration": "mysql", "query": "by_tracking",
                     "params": {"tracking": "{{message.text}}"}, "on_missing": "continue"},
                    {"type": "send_text", "text": "Status: [{{lookup.status}}]"}]})
    post_webhook(client, "facebook", fb_text("' OR '1'='1", psid="2005"))
    post_webhook(client, "facebook", fb_text("x'; DROP TABLE orders; --", psid="2006"))
    assert _sent_texts(fake_graph) == ["Status: []", "Status: []"]
    assert order_shop.scalar(f"SELECT COUNT(*) FROM {order_shop.table}") == 33


def test_workflow_definition_is_validated(client, business):
    bad = {"trigger": {"type": "message_received"}, "actions": [
        {"type": "lookup", "integration": "slack", "query": "x"}]}
    resp = client.post("/api/workflows", headers=business["headers"],
                       json={"name": "bad", "definition": bad})
    assert resp.status_code == 400
    reserved = {"trigger": {"type": "message_received"}, "actions": [
        {"type": "lookup", "integration": "mysql", "query": "x", "variable": "contact"}]}
    resp = client.post("/api/workflows", headers=business["headers"],
                       json={"name": "bad", "definition": reserved})
    assert resp.status_code == 400


class TestAiGetsTheRow:
    """An ai_reply with use_lookup gives the model the row as facts (openai provider)."""

    @pytest.fixture
    def fake_openai(self):
        with FakeOpenAI() as server:
            yield server

    @pytest.fixture
    def settings_overrides(self, fake_graph, fake_openai):
        return {"GRAPH_API_URL": fake_graph.base_url, "GRAPH_RETRY_WAIT_SECONDS": 0.001,
                "DB_CONNECTOR_ALLOWED_HOSTS": "127.0.0.1", "AI_PROVIDER": "openai",
                "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai.base_url,
                "OPENAI_MAX_RETRIES": 0, "OPENAI_TIMEOUT_SECONDS": 5}

    def test_prompt_carries_the_row_and_its_figures_count_as_grounded(
            self, client, business, fake_graph, fake_openai, order_shop):
        _workflow(client, business, {
            "trigger": {"type": "message_received"}, "conditions": [],
            "actions": [{"type": "lookup", "integration": "mysql", "query": "order_status",
                         "params": {"order_number": "{{entities.order_number}}"}},
                        {"type": "ai_reply", "use_lookup": True}]})
        answer = "Your order is on its way: DHL 00340434161234567890, total 129.90."
        fake_openai.reply_json({"answer": answer, "handoff": False, "confidence": 0.9,
                                "sources": []})
        post_webhook(client, "facebook", fb_text("where is my order 55821?", psid="2007"))
        system = fake_openai.requests[0].body["messages"][0]["content"]
        assert "Records from the business's own database" in system
        assert order_shop.status in system and "DHL 00340434161234567890" in system
        # the figures come from the database, so the answer is not refused as invented
        assert _sent_texts(fake_graph) == [answer]


def test_on_missing_fail_records_a_failed_action_and_stop_on_error_stops(client, business,
                                                                         fake_graph, order_shop):
    definition = {**ORDER_STATUS_WORKFLOW, "stop_on_error": True, "actions": [
        {**ORDER_STATUS_WORKFLOW["actions"][0], "on_missing": "fail"},
        ORDER_STATUS_WORKFLOW["actions"][1]]}
    _workflow(client, business, definition)
    post_webhook(client, "facebook", fb_text("where is my order 99999?", psid="2008"))
    [run] = [r for r in _runs(client, business) if r["workflow_id"]]
    assert run["status"] == "failed" and "no row matched" in run["error"]
    assert [a["status"] for a in run["actions"]] == ["failed"]
    assert _sent_texts(fake_graph) == []
