"""Who may change a plan, and how: the policy behind POST /api/subscriptions/user and cancel.

- A user may put themselves on a free plan (price 0), or start a plan's trial (`trial_days`
  on the plan) once per account.
- Any other plan needs a payment: 402 `payment_required` and nothing changes; with Stripe
  configured the error carries a `checkout_url` (services/billing.py), and the plan starts
  when Stripe's signed webhook says the invoice is paid.
- An admin grants any plan to any user (or to themselves); a grant runs until changed. A
  grant (or an admin's direct change of plan or status) over a plan Stripe still bills first
  tells Stripe to stop billing at period end — the customer is never charged for a plan an
  admin replaced — and answers 503 with nothing changed when Stripe cannot be told.
- A non-admin naming another user's id gets 404, as for a user that does not exist.
Every grant, change and cancellation goes to the audit log.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from models_db import User, db
from services import billing
from services.subscriptions import (
    effective_tier_id,
    ensure_subscription,
    get_tier,
    mark_canceled,
    read_subscription,
    set_subscription,
    subscribe,
    subscription_view,
)
from utils import stripe_gateway
from utils.errors import Conflict, NotFound, PaymentRequired

# statuses in which Stripe keeps billing the customer
BILLED_STATUSES = ("active", "trialing", "past_due")


def _target(actor: User, user_id: str | None) -> User:
    """The user whose plan changes: the caller, or (admins only) the one named."""
    if user_id is None or user_id == actor.id:
        return actor
    target = db.session.get(User, user_id) if actor.is_admin else None
    if target is None:  # another user's id from a non-admin looks exactly like a missing one
        raise NotFound("No such user.", code="user_not_found")
    return target


def _is_stripe_billed(sub: dict | None) -> bool:
    return bool(sub and sub.get("provider") == "stripe" and sub["status"] in BILLED_STATUSES
                and not sub["cancel_at_period_end"])


def request_plan(actor: User, tier_id: str, user_id: str | None = None,
                 payment_reference: str | None = None) -> dict:
    """Change a plan as far as the caller may: an admin grants, a user takes a free plan or
    their one trial; a paid plan answers 402 payment_required (with a checkout_url).
    """
    target = _target(actor, user_id)
    if actor.is_admin:
        return grant(target.id, tier_id, payment_reference, actor.id)
    tier = get_tier(tier_id)
    current = read_subscription(target.id) or ensure_subscription(target.id)
    if (current["tier_id"] == tier["id"] and effective_tier_id(current) == tier["id"]
            and current["status"] in ("active", "trialing")):
        return subscription_view(target.id)  # already on it: nothing to change
    if tier["price"] == 0:
        if _is_stripe_billed(current):
            raise Conflict("Your paid plan is still billed: cancel it first (it then runs to "
                           "the end of the paid period).", code="subscription_billed")
        return subscribe(target.id, tier["id"], None, actor.id, provider=None,
                         event="subscription_changed")
    if _is_stripe_billed(current):
        # a second Checkout would bill the user twice
        raise Conflict("Your current plan is billed through Stripe: cancel it first, then "
                       "choose the new plan.", code="subscription_billed")
    if tier["trial_days"] > 0 and not current.get("trial_started_at"):
        now = datetime.now(timezone.utc)
        return subscribe(target.id, tier["id"], None, actor.id, provider=None,
                         event="trial_started", status="trialing", trial_started_at=now,
                         current_period_end=now + timedelta(days=tier["trial_days"]))
    extra = {}
    if stripe_gateway.is_configured() and tier.get("stripe_price_id"):
        extra["checkout_url"] = billing.start_checkout(target, tier)
    how = ("Pay through checkout_url; the plan starts once the payment is confirmed."
           if extra else "An administrator grants paid plans on this installation.")
    raise PaymentRequired(f"The {tier['name']} plan needs a payment. {how}",
                          code="payment_required", extra=extra)


def grant(user_id: str, tier_id: str, payment_reference: str | None, actor_id: str | None,
          *, event: str = "subscription_granted") -> dict:
    """An operator's grant (admin API, admin page, `flask grant-plan`): the plan applies now
    with no payment and runs until changed; a plan Stripe still bills stops being billed.
    """
    _stop_stripe_billing(user_id)
    return subscribe(user_id, tier_id, payment_reference, actor_id, provider="admin",
                     event=event)


def admin_set(actor: User, user_id: str, changes: dict) -> dict:
    """Admin: set a user's plan, status or period end directly (e.g. a manual deal); a
    change of plan or status stops Stripe's billing first (see the module's rules).
    """
    if db.session.get(User, user_id) is None:
        raise NotFound("No such user.", code="user_not_found")
    if "tier_id" in changes or "status" in changes:
        _stop_stripe_billing(user_id)
    return set_subscription(actor, user_id, changes)


def _stop_stripe_billing(user_id: str) -> None:
    """Before an admin replaces a plan Stripe still bills: Stripe stops billing at period
    end (503 and nothing changes if it cannot be told), and the subscription no longer
    follows Stripe's events for it.
    """
    current = read_subscription(user_id)
    if _is_stripe_billed(current) and current.get("provider_subscription_id"):
        billing.cancel_at_period_end(user_id, current)


def cancel(actor: User, user_id: str) -> dict:
    """Cancel at period end (a paid period runs out; Stripe stops billing) or at once.
    Someone else's subscription answers 404 unless the caller is an admin.
    """
    if actor.id != user_id and not actor.is_admin:
        raise NotFound("No such subscription.", code="subscription_not_found")
    if db.session.get(User, user_id) is None:
        raise NotFound("No such subscription.", code="subscription_not_found")
    sub = read_subscription(user_id) or ensure_subscription(user_id)
    if sub["status"] in ("canceled", "expired"):
        raise Conflict(f"This subscription is already {sub['status']}.",
                       code="subscription_not_active")
    if sub.get("provider") == "stripe" and sub.get("provider_subscription_id") \
            and sub["status"] in BILLED_STATUSES:
        # Stripe first: if it cannot be told, nothing changes here either (503)
        billing.cancel_at_period_end(user_id, sub)
    return mark_canceled(actor.id, user_id, sub)
