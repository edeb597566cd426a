"""Salesforce through simple-salesforce against a loopback fake (HTTPS): the check, the Lead /
Contact upsert by external id (found / not found), the Task that logs the conversation, the
Case, no duplicate under retries, failures visible, and the token kept to Salesforce hosts.
"""
from __future__ import annotations

import pytest

from tests.channels.conftest import conversations, fb_text, messages, post_webhook, wa_text
from tests.fakes.salesforce import EXTERNAL_ID, TOKEN, FakeSalesforce
from tests.helpers import assert_error

HUMAN = "I want to talk to a human please"


@pytest.fixture
def fake_sf(tls, monkeypatch):
    server = FakeSalesforce(tls).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.ca_file)   # requests trusts the test CA
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(settings_overrides, fake_sf):
    return {**settings_overrides, "SALESFORCE_ALLOWED_HOSTS": ["127.0.0.1"],
            "SALESFORCE_API_VERSION": "61.0"}


def _config(fake, **changes) -> dict:
    return {"instance_url": fake.base_url, "access_token": TOKEN, **changes}


def _connect(client, user, config: dict):
    return client.post("/api/integrations", headers=user["headers"],
                       json={"type": "salesforce", "config": config})


@pytest.fixture
def salesforce(client, business, fake_sf):
    resp = _connect(client, business, _config(fake_sf))
    assert resp.status_code == 201, resp.get_json()
    fake_sf.requests.clear()
    return fake_sf


def _workflow(client, user, actions: list, trigger: str = "message_received") -> None:
    resp = client.post("/api/workflows", headers=user["headers"], json={
        "name": "to Salesforce", "definition": {"trigger": {"type": trigger},
                                                "actions": actions}})
    assert resp.status_code == 201, resp.get_json()


SYNC = [{"type": "send_text", "text": "Thanks, noted."}, {"type": "crm_sync"}]


def _stored(client, user) -> dict:
    return client.get("/api/integrations/salesforce", headers=user["headers"]).get_json()


def _contact_id(client, user) -> str:
    [conv] = conversations(client, user)
    return conv["contact"]["id"]


# ------------------------------------------------------------------------- check

def test_configuring_reads_the_limits_with_the_token(client, business, fake_sf):
    resp = _connect(client, business, _config(fake_sf))
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["config"]["access_token"] == "••••" + TOKEN[-4:]
    [call] = fake_sf.requests
    assert (call.method, call.path) == ("GET", "/services/data/v61.0/limits/")
    assert call.token == TOKEN


def test_a_refused_token_is_not_stored(client, business, fake_sf):
    resp = _connect(client, business, _config(fake_sf, access_token="00Dwrong!token-xyz"))
    message = assert_error(resp, 422, "integration_check_failed")["message"]
    assert "HTTP 401" in message and "INVALID_SESSION_ID" in message
    assert "00Dwrong" not in message
    assert client.get("/api/integrations", headers=business["headers"]).get_json()["items"] == []


def test_the_token_goes_to_salesforce_hosts_only(client, business, fake_sf, monkeypatch):
    from automation.integrations.business.salesforce import host_allowed

    # the default allow-list: a server of the attacker's (or an internal one) is refused
    # before anything is sent
    default = ["salesforce.com", "force.com"]
    assert host_allowed("https://acme.my.salesforce.com", default)
    assert host_allowed("https://acme--dev.sandbox.my.salesforce.com", default)
    assert not host_allowed("https://evil-salesforce.com", default)
    assert not host_allowed("https://salesforce.com.evil.example", default)
    assert not host_allowed("https://169.254.169.254", default)
    resp = _connect(client, business, {"instance_url": "https://localhost:1",
                                       "access_token": TOKEN})
    message = assert_error(resp, 422, "integration_check_failed")["message"]
    assert "Salesforce domain" in message
    assert fake_sf.requests == []
    for bad in ("http://acme.my.salesforce.com", "https://acme.my.salesforce.com/x?y=1",
                "https://user@acme.my.salesforce.com"):
        resp = _connect(client, business, {"instance_url": bad, "access_token": TOKEN})
        assert_error(resp, 400, "validation_error")


