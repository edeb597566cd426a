"""HubSpot through hubspot-api-client against a loopback fake: the check, the contact upsert
(kept id / found / not found / race), the note, no duplicate under retries, failures visible
and never in the way of the customer's reply.
"""
from __future__ import annotations

import pytest

from tests.channels.conftest import conversations, fb_text, messages, post_webhook, wa_text
from tests.fakes.hubspot import CONTACTS, NOTES, TOKEN, FakeHubSpot
from tests.helpers import assert_error

HUMAN = "I want to talk to a human please"


@pytest.fixture
def fake_hubspot():
    server = FakeHubSpot().start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(settings_overrides, fake_hubspot):
    return {**settings_overrides, "HUBSPOT_API_URL": fake_hubspot.base_url}


def _connect(client, user, token: str = TOKEN):
    return client.post("/api/integrations", headers=user["headers"],
                       json={"type": "hubspot", "config": {"access_token": token}})


@pytest.fixture
def hubspot(client, business, fake_hubspot):
    resp = _connect(client, business)
    assert resp.status_code == 201, resp.get_json()
    fake_hubspot.requests.clear()
    return fake_hubspot


def _sync_workflow(client, user, trigger: str = "message_received", **action) -> None:
    resp = client.post("/api/workflows", headers=user["headers"], json={
        "name": "to HubSpot", "definition": {
            "trigger": {"type": trigger},
            "actions": [{"type": "send_text", "text": "Thanks! We'll be in touch."},
                        {"type": "crm_sync", **action}]}})
    assert resp.status_code == 201, resp.get_json()


def _stored(client, user) -> dict:
    return client.get("/api/integrations/hubspot", headers=user["headers"]).get_json()


def _contact_id(client, user) -> str:
    [conv] = conversations(client, user)
    return conv["contact"]["id"]


# ------------------------------------------------------------------------- check

def test_configuring_checks_the_token_with_one_read(client, business, fake_hubspot):
    resp = _connect(client, business)
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["status"] == "active" and body["config"]["access_token"] == "••••" + TOKEN[-4:]
    [call] = fake_hubspot.requests
    assert (call.method, call.path, call.query) == ("GET", CONTACTS, {"limit": "1"})
    assert call.token == TOKEN


def test_a_refused_token_is_not_stored(client, business, fake_hubspot):
    resp = _connect(client, business, token="pat-na1-wrong-token-0000")
    message = assert_error(resp, 422, "integration_check_failed")["message"]
    assert "HTTP 401" in message and "Authentication credentials not found" in message
    assert "pat-na1-wrong" not in message
    assert client.get("/api/integrations", headers=business["headers"]).get_json()["items"] == []


def test_test_endpoint_follows_the_token(client, business, hubspot):
    assert client.post("/api/integrations/hubspot/test",
                       headers=business["headers"]).get_json()["ok"] is True
    hubspot.tokens.clear()   # the private app's token was rotated in HubSpot
    body = client.post("/api/integrations/hubspot/test", headers=business["headers"]).get_json()
    assert body["ok"] is False and "HTTP 401" in body["detail"]
    assert _stored(client, business)["status"] == "error"


def test_a_bad_token_format_is_a_400_and_reaches_nothing(client, business, fake_hubspot):
    resp = _connect(client, business, token="pat na1\nX-Injected: 1")
    assert "config.access_token" in {d["field"] for d in
                                     assert_error(resp, 400, "validation_error")["details"]}
    assert fake_hubspot.requests == []


# ------------------------------------------------------------------------- upsert

@pytest.mark.parametrize("name, first, last", [
    ("Anna Maria Schmidt", "Anna Maria", "Schmidt"),   # as Salesforce splits it too
    ("Cher", "Cher", None),                            # a one-word chat name is a first name
])
def test_a_display_name_is_split_before_its_last_word(client, business, hubspot,
                                                      name, first, last):
    _sync_workflow(client, business)
    post_webhook(client, "whatsapp", wa_text("hi", name=name))
    [props] = hubspot.contacts.values()
    assert (props.get("firstname"), props.get("lastname")) == (first, last)


