"""Fixtures for the Zendesk and Google Analytics tests: their loopback fakes, a business with
connected accounts (the channel tests' fake Graph), signed Zendesk webhook events."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from automation.integrations.business.zendesk import sign
from tests.channels.conftest import business, fake_graph  # noqa: F401  (fixtures)
from tests.fakes.google_analytics import API_SECRET, MEASUREMENT_ID, FakeGoogleAnalytics
from tests.fakes.zendesk import AGENT_EMAIL, AGENT_ID, API_TOKEN, FakeZendesk

WEBHOOK_SECRET = "dGhpc2lzYXNpZ25pbmdzZWNyZXQ="
SUBDOMAIN = "noras"


@pytest.fixture
def fake_zendesk():
    server = FakeZendesk().start()
    yield server
    server.stop()


@pytest.fixture
def fake_ga():
    server = FakeGoogleAnalytics().start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(fake_graph, fake_zendesk, fake_ga, request):  # noqa: F811
    """Graph, Zendesk and GA pointed at the fakes; tiny retry waits; overridable per test."""
    base = {"GRAPH_API_URL": fake_graph.base_url, "GRAPH_RETRY_WAIT_SECONDS": 0.001,
            "GRAPH_RETRY_ATTEMPTS": 3, "GRAPH_TIMEOUT_SECONDS": 3.0,
            "ZENDESK_API_URL": fake_zendesk.base_url, "GA_MEASUREMENT_URL": fake_ga.collect_url,
            "INTEGRATION_RETRY_ATTEMPTS": 3, "INTEGRATION_RETRY_WAIT_SECONDS": 0.001,
            "INTEGRATION_RETRY_MAX_WAIT_SECONDS": 0.05}
    base.update(getattr(request, "param", {}))
    return base


def zendesk_config(**changes) -> dict:
    config = {"subdomain": SUBDOMAIN, "email": AGENT_EMAIL, "api_token": API_TOKEN,
              "webhook_secret": WEBHOOK_SECRET}
    config.update(changes)
    return {k: v for k, v in config.items() if v is not None}


def connect_zendesk(client, user, **changes):
    return client.post("/api/integrations", headers=user["headers"],
                       json={"type": "zendesk", "config": zendesk_config(**changes)})


def ga_config(**changes) -> dict:
    config = {"measurement_id": MEASUREMENT_ID, "api_secret": API_SECRET}
    config.update(changes)
    return config


def connect_ga(client, user, **changes):
    return client.post("/api/integrations", headers=user["headers"],
                       json={"type": "google_analytics", "config": ga_config(**changes)})


@pytest.fixture
def zendesk_business(client, business):  # noqa: F811
    """The business (Professional, accounts connected) with Zendesk connected."""
    resp = connect_zendesk(client, business)
    assert resp.status_code == 201, resp.get_json()
    return business


def comment_event(ticket_id, body: str, *, comment_id: int = 555001, public: bool = True,
                  author_id: int = AGENT_ID, is_staff: bool = True) -> dict:
    """Zendesk's "Ticket comment added" webhook event (zendesk_event_version 2022-11-06)."""
    return {"type": "zen:event-type:ticket.comment_added", "account_id": 22129848,
            "id": f"01HT{comment_id}", "time": datetime.now(timezone.utc).isoformat(),
            "zendesk_event_version": "2022-11-06", "subject": f"zen:ticket:{ticket_id}",
            "detail": {"id": str(ticket_id), "status": "OPEN", "subject": "Help"},
            "event": {"comment": {"id": str(comment_id), "body": body, "is_public": public,
                                  "author": {"id": str(author_id), "is_staff": is_staff,
                                             "name": "Alex Agent"}}}}


def zendesk_headers(raw: bytes, secret: str = WEBHOOK_SECRET, ts: str | None = None) -> dict:
    stamp = ts or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"X-Zendesk-Webhook-Signature": sign(secret, raw, stamp),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "Content-Type": "application/json"}


def post_zendesk(client, payload: dict, secret: str = WEBHOOK_SECRET, ts: str | None = None,
                 headers: dict | None = None):
    """POST a webhook event signed like Zendesk does."""
    raw = json.dumps(payload).encode()
    resp = client.post("/webhooks/zendesk", data=raw,
                       headers={**zendesk_headers(raw, secret, ts), **(headers or {})})
    resp.close()
    return resp
