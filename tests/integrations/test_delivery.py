"""Run time: hand-offs and `notify` actions e-mailed after the customer's answer; failures
visible (status error + integration_error) and never in the way of the customer's reply."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import ClassVar

import pytest

from automation.integrations.base import IntegrationConnector, IntegrationError, Notification
from automation.integrations.catalogue import HubSpotConfig
from tests.channels.conftest import conversations, fb_text, messages, post_webhook
from tests.integrations.conftest import LOGIN, email_config

HUMAN = "I want to talk to a human please"


def _connect_email(client, user, server, **changes) -> dict:
    resp = client.post("/api/integrations", headers=user["headers"],
                       json={"type": "email", "config": email_config(server, **changes)})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _customer_got_handoff_notice(client, business) -> bool:
    [conv] = conversations(client, business)
    return any(m["sender_type"] == "system" and m["status"] == "sent"
               for m in messages(client, business, conv["id"]))


def test_handoff_is_emailed_to_the_team_with_both_parts_and_reply_to(client, business, smtp,
                                                                       fake_graph):
    _connect_email(client, business, smtp)
    post_webhook(client, "facebook", fb_text("Hello there", psid="1001"))
    assert smtp.messages == []  # a new conversation or a message is not e-mailed: hand-offs are
    post_webhook(client, "facebook", fb_text(HUMAN, psid="1001"))
    assert _customer_got_handoff_notice(client, business)
    [mail] = smtp.messages
    [task] = client.get("/api/tasks", headers=business["headers"]).get_json()["items"]
    [conv] = conversations(client, business)
    assert mail.login == LOGIN and mail.mail_from == "dana@shop.example.com"
    assert sorted(mail.rcpt_tos) == ["owner@shop.example.com", "team@shop.example.com"]
    msg = mail.message
    assert msg["Subject"] == task["title"]
    assert msg["Reply-To"] == "team@shop.example.com, owner@shop.example.com"
    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert HUMAN in plain and f"/conversations/{conv['id']}" in plain
    assert HUMAN in html and f'href="http://127.0.0.1:5000/conversations/{conv["id"]}"' in html
    stored = client.get("/api/integrations/email", headers=business["headers"]).get_json()
    assert stored["status"] == "active"


def test_reply_to_setting_is_used(client, business, smtp):
    _connect_email(client, business, smtp, reply_to="agents@shop.example.com")
    post_webhook(client, "facebook", fb_text(HUMAN))
    [mail] = smtp.messages
    assert mail.message["Reply-To"] == "agents@shop.example.com"


def test_html_part_escapes_the_customers_text(client, business, smtp):
    _connect_email(client, business, smtp)
    post_webhook(client, "facebook", fb_text("<script>alert(1)</script> I need a human"))
    html = smtp.messages[0].message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_refused_login_at_run_time_customer_still_answered_and_error_visible(
        app, client, business, smtp, fake_graph):
    from utils.realtime import socketio

    _connect_email(client, business, smtp)
    smtp.users[LOGIN] = "changed-on-the-server"
    sock = socketio.test_client(app, auth={"token": business["access_token"]})
    post_webhook(client, "facebook", fb_text(HUMAN))
    assert _customer_got_handoff_notice(client, business)   # the reply went out regardless
    assert smtp.messages == []
    stored = client.get("/api/integrations/email", headers=business["headers"]).get_json()
    assert stored["status"] == "error" and "535" in stored["last_error"]
    # an authentication failure is permanent: one login attempt (smtplib tries 2 mechanisms)
    assert 1 <= len([s for s in smtp.logins[1:]]) <= 2
    events = [e["args"][0] for e in sock.get_received() if e["name"] == "integration_error"]
    assert events == [{"kind": "integration", "type": "email", "status": "error",
                       "error": "integration_failed", "message": stored["last_error"]}]
    sock.disconnect()
    # the hand-off task exists for the dashboard
    assert len(client.get("/api/tasks", headers=business["headers"]).get_json()["items"]) == 1


def test_server_dropping_connections_is_retried_then_recorded(client, business, smtp, hangup,
                                                                fake_graph):
    from models_db import Integration, db

    _connect_email(client, business, smtp)
    row = db.session.scalar(db.select(Integration))
    row.config = dict(row.config, smtp_port=hangup.port)   # the server now hangs up on us
    db.session.commit()
    post_webhook(client, "facebook", fb_text(HUMAN))
    assert _customer_got_handoff_notice(client, business)
    assert hangup.connections == 3   # INTEGRATION_RETRY_ATTEMPTS: a transient failure
    stored = client.get("/api/integrations/email", headers=business["headers"]).get_json()
    assert stored["status"] == "error" and "closed the connection" in stored["last_error"]


def test_recovery_sets_the_status_back_to_active(client, business, smtp):
    _connect_email(client, business, smtp)
    smtp.users[LOGIN] = "rotated"
    post_webhook(client, "facebook", fb_text(HUMAN, psid="1"))
    assert client.get("/api/integrations/email",
                      headers=business["headers"]).get_json()["status"] == "error"
    smtp.users[LOGIN] = email_config(smtp)["password"]
    post_webhook(client, "facebook", fb_text(HUMAN, psid="2"))
    stored = client.get("/api/integrations/email", headers=business["headers"]).get_json()
    assert stored["status"] == "active" and stored["last_error"] is None
    assert len(smtp.messages) == 1


def test_disabled_integration_is_not_used(client, business, smtp):
    config = _connect_email(client, business, smtp)["config"]
    client.post("/api/integrations", headers=business["headers"],
                json={"type": "email", "config": config, "enabled": False})
    post_webhook(client, "facebook", fb_text(HUMAN))
    assert smtp.messages == []


def test_notify_action_renders_template_title_and_target(client, business, smtp):
    _connect_email(client, business, smtp)
    resp = client.post("/api/workflows", headers=business["headers"], json={
        "name": "VIP", "definition": {
            "trigger": {"type": "message_received"},
            "conditions": [{"type": "keywords", "any": ["refund"]}],
            "actions": [{"type": "notify", "channel": "email",
                         "title": "Refund asked by {{contact.first_name}}",
                         "template": "{{contact.name}} on {{conversation.platform}} wrote: "
                                     "{{message.text}}",
                         "target": "billing@shop.example.com"}]}})
    assert resp.status_code == 201, resp.get_json()
    post_webhook(client, "facebook", fb_text("I want a refund for order 42"))
    [mail] = smtp.messages
    assert mail.rcpt_tos == ["billing@shop.example.com"]
    assert mail.message["Subject"] == "Refund asked by"  # the fake contact has no name
    assert "on facebook wrote: I want a refund for order 42" in \
        mail.message.get_body(("plain",)).get_content()
    run = [r for r in client.get("/api/workflows/runs", headers=business["headers"])
           .get_json()["items"] if r["matched"]][0]
    assert run["actions"][0]["status"] == "queued" and run["actions"][0]["channel"] == "email"


def test_notify_to_an_unconfigured_integration_fails_the_action(client, business, smtp):
    client.post("/api/workflows", headers=business["headers"], json={
        "name": "n", "definition": {"trigger": {"type": "message_received"},
                                    "actions": [{"type": "notify", "channel": "email",
                                                 "template": "x"}]}})
    post_webhook(client, "facebook", fb_text("hello"))
    run = [r for r in client.get("/api/workflows/runs", headers=business["headers"])
           .get_json()["items"] if r["matched"]][0]
    assert run["status"] == "failed" and "no 'email' integration" in run["error"]


def test_daily_digest_lists_open_handoffs(app, client, business, smtp):
    _connect_email(client, business, smtp)
    post_webhook(client, "facebook", fb_text(HUMAN))
    smtp.messages.clear()
    result = app.test_cli_runner().invoke(args=["integrations", "digest"])
    assert result.exit_code == 0, result.output
    assert "1 digest(s)" in result.output
    [mail] = smtp.messages
    [task] = client.get("/api/tasks", headers=business["headers"]).get_json()["items"]
    assert mail.message["Subject"] == "Dana daily digest: 1 open hand-off(s)"
    plain = mail.message.get_body(("plain",)).get_content()
    assert task["title"] in plain and f"/conversations/{task['conversation_id']}" in plain
    assert mail.message.get_body(("html",)) is not None


def test_digest_counts_yesterday(app, business, smtp, client):
    from services.integrations import digest_for

    _connect_email(client, business, smtp)
    post_webhook(client, "facebook", fb_text(HUMAN))
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    digest = digest_for(business["user"]["id"], tomorrow)
    assert "1 new conversation(s), 1 of them still waiting" in digest.text
    assert "0 new conversation(s)" in digest_for(business["user"]["id"]).text


# ------------------------------------------------------------- retries (a test connector)

class FlakyConnector(IntegrationConnector):
    """A connector script: fails as told, then succeeds (test double of a remote service)."""

    type, name, category = "hubspot", "Flaky", "crm"
    config_model = HubSpotConfig
    secret_fields = frozenset({"access_token"})
    operations = frozenset({"notify"})
    script: ClassVar[list] = []
    calls: ClassVar[list] = []

    def check(self) -> str:
        return "ok"

    def notify(self, notification: Notification) -> dict:
        if notification.kind == "business_message":  # the business's replies: not followed
            return {"status": "skipped"}
        FlakyConnector.calls.append(notification.kind)
        if FlakyConnector.script:
            raise FlakyConnector.script.pop(0)
        return {"status": "sent", "thread_ts": "1700000000.000100", "channel": "C1"}


@pytest.fixture
def flaky(monkeypatch, business, client):
    from automation import registry
    from services import integrations

    monkeypatch.setitem(registry.INTEGRATIONS, "hubspot", FlakyConnector)
    FlakyConnector.script, FlakyConnector.calls = [], []
    resp = client.post("/api/integrations", headers=business["headers"], json={
        "type": "hubspot", "config": {"access_token": "pat-na1-secret-token"}})
    assert resp.status_code == 201, resp.get_json()
    assert integrations.INTEGRATIONS is registry.INTEGRATIONS
    return FlakyConnector


def test_retry_after_is_honoured_then_delivered(client, business, flaky):
    flaky.script = [IntegrationError("429 slow down", retry_after=0.001),
                    IntegrationError("503", retry_after=5.0)]  # capped by the max wait
    post_webhook(client, "facebook", fb_text("hi"))
    assert flaky.calls == ["new_conversation"] * 3
    assert client.get("/api/integrations/hubspot",
                      headers=business["headers"]).get_json()["status"] == "active"


def test_permanent_error_is_not_retried(client, business, flaky):
    flaky.script = [IntegrationError("401 invalid_auth", permanent=True)]
    post_webhook(client, "facebook", fb_text("hi"))
    assert flaky.calls == ["new_conversation"]
    stored = client.get("/api/integrations/hubspot", headers=business["headers"]).get_json()
    assert stored["status"] == "error" and stored["last_error"] == "401 invalid_auth"


def test_thread_ref_is_kept_and_customer_messages_follow(client, business, flaky):
    from services.integrations import conversation_ref, find_conversation_by_ref

    post_webhook(client, "facebook", fb_text("first"))
    post_webhook(client, "facebook", fb_text("second"))
    [conv] = conversations(client, business)
    owner = business["user"]["id"]
    # no knowledge: the AI hands the first message off; the hand-off goes to the thread too
    assert flaky.calls == ["new_conversation", "handoff", "customer_message"]
    assert conversation_ref(owner, conv["id"], "hubspot") == {
        "thread_ts": "1700000000.000100", "channel": "C1"}
    assert find_conversation_by_ref("hubspot", "1700000000.000100") == (
        owner, conv["id"], {"thread_ts": "1700000000.000100", "channel": "C1"})
    assert find_conversation_by_ref("hubspot", "1700000000.000100", owner_id="someone-else") \
        is None


def test_customer_text_cannot_inject_mail_headers(client, business, smtp):
    _connect_email(client, business, smtp)
    client.post("/api/workflows", headers=business["headers"], json={
        "name": "echo", "definition": {"trigger": {"type": "message_received"},
                                       "actions": [{"type": "notify", "channel": "email",
                                                    "title": "Re: {{message.text}}",
                                                    "template": "{{message.text}}"}]}})
    post_webhook(client, "facebook", fb_text("hello\r\nBcc: thief@evil.example\r\n\r\nbody"))
    [mail] = smtp.messages
    assert mail.rcpt_tos == ["team@shop.example.com", "owner@shop.example.com"]
    assert mail.message["Bcc"] is None
    assert mail.message["Subject"] == "Re: hello Bcc: thief@evil.example body"