def test_a_wrong_external_id_field_is_reported_at_run_time(client, business, fake_sf):
    assert _connect(client, business, _config(fake_sf, external_id_field="Missing__c")) \
        .status_code == 201
    _workflow(client, business, SYNC)
    post_webhook(client, "facebook", fb_text("hello", psid="4000"))
    stored = _stored(client, business)
    assert stored["status"] == "error"
    assert "Provided external ID field does not exist" in stored["last_error"]


# ------------------------------------------------------------------------- upsert

def test_not_found_upserts_a_lead_by_dana_contact_id_and_logs_a_task(client, business,
                                                                     salesforce):
    from services.integration_actions import links_for

    _workflow(client, business, SYNC)
    post_webhook(client, "whatsapp", wa_text("Do you deliver on Sundays?"))
    contact_id = _contact_id(client, business)
    [(lead_id, lead)] = salesforce.records["Lead"].items()
    assert lead == {"FirstName": "Sheena", "LastName": "Nelson", "Phone": "+16505551234",
                    "Company": "Unknown", EXTERNAL_ID: contact_id}
    [upsert] = salesforce.calls("PATCH")
    assert upsert.path == f"/services/data/v61.0/sobjects/Lead/{EXTERNAL_ID}/{contact_id}"
    [(task_id, task)] = salesforce.records["Task"].items()
    assert task["WhoId"] == lead_id and task["Status"] == "Completed"
    assert task["Subject"] == "Conversation on Whatsapp (Dana)"
    assert "Customer: Do you deliver on Sundays?" in task["Description"]
    assert "Business: Thanks, noted." in task["Description"]
    assert f"/conversations/{conversations(client, business)[0]['id']}" in task["Description"]
    assert links_for(business["user"]["id"], "contact", contact_id) == {
        "salesforce": {"id": lead_id, "object": "Lead"}}
    assert _stored(client, business)["status"] == "active"


def test_found_by_external_id_is_updated_not_duplicated(client, business, salesforce):
    _workflow(client, business, SYNC)
    post_webhook(client, "whatsapp", wa_text("first"))
    [lead_id] = list(salesforce.records["Lead"])
    salesforce.records["Lead"][lead_id]["Company"] = "Nelson Bikes"   # edited by sales
    post_webhook(client, "whatsapp", wa_text("second"))
    assert list(salesforce.records["Lead"]) == [lead_id]
    assert salesforce.records["Lead"][lead_id]["Company"] == "Nelson Bikes"   # kept
    assert [r.path.rsplit("/", 1)[-1] for r in salesforce.calls("PATCH")][-1] == lead_id
    assert len(salesforce.records["Task"]) == 2


def test_a_contact_object_and_its_case(client, business, fake_sf):
    assert _connect(client, business, _config(fake_sf, object="Contact")).status_code == 201
    _workflow(client, business, [
        {"type": "crm_sync"},
        {"type": "create_ticket", "integration": "salesforce", "subject": "Help {{contact.name}}",
         "priority": "urgent"}], trigger="handoff")
    post_webhook(client, "whatsapp", wa_text(HUMAN))
    [(contact_sf_id, contact)] = fake_sf.records["Contact"].items()
    assert "Company" not in contact and contact["LastName"] == "Nelson"
    assert fake_sf.records["Lead"] == {}
    [(case_id, case)] = fake_sf.records["Case"].items()
    assert case["ContactId"] == contact_sf_id and case["Priority"] == "High"
    assert case["Subject"] == "Help Sheena Nelson" and case["Origin"] == "Web"
    assert HUMAN in case["Description"] and case["SuppliedPhone"] == "+16505551234"
    from services.integration_actions import links_for
    [task] = client.get("/api/tasks", headers=business["headers"]).get_json()["items"]
    assert links_for(business["user"]["id"], "task", task["id"]) == {
        "salesforce": {"id": case_id, "object": "Case"}}


@pytest.mark.parametrize("name, first, last", [
    ("Anna Maria Schmidt", "Anna Maria", "Schmidt"),   # as HubSpot splits it too
    ("Cher", None, "Cher"),                            # LastName is required
])
def test_a_display_name_is_split_before_its_last_word(client, business, salesforce,
                                                      name, first, last):
    _workflow(client, business, SYNC)
    post_webhook(client, "whatsapp", wa_text("hi", name=name))
    [lead] = salesforce.records["Lead"].values()
    assert (lead.get("FirstName"), lead["LastName"]) == (first, last)