def test_not_found_creates_the_contact_and_logs_the_conversation(client, business, hubspot):
    from services.integration_actions import links_for

    _sync_workflow(client, business)
    post_webhook(client, "whatsapp", wa_text("Is the blue jacket in stock?"))
    [search] = hubspot.calls("POST", CONTACTS + "/search")
    groups = search.body["filterGroups"]
    assert {"propertyName": "phone", "operator": "EQ", "value": "+16505551234"} in \
        [f for g in groups for f in g["filters"]]
    [created] = hubspot.calls("POST", CONTACTS)[-1:]
    assert created.path == CONTACTS and created.token == TOKEN
    assert created.body["properties"] == {"firstname": "Sheena", "lastname": "Nelson",
                                          "phone": "+16505551234"}
    [(contact_id, props)] = hubspot.contacts.items()
    [note] = hubspot.notes
    assert note["associations"] == [{"to": {"id": contact_id}, "types": [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}]}]
    body = note["properties"]["hs_note_body"]
    assert "Customer: Is the blue jacket in stock?" in body
    assert "Business: Thanks! We&#x27;ll be in touch." in body
    assert "Conversation on Whatsapp" in body
    assert links_for(business["user"]["id"], "contact", _contact_id(client, business)) == {
        "hubspot": {"id": contact_id}}
    assert _stored(client, business)["status"] == "active"


def test_found_by_phone_updates_that_contact(client, business, hubspot):
    existing = hubspot.add_contact(firstname="Sheena", phone="+16505551234",
                                   email="sheena@example.com")
    _sync_workflow(client, business)
    post_webhook(client, "whatsapp", wa_text("Hello again"))
    assert hubspot.calls("POST", CONTACTS) == hubspot.calls("POST", CONTACTS + "/search")
    [patch] = hubspot.calls("PATCH", CONTACTS)
    assert patch.path == f"{CONTACTS}/{existing}"
    assert patch.body["properties"]["lastname"] == "Nelson"
    assert list(hubspot.contacts) == [existing]
    assert hubspot.contacts[existing]["email"] == "sheena@example.com"  # nothing blanked
    assert hubspot.notes[0]["associations"][0]["to"] == {"id": existing}


def test_found_by_email_set_in_dana(client, business, hubspot):
    existing = hubspot.add_contact(email="Nora.Customer@example.com")
    post_webhook(client, "facebook", fb_text("hi", psid="3001"))   # no workflow yet
    client.patch(f"/api/contacts/{_contact_id(client, business)}", headers=business["headers"],
                 json={"email": "nora.customer@example.com", "name": "Nora Customer"})
    _sync_workflow(client, business)
    post_webhook(client, "facebook", fb_text("any news?", psid="3001"))
    assert list(hubspot.contacts) == [existing]
    assert hubspot.contacts[existing]["firstname"] == "Nora"


def test_the_kept_id_is_updated_without_searching_and_a_deleted_one_is_replaced(
        client, business, hubspot):
    _sync_workflow(client, business)
    post_webhook(client, "whatsapp", wa_text("first"))
    [first_id] = list(hubspot.contacts)
    hubspot.requests.clear()
    post_webhook(client, "whatsapp", wa_text("second"))
    assert hubspot.calls("POST", CONTACTS + "/search") == []
    assert [r.path for r in hubspot.calls("PATCH")] == [f"{CONTACTS}/{first_id}"]
    assert len(hubspot.notes) == 2 and list(hubspot.contacts) == [first_id]
    del hubspot.contacts[first_id]   # someone deleted it in HubSpot
    post_webhook(client, "whatsapp", wa_text("third"))
    [new_id] = list(hubspot.contacts)
    assert new_id != first_id
    from services.integration_actions import links_for
    assert links_for(business["user"]["id"], "contact", _contact_id(client, business)) == {
        "hubspot": {"id": new_id}}


def test_a_409_race_updates_the_existing_contact(client, business, hubspot):
    existing = hubspot.add_contact(email="late@example.com")
    post_webhook(client, "facebook", fb_text("hi", psid="3002"))
    client.patch(f"/api/contacts/{_contact_id(client, business)}", headers=business["headers"],
                 json={"email": "late@example.com"})
    # HubSpot's search index lags: the contact created a moment ago is not found yet
    hubspot.fail("POST /crm/v3/objects/contacts/search", status=200,
                 body={"total": 0, "results": []})
    _sync_workflow(client, business)
    post_webhook(client, "facebook", fb_text("again", psid="3002"))
    assert list(hubspot.contacts) == [existing]
    assert [r.path for r in hubspot.calls("PATCH")] == [f"{CONTACTS}/{existing}"]


def test_log_conversation_false_adds_no_note(client, business, hubspot):
    _sync_workflow(client, business, log_conversation=False)
    post_webhook(client, "whatsapp", wa_text("hello"))
    assert len(hubspot.contacts) == 1 and hubspot.notes == []


# ------------------------------------------------------------------ no duplicates

