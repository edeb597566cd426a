"""The one place that answers "may this user do X now" from the plan in effect.

Every gate calls these: connecting a platform account, each AI reply, creating an
integration, adding knowledge documents. A refusal is a 402 `plan_limit` naming the
cheapest plan that would allow it.
"""
from __future__ import annotations

from datetime import datetime

from models_db import db
from services.subscriptions import effective_tier_id, read_subscription_and_tier
from utils import usage
from utils.db import memoized
from utils.errors import PaymentRequired
from utils.store import get_store

LIMIT_LABELS = {
    "platform_accounts": "connected platform accounts",
    "integrations": "integrations",
    "knowledge_documents": "knowledge documents",
    "monthly_ai_replies": "AI replies a month",
}


def effective_tier(user_id: str) -> dict:
    """The plan in effect now (Free when nothing else applies); read once per event run
    (utils.db.memoized: the AI reply's quota and the team's notifications both ask).
    """
    return memoized(("effective_tier", user_id), lambda: _read_effective_tier(user_id))


def _read_effective_tier(user_id: str) -> dict:
    sub, tier = read_subscription_and_tier(user_id)
    tier_id = effective_tier_id(sub)
    if tier is not None and tier["id"] == tier_id:
        return tier  # the subscribed plan applies: read with the subscription
    return get_store().get_tier(tier_id)


def _cheapest(predicate) -> dict | None:
    for tier in get_store().list_tiers():  # cheapest first
        if predicate(tier):
            return tier
    return None


def _refuse(tier: dict, what: str, predicate) -> None:
    better = _cheapest(predicate)
    hint = (f" The cheapest plan that allows it is {better['name']} "
            f"({better['price']:g} {better['currency']}/{better['billing_interval']})."
            if better else " No plan allows it; contact us.")
    raise PaymentRequired(f"Your {tier['name']} plan does not allow {what}.{hint}",
                          code="plan_limit")


def _within(limit: int | None, count: int) -> bool:
    return limit is None or count < limit


def require_platform(user_id: str, platform: str, connected_accounts: int) -> None:
    """May the user connect one more account on this platform?"""
    tier = effective_tier(user_id)
    if platform not in tier["platforms"]:
        _refuse(tier, f"{platform.capitalize()} accounts", lambda t: platform in t["platforms"])
    if not _within(tier["platform_accounts"], connected_accounts):
        _refuse(tier, f"more than {tier['platform_accounts']} connected platform account(s)",
                lambda t: platform in t["platforms"]
                and _within(t["platform_accounts"], connected_accounts))


def require_feature(user_id: str, feature: str, current_count: int | None = None,
                    limit_name: str | None = None) -> None:
    """May the user use this feature (e.g. the 'slack' integration), within a count limit?"""
    tier = effective_tier(user_id)
    if feature not in tier["features"]:
        _refuse(tier, f"the {feature} feature", lambda t: feature in t["features"])
    if limit_name and current_count is not None and not _within(tier[limit_name], current_count):
        _refuse(tier, f"more than {tier[limit_name]} {LIMIT_LABELS[limit_name]}",
                lambda t: feature in t["features"] and _within(t[limit_name], current_count))


def require_capacity(user_id: str, limit_name: str, current_count: int, adding: int = 1) -> None:
    """May the user add `adding` more of a counted resource (e.g. knowledge documents)?"""
    tier = effective_tier(user_id)
    limit = tier[limit_name]
    if limit is not None and current_count + adding > limit:
        _refuse(tier, f"more than {limit} {LIMIT_LABELS[limit_name]}",
                lambda t: t[limit_name] is None or current_count + adding <= t[limit_name])


def ai_replies_used(user_id: str, now: datetime | None = None) -> int:
    """AI replies counted against the user's quota in the month of `now`."""
    return usage.count(user_id, usage.AI_REPLIES, now)


def usage_count(user_id: str, metric: str, now: datetime | None = None) -> int:
    """Any metered counter (e.g. AI tokens) of the user in the month of `now`."""
    return usage.count(user_id, metric, now)


def release_ai_reply(user_id: str) -> None:
    """Give back an AI reply consume_ai_reply counted when the AI then did not answer (it
    handed off, or failed): only answers sent or drafted count against the quota.
    """
    if not db.session.is_active:  # the failure was the database's: start a new transaction
        db.session.rollback()
    usage.give_back(user_id, usage.AI_REPLIES)


def consume_ai_reply(user_id: str) -> bool:
    """Count one AI reply if the month's quota allows it; False means hand off instead.

    The check and the increment are one atomic UPDATE (utils.usage.increment), so
    concurrent workers can never exceed the quota.
    """
    tier = effective_tier(user_id)
    if "ai_replies" not in tier["features"]:
        return False
    return usage.increment(user_id, usage.AI_REPLIES, limit=tier["monthly_ai_replies"])
