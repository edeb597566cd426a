"""Fixtures for the store contract suite: the same tests run against every backend.

"supabase" is the real supabase-py client talking to tests/fakes/postgrest.py, which runs
each request under RLS on a fresh PostgreSQL database with supabase/migrations applied.
"""
from __future__ import annotations

import uuid

import pytest

BACKENDS = ["sql", "supabase"]
SUPABASE_JWT_SECRET = "test-supabase-jwt-secret-" + "z" * 32


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Name of the store backend under test."""
    return request.param


@pytest.fixture(scope="session")
def postgrest(pg_url):
    """The PostgREST fake on its own database (one per test session and xdist worker)."""
    from tests.fakes.postgrest import PostgrestFake
    from tests.fakes.supabase_db import supabase_database
    with supabase_database(pg_url) as dsn, PostgrestFake(dsn, SUPABASE_JWT_SECRET) as fake:
        yield fake


@pytest.fixture
def settings_overrides(request, backend):
    """The app's settings for the backend under test (plus any indirect parameter)."""
    return {**getattr(request, "param", {}), **backend_settings(request, backend)}


def backend_settings(request, backend: str) -> dict:
    """The settings that point the app at `backend` (a reset PostgREST fake for Supabase)."""
    if backend != "supabase":
        return {}
    fake = request.getfixturevalue("postgrest")
    fake.reset()
    return dict(DATA_BACKEND="supabase", SUPABASE_URL=fake.url,
                SUPABASE_KEY=fake.service_key, SUPABASE_JWT_SECRET=SUPABASE_JWT_SECRET)


@pytest.fixture
def store(app, backend):
    """The app's store, for the backend under test."""
    from utils.store import get_store
    store = get_store()
    assert store.name == backend
    yield store
    if backend == "supabase":
        store.close()


@pytest.fixture
def owners(app):
    """Two user ids that exist in the users table (the store's owners)."""
    from models_db import User, db
    ids = []
    for _ in range(2):
        u = User(email=f"o-{uuid.uuid4().hex[:8]}@example.com", name="Owner")
        u.set_password("owner-password")
        db.session.add(u)
        db.session.commit()
        ids.append(u.id)
    return ids
