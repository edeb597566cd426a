"""The subscriptions API with DATA_BACKEND=supabase.

The store-backed tests of tests/test_subscriptions.py are imported and run again here, where
the app is built on the Supabase backend (the real supabase-py client against the PostgREST
fake): the same endpoints and assertions - plans, subscribe, cancel, expiry on read, admin
changes, entitlements - on the other backend. Below them, what only this backend has: which
token each subscription call carries.
"""
from __future__ import annotations

import pytest

from tests.test_subscriptions import (  # noqa: F401 (collected and run here, on Supabase)
    test_a_trial_ends_on_free,
    test_a_trial_is_taken_once,
    test_account_and_capacity_limits,
    test_admin_grants_any_plan_to_any_user_or_themselves,
    test_admin_list_and_set,
    test_admin_tier_crud_and_normal_user_403,
    test_ai_reply_quota_counts_per_user_and_month,
    test_cancel_own_others_and_admin,
    test_cli_grant_plan_and_set_stripe_price,
    test_default_tiers_public_and_cheapest_first,
    test_expired_subscription_counts_as_free_on_read,
    test_new_user_starts_on_free,
    test_non_admin_naming_another_user_gets_404,
    test_plan_change_takes_effect_immediately,
    test_plan_trial_and_stripe_price_are_admin_settings,
    test_tier_in_use_cannot_be_deleted_but_can_be_archived,
    test_user_cannot_give_themselves_a_paid_plan,
    test_user_moves_themselves_to_a_free_plan,
)


@pytest.fixture
def backend():
    """Every test here runs on the Supabase backend."""
    return "supabase"


@pytest.fixture(autouse=True)
def _supabase_store(store):
    """The app's store is the Supabase one (and is closed after the test)."""
    return store


def test_subscription_is_read_as_its_user_and_written_with_the_service_key(
        client, user, admin, postgrest):
    uid = user["user"]["id"]
    start = len(postgrest.requests)
    subscribed = client.post("/api/subscriptions/user", json={"tier_id": "starter",
                                                              "user_id": uid},
                             headers=admin["headers"])
    assert subscribed.status_code == 200 and subscribed.get_json()["tier_id"] == "starter"
    # an admin granting or looking at the user: Dana checked the admin; the user's row is
    # still read as the user, and written with the service key
    viewed = client.get(f"/api/subscriptions/user/{uid}", headers=admin["headers"])
    assert viewed.status_code == 200 and viewed.get_json()["user_id"] == uid

    calls = {(r["method"], r["path"].rsplit("/", 1)[1], r["role"], r["sub"])
             for r in postgrest.requests[start:]}
    assert calls == {("GET", "subscription_tiers", "anon", None),
                     ("GET", "user_subscriptions", "authenticated", uid),
                     ("PATCH", "user_subscriptions", "service_role", None)}
