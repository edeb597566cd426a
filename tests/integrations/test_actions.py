"""The workflow actions run on integrations (crm_sync, create_ticket, track_event): queued
after the customer's answer, once per action run, failures visible on the integration, and
the `handoff` trigger that runs them when a conversation is handed to a person.

A scripted connector stands in for the services here (their own tests run them against
loopback fakes through their real clients); what is tested is the plumbing around them.
"""
from __future__ import annotations

from typing import ClassVar

import pytest

from automation.integrations.base import (
    ActionRequest,
    IntegrationConnector,
    IntegrationError,
    http_error,
)
from automation.integrations.catalogue import HubSpotConfig
from tests.channels.conftest import conversations, fb_text, messages, post_webhook

HUMAN = "I want to talk to a human please"


class ScriptedCrm(IntegrationConnector):
    """Records each action call; fails as scripted, then answers with an id per action."""

    type, name, category = "hubspot", "Scripted CRM", "crm"
    config_model = HubSpotConfig
    secret_fields = frozenset({"access_token"})
    operations = frozenset({"crm_sync", "create_ticket", "track_event"})
    script: ClassVar[list] = []
    calls: ClassVar[list[ActionRequest]] = []

    def check(self) -> str:
        return "ok"

    def _answer(self, request: ActionRequest, refs: dict) -> dict:
        ScriptedCrm.calls.append(request)
        if ScriptedCrm.script:
            raise ScriptedCrm.script.pop(0)
        return {"external_id": f"{request.action}-{len(ScriptedCrm.calls)}", "refs": refs}

    def crm_sync(self, request: ActionRequest) -> dict:
        return self._answer(request, {"contact": {"id": f"C{len(ScriptedCrm.calls) + 1}"}})

    def create_ticket(self, request: ActionRequest) -> dict:
        ticket = {"id": f"T{len(ScriptedCrm.calls) + 1}"}
        return self._answer(request, {"task": ticket, "conversation": ticket})

    def track_event(self, request: ActionRequest) -> dict:
        return self._answer(request, {})


@pytest.fixture
def crm(monkeypatch, business, client):
    from automation import registry

    monkeypatch.setitem(registry.INTEGRATIONS, "hubspot", ScriptedCrm)
    ScriptedCrm.script, ScriptedCrm.calls = [], []
    resp = client.post("/api/integrations", headers=business["headers"], json={
        "type": "hubspot", "config": {"access_token": "pat-na1-secret-token"}})
    assert resp.status_code == 201, resp.get_json()
    return ScriptedCrm


def _workflow(client, user, trigger: str, actions: list, **extra) -> dict:
    resp = client.post("/api/workflows", headers=user["headers"], json={
        "name": f"{trigger} flow", "definition": {"trigger": {"type": trigger},
                                                   "actions": actions, **extra}})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _runs(client, user) -> list[dict]:
    return [r for r in client.get("/api/workflows/runs", headers=user["headers"])
            .get_json()["items"] if r["matched"]]


def test_crm_sync_runs_after_the_reply_and_keeps_the_id_on_the_contact(client, business, crm):
    from services.integration_actions import find_by_external_id, links_for

    _workflow(client, business, "message_received", [
        {"type": "send_text", "text": "Thanks, we got it"}, {"type": "crm_sync"}])
    post_webhook(client, "facebook", fb_text("Do you ship to Oslo?", psid="2001"))
    [call] = crm.calls
    [conv] = conversations(client, business)
    # the connector saw the whole conversation, the business's reply included
    assert [t["role"] for t in call.transcript] == ["customer", "business"]
    assert call.transcript[1]["text"] == "Thanks, we got it"
    assert call.contact["platform_user_id"] == "2001" and call.contact["integration_refs"] == {}
    assert call.idempotency_key.startswith("wf:") and call.params == {"log_conversation": True}
    owner = business["user"]["id"]
    contact_id = conv["contact"]["id"]
    assert links_for(owner, "contact", contact_id) == {"hubspot": {"id": "C1"}}
    assert find_by_external_id("hubspot", "contact", "C1") == (owner, contact_id, {"id": "C1"})
    assert find_by_external_id("hubspot", "contact", "C1", owner_id="someone-else") is None
    [run] = _runs(client, business)
    assert run["actions"][1]["status"] == "queued"
    assert run["actions"][1]["integrations"] == ["hubspot"]
    # the next sync of the same customer gets what was kept, to update instead of search
    post_webhook(client, "facebook", fb_text("And to Bergen?", psid="2001"))
    assert crm.calls[1].contact["integration_refs"] == {"hubspot": {"id": "C1"}}


