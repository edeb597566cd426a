"""/api/subscriptions: plans, a user's subscription, usage."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from routes.schemas.common import ListQuery, Platform, StrictModel

FeatureName = Literal["ai_replies", "knowledge_base", "workflows", "slack", "email", "hubspot",
                      "salesforce", "google_analytics", "zendesk", "mysql", "postgresql",
                      "mongodb", "sqlserver"]


Limit = Annotated[int, Field(ge=0)] | None


SubscriptionStatus = Literal["active", "trialing", "past_due", "canceled", "expired"]


StripePriceId = Annotated[str, Field(
    pattern=r"^price_[A-Za-z0-9_]+$", max_length=255,
    description="the Stripe Price that bills this plan (Checkout and webhooks map by it)")]


PaymentProvider = Literal["stripe", "admin"]


class TierIn(StrictModel):
    """A new plan: price, platforms, features and limits (null = unlimited)."""

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    price: Decimal = Field(ge=0, max_digits=10, decimal_places=2)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    billing_interval: Literal["month", "year"] = "month"
    features: list[FeatureName] = Field(default_factory=list)
    platforms: list[Platform] = Field(default_factory=list)
    monthly_ai_replies: Limit = Field(description="null means unlimited")
    platform_accounts: Limit = Field(description="null means unlimited")
    integrations: Limit = Field(description="null means unlimited")
    knowledge_documents: Limit = Field(description="null means unlimited")
    is_active: bool = True
    trial_days: int = Field(default=0, ge=0, le=365,
                            description="days of free trial a user may start once; 0 = none")
    stripe_price_id: StripePriceId | None = None


class TierUpdateIn(StrictModel):
    """Changes to a plan; subscribers get the new limits at once."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    price: Decimal | None = Field(default=None, ge=0, max_digits=10, decimal_places=2)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    billing_interval: Literal["month", "year"] | None = None
    features: list[FeatureName] | None = None
    platforms: list[Platform] | None = None
    monthly_ai_replies: Limit = None
    platform_accounts: Limit = None
    integrations: Limit = None
    knowledge_documents: Limit = None
    is_active: bool | None = None
    trial_days: int | None = Field(default=None, ge=0, le=365)
    stripe_price_id: StripePriceId | None = None


class TierOut(BaseModel):
    """A plan and what it allows."""

    id: str
    name: str
    description: str
    price: float
    currency: str
    billing_interval: Literal["month", "year"]
    features: list[str]
    platforms: list[str]
    monthly_ai_replies: int | None
    platform_accounts: int | None
    integrations: int | None
    knowledge_documents: int | None
    is_active: bool
    trial_days: int
    stripe_price_id: str | None


class TierListOut(BaseModel):
    """The plans, cheapest first."""

    items: list[TierOut]
    next_cursor: str | None


class SubscribeIn(StrictModel):
    """A free plan or a trial for yourself; a paid plan answers 402 payment_required (with
    `checkout_url` when Stripe is configured). Admins grant any plan to `user_id` (default:
    themselves); a non-admin naming another user gets 404.
    """

    tier_id: str = Field(min_length=1, max_length=36)
    user_id: str | None = Field(default=None, min_length=1, max_length=36,
                                description="admin only: whose plan (default: the caller)")
    payment_reference: str | None = Field(
        default=None, max_length=255,
        description="admin grants: a reference kept with the grant (e.g. an invoice number; "
                    "never card data)")


class UsageOut(BaseModel):
    """This month's metered usage against the plan's limits."""

    period: str
    ai_replies: int
    ai_replies_limit: int | None


class SubscriptionOut(BaseModel):
    """A user's subscription, its plan, the plan in effect now and the usage."""

    id: str
    user_id: str
    tier_id: str
    status: SubscriptionStatus
    started_at: datetime
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    payment_reference: str | None
    provider: PaymentProvider | None = Field(
        description="who bills it: stripe, admin (a grant), null (a free plan or a trial)")
    provider_customer_id: str | None
    provider_subscription_id: str | None
    past_due_since: datetime | None = Field(
        description="past_due: the plan is kept for STRIPE_GRACE_DAYS from here")
    trial_started_at: datetime | None = Field(description="set once: one trial per account")
    effective_until: datetime | None = Field(
        description="when the plan stops applying (null: until changed)")
    tier: TierOut
    effective_tier: TierOut
    usage: UsageOut


class SubscriptionRowOut(BaseModel):
    """A subscription as the admin list shows it."""

    id: str
    user_id: str
    tier_id: str
    status: SubscriptionStatus
    started_at: datetime
    current_period_end: datetime | None
    cancel_at_period_end: bool
    provider: PaymentProvider | None


class SubscriptionListOut(BaseModel):
    """A page of every user's subscription, newest first."""

    items: list[SubscriptionRowOut]
    next_cursor: str | None


class SubscriptionListQuery(ListQuery):
    """Admin subscription filter: status."""

    status: SubscriptionStatus | None = None


class AdminSubscriptionIn(StrictModel):
    """An admin's direct change of a user's plan, status or period end."""

    tier_id: str | None = Field(default=None, min_length=1, max_length=36)
    status: SubscriptionStatus | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool | None = None
