"""Paid plans through Stripe: Checkout, the signed webhook, grace, cancel, outages, abuse.

Everything goes through the real `stripe` library against tests/fakes/stripe_api.py, and
webhook bodies are signed the way Stripe signs them; each test runs on both store backends.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from models_db import StripeEvent, db
from services import entitlements
from tests.fakes.stripe_api import DAY, event, invoice, sign
from utils.errors import PaymentRequired
from utils.store import get_store


def post_event(client, body: str, *, secret: str | None = None, timestamp: int | None = None,
               headers: dict | None = None):
    """POST a webhook body signed like Stripe (with the configured secret by default)."""
    signature = sign(body, timestamp=timestamp) if secret is None else \
        sign(body, secret, timestamp)
    return client.post("/webhooks/stripe", data=body,
                       headers={"Stripe-Signature": signature,
                                "Content-Type": "application/json", **(headers or {})})


def ask(client, user, tier: str):
    """The user asks for a plan for themselves."""
    return client.post("/api/subscriptions/user", json={"tier_id": tier},
                       headers=user["headers"])


def me(client, user) -> dict:
    """The user's subscription as the API shows it to them."""
    resp = client.get("/api/subscriptions/user", headers=user["headers"])
    assert resp.status_code == 200
    return resp.get_json()


def checkout_url(client, user, tier: str = "starter") -> str:
    """Ask for a paid plan: the 402's checkout_url."""
    resp = ask(client, user, tier)
    assert resp.status_code == 402, resp.get_json()
    err = resp.get_json()["error"]
    assert err["code"] == "payment_required"
    return err["checkout_url"]


def pay(client, user, stripe_fake, tier: str = "starter") -> dict:
    """The user pays a Checkout on Stripe and Stripe's webhook arrives: the subscription."""
    session = stripe_fake.complete_checkout(checkout_url(client, user, tier).rsplit("/", 1)[1])
    resp = post_event(client, event("checkout.session.completed", session))
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "applied", resp.get_json()
    return stripe_fake.subscriptions[session["subscription"]]


def stored_events() -> int:
    """How many Stripe events were recorded as applied."""
    return db.session.scalar(db.select(db.func.count()).select_from(StripeEvent))


def test_paid_plan_answers_402_with_a_checkout_url_and_changes_nothing(
        client, user, priced, stripe_fake):
    uid = user["user"]["id"]
    url = checkout_url(client, user, "starter")
    assert url.startswith("https://checkout.stripe.test/c/pay/cs_test_")
    customer, session = stripe_fake.requests
    assert (customer.method, customer.path, session.method, session.path) == \
        ("POST", "/v1/customers", "POST", "/v1/checkout/sessions")
    assert customer.body["email"] == user["user"]["email"]
    created = next(iter(stripe_fake.customers))
    assert {k: session.body.get(k) for k in (
        "mode", "customer", "client_reference_id", "line_items[0][price]",
        "line_items[0][quantity]", "metadata[user_id]", "metadata[tier_id]")} == {
        "mode": "subscription", "customer": created, "client_reference_id": uid,
        "line_items[0][price]": "price_1Starter", "line_items[0][quantity]": "1",
        "metadata[user_id]": uid, "metadata[tier_id]": "starter"}
    assert session.body["success_url"].endswith("/app?checkout=success")

    body = me(client, user)
    assert (body["tier_id"], body["effective_tier"]["id"], body["provider"],
            body["provider_customer_id"]) == ("free", "free", None, created)
    with pytest.raises(PaymentRequired):
        entitlements.require_platform(uid, "instagram", connected_accounts=0)

    # a second checkout reuses the customer that was kept
    assert checkout_url(client, user, "professional") != url
    assert [r.path for r in stripe_fake.requests].count("/v1/customers") == 1
    assert stripe_fake.requests[-1].body["customer"] == created
    assert stripe_fake.requests[-1].body["line_items[0][price]"] == "price_1Professional"
    assert me(client, user)["tier_id"] == "free"


