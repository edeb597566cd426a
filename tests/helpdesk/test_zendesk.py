"""Zendesk out: connecting (checked with users/me), a hand-off's ticket (requester, transcript,
tags, never twice), the conversation's later messages as comments, and failures (429 with
Retry-After, 401, 500) visible on the integration without blocking the customer's reply."""
from __future__ import annotations

import base64

import pytest

from automation.integrations.base import IntegrationError
from tests.channels.conftest import conversations, fb_text, messages, post_webhook
from tests.fakes.zendesk import AGENT_EMAIL, API_TOKEN
from tests.helpdesk.conftest import connect_zendesk, zendesk_config
from tests.helpers import assert_error

HUMAN = "I want to speak to a human please, my order 4411 never arrived"


def ticket_workflow(client, business, **action) -> dict:
    """On hand-off: create a Zendesk ticket."""
    resp = client.post("/api/workflows", headers=business["headers"], json={
        "name": "ticket on hand-off", "definition": {
            "trigger": {"type": "handoff"},
            "actions": [{"type": "create_ticket", "integration": "zendesk", **action}]}})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def handed_off(client, business, text: str = HUMAN) -> tuple[dict, dict]:
    """A Messenger customer asks for a human: (conversation, its hand-off task)."""
    post_webhook(client, "facebook", fb_text(text))
    [conv] = conversations(client, business)
    [task] = client.get("/api/tasks", headers=business["headers"]).get_json()["items"]
    return conv, task


def ticketed(client, business, fake_zendesk, **action) -> tuple[dict, dict, int]:
    """A hand-off whose workflow opened a Zendesk ticket: (conversation, task, ticket id)."""
    ticket_workflow(client, business, **action)
    conv, task = handed_off(client, business)
    [ticket_id] = list(fake_zendesk.tickets)
    return conv, task, ticket_id


def integration(client, business) -> dict:
    return client.get("/api/integrations/zendesk", headers=business["headers"]).get_json()


# ------------------------------------------------------------------ connecting

def test_connect_checks_the_agent_and_masks_secrets(client, business, fake_zendesk):
    resp = connect_zendesk(client, business)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "active"
    assert body["config"]["api_token"] == "••••" + API_TOKEN[-4:]
    assert body["config"]["webhook_secret"].startswith("••••")
    assert API_TOKEN not in resp.get_data(as_text=True)
    [me] = fake_zendesk.calls("GET", "/api/v2/users/me", exact=True)
    expected = base64.b64encode(f"{AGENT_EMAIL}/token:{API_TOKEN}".encode()).decode()
    assert me.headers["authorization"] == f"Basic {expected}"
    types = client.get("/api/integrations/types", headers=business["headers"]).get_json()
    zendesk = next(t for t in types["items"] if t["type"] == "zendesk")
    assert zendesk["available"] is True and "create_ticket" in zendesk["operations"]


def test_a_wrong_token_is_refused_and_nothing_is_kept(client, business, fake_zendesk):
    resp = connect_zendesk(client, business, api_token="not-the-right-token")
    err = assert_error(resp, 422, "integration_check_failed")
    assert "Couldn't authenticate you" in err["message"]
    assert_error(client.get("/api/integrations/zendesk", headers=business["headers"]), 404,
                 "integration_not_found")


def test_an_end_user_token_is_refused(client, business, fake_zendesk):
    fake_zendesk.add_user(77, "Carl Customer", "carl@example.com", "end-user", "carl-token-123")
    resp = connect_zendesk(client, business, email="carl@example.com",
                           api_token="carl-token-123")
    err = assert_error(resp, 422, "integration_check_failed")
    assert "end-user" in err["message"]


@pytest.mark.parametrize("field,value", [("subdomain", "Bad Domain"), ("email", "nope"),
                                         ("api_token", "short"), ("tags", "dana")])
def test_bad_config_is_a_400(client, business, fake_zendesk, field, value):
    resp = client.post("/api/integrations", headers=business["headers"], json={
        "type": "zendesk", "config": zendesk_config(**{field: value})})
    err = assert_error(resp, 400, "validation_error")
    assert fake_zendesk.requests == []
    assert err


def test_subdomain_cannot_redirect_the_calls(app, fake_zendesk):
    """The account's host is built from a validated subdomain: no path or host injection."""
    from automation.integrations.business.zendesk import ZendeskConfig, ZendeskConnector

    with pytest.raises(ValueError):
        ZendeskConfig(subdomain="evil.com/x?", email=AGENT_EMAIL, api_token=API_TOKEN)
    connector = ZendeskConnector(
        ZendeskConfig(subdomain="noras", email=AGENT_EMAIL, api_token=API_TOKEN),
        type("S", (), {"ZENDESK_API_URL": None})())
    assert connector.base_url == "https://noras.zendesk.com"
    assert connector.ticket_url(12) == "https://noras.zendesk.com/agent/tickets/12"


