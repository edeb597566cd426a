"""Socket.IO connect authentication and per-user rooms (flask_socketio's test client)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt
import pytest

from utils.realtime import ADMIN_ROOM, publish, socketio


@pytest.fixture
def connect(app):
    """Open Socket.IO test clients; they are disconnected at the end of the test."""
    clients = []

    def _connect(auth=None):
        c = socketio.test_client(app, auth=auth)
        clients.append(c)
        return c

    yield _connect
    for c in clients:
        if c.is_connected():
            c.disconnect()


def events(client) -> list[tuple[str, object]]:
    return [(p["name"], p["args"][0] if p["args"] else None) for p in client.get_received()]


def mint(app, claims: dict) -> str:
    return jwt.encode(claims, app.config["DANA_SETTINGS"].JWT_SECRET_KEY, algorithm="HS256")


def test_valid_access_token_connects_and_joins_the_users_room(connect, user, other_user):
    mine = connect({"token": user["access_token"]})
    theirs = connect({"token": other_user["access_token"]})
    assert mine.is_connected()
    assert theirs.is_connected()
    mine.get_received(), theirs.get_received()

    publish(user["user"]["id"], "new_message", {"text": "hello"})
    assert events(mine) == [("new_message", {"text": "hello"})]
    assert events(theirs) == []  # another user's room


def test_admin_joins_the_admin_room(connect, admin, user):
    adm = connect({"token": admin["access_token"]})
    usr = connect({"token": user["access_token"]})
    assert adm.is_connected() and usr.is_connected()
    adm.get_received(), usr.get_received()
    socketio.emit("integration_error", {"x": 1}, to=ADMIN_ROOM)
    assert events(adm) == [("integration_error", {"x": 1})]
    assert events(usr) == []


@pytest.mark.parametrize("auth", [None, {}, {"token": ""}, {"token": 123}, {"jwt": "x"},
                                  {"token": "not.a.jwt"}])
def test_missing_or_malformed_token_is_refused(connect, auth):
    assert not connect(auth).is_connected()


def test_refresh_token_is_refused(connect, user):
    assert not connect({"token": user["refresh_token"]}).is_connected()
    assert connect({"token": user["access_token"]}).is_connected()


def test_revoked_access_token_is_refused(client, connect, user):
    assert connect({"token": user["access_token"]}).is_connected()
    assert client.post("/api/auth/logout", headers=user["headers"]).status_code == 200
    assert not connect({"token": user["access_token"]}).is_connected()


def test_expired_access_token_is_refused(app, connect, user):
    claims = jwt.decode(user["access_token"], options={"verify_signature": False})
    now = datetime.now(timezone.utc)
    expired = mint(app, {**claims, "iat": now - timedelta(minutes=20),
                         "exp": now - timedelta(minutes=5)})
    assert not connect({"token": expired}).is_connected()
    # The same claims with a future expiry connect: only the expiry made the difference.
    fresh = mint(app, {**claims, "iat": now, "exp": now + timedelta(minutes=5)})
    assert connect({"token": fresh}).is_connected()


def test_token_signed_with_another_key_is_refused(connect, user):
    claims = jwt.decode(user["access_token"], options={"verify_signature": False})
    forged = jwt.encode(claims, "another-secret-" + "q" * 40, algorithm="HS256")
    assert not connect({"token": forged}).is_connected()


def test_deactivated_user_is_refused(client, connect, user, admin):
    resp = client.patch(f"/api/users/{user['user']['id']}", headers=admin["headers"],
                        json={"is_active": False})
    assert resp.status_code == 200
    assert not connect({"token": user["access_token"]}).is_connected()
