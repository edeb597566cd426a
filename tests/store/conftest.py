"""Fixtures for the store contract suite: the same tests run against every backend."""
from __future__ import annotations

import uuid

import pytest

BACKENDS = ["sql"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Name of the store backend under test."""
    return request.param


@pytest.fixture
def store(app, backend):
    """The app's store, for the backend under test."""
    if backend != "sql":
        pytest.fail(f"no fixture wiring for backend {backend}")
    from utils.store import get_store
    return get_store()


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
