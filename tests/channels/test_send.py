"""Agent replies through the Send API: window, error mapping, reauth, AI pause."""
from __future__ import annotations

import pytest

from tests.channels.conftest import conversations, fb_text, now_ms, post_webhook
from tests.fakes.graph import Reply, graph_error, sample


@pytest.fixture
def conv(client, business, fake_graph):
    post_webhook(client, "facebook", fb_text("Hello"))
    fake_graph.requests.clear()
    [c] = conversations(client, business)
    return c


def _send(client, business, conv, **body):
    resp = client.post(f"/api/conversations/{conv['id']}/messages", json={"text": "Hi!", **body},
                       headers=business["headers"])
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_agent_reply_sent_and_pauses_ai(client, business, conv, fake_graph):
    msg = _send(client, business, conv)
    assert msg["status"] == "sent" and msg["sender_type"] == "agent"
    assert msg["platform_message_id"].startswith("m_")
    [req] = fake_graph.requests_to("/me/messages")
    assert req.json["messaging_type"] == "RESPONSE" and req.json["message"]["text"] == "Hi!"
    assert req.json["recipient"]["id"] == conv["contact"]["platform_user_id"]
    got = client.get(f"/api/conversations/{conv['id']}", headers=business["headers"]).get_json()
    assert got["ai_enabled"] is False


def test_agent_reply_can_leave_ai_on(client, business, conv):
    client.patch(
        f"/api/conversations/{conv['id']}", json={"ai_enabled": True}, headers=business["headers"]
    )
    _send(client, business, conv, pause_ai=False)
    got = client.get(f"/api/conversations/{conv['id']}", headers=business["headers"]).get_json()
    assert got["ai_enabled"] is True


def test_outside_window_fails_without_calling_graph(client, business, fake_graph):
    old = now_ms(-25 * 3600)
    post_webhook(client, "facebook", fb_text("old question", ts=old))
    fake_graph.requests.clear()
    [c] = conversations(client, business)
    msg = _send(client, business, c)
    assert msg["status"] == "failed" and msg["error"] == "outside_window"
    assert fake_graph.requests == []
    tagged = _send(client, business, c, tag="HUMAN_AGENT")
    assert tagged["status"] == "sent"
    [req] = fake_graph.requests_to("/me/messages")
    assert req.json["messaging_type"] == "MESSAGE_TAG" and req.json["tag"] == "HUMAN_AGENT"


def test_platform_says_outside_window_not_retried(client, business, conv, fake_graph):
    fake_graph.queue(
        "/me/messages", Reply(400, sample("sendapi_messenger_error_outside_window.json"))
    )
    msg = _send(client, business, conv)
    assert msg["status"] == "failed" and msg["error"] == "outside_window"
    assert len(fake_graph.requests_to("/me/messages")) == 1


def test_rate_limit_retried_then_sent(client, business, conv, fake_graph):
    fake_graph.queue(
        "/me/messages", Reply.error(613, status=400), Reply.error(4, status=500), Reply()
    )
    msg = _send(client, business, conv)
    assert msg["status"] == "sent"
    assert len(fake_graph.requests_to("/me/messages")) == 3


def test_invalid_token_marks_account_needs_reauth(app, client, business, conv, fake_graph):
    from utils.realtime import socketio

    sock = socketio.test_client(app, auth={"token": business["access_token"]})
    assert sock.is_connected()
    fake_graph.queue("/me/messages", Reply(401, graph_error(190, "Error validating access token")))
    msg = _send(client, business, conv)
    assert msg["status"] == "failed" and msg["error"] == "token_invalid"
    assert len(fake_graph.requests_to("/me/messages")) == 1
    accounts = {
        a["platform"]: a
        for a in client.get("/api/platforms", headers=business["headers"]).get_json()["items"]
    }
    assert accounts["facebook"]["status"] == "needs_reauth"
    events = [e for e in sock.get_received() if e["name"] == "integration_error"]
    assert events and events[0]["args"][0]["platform_account_id"] == accounts["facebook"]["id"]
    # further sends fail fast without calling Graph until the account is re-authorized
    again = _send(client, business, conv)
    assert again["error"] == "token_invalid" and len(fake_graph.requests_to("/me/messages")) == 1
    sock.disconnect()


