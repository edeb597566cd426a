"""Fixtures for the Stripe billing tests: the real `stripe` library against the loopback
fake in tests/fakes/stripe_api.py, on both store backends (SQL, and Supabase through the
PostgREST fake, as in tests/store)."""
from __future__ import annotations

import pytest

from tests.fakes.stripe_api import SECRET_KEY, WEBHOOK_SECRET, StripeFake
from tests.store.conftest import backend_settings, postgrest  # noqa: F401 (fixture)

PRICES = {"starter": "price_1Starter", "professional": "price_1Professional",
          "enterprise": "price_1Enterprise"}


@pytest.fixture(params=["sql", "supabase"])
def backend(request):
    """Name of the store backend under test."""
    return request.param


@pytest.fixture
def stripe_fake():
    """A fresh Stripe fake for one test."""
    with StripeFake() as fake:
        yield fake


@pytest.fixture
def settings_overrides(request, backend, stripe_fake):
    """Stripe configured against the fake (no retries: an outage answers at once), on the
    backend under test."""
    overrides = dict(STRIPE_SECRET_KEY=SECRET_KEY, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                     STRIPE_API_URL=stripe_fake.base_url, STRIPE_MAX_RETRIES=0,
                     STRIPE_GRACE_DAYS=5)
    overrides.update(getattr(request, "param", {}))
    overrides.update(backend_settings(request, backend))
    return overrides


@pytest.fixture
def priced(app, backend):
    """The paid plans have their Stripe prices (as `flask set-stripe-price` sets them)."""
    from utils.store import get_store
    store = get_store()
    for tier_id, price in PRICES.items():
        store.update_tier(tier_id, {"stripe_price_id": price})
    yield PRICES
    if backend == "supabase":
        store.close()
