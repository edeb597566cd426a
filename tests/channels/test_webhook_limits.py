"""Signed webhooks are exempt from the API rate limits; forged deliveries are limited per IP.

A sender spraying deliveries with bad signatures gets 429 (the error shape, Retry-After) once
over RATE_LIMIT_WEBHOOK_FORGED; an authentic delivery from the same address right after is
still answered 200 and stored, and authentic deliveries never count against the limit.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from models_db import WebhookEvent, db
from tests.channels.conftest import fb_text, post_webhook, sign
from tests.fakes.stripe_api import sign as stripe_sign

TIGHT = {"RATE_LIMIT_WEBHOOK_FORGED": "3 per minute", "STRIPE_WEBHOOK_SECRET": "whsec_limits",
         "SLACK_SIGNING_SECRET": "slack-signing-secret-limits"}


def _stored() -> int:
    return db.session.query(WebhookEvent).count()


def _forged(client, ip: str = "127.0.0.1"):
    raw = json.dumps(fb_text("let me in")).encode()
    return client.post("/webhooks/facebook", data=raw, environ_base={"REMOTE_ADDR": ip},
                       headers={"X-Hub-Signature-256": sign(raw, "guessed-secret"),
                                "Content-Type": "application/json"})


@pytest.mark.parametrize("settings_overrides", [TIGHT], indirect=True)
def test_a_forger_gets_429_and_an_authentic_delivery_from_the_same_ip_is_stored(client):
    for _ in range(3):
        resp = _forged(client)
        assert resp.status_code == 403
        assert resp.get_json()["error"]["code"] == "signature_invalid"
    limited = _forged(client)
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    # no signature at all counts too
    missing = client.post("/webhooks/facebook", data=b"{}", content_type="application/json")
    assert missing.status_code == 429
    assert _stored() == 0

    authentic = post_webhook(client, "facebook", fb_text("hello, is the shop open?"))
    assert authentic.status_code == 200
    assert authentic.get_json()["status"] == "received"
    event = db.session.get(WebhookEvent, authentic.get_json()["event_id"])
    assert event is not None and "hello, is the shop open?" in event.raw_body
    assert _forged(client).status_code == 429          # the forger is still limited
    assert _forged(client, ip="10.9.8.7").status_code == 403   # another address is not


@pytest.mark.parametrize("settings_overrides", [TIGHT], indirect=True)
def test_authentic_deliveries_never_count_against_the_limits(client):
    for i in range(12):   # four times the forged limit, all authentic
        resp = post_webhook(client, "facebook", fb_text(f"message {i}"))
        assert resp.status_code == 200, resp.get_json()
        assert "X-RateLimit-Limit" not in resp.headers   # exempt from the API limiter
    assert _stored() == 12
    # the address has a clean record: its first forgeries are refused, not limited
    assert _forged(client).status_code == 403


@pytest.mark.parametrize("settings_overrides", [TIGHT], indirect=True)
def test_stripe_and_slack_forgeries_are_limited_too(client):
    body = json.dumps({"id": "evt_forged", "type": "invoice.paid", "data": {"object": {}}})
    stripe_sig = "t=%d,v1=%s" % (int(time.time()), "0" * 64)
    codes = [client.post("/webhooks/stripe", data=body,
                         headers={"Stripe-Signature": stripe_sig}).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    ts = str(int(time.time()))
    raw = json.dumps({"type": "event_callback", "event_id": "Ev1", "event": {}}).encode()
    bad = "v0=" + hmac.new(b"wrong", b"v0:" + ts.encode() + b":" + raw, hashlib.sha256).hexdigest()
    slack = client.post("/webhooks/slack/events", data=raw,
                        environ_base={"REMOTE_ADDR": "10.1.1.1"},
                        headers={"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": bad,
                                 "Content-Type": "application/json"})
    assert slack.status_code == 401   # a fresh address: refused, counted
    # and Meta's door shares the count of the address that forged Stripe deliveries
    assert _forged(client).status_code == 429


@pytest.mark.parametrize("settings_overrides", [{**TIGHT, "RATE_LIMIT_ENABLED": False}],
                         indirect=True)
def test_with_rate_limits_off_forgeries_are_refused_but_never_limited(client):
    assert [_forged(client).status_code for _ in range(6)] == [403] * 6


@pytest.mark.parametrize("settings_overrides", [TIGHT], indirect=True)
def test_a_signed_stripe_body_that_is_no_event_is_refused_but_not_counted_as_forged(client):
    bodies = ["not json", "[1, 2]", json.dumps({"id": "evt_1", "type": "invoice.paid"}),
              json.dumps({"id": 7, "type": "invoice.paid", "data": {"object": {}}})]
    for body in bodies:   # more than the forged limit, each signed with the real secret
        resp = client.post("/webhooks/stripe", data=body,
                           headers={"Stripe-Signature": stripe_sign(body, "whsec_limits")})
        assert resp.status_code == 400, body
        assert resp.get_json()["error"]["code"] == "invalid_event"
    # the address has a clean record: a forgery from it is refused, not limited
    forged = client.post("/webhooks/stripe", data=bodies[2],
                         headers={"Stripe-Signature": stripe_sign(bodies[2], "whsec_guess")})
    assert (forged.status_code, forged.get_json()["error"]["code"]) == \
        (400, "signature_invalid")