def test_a_paid_checkout_activates_the_plan_and_invoices_renew_it(
        client, user, priced, stripe_fake):
    uid = user["user"]["id"]
    stripe_sub = pay(client, user, stripe_fake, "starter")
    body = me(client, user)
    period_end = datetime.fromtimestamp(stripe_sub["current_period_end"], timezone.utc)
    assert (body["tier_id"], body["status"], body["effective_tier"]["id"], body["provider"],
            body["provider_subscription_id"]) == \
        ("starter", "active", "starter", "stripe", stripe_sub["id"])
    assert datetime.fromisoformat(body["current_period_end"]) == period_end
    entitlements.require_platform(uid, "instagram", connected_accounts=0)
    # the session was read back from Stripe, never from the event body alone
    assert ("GET", f"/v1/subscriptions/{stripe_sub['id']}") in \
        {(r.method, r.path) for r in stripe_fake.requests}

    next_end = stripe_sub["current_period_end"] + 30 * DAY
    renewed = post_event(client, event("invoice.paid", invoice(
        stripe_sub["customer"], stripe_sub["id"], "price_1Starter", next_end)))
    assert renewed.status_code == 200 and renewed.get_json()["outcome"] == "applied"
    body = me(client, user)
    assert body["status"] == "active"
    assert datetime.fromisoformat(body["current_period_end"]) == \
        datetime.fromtimestamp(next_end, timezone.utc)


def test_a_failed_payment_keeps_the_plan_for_the_grace_period_then_free(
        client, user, priced, stripe_fake):
    uid = user["user"]["id"]
    stripe_sub = pay(client, user, stripe_fake, "professional")
    failed = post_event(client, event("invoice.payment_failed", invoice(
        stripe_sub["customer"], stripe_sub["id"], "price_1Professional",
        stripe_sub["current_period_end"], paid=False)))
    assert failed.status_code == 200 and failed.get_json()["outcome"] == "applied"
    body = me(client, user)
    assert (body["status"], body["effective_tier"]["id"]) == ("past_due", "professional")
    since = datetime.fromisoformat(body["past_due_since"])
    assert datetime.fromisoformat(body["effective_until"]) == since + timedelta(days=5)
    entitlements.require_platform(uid, "whatsapp", connected_accounts=0)

    # six days later (STRIPE_GRACE_DAYS=5 here) the payment is still overdue: Free applies
    get_store().save_subscription(uid, {"past_due_since": since - timedelta(days=6)})
    body = me(client, user)
    assert (body["status"], body["tier_id"], body["effective_tier"]["id"]) == \
        ("past_due", "professional", "free")
    with pytest.raises(PaymentRequired):
        entitlements.require_platform(uid, "whatsapp", connected_accounts=0)
    assert entitlements.effective_tier(uid)["id"] == "free"

    # the invoice is finally paid: the plan is back, the grace cleared
    paid = post_event(client, event("invoice.paid", invoice(
        stripe_sub["customer"], stripe_sub["id"], "price_1Professional",
        stripe_sub["current_period_end"] + 30 * DAY)))
    assert paid.status_code == 200
    body = me(client, user)
    assert (body["status"], body["effective_tier"]["id"], body["past_due_since"]) == \
        ("active", "professional", None)
    entitlements.require_platform(uid, "whatsapp", connected_accounts=0)


def test_forged_and_stale_events_are_refused_and_stored_nowhere(
        client, user, priced, stripe_fake):
    session = stripe_fake.complete_checkout(checkout_url(client, user).rsplit("/", 1)[1])
    body = event("checkout.session.completed", session)
    tampered = body.replace(session["customer"], "cus_someone_else")
    attempts = [
        client.post("/webhooks/stripe", data=body),                          # no signature
        post_event(client, body, secret="whsec_guessed"),                    # wrong secret
        client.post("/webhooks/stripe", data=tampered,                       # body changed
                    headers={"Stripe-Signature": sign(body)}),
        post_event(client, body, timestamp=int(time.time()) - 600),          # too old
        client.post("/webhooks/stripe", data=body,
                    headers={"Stripe-Signature": "t=now,v1=deadbeef"}),       # garbage
        client.post("/webhooks/stripe", data=body,                           # other scheme
                    headers={"Stripe-Signature": sign(body).replace("v1=", "v0=")}),
    ]
    for resp in attempts:
        assert resp.status_code == 400
        assert resp.get_json()["error"]["code"] == "signature_invalid"
    assert stored_events() == 0
    assert me(client, user)["tier_id"] == "free"
    assert not [r for r in stripe_fake.requests if r.path.startswith("/v1/subscriptions")]
    # the same body, signed now with the right secret, is what Stripe would send
    assert post_event(client, body).get_json()["outcome"] == "applied"
    assert me(client, user)["tier_id"] == "starter"


