"""Plans and user subscriptions: what a user pays for, and when it ends.

A user without a subscription row, or whose period has ended, is on Free. Expiry is applied
when the subscription is read, so nothing depends on a scheduled job having run.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from models_db import User, db
from utils import usage
from utils.audit import audit
from utils.config import current_settings
from utils.errors import Conflict, NotFound
from utils.store import get_store
from utils.store.base import DuplicateTier

FREE_TIER_ID = "free"
PERIODS = {"month": timedelta(days=30), "year": timedelta(days=365)}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _parse(ts: str | None) -> datetime | None:
    return datetime.fromisoformat(ts) if ts else None


# ---------------------------------------------------------------------------- tiers

def list_tiers(include_inactive: bool = False) -> dict:
    """Plans, cheapest first, in the list shape."""
    return {"items": get_store().list_tiers(include_inactive), "next_cursor": None}


def get_tier(tier_id: str, include_inactive: bool = False) -> dict:
    """One plan; 404 tier_not_found if missing (or archived, unless include_inactive)."""
    tier = get_store().get_tier(tier_id)
    if tier is None or (not tier["is_active"] and not include_inactive):
        raise NotFound("No such plan.", code="tier_not_found")
    return tier


def check_price_free(price_id: str | None, tier_id: str | None = None) -> None:
    """A Stripe price bills one plan only: webhooks find the plan by it."""
    if not price_id:
        return
    for tier in get_store().list_tiers(include_inactive=True):
        if tier["stripe_price_id"] == price_id and tier["id"] != tier_id:
            raise Conflict(f"The {tier['name']} plan already has this Stripe price.",
                           code="stripe_price_in_use")


def create_tier(actor: User, data: dict) -> dict:
    """Admin: add a plan; its name (and Stripe price, if any) must be unique."""
    check_price_free(data.get("stripe_price_id"))
    try:
        tier = get_store().create_tier(data)
    except DuplicateTier:
        raise Conflict("A plan with this name already exists.", code="tier_exists") from None
    audit("tier_created", actor_id=actor.id, tier_id=tier["id"], name=tier["name"])
    return tier


def update_tier(actor: User, tier_id: str, data: dict) -> dict:
    """Admin: change a plan; subscribers get the new limits at once."""
    get_tier(tier_id, include_inactive=True)
    if "trial_days" in data and data["trial_days"] is None:
        del data["trial_days"]
    check_price_free(data.get("stripe_price_id"), tier_id)
    try:
        tier = get_store().update_tier(tier_id, data)
    except DuplicateTier:
        raise Conflict("A plan with this name already exists.", code="tier_exists") from None
    audit("tier_updated", actor_id=actor.id, tier_id=tier_id, fields=sorted(data))
    return tier


def delete_tier(actor: User, tier_id: str) -> None:
    """Admin: delete an unused plan; one in use answers 409 (archive it with is_active=false)."""
    get_tier(tier_id, include_inactive=True)
    if tier_id == FREE_TIER_ID:
        raise Conflict("The Free plan is the fallback for every user and cannot be deleted.",
                       code="tier_in_use")
    used = get_store().count_tier_subscriptions(tier_id)
    if used:
        raise Conflict(f"{used} subscription(s) use this plan; archive it instead "
                       "(PUT with is_active=false).", code="tier_in_use")
    get_store().delete_tier(tier_id)
    audit("tier_deleted", actor_id=actor.id, tier_id=tier_id)


# -------------------------------------------------------------------- subscriptions

def _grace() -> timedelta:
    return timedelta(days=current_settings().STRIPE_GRACE_DAYS)


def paid_until(sub: dict) -> datetime | None:
    """When the subscribed plan stops applying (None: it runs until changed).

    A past-due subscription keeps its plan for the grace period counted from the failed
    payment. One billed by Stripe and still active also gets the grace period past its period
    end: the renewal's invoice.paid may arrive a little after the period has turned over. A
    trial, a grant with an end, or a cancellation at period end stops exactly at period end.
    """
    if sub["status"] == "past_due":
        since = _parse(sub.get("past_due_since")) or _parse(sub["updated_at"]) or _now()
        return since + _grace()
    end = _parse(sub["current_period_end"])
    if end is not None and sub.get("provider") == "stripe" and sub["status"] == "active":
        return end + _grace()
    return end


def _is_expired(sub: dict, now: datetime) -> bool:
    until = paid_until(sub)
    return sub["status"] == "expired" or (until is not None and until <= now)


def effective_tier_id(sub: dict | None, now: datetime | None = None) -> str:
    """The plan that applies now: the subscribed one while it runs (past due: within the
    grace period; canceled: until the paid period ends), else Free.
    """
    now = now or _now()
    if sub is None or _is_expired(sub, now):
        return FREE_TIER_ID
    if sub["status"] == "canceled" and sub["current_period_end"] is None:
        return FREE_TIER_ID
    return sub["tier_id"]


def read_subscription(user_id: str) -> dict | None:
    """The stored subscription, with expiry applied (and persisted) on read. A past-due one
    is left past due (an invoice may still be paid); its plan just stops applying.
    """
    return _expire_if_due(user_id, get_store().get_subscription(user_id))


def read_subscription_and_tier(user_id: str) -> tuple[dict | None, dict | None]:
    """read_subscription() and the plan the stored row names (None without a subscription),
    read together (store.get_subscription_and_tier).
    """
    sub, tier = get_store().get_subscription_and_tier(user_id)
    return _expire_if_due(user_id, sub), tier


def _expire_if_due(user_id: str, sub: dict | None) -> dict | None:
    if sub is not None and sub["status"] not in ("expired", "past_due") \
            and _is_expired(sub, _now()):
        sub = get_store().save_subscription(user_id, {"status": "expired"})
    return sub


def ensure_subscription(user_id: str) -> dict:
    """Give a new user the Free plan (idempotent)."""
    sub = get_store().get_subscription(user_id)
    if sub is None:
        sub = get_store().save_subscription(user_id, {
            "tier_id": FREE_TIER_ID, "status": "active", "started_at": _now(),
            "current_period_end": None, "cancel_at_period_end": False, "canceled_at": None})
    return sub


def subscription_view(user_id: str) -> dict:
    """The user's subscription with its plan, the plan in effect now and this month's usage."""
    sub = read_subscription(user_id) or ensure_subscription(user_id)
    tier = get_store().get_tier(sub["tier_id"])
    effective_id = effective_tier_id(sub)
    effective = tier if effective_id == sub["tier_id"] else get_store().get_tier(effective_id)
    until = paid_until(sub) if effective_id == sub["tier_id"] else None
    return {**sub, "effective_until": until.isoformat() if until else None, "tier": tier,
            "effective_tier": effective, "usage": usage_summary(user_id, effective)}


def usage_summary(user_id: str, tier: dict) -> dict:
    """This month's metered usage against the plan's limits."""
    return {"period": usage.period(), "ai_replies": usage.count(user_id, usage.AI_REPLIES),
            "ai_replies_limit": tier["monthly_ai_replies"]}


def subscribe(user_id: str, tier_id: str, payment_reference: str | None, actor_id: str | None,
              *, provider: str | None = "admin", event: str = "subscription_granted",
              **fields) -> dict:
    """Put the user on a plan now, with no payment check: the callers are the policy
    (services/plans.py: an admin's grant, a free plan, a trial), the CLI and the Stripe
    webhook. A grant runs until changed unless `current_period_end` is given.
    """
    tier = get_tier(tier_id, include_inactive=provider == "stripe")
    previous = get_store().get_subscription(user_id)
    values = {"tier_id": tier["id"], "status": "active", "started_at": _now(),
              "current_period_end": None, "cancel_at_period_end": False, "canceled_at": None,
              "payment_reference": payment_reference, "provider": provider,
              "past_due_since": None, **fields}
    get_store().save_subscription(user_id, values)
    audit(event, user_id=user_id, actor_id=actor_id,
          from_tier=previous["tier_id"] if previous else None, to_tier=tier["id"],
          status=values["status"], provider=provider)
    return subscription_view(user_id)


def mark_canceled(actor_id: str | None, user_id: str, sub: dict) -> dict:
    """Record a cancellation: a plan with a paid period runs to its end, any other ends now."""
    if sub["status"] in ("canceled", "expired"):
        raise Conflict(f"This subscription is already {sub['status']}.",
                       code="subscription_not_active")
    get_store().save_subscription(user_id, {
        "status": "canceled", "cancel_at_period_end": sub["current_period_end"] is not None,
        "canceled_at": _now()})
    audit("subscription_canceled", user_id=user_id, actor_id=actor_id,
          tier_id=sub["tier_id"], provider=sub.get("provider"))
    return subscription_view(user_id)


def admin_list(limit: int, cursor: str | None, status: str | None) -> dict:
    """Admin: every user's subscription, newest first."""
    return get_store().list_subscriptions(limit, cursor, status).to_dict()


def admin_view(user_id: str) -> dict:
    """Admin: one user's subscription view; 404 when the user does not exist."""
    if db.session.get(User, user_id) is None:
        raise NotFound("No such user.")
    return subscription_view(user_id)


def set_subscription(actor: User, user_id: str, changes: dict) -> dict:
    """Write an admin's direct change of plan, status or period end (the policy, Stripe
    included, is services/plans.admin_set's).
    """
    ensure_subscription(user_id)
    if "tier_id" in changes:
        get_tier(changes["tier_id"], include_inactive=True)
    get_store().save_subscription(user_id, changes)
    audit("admin_subscription_set", user_id=user_id, actor_id=actor.id,
          **{k: str(v) for k, v in changes.items()})
    return subscription_view(user_id)