def test_a_retried_attempt_makes_no_second_contact(client, business, hubspot):
    """A Messenger customer has no e-mail or phone to search by: the contact made by the
    first attempt (whose note then hit a 429) is the one the retry uses."""
    hubspot.fail("POST /crm/v3/objects/notes", status=429, retry_after=0.001)
    _sync_workflow(client, business)
    post_webhook(client, "facebook", fb_text("hello", psid="3003"))
    assert len(hubspot.calls("POST", NOTES)) == 2
    assert len(hubspot.contacts) == 1 and len(hubspot.notes) == 1
    assert len(hubspot.calls("POST", CONTACTS, exact=True)) == 1
    assert _stored(client, business)["status"] == "active"


def test_a_rerun_of_the_same_message_changes_nothing(client, business, hubspot):
    from models_db import WebhookEvent, WorkflowRun, db
    from services.webhook_events import replay_event
    from utils.store import get_store

    _sync_workflow(client, business)
    post_webhook(client, "facebook", fb_text("hello", psid="3004"))
    assert len(hubspot.contacts) == 1 and len(hubspot.notes) == 1
    owner = business["user"]["id"]
    [conv] = conversations(client, business)
    [inbound] = [m for m in messages(client, business, conv["id"]) if m["direction"] == "inbound"]
    get_store().update_message(owner, inbound["id"], metadata={"automation": None})
    db.session.query(WorkflowRun).delete()
    db.session.commit()
    hubspot.requests.clear()
    replay_event(db.session.scalar(db.select(WebhookEvent.id)))
    assert hubspot.requests == []
    assert len(hubspot.contacts) == 1 and len(hubspot.notes) == 1


# ------------------------------------------------------------------------ failures

def test_401_at_run_time_is_visible_and_the_customer_is_answered(app, client, business,
                                                                 hubspot):
    from utils.realtime import socketio

    hubspot.tokens.clear()
    _sync_workflow(client, business)
    sock = socketio.test_client(app, auth={"token": business["access_token"]})
    post_webhook(client, "facebook", fb_text("hello", psid="3005"))
    [conv] = conversations(client, business)
    assert [m["status"] for m in messages(client, business, conv["id"])
            if m["direction"] == "outbound"] == ["sent"]
    assert len(hubspot.requests) == 1   # not retried
    stored = _stored(client, business)
    assert stored["status"] == "error" and "HTTP 401" in stored["last_error"]
    assert TOKEN not in stored["last_error"]
    errors = [e["args"][0] for e in sock.get_received() if e["name"] == "integration_error"]
    assert [e["type"] for e in errors] == ["hubspot"]
    sock.disconnect()


def test_500s_are_retried_then_recorded(client, business, hubspot):
    hubspot.fail("*", status=500, times=3)
    _sync_workflow(client, business)
    post_webhook(client, "facebook", fb_text("hello", psid="3006"))
    assert len(hubspot.requests) == 3   # INTEGRATION_RETRY_ATTEMPTS
    assert hubspot.contacts == {}
    stored = _stored(client, business)
    assert stored["status"] == "error" and "HTTP 500" in stored["last_error"]
    [conv] = conversations(client, business)
    assert any(m["status"] == "sent" for m in messages(client, business, conv["id"]))


def test_429_waits_for_retry_after_then_succeeds(client, business, hubspot):
    hubspot.fail("POST /crm/v3/objects/contacts", status=429, retry_after=0.001)
    _sync_workflow(client, business)
    post_webhook(client, "facebook", fb_text("hello", psid="3007"))
    assert len(hubspot.contacts) == 1 and len(hubspot.notes) == 1
    assert _stored(client, business)["status"] == "active"


def test_another_users_action_never_reaches_this_portal(client, business, hubspot):
    from automation.integrations.base import ActionRequest
    from services.integration_actions import submit_action
    from tests.integrations.conftest import user_on

    post_webhook(client, "whatsapp", wa_text("hi"))
    contact_id = _contact_id(client, business)
    other = user_on(client, "professional")
    # another user names this business's conversation and the hubspot type: not theirs
    with pytest.raises(LookupError, match="no 'hubspot' integration is configured"):
        submit_action(ActionRequest(owner_id=other["user"]["id"], action="crm_sync",
                                    idempotency_key="k1", conversation={"id": "x"},
                                    contact={"id": contact_id}), "hubspot")
    assert client.get(f"/api/contacts/{contact_id}",
                      headers=other["headers"]).status_code == 404
    assert hubspot.requests == []


def test_handoff_workflow_syncs_the_contact_once(client, business, hubspot):
    _sync_workflow(client, business, trigger="handoff")
    post_webhook(client, "facebook", fb_text(HUMAN, psid="3008"))
    assert len(hubspot.contacts) == 1 and len(hubspot.notes) == 1
    assert HUMAN in hubspot.notes[0]["properties"]["hs_note_body"]
    post_webhook(client, "facebook", fb_text("hello?", psid="3008"))   # task still open
    assert len(hubspot.notes) == 1
