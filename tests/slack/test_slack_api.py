"""/api/integrations for Slack and /api/slack/*, through slack-sdk against the Slack fake."""
from __future__ import annotations

import pytest

from tests.channels.conftest import fb_text, post_webhook, set_plan
from tests.conftest import auth_header, register
from tests.fakes.slack import BOT_TOKEN, CHANNEL_ID
from tests.helpers import assert_error
from tests.slack.conftest import connect_slack


def test_bad_token_is_refused_and_not_stored(client, business, fake_slack):
    resp = connect_slack(client, business, token="xoxb-0000-revoked-token")
    assert resp.status_code == 422
    body = resp.get_json()["error"]
    assert body["code"] == "integration_check_failed" and "invalid_auth" in body["message"]
    assert fake_slack.api_calls("auth.test")[0].token == "xoxb-0000-revoked-token"
    assert client.get("/api/integrations/slack", headers=business["headers"]).status_code == 404
    assert client.get("/api/slack/health", headers=business["headers"]).get_json()["status"] \
        == "not_configured"


def test_uninvited_bot_is_refused_with_a_hint(client, business, fake_slack):
    fake_slack.add_workspace("xoxb-7-7-lonely", "T7", "U7BOT", "B7", [])
    resp = connect_slack(client, business, token="xoxb-7-7-lonely")
    assert resp.status_code == 422 and "invite" in resp.get_json()["error"]["message"]


def test_bad_fields_are_named(client, business):
    resp = client.post("/api/integrations", headers=business["headers"], json={
        "type": "slack", "config": {"bot_token": "not-a-slack-token", "channel_id": "general"}})
    assert resp.status_code == 400
    fields = {d["field"] for d in resp.get_json()["error"]["details"]}
    assert {"config.bot_token", "config.channel_id"} <= fields


def test_connected_slack_health_post_history_thread(client, slack_business, fake_slack):
    h = slack_business["headers"]
    stored = client.get("/api/integrations/slack", headers=h).get_json()
    assert stored["status"] == "active" and stored["config"]["bot_token"] == "••••" + BOT_TOKEN[-4:]
    health = client.get("/api/slack/health", headers=h).get_json()
    assert health["status"] == "ok" and health["source"] == "integration"
    assert health["channel_id"] == CHANNEL_ID

    resp = client.post("/api/slack/messages", headers=h, json={
        "text": "Hello team", "blocks": [{"type": "section",
                                           "text": {"type": "mrkdwn", "text": "*Hello* team"}}]})
    assert resp.status_code == 201
    parent = resp.get_json()
    assert parent["channel"] == CHANNEL_ID and parent["ts"]
    reply = client.post("/api/slack/messages", headers=h,
                        json={"text": "in the thread", "thread_ts": parent["ts"]})
    assert reply.status_code == 201
    posted = fake_slack.api_calls("chat.postMessage")[0].body
    assert posted["blocks"][0]["text"]["text"] == "*Hello* team"

    listed = client.get("/api/slack/messages?limit=5", headers=h).get_json()
    assert listed["items"] == [{"ts": parent["ts"], "user": "U0DANABOT", "text": "Hello team",
                                "thread_ts": parent["ts"], "reply_count": 1}]
    assert listed["next_cursor"] is None
    thread = client.get(f"/api/slack/threads/{parent['ts']}", headers=h).get_json()
    assert [m["text"] for m in thread["items"]] == ["Hello team", "in the thread"]


def test_history_pages_with_a_cursor(client, slack_business, fake_slack):
    for i in range(3):
        fake_slack.add_message(CHANNEL_ID, "U0HUMAN", f"note {i}")
    h = slack_business["headers"]
    first = client.get("/api/slack/messages?limit=2", headers=h).get_json()
    rest = client.get(f"/api/slack/messages?limit=2&cursor={first['next_cursor']}",
                      headers=h).get_json()
    assert [m["text"] for m in first["items"] + rest["items"]] == ["note 2", "note 1", "note 0"]


def test_user_without_slack(client, user, fake_slack):
    assert client.get("/api/slack/health", headers=user["headers"]).get_json() == {
        "status": "not_configured", "source": None, "channel_id": None,
        "detail": "connect Slack with POST /api/integrations (type slack)", "checked_at": None}
    for resp in (client.get("/api/slack/messages", headers=user["headers"]),
                 client.post("/api/slack/messages", json={"text": "x"}, headers=user["headers"]),
                 client.get("/api/slack/threads/1712345678.000100", headers=user["headers"])):
        assert_error(resp, 409, "slack_not_configured")
    assert fake_slack.requests == []


