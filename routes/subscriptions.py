"""/api/subscriptions: plans (public), the caller's subscription, admin management."""
from __future__ import annotations

from flask import Blueprint, g

from routes.schemas import (
    AdminSubscriptionIn,
    SubscribeIn,
    SubscriptionListOut,
    SubscriptionListQuery,
    SubscriptionOut,
    TierIn,
    TierListOut,
    TierOut,
    TierUpdateIn,
)
from services import plans
from services import subscriptions as svc
from utils.auth import require_admin, require_auth
from utils.openapi import endpoint

bp = Blueprint("subscriptions", __name__, url_prefix="/api/subscriptions")
TAGS = ["subscriptions"]


@bp.get("/tiers")
@endpoint(response=TierListOut, tags=TAGS)
def list_tiers():
    """Public: the plans on offer, cheapest first."""
    return svc.list_tiers()


@bp.get("/tiers/<tier_id>")
@endpoint(response=TierOut, tags=TAGS, errors=(404,))
def get_tier(tier_id: str):
    """Public: one plan."""
    return svc.get_tier(tier_id)


@bp.post("/tiers")
@require_admin
@endpoint(body=TierIn, response=TierOut, status=201, tags=TAGS, errors=(409,))
def create_tier(body: TierIn):
    """Admin: add a plan."""
    return svc.create_tier(g.user, body.model_dump()), 201


@bp.put("/tiers/<tier_id>")
@require_admin
@endpoint(body=TierUpdateIn, response=TierOut, tags=TAGS, errors=(404, 409))
def update_tier(tier_id: str, body: TierUpdateIn):
    """Admin: change a plan (is_active=false archives it)."""
    return svc.update_tier(g.user, tier_id, body.model_dump(exclude_unset=True))


@bp.delete("/tiers/<tier_id>")
@require_admin
@endpoint(status=204, tags=TAGS, errors=(404, 409))
def delete_tier(tier_id: str):
    """Admin: delete a plan nobody uses (409 tier_in_use otherwise)."""
    svc.delete_tier(g.user, tier_id)
    return "", 204


@bp.get("/user")
@require_auth
@endpoint(response=SubscriptionOut, tags=TAGS)
def my_subscription():
    """The caller's subscription with its plan, the plan in effect and this month's usage."""
    return svc.subscription_view(g.user.id)


@bp.post("/user")
@require_auth
@endpoint(body=SubscribeIn, response=SubscriptionOut, tags=TAGS, errors=(402, 404, 409, 503))
def subscribe(body: SubscribeIn):
    """Take a free plan or a trial; a paid plan answers 402 payment_required (admins grant)."""
    return plans.request_plan(g.user, body.tier_id, body.user_id, body.payment_reference)


@bp.post("/user/<user_id>/cancel")
@require_auth
@endpoint(response=SubscriptionOut, tags=TAGS, errors=(404, 409, 503))
def cancel(user_id: str):
    """Cancel your own subscription (or anyone's, as admin); Stripe stops at period end."""
    return plans.cancel(g.user, user_id)


@bp.get("/users")
@require_admin
@endpoint(query=SubscriptionListQuery, response=SubscriptionListOut, tags=TAGS)
def list_subscriptions(query: SubscriptionListQuery):
    """Admin: every user's subscription."""
    return svc.admin_list(query.limit, query.cursor, query.status)


@bp.get("/user/<user_id>")
@require_admin
@endpoint(response=SubscriptionOut, tags=TAGS, errors=(404,))
def get_user_subscription(user_id: str):
    """Admin: one user's subscription."""
    return svc.admin_view(user_id)


@bp.put("/user/<user_id>")
@require_admin
@endpoint(body=AdminSubscriptionIn, response=SubscriptionOut, tags=TAGS, errors=(404, 503))
def set_user_subscription(user_id: str, body: AdminSubscriptionIn):
    """Admin: set a user's plan, status or period end (Stripe stops billing a replaced plan)."""
    return plans.admin_set(g.user, user_id, body.model_dump(exclude_unset=True))
