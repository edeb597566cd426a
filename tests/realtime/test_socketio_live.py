"""A real python-socketio client against a live `python main.py`: who may connect (token and
browser origin), and who hears about a customer's message (inline automation, no Redis)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import jwt
import pytest
import socketio

from tests.fakes.graph import FakeGraph
from tests.realtime.conftest import (
    JWT_SECRET,
    QUESTION,
    Stack,
    api,
    business,
    conversations,
    fb_message,
    messages,
    post_webhook,
    register,
)


@pytest.fixture(scope="module")
def live(databases, tmp_path_factory):
    """One server for the module: the connect rules do not change between tests."""
    workdir = tmp_path_factory.mktemp("socketio-live")
    url = databases.new(workdir)
    graph = FakeGraph().start()
    stack = Stack(workdir, url, graph)
    try:
        stack.server("main", CORS_ORIGINS="https://app.example").wait_ready()
        yield stack
    finally:
        stack.close()
        graph.stop()
        databases.drop(url)


@pytest.fixture
def base_url(live) -> str:
    return live.procs[0].base_url


POLLING = ("polling",)


@pytest.mark.parametrize(("auth_token", "transports"), [(None, ("websocket",)), ("", POLLING)])
def test_missing_token_is_refused(base_url, listeners, auth_token, transports):
    error = listeners(base_url, auth_token, transports=transports).refused()
    assert error["data"]["code"] == "unauthorized"
    assert "token" in error["message"]


def test_garbage_token_is_refused(base_url, listeners):
    assert listeners(base_url, "not.a.jwt").refused()["data"]["code"] == "invalid_token"


def test_refresh_token_is_refused(base_url, listeners):
    user = register(base_url)
    error = listeners(base_url, user["refresh_token"]).refused()
    assert error["data"]["code"] == "invalid_token"
    listeners(base_url, user["access_token"]).connect()  # the pair's access token is fine


def test_revoked_token_is_refused(base_url, listeners):
    user = register(base_url)
    listeners(base_url, user["access_token"]).connect()
    with api(base_url) as c:
        assert c.post("/api/auth/logout", headers=user["headers"]).status_code == 200
    error = listeners(base_url, user["access_token"]).refused()
    assert error["data"]["code"] == "token_revoked"


def test_expired_token_is_refused(base_url, listeners):
    user = register(base_url)
    claims = jwt.decode(user["access_token"], options={"verify_signature": False})
    now = datetime.now(timezone.utc)
    expired = jwt.encode({**claims, "iat": now - timedelta(minutes=30),
                          "exp": now - timedelta(minutes=1)}, JWT_SECRET, algorithm="HS256")
    assert listeners(base_url, expired).refused()["data"]["code"] == "token_expired"
    # The same claims, not expired, connect: only the expiry made the difference.
    fresh = jwt.encode({**claims, "iat": now, "exp": now + timedelta(minutes=5)}, JWT_SECRET,
                       algorithm="HS256")
    listeners(base_url, fresh).connect()


@pytest.mark.parametrize("transports", [("websocket",), ("polling",)])
def test_valid_token_connects(base_url, listeners, transports):
    user = register(base_url)
    client = listeners(base_url, user["access_token"], transports=transports).connect()
    assert client.sio.connected and client.sio.transport() == transports[0]


def test_webhook_notifies_the_pages_owner_and_nobody_else(live, base_url, listeners):
    owner = business(base_url, live.graph, "Owner Shop")
    other = business(base_url, live.graph, "Other Shop")
    mine = listeners(base_url, owner["access_token"]).connect()
    theirs = listeners(base_url, other["access_token"]).connect()

    delivery = fb_message(owner["page_id"], QUESTION)
    resp = post_webhook(base_url, delivery)
    assert resp.status_code == 200, resp.text

    inbound = mine.wait_for("new_message", lambda d: d["message"]["direction"] == "inbound")
    sent_mid = delivery["entry"][0]["messaging"][0]["message"]["mid"]
    assert inbound["message"]["platform_message_id"] == sent_mid
    assert inbound["message"]["text"] == QUESTION
    [conv] = conversations(base_url, owner)
    assert inbound["conversation_id"] == conv["id"]
    # The message as the REST API shows it (fields that processing does not change later).
    [stored] = [m for m in messages(base_url, owner, conv["id"])
                if m["id"] == inbound["message"]["id"]]
    for field in (
        "id",
        "conversation_id",
        "direction",
        "sender_type",
        "text",
        "platform",
        "platform_message_id",
        "created_at",
        "attachments",
    ):
        assert inbound["message"][field] == stored[field], field

    # The automated hand-off notice: stored (new_message), then sent (message_status).
    reply = mine.wait_for("new_message", lambda d: d["message"]["direction"] == "outbound")
    mine.wait_for(
        "message_status",
        lambda d: d.get("message_id") == reply["message"]["id"] and d["status"] == "sent",
    )
    mine.wait_for("task_created", lambda d: d["conversation_id"] == conv["id"])
    assert len(live.replies()) >= 1
    time.sleep(0.3)  # everything this delivery causes has been emitted by now: nothing for B
    assert theirs.names() == []


def test_browser_origins_come_from_the_settings(base_url, listeners):
    user = register(base_url)
    allowed = listeners(
        base_url,
        user["access_token"],
        transports=POLLING,
        headers={"Origin": "https://app.example"},
    ).connect()
    assert allowed.sio.connected
    # The app's own origin needs no listing (a same-origin frontend), like the REST API.
    # (The WebSocket client of the other tests sends this origin by itself.)
    own = listeners(
        base_url, user["access_token"], transports=POLLING, headers={"Origin": base_url}
    ).connect()
    assert own.sio.connected
    other = listeners(
        base_url,
        user["access_token"],
        transports=POLLING,
        headers={"Origin": "https://evil.example"},
    )
    with pytest.raises(socketio.exceptions.ConnectionError):
        other.connect()
    assert not other.sio.connected