@pytest.mark.parametrize("settings_overrides", [
    {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_CHANNEL_ID": CHANNEL_ID}], indirect=True)
def test_admin_falls_back_to_server_slack_but_a_user_does_not(client, admin, user, fake_slack):
    health = client.get("/api/slack/health", headers=admin["headers"]).get_json()
    assert health["status"] == "ok" and health["source"] == "server"
    assert client.post("/api/slack/messages", json={"text": "ops"},
                       headers=admin["headers"]).status_code == 201
    assert client.get("/api/slack/health", headers=user["headers"]).get_json()["status"] \
        == "not_configured"
    assert_error(client.post("/api/slack/messages", json={"text": "x"}, headers=user["headers"]),
                 409, "slack_not_configured")


def test_slack_down_shows_error(app, client, slack_business, fake_slack):
    from utils.realtime import socketio
    sock = socketio.test_client(app, auth={"token": slack_business["access_token"]})
    fake_slack.fail("*", status=500, times=10)
    assert_error(client.post("/api/slack/messages", json={"text": "x"},
                             headers=slack_business["headers"]), 502, "slack_error")
    assert len(fake_slack.api_calls("chat.postMessage")) == 2      # INTEGRATION_RETRY_ATTEMPTS
    assert [e for e in sock.get_received() if e["name"] == "integration_error"]
    sock.disconnect()
    health = client.get("/api/slack/health", headers=slack_business["headers"]).get_json()
    assert health["status"] == "error" and "internal_error" in health["detail"]
    assert client.get("/api/integrations/slack",
                      headers=slack_business["headers"]).get_json()["status"] == "error"
    assert_error(client.get("/api/slack/messages", headers=slack_business["headers"]),
                 502, "slack_error")


def test_another_users_thread_cannot_be_read_or_posted_into(client, slack_business, fake_graph,
                                                            fake_slack):
    # the business's conversation gets its Slack thread
    post_webhook(client, "facebook", fb_text("I want to speak to a human please"))
    listed = client.get("/api/slack/messages", headers=slack_business["headers"]).get_json()
    [parent] = listed["items"]
    # another business connected to the same Slack channel (same workspace)
    other = register(client)
    other["headers"] = auth_header(other)
    set_plan(other["user"]["id"], "professional")
    assert connect_slack(client, other).status_code == 201
    before = len(fake_slack.api_calls("chat.postMessage"))
    assert_error(client.post("/api/slack/messages", headers=other["headers"],
                             json={"text": "hijack", "thread_ts": parent["ts"]}),
                 404, "thread_not_found")
    assert_error(client.get(f"/api/slack/threads/{parent['ts']}", headers=other["headers"]),
                 404, "thread_not_found")
    assert len(fake_slack.api_calls("chat.postMessage")) == before
    # the owner can
    assert client.post("/api/slack/messages", headers=slack_business["headers"],
                       json={"text": "mine", "thread_ts": parent["ts"]}).status_code == 201


def test_thread_ts_is_validated(client, slack_business):
    assert_error(client.get("/api/slack/threads/not-a-ts", headers=slack_business["headers"]),
                 404, "thread_not_found")
    resp = client.post("/api/slack/messages", headers=slack_business["headers"],
                       json={"text": "x", "thread_ts": "abc"})
    assert resp.status_code == 400


def test_unknown_thread_is_404(client, slack_business):
    assert_error(client.get("/api/slack/threads/1111111111.000001",
                            headers=slack_business["headers"]), 404, "thread_not_found")


def test_secrets_appear_in_no_log(client, business, fake_slack, caplog):
    import logging

    from tests.slack.conftest import SIGNING_SECRET
    caplog.set_level(logging.DEBUG)
    assert connect_slack(client, business).status_code == 201
    client.post("/api/slack/messages", json={"text": "hi"}, headers=business["headers"])
    fake_slack.fail("*", status=500, times=5)
    client.get("/api/slack/health", headers=business["headers"])
    assert "slack" in caplog.text.lower()          # the client did log its requests
    assert BOT_TOKEN not in caplog.text and SIGNING_SECRET not in caplog.text