def test_other_users_conversation_is_404(client, business, conv, other_user):
    resp = client.post(
        f"/api/conversations/{conv['id']}/messages",
        json={"text": "x"},
        headers=other_user["headers"],
    )
    assert resp.status_code == 404


def test_new_message_event_reaches_only_the_owner(app, client, business, other_user, fake_graph):
    from utils.realtime import socketio

    mine = socketio.test_client(app, auth={"token": business["access_token"]})
    theirs = socketio.test_client(app, auth={"token": other_user["access_token"]})
    post_webhook(client, "facebook", fb_text("ping"))
    got = [e for e in mine.get_received() if e["name"] == "new_message"]
    assert got and got[0]["args"][0]["message"]["text"] == "ping"
    assert got[0]["args"][0]["conversation_id"] == conversations(client, business)[0]["id"]
    assert [e for e in theirs.get_received() if e["name"] == "new_message"] == []
    mine.disconnect()
    theirs.disconnect()


def test_instagram_login_accounts_use_their_own_graph_host(app, client, business, fake_graph):
    """INSTAGRAM_GRAPH_API_URL (graph.instagram.com in production) serves Instagram replies."""
    from tests.channels.conftest import IG_ID
    from tests.fakes.graph import FakeGraph

    instagram_graph = FakeGraph().start()
    try:
        app.config["DANA_SETTINGS"].INSTAGRAM_GRAPH_API_URL = instagram_graph.base_url
        app.extensions.pop("dana_connectors", None)
        post_webhook(client, "instagram", fb_text("hi", psid="4455", page=IG_ID, obj="instagram"))
        conv = [c for c in conversations(client, business) if c["platform"] == "instagram"][0]
        msg = _send(client, business, conv)
        assert msg["status"] == "sent"
        # the automated greeting and the agent's reply both went to the Instagram host
        assert len(instagram_graph.requests_to("/me/messages")) == 2
        assert fake_graph.requests == []
    finally:
        instagram_graph.stop()


def test_whatsapp_template_outside_the_window(client, business, fake_graph):
    import time as _time

    from tests.channels.conftest import PHONE_ID, wa_text

    post_webhook(client, "whatsapp", wa_text("old question", ts=_time.time() - 26 * 3600))
    fake_graph.requests.clear()
    [c] = [c for c in conversations(client, business) if c["platform"] == "whatsapp"]
    plain = _send(client, business, c)
    assert plain["status"] == "failed" and plain["error"] == "outside_window"
    resp = client.post(
        f"/api/conversations/{c['id']}/messages",
        headers=business["headers"],
        json={
            "template": {
                "name": "order_update",
                "language": "en_US",
                "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": "A-1042"}]}
                ],
            }
        },
    )
    assert resp.status_code == 201
    msg = resp.get_json()
    assert msg["status"] == "sent" and msg["text"] == "[template order_update]"
    [req] = fake_graph.requests_to(f"/{PHONE_ID}/messages")
    assert req.json["type"] == "template"
    assert req.json["template"]["name"] == "order_update"
    assert req.json["template"]["language"] == {"code": "en_US"}
    assert req.json["template"]["components"][0]["parameters"][0]["text"] == "A-1042"


def test_template_refused_on_messenger_and_body_validated(client, business, conv):
    resp = client.post(
        f"/api/conversations/{conv['id']}/messages",
        headers=business["headers"],
        json={"template": {"name": "order_update"}},
    )
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "template_not_supported"
    empty = client.post(
        f"/api/conversations/{conv['id']}/messages", headers=business["headers"], json={}
    )
    assert empty.status_code == 400 and empty.get_json()["error"]["code"] == "validation_error"
    bad = client.post(
        f"/api/conversations/{conv['id']}/messages",
        headers=business["headers"],
        json={"template": {"name": "Order Update!"}},
    )
    assert bad.status_code == 400
    assert bad.get_json()["error"]["details"][0]["field"] == "template.name"
