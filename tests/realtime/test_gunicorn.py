"""The production web server: `gunicorn -c gunicorn.conf.py main:app` (one gthread worker)
serves the API and Socket.IO over WebSocket, and logs each request with its request id."""
from __future__ import annotations

from tests.realtime.conftest import (
    QUESTION,
    api,
    business,
    fb_message,
    post_webhook,
    register,
    wait_until,
)


def test_gunicorn_serves_http_and_socketio_websockets(make_stack, listeners):
    stack = make_stack()
    server = stack.server("gunicorn", gunicorn=True, GUNICORN_THREADS="16").wait_ready()

    with api(server.base_url) as c:
        resp = c.get("/health", headers={"X-Request-ID": "probe-0001"})
    assert resp.status_code == 200 and resp.json()["status"] == "ok"
    assert resp.headers["X-Request-ID"] == "probe-0001"
    wait_until(
        lambda: 'GET /health HTTP/1.1" 200' in server.log() and "rid=probe-0001" in server.log(),
        10,
        "the access log line with the request id",
    )
    assert "Using worker: gthread" in server.log()

    # A real client over the WebSocket transport (no long-polling first) and over polling.
    user = register(server.base_url)
    ws = listeners(server.base_url, user["access_token"], transports=("websocket",)).connect()
    assert ws.sio.transport() == "websocket"
    polling = listeners(server.base_url, user["access_token"], transports=("polling",)).connect()
    assert polling.sio.transport() == "polling"
    assert (
        listeners(server.base_url, user["refresh_token"]).refused()["data"]["code"]
        == "invalid_token"
    )


def test_gunicorn_processes_webhooks_after_the_response_and_notifies(make_stack, listeners):
    stack = make_stack()
    server = stack.server("gunicorn", gunicorn=True).wait_ready()
    owner = business(server.base_url, stack.graph)
    client = listeners(server.base_url, owner["access_token"]).connect()
    assert post_webhook(server.base_url, fb_message(owner["page_id"], QUESTION)).status_code == 200
    client.wait_for("new_message", lambda d: d["message"]["direction"] == "inbound")
    client.wait_for("message_status", lambda d: d.get("status") == "sent")
    assert len(stack.replies()) == 1
