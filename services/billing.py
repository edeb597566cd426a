"""Stripe billing: Checkout for paid plans, and the signed webhook that drives subscriptions.

Trust: an event is applied only after `stripe.Webhook.construct_event` verified its
signature, once per event id (table stripe_events). Even then, who and what come from our
own records, never from free-form fields of the body: the user is the one whose stored
Stripe customer id the event names (for a completed Checkout, the client_reference_id must
also be that user), the subscription must be the one we stored, and the plan is the one
whose stored `stripe_price_id` is the subscription's price — the `metadata` we put on the
session is never read back. Events for a user on an admin's grant are ignored (except a
completed Checkout: the user bought a plan).

    checkout.session.completed      -> the subscription as Stripe has it (retrieved)
    invoice.paid                    -> active, the paid period's end, grace cleared
    invoice.payment_failed          -> past_due (plan kept for STRIPE_GRACE_DAYS)
    customer.subscription.updated   -> plan / status / period / cancel_at_period_end
    customer.subscription.deleted   -> canceled, ended now
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from models_db import StripeEvent, User, db
from services.subscriptions import ensure_subscription, list_tiers, subscribe
from utils import stripe_gateway
from utils.audit import audit
from utils.config import current_settings
from utils.errors import ApiError
from utils.store import get_store

log = logging.getLogger("dana.billing")

# Stripe subscription status -> ours (None: not a state that grants anything yet)
STATUS_MAP = {"active": "active", "trialing": "trialing", "past_due": "past_due",
              "unpaid": "past_due", "canceled": "canceled", "incomplete_expired": "canceled",
              "incomplete": None, "paused": None}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _ts(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=timezone.utc) if value else None


# --------------------------------------------------------------------------- checkout

def start_checkout(user: User, tier: dict) -> str:
    """A Checkout Session URL that subscribes the user to the plan's Stripe price. The
    user's Stripe customer is created once and kept (reused by every later checkout).
    """
    sub = ensure_subscription(user.id)
    customer_id = sub.get("provider_customer_id")
    if not customer_id:
        customer_id = stripe_gateway.create_customer(user.email, user.id)["id"]
        get_store().save_subscription(user.id, {"provider_customer_id": customer_id})
    session = stripe_gateway.create_checkout_session(
        customer_id=customer_id, price_id=tier["stripe_price_id"], user_id=user.id,
        tier_id=tier["id"])
    audit("checkout_started", user_id=user.id, actor_id=user.id, tier_id=tier["id"],
          session_id=session["id"])
    return session["url"]


def cancel_at_period_end(user_id: str, sub: dict) -> None:
    """Tell Stripe to stop billing at period end (503 and nothing changes if it cannot)."""
    stripe_gateway.cancel_at_period_end(sub["provider_subscription_id"])
    audit("stripe_cancel_requested", user_id=user_id,
          subscription_id=sub["provider_subscription_id"])


# ---------------------------------------------------------------------------- webhook

def handle_webhook(payload: bytes, signature: str | None) -> dict:
    """Verify, de-duplicate and apply one Stripe webhook delivery."""
    if not current_settings().STRIPE_WEBHOOK_SECRET:
        raise ApiError("STRIPE_WEBHOOK_SECRET is not configured.", status=503,
                       code="webhook_not_configured")
    event = stripe_gateway.verify_event(payload, signature)  # 400 before anything is stored
    claim = StripeEvent(id=event["id"], type=event["type"], received_at=_now(),
                        created_at=_ts(event.get("created")))
    try:
        db.session.add(claim)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return {"status": "duplicate", "event_id": event["id"]}
    try:
        outcome, user_id = _apply(event)
    except Exception:
        # not applied (e.g. Stripe unreachable while we asked it): forget the claim so that
        # Stripe's retry of this event is applied
        db.session.rollback()
        db.session.delete(db.session.get(StripeEvent, event["id"]))
        db.session.commit()
        raise
    claim = db.session.get(StripeEvent, event["id"])
    claim.outcome, claim.user_id = outcome, user_id
    db.session.commit()
    if user_id:
        audit("stripe_event_applied" if outcome == "applied" else "stripe_event_ignored",
              user_id=user_id, event_id=event["id"], type=event["type"], outcome=outcome)
    return {"status": "processed", "event_id": event["id"], "outcome": outcome}


def _apply(event: dict) -> tuple[str, str | None]:
    obj = event["data"]["object"]
    kind = event["type"]
    if kind == "checkout.session.completed":
        return _checkout_completed(obj)
    handlers = {"invoice.paid": _invoice_paid, "invoice.payment_failed": _invoice_failed,
                "customer.subscription.updated": _subscription_updated,
                "customer.subscription.deleted": _subscription_deleted}
    handler = handlers.get(kind)
    if handler is None:
        return "ignored_type", None
    sub = _ours(obj.get("customer"))
    if sub is None:
        return "unknown_customer", None
    if sub.get("provider") == "admin":
        return "ignored_grant", sub["user_id"]
    if _older_than_applied(sub["user_id"], event):
        return "stale", sub["user_id"]
    return handler(sub, obj), sub["user_id"]


def _older_than_applied(user_id: str, event: dict) -> bool:
    """Stripe does not deliver in order: a failed payment created before an already applied
    paid invoice must not make the subscription past due again.
    """
    created = _ts(event.get("created"))
    newest = db.session.scalar(select(func.max(StripeEvent.created_at)).where(
        StripeEvent.user_id == user_id, StripeEvent.outcome == "applied"))
    return bool(created and newest and created < newest)


def _ours(customer_id) -> dict | None:
    """Our subscription whose stored Stripe customer this is."""
    if not isinstance(customer_id, str) or not customer_id:
        return None
    return get_store().find_subscription_by_customer(customer_id)


def _invoice_subscription_id(invoice: dict) -> str | None:
    """The subscription an invoice bills (top-level before API 2025-03, under parent after)."""
    sub_id = invoice.get("subscription")
    if not sub_id:
        parent = invoice.get("parent") or {}
        sub_id = (parent.get("subscription_details") or {}).get("subscription")
    return sub_id if isinstance(sub_id, str) else None


def _is_ours(sub: dict, stripe_subscription_id: str | None) -> bool:
    return bool(stripe_subscription_id) and sub.get("provider") == "stripe" \
        and sub.get("provider_subscription_id") == stripe_subscription_id


def _tier_for_price(price_id) -> dict | None:
    """The plan whose stored Stripe price this is (archived plans included: still billed)."""
    if not price_id:
        return None
    for tier in list_tiers(include_inactive=True)["items"]:
        if tier.get("stripe_price_id") == price_id:
            return tier
    return None


def _price_and_period_end(stripe_sub: dict) -> tuple[str | None, datetime | None]:
    items = ((stripe_sub.get("items") or {}).get("data") or [{}])
    item = items[0] or {}
    price = (item.get("price") or {}).get("id")
    # current_period_end is on the item since API 2025-03, on the subscription before
    end = stripe_sub.get("current_period_end") or item.get("current_period_end")
    return price, _ts(end)


def _sync(user_id: str, current: dict, stripe_sub: dict, actor: str | None) -> str:
    """Make our subscription what Stripe says it is (plan by our stored price id)."""
    status = STATUS_MAP.get(stripe_sub.get("status"))
    if status is None:
        return "not_active_yet"
    price_id, period_end = _price_and_period_end(stripe_sub)
    tier = _tier_for_price(price_id)
    if tier is None:
        log.warning("stripe subscription %s has price %s that no plan has",
                    stripe_sub.get("id"), price_id)
        return "unknown_price"
    cancel_at_end = bool(stripe_sub.get("cancel_at_period_end"))
    fields = {"status": status, "current_period_end": period_end,
              "cancel_at_period_end": cancel_at_end,
              "provider_customer_id": current.get("provider_customer_id"),
              "provider_subscription_id": stripe_sub["id"], "past_due_since": None,
              "canceled_at": None}
    if status == "past_due":
        fields["past_due_since"] = (_iso(current.get("past_due_since"))
                                    if current["status"] == "past_due" else None) or _now()
    if cancel_at_end and status in ("active", "trialing"):
        # ours: canceled, running to the end of the paid period
        fields.update(status="canceled", canceled_at=_iso(current.get("canceled_at")) or _now())
    if status == "canceled":  # Stripe's canceled has ended: nothing runs on
        fields.update(canceled_at=_ts(stripe_sub.get("canceled_at")) or _now(),
                      cancel_at_period_end=False,
                      current_period_end=min(period_end or _now(), _now()))
    if current.get("started_at") and current["tier_id"] == tier["id"] \
            and current.get("provider") == "stripe":
        fields["started_at"] = _iso(current["started_at"])
    subscribe(user_id, tier["id"], None, actor, provider="stripe",
              event="subscription_synced_from_stripe", **fields)
    return "applied"


def _checkout_completed(session: dict) -> tuple[str, str | None]:
    """A paid Checkout: the user is client_reference_id, and must own the session's customer."""
    if session.get("mode") != "subscription":
        return "ignored_mode", None
    user_id = session.get("client_reference_id")
    sub = _ours(session.get("customer"))
    if sub is None or sub["user_id"] != user_id:
        log.warning("checkout session %s: customer and client_reference_id disagree",
                    session.get("id"))
        return "unknown_customer", None
    if not isinstance(session.get("subscription"), str):
        return "not_a_subscription", user_id
    stripe_sub = stripe_gateway.retrieve_subscription(session["subscription"])
    if stripe_sub.get("customer") != sub["provider_customer_id"]:
        return "unknown_customer", user_id
    return _sync(user_id, sub, stripe_sub, actor=None), user_id


