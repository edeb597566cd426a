"""The store contract for plans and user subscriptions: same tests on every backend.

The default plans come from the backend's own migration (Alembic 0003 for SQL,
supabase/migrations/0002_subscriptions.sql for Supabase); the first test pins both to the
same values.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from utils.store.base import DuplicateTier

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
EVERY_INTEGRATION = ["slack", "email", "hubspot", "salesforce", "google_analytics", "zendesk",
                     "mysql", "postgresql", "mongodb", "sqlserver"]
# id: (name, price, features, platforms, monthly_ai_replies, platform_accounts, integrations,
#      knowledge_documents)
DEFAULT_TIERS = {
    "free": ("Free", 0, ["ai_replies", "knowledge_base"], ["facebook"], 100, 1, 0, 20),
    "starter": ("Starter", 19, ["ai_replies", "knowledge_base", "workflows", "slack", "email"],
                ["facebook", "instagram"], 1000, 2, 2, 200),
    "professional": ("Professional", 49,
                     ["ai_replies", "knowledge_base", "workflows"] + EVERY_INTEGRATION,
                     ["facebook", "instagram", "whatsapp"], 10000, 5, 10, 2000),
    "enterprise": ("Enterprise", 199,
                   ["ai_replies", "knowledge_base", "workflows"] + EVERY_INTEGRATION,
                   ["facebook", "instagram", "whatsapp"], None, None, None, None),
}
TIER_KEYS = {"id", "name", "description", "price", "currency", "billing_interval", "features",
             "platforms", "monthly_ai_replies", "platform_accounts", "integrations",
             "knowledge_documents", "is_active", "trial_days", "stripe_price_id", "created_at",
             "updated_at"}
SUBSCRIPTION_KEYS = {"id", "user_id", "tier_id", "status", "started_at", "current_period_end",
                     "cancel_at_period_end", "canceled_at", "payment_reference", "provider",
                     "provider_customer_id", "provider_subscription_id", "past_due_since",
                     "trial_started_at", "created_at", "updated_at"}
NEW_TIER = {"name": "Team", "description": "For teams", "price": Decimal("29.50"),
            "currency": "EUR", "billing_interval": "year", "features": ["ai_replies", "slack"],
            "platforms": ["facebook", "whatsapp"], "monthly_ai_replies": 500,
            "platform_accounts": 3, "integrations": 1, "knowledge_documents": None,
            "is_active": True}


def _active(tier_id: str = "starter", **changes) -> dict:
    """What services/subscriptions.subscribe stores."""
    return {"tier_id": tier_id, "status": "active", "started_at": T0,
            "current_period_end": None, "cancel_at_period_end": False, "canceled_at": None,
            "payment_reference": None, **changes}


@pytest.fixture
def users(app):
    """Five user ids that exist in the users table (SQL: user_subscriptions has a foreign key)."""
    from models_db import User, db
    rows = [User(email=f"s-{uuid.uuid4().hex[:8]}@example.com", name="Subscriber")
            for _ in range(5)]
    for u in rows:
        u.set_password("subscriber-password")
    db.session.add_all(rows)
    db.session.commit()
    return [u.id for u in rows]


def test_default_tiers_are_seeded_cheapest_first(store):
    tiers = store.list_tiers()
    assert [t["id"] for t in tiers] == list(DEFAULT_TIERS)
    for tier in tiers:
        assert set(tier) == TIER_KEYS
        name, price, features, platforms, replies, accounts, integrations, documents = \
            DEFAULT_TIERS[tier["id"]]
        assert (tier["name"], tier["price"], tier["features"], tier["platforms"],
                tier["monthly_ai_replies"], tier["platform_accounts"], tier["integrations"],
                tier["knowledge_documents"]) == (name, price, features, platforms, replies,
                                                 accounts, integrations, documents)
        assert (tier["currency"], tier["billing_interval"], tier["is_active"]) == \
            ("USD", "month", True)
        # no trial and no Stripe price until an admin sets them (migration default)
        assert (tier["trial_days"], tier["stripe_price_id"]) == (0, None)
        assert isinstance(tier["price"], float) and tier["description"]
    assert store.get_tier("starter") == tiers[1]


def test_archived_tiers_are_listed_only_when_asked(store):
    archived = store.update_tier("starter", {"is_active": False})
    assert archived["is_active"] is False
    assert [t["id"] for t in store.list_tiers()] == ["free", "professional", "enterprise"]
    assert [t["id"] for t in store.list_tiers(include_inactive=True)] == list(DEFAULT_TIERS)
    assert store.get_tier("starter")["is_active"] is False  # its subscribers still see it


def test_tier_create_get_update_delete(store):
    tier = store.create_tier(NEW_TIER)
    assert set(tier) == TIER_KEYS and tier["id"] not in DEFAULT_TIERS
    assert tier["price"] == 29.5 and tier["currency"] == "EUR"
    assert tier["billing_interval"] == "year" and tier["knowledge_documents"] is None
    assert tier["features"] == ["ai_replies", "slack"]
    assert tier["created_at"] and tier["updated_at"]
    assert store.get_tier(tier["id"]) == tier
    # cheapest first, wherever the new plan's price puts it
    assert [t["id"] for t in store.list_tiers()] == ["free", "starter", tier["id"],
                                                     "professional", "enterprise"]

    changed = store.update_tier(tier["id"], {"price": Decimal("35"), "name": "Team+",
                                             "platforms": ["facebook"],
                                             "monthly_ai_replies": None})
    assert (changed["id"], changed["price"], changed["name"], changed["platforms"],
            changed["monthly_ai_replies"]) == (tier["id"], 35, "Team+", ["facebook"], None)
    assert changed["integrations"] == 1 and changed["created_at"] == tier["created_at"]
    assert store.get_tier(tier["id"]) == changed
    assert store.update_tier(tier["id"], {}) == changed

    assert store.update_tier("no-such-tier", {"price": Decimal("1")}) is None
    assert store.get_tier("no-such-tier") is None
    assert store.delete_tier(tier["id"]) is True
    assert store.get_tier(tier["id"]) is None
    assert store.delete_tier(tier["id"]) is False


def test_duplicate_tier_name_is_refused(store):
    team = store.create_tier(NEW_TIER)
    with pytest.raises(DuplicateTier):
        store.create_tier({**NEW_TIER, "price": Decimal("1")})
    with pytest.raises(DuplicateTier):
        store.create_tier({**NEW_TIER, "name": "Free"})
    with pytest.raises(DuplicateTier):
        store.update_tier(team["id"], {"name": "Starter"})
    # nothing changed, and the store is still usable after the refusals
    assert store.get_tier(team["id"]) == team
    assert [t["name"] for t in store.list_tiers()] == ["Free", "Starter", "Team", "Professional",
                                                       "Enterprise"]


def test_save_subscription_keeps_one_row_per_user(store, users):
    a, b = users[:2]
    assert store.get_subscription(a) is None
    first = store.save_subscription(a, _active(payment_reference="pi_1"))
    assert set(first) == SUBSCRIPTION_KEYS
    assert (first["user_id"], first["tier_id"], first["status"], first["started_at"],
            first["current_period_end"], first["cancel_at_period_end"], first["canceled_at"],
            first["payment_reference"]) == (a, "starter", "active", T0.isoformat(), None,
                                            False, None, "pi_1")
    assert store.get_subscription(a) == first

    # a partial save changes only what it names, on the same row
    canceled = store.save_subscription(a, {"status": "canceled", "canceled_at": T0,
                                           "cancel_at_period_end": True})
    assert canceled["id"] == first["id"] and canceled["created_at"] == first["created_at"]
    assert (canceled["status"], canceled["canceled_at"], canceled["cancel_at_period_end"],
            canceled["tier_id"], canceled["payment_reference"]) == \
        ("canceled", T0.isoformat(), True, "starter", "pi_1")
    # a new plan is a new period on the same row; a naive time is UTC on every backend
    again = store.save_subscription(a, _active("professional",
                                               current_period_end=datetime(2026, 4, 1, 12)))
    assert again["id"] == first["id"] and again["status"] == "active"
    assert again["current_period_end"] == "2026-04-01T12:00:00+00:00"
    assert store.get_subscription(a) == again

    assert store.get_subscription(b) is None
    assert [s["user_id"] for s in store.list_subscriptions(100, None).items] == [a]
    assert store.get_subscription(str(uuid.uuid4())) is None


def test_subscription_and_tier_read_together(store, users):
    a, b = users[:2]
    assert store.get_subscription_and_tier(a) == (None, None)
    store.save_subscription(a, _active("professional"))
    sub, tier = store.get_subscription_and_tier(a)
    assert sub == store.get_subscription(a)
    assert tier == store.get_tier("professional")
    store.save_subscription(a, {"tier_id": "starter", "status": "expired"})
    assert store.get_subscription_and_tier(a) == (store.get_subscription(a),
                                                  store.get_tier("starter"))
    assert store.get_subscription_and_tier(b) == (None, None)


def test_count_tier_subscriptions(store, users):
    a, b, c = users[:3]
    assert store.count_tier_subscriptions("starter") == 0
    store.save_subscription(a, _active("starter"))
    store.save_subscription(b, _active("starter"))
    store.save_subscription(c, _active("free"))
    assert store.count_tier_subscriptions("starter") == 2
    assert store.count_tier_subscriptions("free") == 1
    store.save_subscription(b, {"tier_id": "professional"})
    assert store.count_tier_subscriptions("starter") == 1
    assert store.count_tier_subscriptions("professional") == 1
    assert store.count_tier_subscriptions("no-such-tier") == 0


def test_list_subscriptions_newest_first_with_keyset_and_status(store, users):
    for i, user_id in enumerate(users):
        store.save_subscription(user_id, _active("starter" if i % 2 else "free"))
    store.save_subscription(users[1], {"status": "expired"})
    store.save_subscription(users[3], {"status": "expired"})

    everything = store.list_subscriptions(100, None)
    assert [s["user_id"] for s in everything.items] == list(reversed(users))
    assert everything.next_cursor is None and set(everything.items[0]) == SUBSCRIPTION_KEYS

    seen, cursor, pages = [], None, 0
    while True:
        page = store.list_subscriptions(2, cursor)
        seen += [s["user_id"] for s in page.items]
        pages, cursor = pages + 1, page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(users)) and pages == 3

    expired = store.list_subscriptions(1, None, status="expired")
    assert [s["user_id"] for s in expired.items] == [users[3]]
    rest = store.list_subscriptions(1, expired.next_cursor, status="expired")
    assert [s["user_id"] for s in rest.items] == [users[1]] and rest.next_cursor is None
    assert store.list_subscriptions(100, None, status="past_due").items == []


def test_tier_trial_days_and_stripe_price(store):
    tier = store.create_tier({**NEW_TIER, "trial_days": 14, "stripe_price_id": "price_1Team"})
    assert (tier["trial_days"], tier["stripe_price_id"]) == (14, "price_1Team")
    plain = store.create_tier({**NEW_TIER, "name": "Plain"})
    assert (plain["trial_days"], plain["stripe_price_id"]) == (0, None)
    changed = store.update_tier(tier["id"], {"stripe_price_id": None, "trial_days": 0})
    assert (changed["trial_days"], changed["stripe_price_id"]) == (0, None)
    store.update_tier("starter", {"stripe_price_id": "price_1Starter", "trial_days": 7})
    starter = store.get_tier("starter")
    assert (starter["trial_days"], starter["stripe_price_id"]) == (7, "price_1Starter")
    assert starter in store.list_tiers()


def test_subscription_payment_information(store, users):
    a, b = users[:2]
    fresh = store.save_subscription(a, _active())
    assert all(fresh[k] is None for k in ("provider", "provider_customer_id",
                                          "provider_subscription_id", "past_due_since",
                                          "trial_started_at"))
    paid = store.save_subscription(a, _active(
        "professional", provider="stripe", provider_customer_id="cus_A",
        provider_subscription_id="sub_A", current_period_end=datetime(2026, 4, 1, 12),
        trial_started_at=T0))
    assert (paid["provider"], paid["provider_customer_id"], paid["provider_subscription_id"],
            paid["trial_started_at"]) == ("stripe", "cus_A", "sub_A", T0.isoformat())
    # every status the billing flow uses round-trips, with the time a payment became overdue
    for status in ("trialing", "past_due", "canceled", "expired", "active"):
        saved = store.save_subscription(a, {"status": status,
                                            "past_due_since": T0 if status == "past_due"
                                            else None})
        assert saved["status"] == status and saved["id"] == paid["id"]
        assert saved["past_due_since"] == (T0.isoformat() if status == "past_due" else None)
        assert saved["provider_customer_id"] == "cus_A"  # a partial save keeps the rest
    assert store.get_subscription(a)["provider_subscription_id"] == "sub_A"


def test_find_subscription_by_customer(store, users):
    a, b, c = users[:3]
    store.save_subscription(a, _active(provider="stripe", provider_customer_id="cus_A"))
    store.save_subscription(b, _active(provider_customer_id="cus_B"))
    store.save_subscription(c, _active())
    assert store.find_subscription_by_customer("cus_A")["user_id"] == a
    assert store.find_subscription_by_customer("cus_B")["user_id"] == b
    assert store.find_subscription_by_customer("cus_B") == store.get_subscription(b)
    assert store.find_subscription_by_customer("cus_nobody") is None
    assert store.find_subscription_by_customer("") is None