def test_test_endpoint_records_a_revoked_token(client, zendesk_business, fake_zendesk):
    ok = client.post("/api/integrations/zendesk/test",
                     headers=zendesk_business["headers"]).get_json()
    assert ok["ok"] is True and "Alex Agent" in ok["detail"]
    fake_zendesk.tokens.clear()
    bad = client.post("/api/integrations/zendesk/test",
                      headers=zendesk_business["headers"]).get_json()
    assert bad["ok"] is False and "Couldn't authenticate you" in bad["detail"]
    stored = integration(client, zendesk_business)
    assert stored["status"] == "error" and "authenticate" in stored["last_error"]


# ------------------------------------------------------------------ the ticket

def test_ticket_has_requester_transcript_and_tags(client, zendesk_business, fake_zendesk):
    from services.integration_actions import links_for
    from services.integrations import conversation_ref

    conv, task, ticket_id = ticketed(client, zendesk_business, fake_zendesk,
                                     tags=["late-delivery"])
    ticket = fake_zendesk.tickets[ticket_id]
    url = f"https://noras.zendesk.com/agent/tickets/{ticket_id}"
    assert ticket["subject"].startswith("Conversation with")   # the action's default
    assert ticket["external_id"] == f"dana-task-{task['id']}"
    assert ticket["tags"] == ["dana", "late-delivery", "facebook"]
    [first] = ticket["comments"]
    assert first["public"] is False    # the transcript is never e-mailed to anybody
    assert HUMAN in first["body"] and f"/conversations/{conv['id']}" in first["body"]
    assert "Business: " in first["body"]    # the hand-off notice the customer got
    [requester] = fake_zendesk.end_users()
    assert ticket["requester_id"] == requester["id"]
    assert requester["external_id"] == f"dana-contact-{conv['contact']['id']}"
    # kept on our task, our contact and the conversation
    owner = zendesk_business["user"]["id"]
    assert links_for(owner, "task", task["id"]) == {"zendesk": {"id": ticket_id, "url": url}}
    assert links_for(owner, "contact", conv["contact"]["id"]) == {
        "zendesk": {"id": requester["id"]}}
    refs = conversation_ref(owner, conv["id"], "zendesk")
    assert refs == {"id": ticket_id, "ticket_id": ticket_id, "requester_id": requester["id"],
                    "url": url, "task_id": task["id"]}


def test_subject_and_priority_come_from_the_action(client, zendesk_business, fake_zendesk):
    _conv, _task, ticket_id = ticketed(client, zendesk_business, fake_zendesk,
                                       subject="Order problem: {{contact.first_name}}",
                                       priority="urgent")
    ticket = fake_zendesk.tickets[ticket_id]
    assert ticket["subject"].startswith("Order problem:") and ticket["priority"] == "urgent"


def test_a_retried_run_never_opens_a_second_ticket(client, zendesk_business, fake_zendesk):
    from automation.integrations.base import ActionRequest
    from models_db import IntegrationAction, IntegrationRef, db
    from services.integration_actions import perform

    conv, task, ticket_id = ticketed(client, zendesk_business, fake_zendesk)
    request = ActionRequest(owner_id=zendesk_business["user"]["id"], action="create_ticket",
                            idempotency_key="wf:test:handoff:m1:0", conversation=conv,
                            contact=conv["contact"], task=task)
    # another run for the same task: the conversation's ticket is reused
    assert perform(request)["zendesk"] == {"status": "found", "external_id": str(ticket_id)}
    assert perform(request)["zendesk"]["status"] == "already_done"
    # as if the process died right after Zendesk answered, before Dana recorded anything:
    # Zendesk's external_id finds the ticket. Still one ticket, one end user.
    db.session.query(IntegrationAction).delete()
    db.session.query(IntegrationRef).delete()
    db.session.commit()
    assert perform(request)["zendesk"] == {"status": "found", "external_id": str(ticket_id)}
    assert len(fake_zendesk.tickets) == 1
    assert len(fake_zendesk.calls("POST", "/api/v2/tickets", exact=True)) == 1
    assert len(fake_zendesk.calls("GET", "/api/v2/tickets", exact=True)) == 2
    assert len(fake_zendesk.end_users()) == 1


def test_429_retry_after_is_honoured(client, zendesk_business, fake_zendesk):
    fake_zendesk.fail("POST /api/v2/tickets", status=429, retry_after=0)
    ticketed(client, zendesk_business, fake_zendesk)
    assert len(fake_zendesk.tickets) == 1
    assert len(fake_zendesk.calls("POST", "/api/v2/tickets", exact=True)) == 2
    assert integration(client, zendesk_business)["status"] == "active"


def test_http_answers_become_the_right_errors(app):
    import httpx

    from automation.integrations import web

    with pytest.raises(IntegrationError) as caught:
        web.raise_for_answer("Zendesk", "x", httpx.Response(429, headers={"Retry-After": "7"}))
    assert caught.value.retry_after == 7.0 and not caught.value.permanent
    with pytest.raises(IntegrationError) as caught:
        web.raise_for_answer("Zendesk", "x", httpx.Response(401, json={"error": "nope"}))
    assert caught.value.permanent and "HTTP 401 nope" in str(caught.value)
    with pytest.raises(IntegrationError) as caught:
        web.raise_for_answer("Zendesk", "x", httpx.Response(503))
    assert not caught.value.permanent