def test_a_replayed_event_is_applied_once(client, user, priced, stripe_fake):
    stripe_sub = pay(client, user, stripe_fake, "starter")
    failed = event("invoice.payment_failed", invoice(
        stripe_sub["customer"], stripe_sub["id"], "price_1Starter",
        stripe_sub["current_period_end"], paid=False), event_id="evt_failed_1")
    assert post_event(client, failed).get_json()["outcome"] == "applied"
    paid = event("invoice.paid", invoice(stripe_sub["customer"], stripe_sub["id"],
                                         "price_1Starter", stripe_sub["current_period_end"]))
    assert post_event(client, paid).get_json()["outcome"] == "applied"
    assert me(client, user)["status"] == "active"
    # the failure again (Stripe redelivering, or someone replaying a captured delivery)
    for replay in (failed, failed.replace("invoice.payment_failed", "invoice.paid")):
        resp = post_event(client, replay)
        assert resp.status_code == 200 and resp.get_json()["status"] == "duplicate"
    assert me(client, user)["status"] == "active"
    assert stored_events() == 3


def test_an_event_older_than_one_applied_is_not_applied_over_it(
        client, user, priced, stripe_fake):
    stripe_sub = pay(client, user, stripe_fake, "starter")
    now = int(time.time())
    paid = event("invoice.paid", invoice(stripe_sub["customer"], stripe_sub["id"],
                                         "price_1Starter", stripe_sub["current_period_end"]),
                 created=now)
    assert post_event(client, paid).get_json()["outcome"] == "applied"
    # the failure of the same renewal, created before the payment but delivered after it
    late = event("invoice.payment_failed", invoice(
        stripe_sub["customer"], stripe_sub["id"], "price_1Starter",
        stripe_sub["current_period_end"], paid=False), created=now - 120)
    resp = post_event(client, late)
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "stale"
    assert me(client, user)["status"] == "active"


def test_a_user_cannot_activate_a_plan_by_posting_an_event(
        client, user, other_user, priced, stripe_fake):
    uid, oid = user["user"]["id"], other_user["user"]["id"]
    fake = {"id": "cs_test_forged", "object": "checkout.session", "mode": "subscription",
            "client_reference_id": uid, "customer": "cus_forged", "subscription": "sub_forged",
            "payment_status": "paid", "metadata": {"user_id": uid, "tier_id": "enterprise"}}
    body = event("checkout.session.completed", fake)
    for headers in ({**user["headers"]}, {**user["headers"], "Stripe-Signature": sign(
            body, "whsec_" + "0" * 32)}):
        resp = client.post("/webhooks/stripe", data=body, headers=headers)
        assert resp.status_code == 400
    assert stored_events() == 0 and me(client, user)["tier_id"] == "free"

    # Even signed events only say what our own records allow. The other user started a
    # checkout; an event naming *this* user with the other user's customer applies nothing.
    session = stripe_fake.complete_checkout(
        checkout_url(client, other_user, "enterprise").rsplit("/", 1)[1])
    crossed = post_event(client, event("checkout.session.completed",
                                       {**session, "client_reference_id": uid}))
    assert crossed.status_code == 200 and crossed.get_json()["outcome"] == "unknown_customer"
    stranger = post_event(client, event("invoice.paid", invoice(
        "cus_unknown", "sub_unknown", "price_1Enterprise", int(time.time()) + 30 * DAY)))
    assert stranger.get_json()["outcome"] == "unknown_customer"
    assert me(client, user)["tier_id"] == "free" and me(client, other_user)["tier_id"] == "free"
    # the plan comes from the stored price, not from the metadata the body carries
    session = stripe_fake.complete_checkout(
        checkout_url(client, user, "starter").rsplit("/", 1)[1])
    session["metadata"]["tier_id"] = "enterprise"
    assert post_event(client, event("checkout.session.completed", session)).get_json()[
        "outcome"] == "applied"
    assert me(client, user)["effective_tier"]["id"] == "starter"
    assert me(client, other_user)["tier_id"] == "free" and oid != uid