def test_a_rerun_of_the_same_message_calls_nothing_twice(app, client, business, crm):
    from models_db import WebhookEvent, WorkflowRun, db
    from services.integration_actions import action_record
    from services.webhook_events import replay_event
    from utils.store import get_store

    _workflow(client, business, "message_received", [
        {"type": "crm_sync"},
        {"type": "track_event", "event": "asked", "integration": "hubspot"}])
    post_webhook(client, "facebook", fb_text("hello", psid="2002"))
    assert [c.action for c in crm.calls] == ["crm_sync", "track_event"]
    key = crm.calls[0].idempotency_key
    owner = business["user"]["id"]
    assert action_record(owner, "hubspot", "crm_sync", key)["status"] == "done"
    # as if the run had been interrupted before it was recorded: the workflow runs again
    [conv] = conversations(client, business)
    [inbound] = [m for m in messages(client, business, conv["id"]) if m["direction"] == "inbound"]
    get_store().update_message(owner, inbound["id"], metadata={"automation": None})
    db.session.query(WorkflowRun).delete()
    db.session.commit()
    event_id = db.session.scalar(db.select(WebhookEvent.id))
    replay_event(event_id)
    [run] = _runs(client, business)
    assert [a["idempotency_key"] for a in run["actions"]][0] == key
    assert len(crm.calls) == 2   # nothing called again: each action run was already done
    record = action_record(owner, "hubspot", "crm_sync", key)
    assert record["status"] == "done" and record["attempts"] == 1
    assert record["external_id"] == "crm_sync-1"


def test_a_failed_action_is_tried_again_by_the_next_run_of_the_same_key(client, business, crm):
    from dataclasses import replace

    from services.integration_actions import action_record, perform

    crm.script = [IntegrationError("401 expired", permanent=True)]
    _workflow(client, business, "message_received", [{"type": "crm_sync"}])
    post_webhook(client, "facebook", fb_text("hello", psid="2003"))
    owner = business["user"]["id"]
    request = crm.calls[0]
    assert action_record(owner, "hubspot", "crm_sync", request.idempotency_key)["status"] \
        == "failed"
    outcome = perform(replace(request, transcript=()))
    assert outcome["hubspot"]["status"] == "ok"
    assert perform(request)["hubspot"]["status"] == "already_done"
    record = action_record(owner, "hubspot", "crm_sync", request.idempotency_key)
    assert record["status"] == "done" and record["attempts"] == 2 and len(crm.calls) == 2


def test_401_marks_the_integration_error_and_the_customer_is_answered(app, client, business,
                                                                      crm):
    from utils.realtime import socketio

    crm.script = [http_error("HubSpot", 401, "expired token")]
    _workflow(client, business, "message_received", [
        {"type": "send_text", "text": "Hi! We are on it"}, {"type": "crm_sync"}])
    sock = socketio.test_client(app, auth={"token": business["access_token"]})
    post_webhook(client, "facebook", fb_text("hello", psid="2004"))
    [conv] = conversations(client, business)
    sent = [m for m in messages(client, business, conv["id"]) if m["direction"] == "outbound"]
    assert [(m["text"], m["status"]) for m in sent] == [("Hi! We are on it", "sent")]
    assert len(crm.calls) == 1   # a 401 is not retried
    stored = client.get("/api/integrations/hubspot", headers=business["headers"]).get_json()
    assert stored["status"] == "error"
    assert stored["last_error"] == "HubSpot: HTTP 401 expired token (check the token and its " \
                                   "scopes)"
    errors = [e["args"][0] for e in sock.get_received() if e["name"] == "integration_error"]
    assert errors == [{"kind": "integration", "type": "hubspot", "status": "error",
                       "error": "integration_failed", "message": stored["last_error"]}]
    sock.disconnect()


def test_429_retry_after_is_honoured_then_it_succeeds(client, business, crm):
    crm.script = [http_error("HubSpot", 429, headers={"Retry-After": "0.001"}),
                  http_error("HubSpot", 503)]
    _workflow(client, business, "message_received", [{"type": "crm_sync"}])
    post_webhook(client, "facebook", fb_text("hello", psid="2005"))
    assert len(crm.calls) == 3
    stored = client.get("/api/integrations/hubspot", headers=business["headers"]).get_json()
    assert stored["status"] == "active" and stored["last_error"] is None


