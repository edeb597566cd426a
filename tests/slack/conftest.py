"""Fixtures for the Slack tests: the Slack Web API fake, a connected workspace, signed requests.

The channel tests' fixtures (fake Graph, a business with connected accounts, signed Meta
webhooks) are reused so the round trip customer -> Slack -> customer runs end to end.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest

from tests.channels.conftest import business, fake_graph  # noqa: F401  (fixtures)
from tests.fakes.slack import BOT_TOKEN, CHANNEL_ID, TEAM_ID, FakeSlack

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SERVER_SECRET = "server0secret0for0the0default0app"


@pytest.fixture
def fake_slack():
    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(fake_graph, fake_slack, request):  # noqa: F811
    """Graph and Slack pointed at the fakes; tiny retry waits; overridable per test."""
    base = {"GRAPH_API_URL": fake_graph.base_url, "GRAPH_RETRY_WAIT_SECONDS": 0.001,
            "GRAPH_RETRY_ATTEMPTS": 3, "GRAPH_TIMEOUT_SECONDS": 3.0,
            "SLACK_API_URL": fake_slack.base_url, "SLACK_SIGNING_SECRET": SERVER_SECRET,
            "INTEGRATION_RETRY_ATTEMPTS": 2, "INTEGRATION_RETRY_WAIT_SECONDS": 0.001,
            "INTEGRATION_RETRY_MAX_WAIT_SECONDS": 0.01}
    base.update(getattr(request, "param", {}))
    return base


def connect_slack(client, user, *, token=BOT_TOKEN, channel=CHANNEL_ID,
                  signing_secret: str | None = SIGNING_SECRET, **extra):
    """Configure the user's Slack integration through the API (checked against the fake)."""
    config = {"bot_token": token, "channel_id": channel, **extra}
    if signing_secret:
        config["signing_secret"] = signing_secret
    return client.post("/api/integrations", json={"type": "slack", "config": config},
                       headers=user["headers"])


@pytest.fixture
def slack_business(client, business):  # noqa: F811
    """The business (Professional plan, Page connected) with Slack connected."""
    resp = connect_slack(client, business)
    assert resp.status_code == 201, resp.get_json()
    return business


def slack_headers(raw: bytes, secret: str = SIGNING_SECRET, ts: int | None = None) -> dict:
    """X-Slack-Signature / X-Slack-Request-Timestamp as Slack computes them (v0)."""
    stamp = str(int(time.time()) if ts is None else ts)
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + raw,
                      hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


def post_event(client, payload: dict, secret: str = SIGNING_SECRET, ts: int | None = None,
               headers: dict | None = None):
    """POST an Events API request signed like Slack does; runs the after-response work."""
    raw = json.dumps(payload).encode()
    h = {"Content-Type": "application/json", **slack_headers(raw, secret, ts), **(headers or {})}
    resp = client.post("/webhooks/slack/events", data=raw, headers=h)
    resp.close()
    return resp


def post_interaction(client, payload: dict, secret: str = SIGNING_SECRET):
    """POST an interactivity request (form field `payload`) signed like Slack does."""
    raw = urlencode({"payload": json.dumps(payload)}).encode()
    h = {"Content-Type": "application/x-www-form-urlencoded", **slack_headers(raw, secret)}
    resp = client.post("/webhooks/slack/interactions", data=raw, headers=h)
    resp.close()
    return resp


def reply_event(thread_ts: str, text: str, *, user: str = "U0AGENT1", event_id: str = "Ev001",
                channel: str = CHANNEL_ID, ts: str | None = None, **event_fields) -> dict:
    """An Events API `message` event: a person's reply in a thread."""
    ts = ts or f"{time.time():.6f}"
    event = {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts,
             "thread_ts": thread_ts, "channel_type": "channel", "event_ts": ts, **event_fields}
    return {"token": "legacy", "team_id": TEAM_ID, "api_app_id": "A0DANA", "event": event,
            "type": "event_callback", "event_id": event_id, "event_time": int(time.time())}


def block_action(action_id: str, value: dict, *, thread_ts: str, message_ts: str,
                 user: str = "U0AGENT1", trigger_id: str = "trig-1", state: dict | None = None,
                 channel: str = CHANNEL_ID) -> dict:
    """An interactivity `block_actions` payload: a button clicked on one of Dana's posts."""
    return {"type": "block_actions", "user": {"id": user, "username": "sam"},
            "team": {"id": TEAM_ID}, "api_app_id": "A0DANA", "trigger_id": trigger_id,
            "channel": {"id": channel}, "container": {"type": "message",
                                                      "message_ts": message_ts,
                                                      "channel_id": channel},
            "message": {"ts": message_ts, "thread_ts": thread_ts, "type": "message"},
            "state": {"values": state or {}},
            "actions": [{"action_id": action_id, "value": json.dumps(value), "type": "button",
                         "action_ts": f"{time.time():.6f}"}]}