def test_a_stripe_outage_answers_503_and_changes_nothing(client, user, priced, stripe_fake):
    uid = user["user"]["id"]
    stripe_fake.outage = True
    resp = ask(client, user, "starter")
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "payment_provider_unavailable"
    body = me(client, user)
    assert (body["tier_id"], body["provider_customer_id"]) == ("free", None)

    # a paid checkout whose webhook arrives while Stripe cannot be asked: 503, not recorded,
    # so Stripe's redelivery of the same event is applied
    stripe_fake.outage = False
    session = stripe_fake.complete_checkout(checkout_url(client, user).rsplit("/", 1)[1])
    completed = event("checkout.session.completed", session, event_id="evt_completed_1")
    stripe_fake.outage = True
    resp = post_event(client, completed)
    assert resp.status_code == 503 and stored_events() == 0
    assert me(client, user)["tier_id"] == "free"
    stripe_fake.outage = False
    assert post_event(client, completed).get_json()["outcome"] == "applied"
    assert me(client, user)["status"] == "active"

    # cancelling while Stripe is down: 503, still active and still billed
    stripe_fake.outage = True
    resp = client.post(f"/api/subscriptions/user/{uid}/cancel", headers=user["headers"])
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "payment_provider_unavailable"
    body = me(client, user)
    assert (body["status"], body["cancel_at_period_end"]) == ("active", False)
    assert stripe_fake.subscriptions[session["subscription"]]["cancel_at_period_end"] is False


def test_cancel_stops_billing_at_period_end_in_stripe(client, user, priced, stripe_fake):
    uid = user["user"]["id"]
    stripe_sub = pay(client, user, stripe_fake, "starter")
    # a billed plan cannot be swapped for Free, nor for a second Checkout (billed twice)
    sessions = len(stripe_fake.sessions)
    for tier in ("free", "professional"):
        resp = ask(client, user, tier)
        assert resp.status_code == 409, tier
        assert resp.get_json()["error"]["code"] == "subscription_billed"
    assert len(stripe_fake.sessions) == sessions and me(client, user)["tier_id"] == "starter"

    resp = client.post(f"/api/subscriptions/user/{uid}/cancel", headers=user["headers"])
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["status"], body["cancel_at_period_end"], body["effective_tier"]["id"]) == \
        ("canceled", True, "starter")
    update = stripe_fake.requests[-1]
    assert (update.method, update.path, update.body) == \
        ("POST", f"/v1/subscriptions/{stripe_sub['id']}", {"cancel_at_period_end": "true"})
    assert stripe_fake.subscriptions[stripe_sub["id"]]["cancel_at_period_end"] is True
    # Stripe's own echo of the change keeps it canceled, running to the period's end
    echo = post_event(client, event("customer.subscription.updated",
                                    stripe_fake.subscriptions[stripe_sub["id"]]))
    assert echo.get_json().get("outcome") == "applied", echo.get_json()
    body = me(client, user)
    assert (body["status"], body["effective_tier"]["id"]) == ("canceled", "starter")
    entitlements.require_platform(uid, "instagram", connected_accounts=0)
    # the period ends: Stripe deletes the subscription, and Free applies
    ended = {**stripe_fake.subscriptions[stripe_sub["id"]], "status": "canceled",
             "ended_at": int(time.time())}
    assert post_event(client, event("customer.subscription.deleted", ended)).get_json()[
        "outcome"] == "applied"
    body = me(client, user)
    assert body["effective_tier"]["id"] == "free"
    with pytest.raises(PaymentRequired):
        entitlements.require_platform(uid, "instagram", connected_accounts=0)
    # now Free may be chosen again
    assert ask(client, user, "free").status_code == 200


def test_a_subscription_update_changes_the_plan_by_the_stored_price(
        client, user, priced, stripe_fake):
    stripe_sub = pay(client, user, stripe_fake, "starter")
    upgraded = json.loads(json.dumps(stripe_sub))
    upgraded["items"]["data"][0]["price"]["id"] = "price_1Professional"
    upgraded["metadata"] = {"tier_id": "enterprise"}
    resp = post_event(client, event("customer.subscription.updated", upgraded))
    assert resp.get_json()["outcome"] == "applied"
    assert me(client, user)["effective_tier"]["id"] == "professional"
    # a price no plan has is ignored; an update for another subscription too
    upgraded["items"]["data"][0]["price"]["id"] = "price_1Unknown"
    assert post_event(client, event("customer.subscription.updated", upgraded)).get_json()[
        "outcome"] == "unknown_price"
    other = {**upgraded, "id": "sub_not_ours"}
    other["items"]["data"][0]["price"]["id"] = "price_1Enterprise"
    assert post_event(client, event("customer.subscription.updated", other)).get_json()[
        "outcome"] == "unknown_subscription"
    assert me(client, user)["effective_tier"]["id"] == "professional"