def test_http_error_classification():
    assert http_error("X", 429, headers={"Retry-After": "7"}).retry_after == 7.0
    assert http_error("X", 429, headers={"Retry-After": "Wed, 21 Oct 2015"}).retry_after is None
    assert http_error("X", 401).permanent and http_error("X", 403).permanent
    assert http_error("X", 400).permanent and not http_error("X", 409).permanent
    assert not http_error("X", 500).permanent and not http_error("X", None).permanent


def test_without_an_integration_the_action_fails_visibly(client, business, crm):
    # the CRM can open tickets when named, but it is not the help desk an unnamed one uses
    _workflow(client, business, "message_received", [
        {"type": "create_ticket"}, {"type": "send_text", "text": "still answered"}])
    post_webhook(client, "facebook", fb_text("hello", psid="2006"))
    [run] = _runs(client, business)
    assert run["status"] == "failed"
    assert "no enabled helpdesk integration offers create_ticket" in run["error"]
    assert run["actions"][1]["status"] == "ok"   # the rest of the workflow still ran
    assert crm.calls == []


@pytest.mark.parametrize(("named", "reason"), [
    ("email", "the E-mail (SMTP) integration cannot crm_sync"),
    ("fax", "unknown integration type 'fax'")])
def test_a_named_integration_must_offer_the_action(client, business, crm, named, reason):
    _workflow(client, business, "message_received", [{"type": "crm_sync", "integration": named}])
    post_webhook(client, "facebook", fb_text("hello", psid="2007"))
    [run] = _runs(client, business)
    assert run["error"] == f"crm_sync: {reason}"
    assert crm.calls == []


def test_a_disabled_integration_is_not_used(client, business, crm):
    client.post("/api/integrations", headers=business["headers"], json={
        "type": "hubspot", "config": {"access_token": "pat-na1-secret-token"}, "enabled": False})
    _workflow(client, business, "message_received", [{"type": "crm_sync"}])
    post_webhook(client, "facebook", fb_text("hello", psid="2008"))
    [run] = _runs(client, business)
    assert run["status"] == "failed" and "no enabled crm integration" in run["error"]
    assert crm.calls == []


def test_handoff_workflow_opens_ticket_syncs_and_tracks_once(client, business, crm):
    from services.integration_actions import links_for

    _workflow(client, business, "handoff", [
        {"type": "create_ticket", "subject": "Help {{contact.name}}", "tags": ["dana"],
         "integration": "hubspot"},
        {"type": "crm_sync"},
        {"type": "track_event", "event": "handoff", "integration": "hubspot"}])
    post_webhook(client, "facebook", fb_text(HUMAN, psid="2009"))
    assert [c.action for c in crm.calls] == ["create_ticket", "crm_sync", "track_event"]
    [task] = client.get("/api/tasks", headers=business["headers"]).get_json()["items"]
    ticket_call = crm.calls[0]
    assert ticket_call.trigger == "handoff" and ticket_call.task["id"] == task["id"]
    assert ticket_call.params["tags"] == ["dana"] and ticket_call.params["subject"] == "Help"
    assert ticket_call.task["integration_refs"] == {}
    owner = business["user"]["id"]
    assert links_for(owner, "task", task["id"]) == {"hubspot": {"id": "T1"}}
    # the customer still got the hand-off notice
    [conv] = conversations(client, business)
    assert any(m["sender_type"] == "system" for m in messages(client, business, conv["id"]))
    # a second message while the task is open: no new hand-off, so nothing runs again
    post_webhook(client, "facebook", fb_text("hello? anyone?", psid="2009"))
    assert len(crm.calls) == 3


def test_actions_validate_their_fields(client, business):
    for action in ({"type": "track_event", "event": "bad name!"},
                   {"type": "track_event", "event": "ok", "params": {"x": {"nested": 1}}},
                   {"type": "create_ticket", "tags": ["no spaces allowed"]},
                   {"type": "crm_sync", "integration": "Not A Type"},
                   {"type": "crm_sync", "sneaky": True}):
        resp = client.post("/api/workflows", headers=business["headers"], json={
            "name": "bad", "definition": {"trigger": {"type": "message_received"},
                                          "actions": [action]}})
        assert resp.status_code == 400, action
