"""Google Analytics 4: connecting (checked with the validation server), automatic events
(conversation_started, ai_answered, handoff, resolved) with a pseudonymous client id and
nothing personal, and failures (429 with Retry-After, 401, 500) that never block a reply."""
from __future__ import annotations

import json

import pytest

from tests.channels.conftest import add_knowledge, conversations, fb_text, post_webhook
from tests.fakes.google_analytics import API_SECRET
from tests.helpdesk.conftest import connect_ga
from tests.helpers import assert_error

PSID_A, PSID_B = "7354923876541234", "7354923876549999"


@pytest.fixture
def ga_business(client, business, fake_ga):
    resp = connect_ga(client, business)
    assert resp.status_code == 201, resp.get_json()
    add_knowledge(client, business, "Opening hours", "We are open Monday to Friday, 9am to 5pm.")
    return business


def names(fake_ga) -> list[str]:
    return [e["name"] for e in fake_ga.collected()]


def integration(client, business) -> dict:
    return client.get("/api/integrations/google_analytics",
                      headers=business["headers"]).get_json()


def test_connect_validates_with_the_debug_endpoint(client, business, fake_ga):
    resp = connect_ga(client, business)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["config"]["api_secret"] == "••••" + API_SECRET[-4:]
    [check] = fake_ga.requests
    assert check.path == "/debug/mp/collect"
    assert fake_ga.collected() == []     # the validation server records nothing


def test_a_wrong_secret_is_refused_and_nothing_is_kept(client, business, fake_ga):
    err = assert_error(connect_ga(client, business, api_secret="wrong-secret-000"), 422,
                       "integration_check_failed")
    assert "Unable to find a stream" in err["message"]
    assert_error(client.get("/api/integrations/google_analytics", headers=business["headers"]),
                 404, "integration_not_found")
    assert_error(connect_ga(client, business, measurement_id="UA-1234"), 400, "validation_error")


def test_automatic_events_for_a_conversation(client, ga_business, fake_ga):
    post_webhook(client, "facebook", fb_text("hello", psid=PSID_A))
    assert names(fake_ga) == ["conversation_started", "ai_answered"]
    post_webhook(client, "facebook", fb_text("What are your opening hours?", psid=PSID_A))
    assert names(fake_ga)[2:] == ["ai_answered"]
    post_webhook(client, "facebook", fb_text("I want to speak to a human please", psid=PSID_A))
    assert names(fake_ga)[3:] == ["handoff"]
    [conv] = conversations(client, ga_business)
    for _ in range(2):   # resolving an already resolved conversation is not a second event
        resp = client.patch(f"/api/conversations/{conv['id']}", headers=ga_business["headers"],
                            json={"status": "resolved"})
        resp.close()
        assert resp.status_code == 200
    assert names(fake_ga)[4:] == ["resolved"]
    assert {e["params"]["platform"] for e in fake_ga.collected()} == {"facebook"}
    assert len({e["client_id"] for e in fake_ga.collected()}) == 1


def test_client_id_is_pseudonymous_and_nothing_personal_is_sent(client, ga_business, fake_ga):
    from utils.store import get_store

    post_webhook(client, "facebook", fb_text("hello, I'm Ada, +44 7700 900123", psid=PSID_A))
    post_webhook(client, "facebook", fb_text("hello", psid=PSID_B))
    owner = ga_business["user"]["id"]
    for conv in conversations(client, ga_business):
        get_store().update_contact(owner, conv["contact"]["id"], {
            "name": "Ada Lovelace", "email": "ada@example.com", "phone": "+447700900123"})
    post_webhook(client, "facebook", fb_text("I want to speak to a human please", psid=PSID_A))
    sent = json.dumps([r.body for r in fake_ga.requests])
    for personal in ("Ada", "7700", PSID_A, PSID_B, "ada@example.com", "hello", "human"):
        assert personal not in sent, personal
    ids = {e["client_id"] for e in fake_ga.collected()}
    assert len(ids) == 2                  # one stable id per customer
    contact_ids = {c["contact"]["id"] for c in conversations(client, ga_business)}
    assert not ids & contact_ids


def test_params_lose_anything_personal():
    from automation.integrations.business.google_analytics import (
        clean_params,
        valid_event_name,
    )

    assert clean_params({"platform": "instagram", "name": "Ada", "email": "a@b.co",
                         "note": "call +1 650 555 1234", "who": "me@example.org",
                         "score": 3, "ok": True, "nested": {"a": 1}, "1bad": "x",
                         "long": "x" * 500}) == {"platform": "instagram", "score": 3, "ok": 1,
                                                 "long": "x" * 100}
    assert valid_event_name("handoff") and not valid_event_name("ga_session")
    assert not valid_event_name("has space") and not valid_event_name("x" * 41)