def test_trial_once_then_checkout(client, user, admin, priced, stripe_fake):
    client.put("/api/subscriptions/tiers/starter", json={"trial_days": 14},
               headers=admin["headers"])
    trial = ask(client, user, "starter")
    assert trial.status_code == 200 and trial.get_json()["status"] == "trialing"
    assert stripe_fake.requests == []  # a trial needs no card
    assert ask(client, user, "free").status_code == 200
    assert checkout_url(client, user, "starter")  # the trial is spent: pay instead
    assert me(client, user)["tier_id"] == "free"


def test_events_for_a_granted_plan_are_ignored(client, user, admin, priced, stripe_fake):
    stripe_sub = pay(client, user, stripe_fake, "starter")
    resp = client.post("/api/subscriptions/user",
                       json={"tier_id": "enterprise", "user_id": user["user"]["id"]},
                       headers=admin["headers"])
    assert resp.status_code == 200
    # the replaced plan is no longer billed: Stripe was told to stop at period end
    assert stripe_fake.subscriptions[stripe_sub["id"]]["cancel_at_period_end"] is True
    failed = post_event(client, event("invoice.payment_failed", invoice(
        stripe_sub["customer"], stripe_sub["id"], "price_1Starter",
        stripe_sub["current_period_end"], paid=False)))
    assert failed.get_json()["outcome"] == "ignored_grant"
    body = me(client, user)
    assert (body["tier_id"], body["status"], body["provider"]) == \
        ("enterprise", "active", "admin")


@pytest.mark.parametrize("how", ["grant", "cli", "set_plan", "set_status"])
def test_an_admin_replacing_a_billed_plan_stops_stripe_billing_first(
        app, client, user, admin, priced, stripe_fake, how):
    uid = user["user"]["id"]
    stripe_sub = pay(client, user, stripe_fake, "starter")

    def replace() -> str:
        """The admin's change; its outcome: "ok", or the error code (the CLI's message)."""
        if how == "cli":
            run = app.test_cli_runner().invoke(args=[
                "grant-plan", "--email", user["user"]["email"], "--tier", "Enterprise"])
            return "ok" if run.exit_code == 0 else run.output
        if how == "grant":
            resp = client.post("/api/subscriptions/user",
                               json={"tier_id": "enterprise", "user_id": uid},
                               headers=admin["headers"])
        else:
            change = {"tier_id": "enterprise"} if how == "set_plan" else {"status": "expired"}
            resp = client.put(f"/api/subscriptions/user/{uid}", json=change,
                              headers=admin["headers"])
        if resp.status_code == 200:
            return "ok"
        assert resp.status_code == 503
        return resp.get_json()["error"]["code"]

    # Stripe cannot be told: an error, nothing changes here, Stripe still bills
    stripe_fake.outage = True
    assert replace() in ("payment_provider_unavailable",
                         "Error: The payment provider is unavailable; nothing was changed. "
                         "Try again later.\n")
    assert (me(client, user)["tier_id"], me(client, user)["status"]) == ("starter", "active")
    assert stripe_fake.subscriptions[stripe_sub["id"]]["cancel_at_period_end"] is False

    stripe_fake.outage = False
    assert replace() == "ok"
    assert stripe_fake.subscriptions[stripe_sub["id"]]["cancel_at_period_end"] is True
    # a period-end change alone touches nothing at Stripe
    requests = len(stripe_fake.requests)
    resp = client.put(f"/api/subscriptions/user/{uid}",
                      json={"current_period_end": "2030-01-01T00:00:00Z"},
                      headers=admin["headers"])
    assert resp.status_code == 200 and len(stripe_fake.requests) == requests


@pytest.mark.parametrize("settings_overrides", [{"STRIPE_WEBHOOK_SECRET": None}],
                         indirect=True)
def test_webhook_without_a_secret_is_not_configured(client, stripe_fake):
    body = event("invoice.paid", invoice("cus_x", "sub_x", "price_1Starter", 0))
    resp = post_event(client, body)
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "webhook_not_configured"
    assert stored_events() == 0