def test_a_nameless_customer_gets_a_placeholder_last_name(client, business, salesforce):
    _workflow(client, business, SYNC)
    post_webhook(client, "facebook", fb_text("hi", psid="4001234567"))
    [lead] = salesforce.records["Lead"].values()
    assert lead["LastName"] == "Facebook customer 234567"


# ------------------------------------------------------------------ no duplicates

def test_a_retried_attempt_makes_no_second_lead_or_case(client, business, salesforce):
    """The Task after the Lead fails once: the retry upserts the same Lead (external id)."""
    salesforce.fail("POST /services/data/v61.0/sobjects/Task", status=503, retry_after=0.001)
    salesforce.fail("POST /services/data/v61.0/sobjects/Case", status=429, retry_after=0.001)
    _workflow(client, business, SYNC + [{"type": "create_ticket", "integration": "salesforce"}])
    post_webhook(client, "facebook", fb_text("hello", psid="4002"))
    assert len(salesforce.records["Lead"]) == 1 and len(salesforce.records["Task"]) == 1
    assert len(salesforce.records["Case"]) == 1
    assert len(salesforce.calls("POST", "/services/data/v61.0/sobjects/Case")) == 2
    assert _stored(client, business)["status"] == "active"


def test_a_rerun_of_the_same_message_changes_nothing(client, business, salesforce):
    from models_db import WebhookEvent, WorkflowRun, db
    from services.webhook_events import replay_event
    from utils.store import get_store

    _workflow(client, business, SYNC + [{"type": "create_ticket", "integration": "salesforce"}])
    post_webhook(client, "facebook", fb_text("hello", psid="4003"))
    owner = business["user"]["id"]
    [conv] = conversations(client, business)
    [inbound] = [m for m in messages(client, business, conv["id"]) if m["direction"] == "inbound"]
    get_store().update_message(owner, inbound["id"], metadata={"automation": None})
    db.session.query(WorkflowRun).delete()
    db.session.commit()
    salesforce.requests.clear()
    replay_event(db.session.scalar(db.select(WebhookEvent.id)))
    assert salesforce.requests == []
    assert [len(salesforce.records[o]) for o in ("Lead", "Task", "Case")] == [1, 1, 1]


# ------------------------------------------------------------------------ failures

def test_401_at_run_time_is_visible_and_the_customer_is_answered(app, client, business,
                                                                 salesforce):
    from utils.realtime import socketio

    salesforce.tokens.clear()   # the access token expired
    _workflow(client, business, SYNC)
    sock = socketio.test_client(app, auth={"token": business["access_token"]})
    post_webhook(client, "facebook", fb_text("hello", psid="4004"))
    [conv] = conversations(client, business)
    assert [m["status"] for m in messages(client, business, conv["id"])
            if m["direction"] == "outbound"] == ["sent"]
    assert len(salesforce.requests) == 1
    stored = _stored(client, business)
    assert stored["status"] == "error" and "HTTP 401" in stored["last_error"]
    assert "INVALID_SESSION_ID" in stored["last_error"] and TOKEN not in stored["last_error"]
    assert [e["args"][0]["type"] for e in sock.get_received()
            if e["name"] == "integration_error"] == ["salesforce"]
    sock.disconnect()


def test_500s_are_retried_then_recorded(client, business, salesforce):
    salesforce.fail("*", status=500, times=3)
    _workflow(client, business, SYNC)
    post_webhook(client, "facebook", fb_text("hello", psid="4005"))
    assert len(salesforce.requests) == 3 and salesforce.records["Lead"] == {}
    stored = _stored(client, business)
    assert stored["status"] == "error" and "HTTP 500" in stored["last_error"]


def test_the_daily_api_limit_is_retried_not_fatal(client, business, salesforce):
    salesforce.fail("*", status=403)   # REQUEST_LIMIT_EXCEEDED
    _workflow(client, business, SYNC)
    post_webhook(client, "facebook", fb_text("hello", psid="4006"))
    assert len(salesforce.records["Lead"]) == 1
    assert _stored(client, business)["status"] == "active"