def test_automatic_events_can_be_turned_off(client, business, fake_ga):
    resp = connect_ga(client, business, automatic_events=["handoff"])
    assert resp.status_code == 201, resp.get_json()
    post_webhook(client, "facebook", fb_text("hello"))
    post_webhook(client, "facebook", fb_text("I want to speak to a human please"))
    assert names(fake_ga) == ["handoff"]


def test_429_retry_after_is_honoured(client, ga_business, fake_ga):
    fake_ga.fail("POST /mp/collect", status=429, retry_after=0)
    post_webhook(client, "facebook", fb_text("hello"))
    assert names(fake_ga) == ["conversation_started", "ai_answered"]
    collect_calls = [r for r in fake_ga.requests if r.path == "/mp/collect"]
    assert len(collect_calls) == 3       # the refused one, then both events
    assert integration(client, ga_business)["status"] == "active"


def test_401_is_not_retried_and_is_visible_and_the_reply_still_goes(
        app, client, ga_business, fake_ga, fake_graph):
    from utils.realtime import socketio

    sock = socketio.test_client(app, auth={"token": ga_business["access_token"]})
    fake_ga.fail("POST /mp/collect", status=401, times=5)
    post_webhook(client, "facebook", fb_text("hello"))
    assert len(fake_graph.requests_to("/me/messages")) == 1     # the customer was answered
    collect_calls = [r for r in fake_ga.requests if r.path == "/mp/collect"]
    assert len(collect_calls) == 2       # one per event, no retry of a refused secret
    stored = integration(client, ga_business)
    assert stored["status"] == "error" and "HTTP 401" in stored["last_error"]
    assert API_SECRET not in stored["last_error"]
    events = [e["args"][0] for e in sock.get_received() if e["name"] == "integration_error"]
    assert events and events[-1]["type"] == "google_analytics"
    sock.disconnect()


def test_500_is_retried_then_recorded(client, ga_business, fake_ga, fake_graph):
    fake_ga.fail("POST /mp/collect", status=500, times=3)
    post_webhook(client, "facebook", fb_text("hello"))
    assert len(fake_graph.requests_to("/me/messages")) == 1
    assert names(fake_ga) == ["ai_answered"]   # conversation_started failed 3 times
    assert integration(client, ga_business)["status"] == "active"   # the next one worked


def test_track_event_action_once_per_run_and_nothing_personal(client, business, fake_ga):
    from automation.integrations.base import ActionRequest
    from services.integration_actions import perform

    assert connect_ga(client, business, automatic_events=[]).status_code == 201
    resp = client.post("/api/workflows", headers=business["headers"], json={
        "name": "track questions", "definition": {
            "trigger": {"type": "message_received"},
            "actions": [{"type": "send_text", "text": "Thanks {{contact.first_name}}!"},
                        {"type": "track_event", "event": "question_asked",
                         "params": {"topic": "shipping", "email": "ada@example.com",
                                    "note": "call me on +44 7700 900123", "vip": True}}]}})
    assert resp.status_code == 201, resp.get_json()
    post_webhook(client, "facebook", fb_text("Do you ship to Oslo? ada@example.com", psid=PSID_A))
    [event] = fake_ga.collected()
    assert event["name"] == "question_asked"
    assert event["params"] == {"platform": "facebook", "topic": "shipping", "vip": 1,
                               "engagement_time_msec": 1}
    assert "ada@" not in json.dumps([r.body for r in fake_ga.requests])
    # a second run of the same action run sends nothing
    [conv] = conversations(client, business)
    runs = client.get("/api/workflows/runs", headers=business["headers"]).get_json()["items"]
    key = next(a for r in runs for a in r["actions"] if a.get("idempotency_key"))[
        "idempotency_key"]
    request = ActionRequest(owner_id=business["user"]["id"], action="track_event",
                            idempotency_key=key, conversation=conv, contact=conv["contact"],
                            params={"event": "question_asked", "params": {}})
    assert perform(request)["google_analytics"]["status"] == "already_done"
    assert len(fake_ga.collected()) == 1


def test_track_event_without_analytics_fails_the_action_visibly(client, business, fake_ga):
    resp = client.post("/api/workflows", headers=business["headers"], json={
        "name": "track", "definition": {"trigger": {"type": "message_received"},
                                        "actions": [{"type": "track_event", "event": "x"}]}})
    assert resp.status_code == 201
    post_webhook(client, "facebook", fb_text("hello"))
    runs = client.get("/api/workflows/runs", headers=business["headers"]).get_json()["items"]
    [action] = [a for r in runs if r["matched"] for a in r["actions"]]
    assert action["status"] == "failed" and "analytics" in action["error"]
    assert fake_ga.requests == []