def _invoice_paid(sub: dict, invoice: dict) -> str:
    sub_id = _invoice_subscription_id(invoice)
    if not _is_ours(sub, sub_id):
        # e.g. the first invoice, before its checkout.session.completed: ask Stripe
        if not sub_id:
            return "not_a_subscription"
        stripe_sub = stripe_gateway.retrieve_subscription(sub_id)
        if stripe_sub.get("customer") != sub["provider_customer_id"]:
            return "unknown_subscription"
        return _sync(sub["user_id"], sub, stripe_sub, actor=None)
    ends = [(line.get("period") or {}).get("end")
            for line in ((invoice.get("lines") or {}).get("data") or [])]
    period_end = _ts(max((e for e in ends if e), default=None))
    if period_end is None and sub["current_period_end"]:
        period_end = _iso(sub["current_period_end"])
    status = "canceled" if sub["status"] == "canceled" and sub["cancel_at_period_end"] \
        else "active"
    get_store().save_subscription(sub["user_id"], {
        "status": status, "past_due_since": None, "current_period_end": period_end})
    return "applied"


def _invoice_failed(sub: dict, invoice: dict) -> str:
    if not _is_ours(sub, _invoice_subscription_id(invoice)):
        return "unknown_subscription"
    if sub["status"] != "past_due":
        get_store().save_subscription(sub["user_id"], {"status": "past_due",
                                                       "past_due_since": _now()})
    return "applied"


def _subscription_updated(sub: dict, stripe_sub: dict) -> str:
    if not _is_ours(sub, stripe_sub.get("id")):
        return "unknown_subscription"
    return _sync(sub["user_id"], sub, stripe_sub, actor=None)


def _subscription_deleted(sub: dict, stripe_sub: dict) -> str:
    if not _is_ours(sub, stripe_sub.get("id")):
        return "unknown_subscription"
    ended = _ts(stripe_sub.get("ended_at")) or _now()
    get_store().save_subscription(sub["user_id"], {
        "status": "canceled", "cancel_at_period_end": False, "past_due_since": None,
        "current_period_end": min(ended, _now()),
        "canceled_at": _ts(stripe_sub.get("canceled_at")) or _now()})
    return "applied"