def test_401_is_permanent_error_and_integration_error_is_emitted(app, client, zendesk_business,
                                                                  fake_zendesk, fake_graph):
    from utils.realtime import socketio

    fake_zendesk.tokens.clear()   # the token was revoked in Zendesk
    sock = socketio.test_client(app, auth={"token": zendesk_business["access_token"]})
    ticket_workflow(client, zendesk_business)
    handed_off(client, zendesk_business)
    assert len(fake_graph.requests_to("/me/messages")) == 1   # the customer was answered
    # no retry
    assert len(fake_zendesk.calls("POST", "/api/v2/users/create_or_update", exact=True)) == 1
    stored = integration(client, zendesk_business)
    assert stored["status"] == "error" and "HTTP 401" in stored["last_error"]
    events = [e["args"][0] for e in sock.get_received() if e["name"] == "integration_error"]
    assert events and events[-1]["type"] == "zendesk" and events[-1]["status"] == "error"
    sock.disconnect()
    assert fake_zendesk.tickets == {}


def test_500_is_retried_then_recorded_and_the_next_run_opens_it(client, zendesk_business,
                                                                fake_zendesk):
    from automation.integrations.base import ActionRequest
    from models_db import IntegrationAction, db

    fake_zendesk.fail("POST /api/v2/users/create_or_update", status=500, times=3)
    ticket_workflow(client, zendesk_business)
    handed_off(client, zendesk_business)
    assert len(fake_zendesk.calls("POST", "/api/v2/users/create_or_update", exact=True)) == 3
    assert "HTTP 500" in integration(client, zendesk_business)["last_error"]
    assert fake_zendesk.tickets == {}
    # a failed action run is tried again by the next run of the same key
    from services.integration_actions import perform

    [record] = db.session.scalars(db.select(IntegrationAction)).all()
    assert record.status == "failed" and "HTTP 500" in record.error
    conv = conversations(client, zendesk_business)[0]
    [task] = client.get("/api/tasks", headers=zendesk_business["headers"]).get_json()["items"]
    request = ActionRequest(owner_id=zendesk_business["user"]["id"], action="create_ticket",
                            idempotency_key=record.idempotency_key, conversation=conv,
                            contact=conv["contact"], task=task)
    assert perform(request)["zendesk"]["status"] == "created"
    assert len(fake_zendesk.tickets) == 1
    assert integration(client, zendesk_business)["status"] == "active"


# ------------------------------------------------------------------ later messages

def test_later_messages_become_comments(client, zendesk_business, fake_zendesk, fake_graph):
    conv, _task, ticket_id = ticketed(client, zendesk_business, fake_zendesk)
    post_webhook(client, "facebook", fb_text("It was a blue jacket, size M"))
    resp = client.post(f"/api/conversations/{conv['id']}/messages",
                       headers=zendesk_business["headers"], json={"text": "Sorry! Resending."})
    resp.close()
    assert resp.status_code == 201, resp.get_json()
    comments = fake_zendesk.tickets[ticket_id]["comments"]
    customer, agent = comments[1], comments[2]
    requester_id = fake_zendesk.tickets[ticket_id]["requester_id"]
    assert customer == {**customer, "body": "It was a blue jacket, size M", "public": True,
                        "author_id": requester_id}
    assert agent["public"] is False and agent["body"] == "Agent in Dana replied: Sorry! Resending."
    assert len(comments) == 3


def test_a_failing_zendesk_never_blocks_the_reply(client, zendesk_business, fake_zendesk,
                                                  fake_graph):
    conv, _task, _ticket_id = ticketed(client, zendesk_business, fake_zendesk)
    sent_before = len(fake_graph.requests_to("/me/messages"))
    fake_zendesk.fail("*", status=500, times=10)
    resp = client.post(f"/api/conversations/{conv['id']}/messages",
                       headers=zendesk_business["headers"], json={"text": "On it"})
    resp.close()
    assert resp.status_code == 201 and resp.get_json()["status"] == "sent"
    assert len(fake_graph.requests_to("/me/messages")) == sent_before + 1
    stored = integration(client, zendesk_business)
    assert stored["status"] == "error" and "HTTP 500" in stored["last_error"]
    assert [m["text"] for m in messages(client, zendesk_business, conv["id"])][-1] == "On it"


def test_conversations_without_a_ticket_send_nothing(client, zendesk_business, fake_zendesk):
    post_webhook(client, "facebook", fb_text("hello"))
    post_webhook(client, "facebook", fb_text("what are your opening hours?"))
    assert [r.route for r in fake_zendesk.requests] == ["GET /api/v2/users/me"]
