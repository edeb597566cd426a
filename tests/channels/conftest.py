"""Fixtures for the end-to-end channel tests: a fake Graph API, signed webhooks, accounts."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import pytest

from tests.conftest import auth_header, register
from tests.fakes.graph import FakeGraph

APP_SECRET = "test-app-secret"
PAGE_ID, IG_ID, PHONE_ID = "104578263458921", "17841405309211844", "106540352242922"


@pytest.fixture
def fake_graph():
    server = FakeGraph().start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(fake_graph, request):
    """Send API pointed at the fake; tiny retry waits; overridable per test via indirect params."""
    base = {"GRAPH_API_URL": fake_graph.base_url, "GRAPH_RETRY_WAIT_SECONDS": 0.001,
            "GRAPH_RETRY_ATTEMPTS": 3, "GRAPH_TIMEOUT_SECONDS": 3.0}
    base.update(getattr(request, "param", {}))
    return base


def sign(raw: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def post_webhook(client, platform: str, payload, secret: str = APP_SECRET, headers=None):
    """POST a delivery signed like Meta does (over the exact bytes sent)."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    h = {"X-Hub-Signature-256": sign(raw, secret), "Content-Type": "application/json"}
    h.update(headers or {})
    resp = client.post(f"/webhooks/{platform}", data=raw, headers=h)
    resp.close()  # (the suite's client returns once the inline dispatcher ran the event)
    return resp


def now_ms(offset_s: float = 0) -> int:
    return int((time.time() + offset_s) * 1000)


def mid() -> str:
    return "m_" + uuid.uuid4().hex


def fb_text(text: str, psid: str = "7354923876541234", page: str = PAGE_ID, mid_: str | None = None,
            ts: int | None = None, obj: str = "page") -> dict:
    return {"object": obj, "entry": [{"id": page, "time": now_ms(), "messaging": [{
        "sender": {"id": psid}, "recipient": {"id": page}, "timestamp": ts or now_ms(),
        "message": {"mid": mid_ or mid(), "text": text}}]}]}


def wa_text(text: str, wa_id: str = "16505551234", wamid: str | None = None,
            ts: float | None = None, name: str = "Sheena Nelson") -> dict:
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID},
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": wamid or f"wamid.{uuid.uuid4().hex}",
                          "timestamp": str(int(ts or time.time())), "type": "text",
                          "text": {"body": text}}]}}]}]}


def wa_status(wamid: str, status: str, errors=None, wa_id: str = "16505551234") -> dict:
    st = {"id": wamid, "status": status, "timestamp": str(int(time.time())), "recipient_id": wa_id}
    if errors:
        st["errors"] = errors
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID},
            "statuses": [st]}}]}]}


def set_plan(user_id: str, tier_id: str) -> None:
    from services.subscriptions import subscribe
    subscribe(user_id, tier_id, None, actor_id=user_id)


GRAPH_PROFILES = {"facebook": {"name": "Nora's Page"}, "instagram": {"username": "nora.shop"},
                  "whatsapp": {"display_phone_number": "+1 555-078-3881",
                               "verified_name": "Nora Shop"}}


def account_token(platform: str, external_id: str) -> str:
    """The (fake) token that manages one account."""
    return f"EAAG-{platform}-{external_id}-token"


def connect(client, user, graph, platform: str, external_id: str, token: str | None = None,
            name: str | None = None):
    """Connect an account through the API, its token first registered in the fake Graph."""
    token = token or account_token(platform, external_id)
    graph.manage(token, external_id, **GRAPH_PROFILES[platform])
    resp = client.post("/api/platforms", json={
        "platform": platform, "external_id": external_id, "access_token": token,
        "name": f"My {platform}" if name is None else name}, headers=user["headers"])
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


@pytest.fixture
def business(app, client, fake_graph):
    """A business on Professional with a Page, an Instagram account and a WhatsApp number."""
    body = register(client, name="Nora Shop")
    body["headers"] = auth_header(body)
    set_plan(body["user"]["id"], "professional")
    body["accounts"] = {p: connect(client, body, fake_graph, p, ext) for p, ext in
                        (("facebook", PAGE_ID), ("instagram", IG_ID), ("whatsapp", PHONE_ID))}
    fake_graph.requests.clear()   # the ownership checks are set-up, not what a test measures
    return body


def add_knowledge(client, user, title: str, content: str):
    resp = client.post("/api/knowledge", json={"title": title, "content": content},
                       headers=user["headers"])
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def conversations(client, user) -> list[dict]:
    return client.get("/api/conversations", headers=user["headers"]).get_json()["items"]


def messages(client, user, conversation_id: str) -> list[dict]:
    return client.get(f"/api/conversations/{conversation_id}/messages?limit=100",
                      headers=user["headers"]).get_json()["items"]
