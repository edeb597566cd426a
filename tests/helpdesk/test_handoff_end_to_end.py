"""Issue 16's "done when": a workflow "on hand-off: create a Zendesk ticket, sync the contact to
HubSpot, track the event" runs end to end against the fakes (the real clients: httpx for
Zendesk and GA4, hubspot-api-client for HubSpot; loopback servers), after the customer's
answer; a second run of the same trigger changes nothing."""
from __future__ import annotations

import pytest

from tests.channels.conftest import conversations, fb_text, post_webhook
from tests.fakes.hubspot import TOKEN, FakeHubSpot
from tests.helpdesk.conftest import connect_ga, connect_zendesk

HUMAN = "I want to speak to a human please, the parcel never came"


@pytest.fixture
def fake_hubspot():
    server = FakeHubSpot().start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(settings_overrides, fake_hubspot):
    return {**settings_overrides, "HUBSPOT_API_URL": fake_hubspot.base_url}


def _rerun_the_handoff(business) -> None:
    """Run the same delivery again so the hand-off (and its trigger) happens once more: the
    run's traces and the hand-off task are gone, as after an interrupted run that is retried.
    """
    from models_db import WebhookEvent, WorkflowRun, db
    from services.webhook_events import replay_event
    from utils.store import ConversationFilters, TaskFilters, get_store

    owner = business["user"]["id"]
    store = get_store()
    for task in store.list_tasks(owner, TaskFilters(), 10, None).items:
        store.delete_task(owner, task["id"])
    for conv in store.list_conversations(owner, ConversationFilters(), 10, None).items:
        store.update_conversation(owner, conv["id"], {"ai_enabled": True, "status": "open"})
        for message in store.list_messages(owner, conv["id"], 100, None).items:
            if message["direction"] == "inbound":
                store.update_message(owner, message["id"], metadata={"automation": None})
    db.session.query(WorkflowRun).delete()
    db.session.commit()
    replay_event(db.session.scalar(db.select(WebhookEvent.id)))


def test_on_handoff_ticket_contact_and_event_once(client, business, fake_zendesk, fake_ga,
                                                  fake_hubspot, fake_graph):
    from services.integration_actions import links_for

    assert connect_zendesk(client, business).status_code == 201
    assert client.post("/api/integrations", headers=business["headers"], json={
        "type": "hubspot", "config": {"access_token": TOKEN}}).status_code == 201
    # automatic events off: the workflow's own event is what this test follows
    assert connect_ga(client, business, automatic_events=[]).status_code == 201
    resp = client.post("/api/workflows", headers=business["headers"], json={
        "name": "on hand-off", "definition": {
            "trigger": {"type": "handoff"},
            "actions": [{"type": "create_ticket", "tags": ["handoff"]},
                        {"type": "crm_sync"},
                        {"type": "track_event", "event": "handoff",
                         "params": {"source": "workflow"}}]}})
    assert resp.status_code == 201, resp.get_json()

    post_webhook(client, "facebook", fb_text(HUMAN))

    # the customer was answered (the hand-off notice), and then the actions ran
    assert len(fake_graph.requests_to("/me/messages")) == 1
    [ticket] = fake_zendesk.tickets.values()
    assert HUMAN in ticket["comments"][0]["body"] and "handoff" in ticket["tags"]
    [contact_id] = fake_hubspot.contacts
    [note] = fake_hubspot.notes
    assert HUMAN in str(note)
    [event] = fake_ga.collected()
    assert event["name"] == "handoff" and event["params"]["source"] == "workflow"
    owner = business["user"]["id"]
    [task] = client.get("/api/tasks", headers=business["headers"]).get_json()["items"]
    assert links_for(owner, "task", task["id"])["zendesk"]["id"] == ticket["id"]
    [conv] = conversations(client, business)
    assert links_for(owner, "contact", conv["contact"]["id"])["hubspot"]["id"] == contact_id
    runs = client.get("/api/workflows/runs", headers=business["headers"]).get_json()["items"]
    [run] = [r for r in runs if r["trigger"] == "handoff"]
    assert [a["status"] for a in run["actions"]] == ["queued"] * 3
    requests_before = (len(fake_zendesk.requests), len(fake_ga.requests),
                       len(fake_hubspot.requests), len(fake_graph.requests_to("/me/messages")))

    _rerun_the_handoff(business)

    # the hand-off happened again (a new task, the trigger fired), and nothing changed
    [again] = [r for r in client.get("/api/workflows/runs", headers=business["headers"])
               .get_json()["items"] if r["trigger"] == "handoff"]
    assert [a["idempotency_key"] for a in again["actions"]] == \
        [a["idempotency_key"] for a in run["actions"]]
    assert len(fake_zendesk.tickets) == 1 and len(fake_ga.collected()) == 1
    assert len(fake_hubspot.contacts) == 1 and len(fake_hubspot.notes) == 1
    assert (len(fake_zendesk.requests), len(fake_ga.requests), len(fake_hubspot.requests),
            len(fake_graph.requests_to("/me/messages"))) == requests_before
    assert len(conversations(client, business)) == 1
