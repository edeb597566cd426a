"""The webhook edge: handshake, signatures over raw bytes, bad bodies, storage before anything."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from models_db import WebhookEvent, db
from tests.channels.conftest import PAGE_ID, connect, fb_text, post_webhook, sign

META = Path(__file__).resolve().parents[1] / "fixtures" / "meta"


def _events():
    return list(db.session.scalars(db.select(WebhookEvent).order_by(WebhookEvent.id)))


@pytest.mark.parametrize("platform", ["facebook", "instagram", "whatsapp"])
def test_verification_handshake(client, platform):
    ok = client.get(f"/webhooks/{platform}?hub.mode=subscribe&hub.verify_token=test-verify-token"
                    "&hub.challenge=CHALLENGE_ACCEPTED")
    assert ok.status_code == 200 and ok.data == b"CHALLENGE_ACCEPTED"
    assert ok.mimetype == "text/plain"
    bad = client.get(
        f"/webhooks/{platform}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"
    )
    assert bad.status_code == 403 and b"1" not in bad.data.replace(b"403", b"")
    assert bad.get_json()["error"]["code"] == "verify_token_mismatch"
    mode = client.get(
        f"/webhooks/{platform}?hub.mode=unsubscribe&hub.verify_token=test-verify-token"
        "&hub.challenge=1"
    )
    assert mode.status_code == 403
    missing = client.get(f"/webhooks/{platform}?hub.mode=subscribe&hub.challenge=1")
    assert missing.status_code == 400


def test_unknown_platform_is_404_json(client):
    resp = client.post("/webhooks/telegram", data=b"{}")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"


def test_missing_and_wrong_signature_store_nothing(client):
    raw = json.dumps(fb_text("hi")).encode()
    missing = client.post("/webhooks/facebook", data=raw, content_type="application/json")
    assert missing.status_code == 401
    assert missing.get_json()["error"]["code"] == "signature_missing"
    for header in (
        sign(raw, "another-secret"),
        sign(raw + b" "),
        "sha1=" + sign(raw)[7:],
        sign(raw)[:-4],
    ):
        resp = client.post("/webhooks/facebook", data=raw, headers={"X-Hub-Signature-256": header})
        assert resp.status_code == 403, header
        assert resp.get_json()["error"]["code"] == "signature_invalid"
    assert _events() == []


@pytest.mark.parametrize(
    "settings_overrides", [{"META_APP_SECRET": "test_app_secret_0123456789abcdef"}], indirect=True
)
def test_shared_signature_vectors_verify_over_raw_bytes(client):
    vectors = json.loads((META / "signature_vectors.json").read_text())
    assert vectors["app_secret"] == "test_app_secret_0123456789abcdef"
    for name, vec in vectors["files"].items():
        raw = (META / name).read_bytes()
        platform = (
            "whatsapp"
            if name.startswith("whatsapp")
            else "instagram"
            if name.startswith("instagram")
            else "facebook"
        )
        resp = client.post(
            f"/webhooks/{platform}",
            data=raw,
            headers={"x-hub-signature-256": vec["X-Hub-Signature-256"]},
        )
        assert resp.status_code == 200, name
    for vec in vectors["inline"]:
        raw = vec["body_utf8"].encode("utf-8")
        assert len(raw) == vec["bytes"]
        resp = client.post(
            "/webhooks/facebook",
            data=raw,
            headers={"X-Hub-Signature-256": vec["X-Hub-Signature-256"]},
        )
        assert resp.status_code == 200, vec["description"]
    body = (META / "messenger_text.json").read_bytes()
    for case in vectors["negative_cases"]:
        resp = client.post("/webhooks/facebook", data=body, headers=case["headers"])
        if case["case"] == "missing header":
            assert resp.status_code == 401
        elif case["case"].startswith("uppercase hex"):
            assert resp.status_code == 200  # we normalise hex case deliberately
        else:
            assert resp.status_code == 403, case["case"]


def test_unicode_escapes_are_verified_on_raw_bytes(client):
    raw = (
        b'{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"sender":{"id":"2"},'
        b'"recipient":{"id":"1"},"timestamp":1,"message":{"mid":"m_1","text":"\\u00e4\\u00f6\\u00e5"}}]}]}'
    )
    assert post_webhook(client, "facebook", raw).status_code == 200
    reserialized = json.dumps(json.loads(raw), ensure_ascii=False).encode()
    resp = client.post(
        "/webhooks/facebook", data=raw, headers={"X-Hub-Signature-256": sign(reserialized)}
    )
    assert resp.status_code == 403


def test_invalid_json_is_400_and_kept(client):
    resp = post_webhook(client, "facebook", b'{"object": "page", "entry": [')
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_json"
    [event] = _events()
    assert event.status == "rejected" and event.raw_body.startswith('{"object"')


def test_oversize_body_is_413(client):
    raw = b'{"object":"page","pad":"' + b"x" * (5 * 1024 * 1024) + b'"}'
    resp = client.post("/webhooks/facebook", data=raw, headers={"X-Hub-Signature-256": sign(raw)})
    assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "payload_too_large"
    assert _events() == []


def test_three_megabytes_accepted(client):
    payload = {"object": "page", "entry": [], "pad": "x" * (3 * 1024 * 1024)}
    assert post_webhook(client, "facebook", payload).status_code == 200


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"object": "page", "entry": []},
        {"object": "user", "entry": [{"id": "1", "changes": []}]},
        {
            "object": "permissions",
            "entry": [{"id": "1", "time": 1, "changes": [{"field": "email"}]}],
        },
        {
            "object": "page",
            "entry": [
                {
                    "id": PAGE_ID,
                    "time": 1,
                    "messaging": [
                        {
                            "sender": {"id": "1"},
                            "recipient": {"id": PAGE_ID},
                            "timestamp": 1,
                            "optin": {"ref": "x"},
                        }
                    ],
                }
            ],
        },
    ],
)
def test_authentic_but_unknown_is_200_and_ignored(client, user, fake_graph, payload):
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    resp = post_webhook(client, "facebook", payload)
    assert resp.status_code == 200
    [event] = _events()
    assert event.status == "ignored"


def test_wrong_content_type_still_reads_raw_body(client, user, fake_graph):
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    resp = post_webhook(
        client, "facebook", fb_text("hello"), headers={"Content-Type": "text/plain"}
    )
    assert resp.status_code == 200
    assert _events()[0].status == "processed"


def test_unknown_account_stored_and_ignored(client, fake_graph):
    resp = post_webhook(client, "facebook", fb_text("hello", page="555"))
    assert resp.status_code == 200
    [event] = _events()
    assert event.status == "ignored" and fake_graph.requests == []
