"""Helpers for the page tests: sign in through the real /login form, read CSRF tokens."""
from __future__ import annotations

import re

import pytest

# Every page test's app sends to a fake Graph API (replies from the console go out through it).
from tests.channels.conftest import fake_graph, settings_overrides  # noqa: F401  (fixtures)
from tests.conftest import DrainingClient

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class FreshContextClient(DrainingClient):
    """A test client whose every request runs in an app context of its own, as on a server.

    (The suite's `app` fixture keeps one app context pushed for the whole test, and a request
    reuses it: `g` - where Flask-WTF caches the CSRF token - would leak between requests and
    between clients.)"""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture(autouse=True)
def _fresh_contexts(app):
    app.test_client_class = FreshContextClient
    yield
    app.test_client_class = None


def csrf_of(client, path: str = "/login") -> str:
    """The CSRF token a page hands the browser (in its forms)."""
    resp = client.get(path)
    match = CSRF.search(resp.get_data(as_text=True))
    assert match, f"no csrf_token on {path}: {resp.status_code}"
    return match.group(1)


def sign_in(client, email: str, password: str = "correct horse battery", **kw):
    """POST the sign-in form as a browser does; returns the response."""
    token = csrf_of(client)
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": token}, **kw)


@pytest.fixture
def browser(app, user):
    """A test client signed in as `user` through /login, with its page CSRF token."""
    client = app.test_client()
    resp = sign_in(client, user["user"]["email"], user["password"])
    assert resp.status_code == 302, resp.get_data(as_text=True)
    client.csrf = csrf_of(client, "/app")
    return client


@pytest.fixture
def admin_browser(app, admin):
    """A test client signed in as an administrator."""
    client = app.test_client()
    assert sign_in(client, admin["user"]["email"], admin["password"]).status_code == 302
    client.csrf = csrf_of(client, "/app")
    return client
