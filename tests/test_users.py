"""/api/users: the caller's profile, user administration, and validate_user_access."""
from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from flask import g

from tests.conftest import register
from tests.helpers import USER_KEYS, assert_error, audit_rows
from utils.auth import require_auth, validate_user_access
from utils.pagination import encode_cursor


def add_users(n: int, prefix: str = "bulk", created_at: datetime | None = None) -> list[str]:
    """Insert n users directly (no password hashing, so it is fast); returns their ids."""
    from models_db import User, db

    ids = []
    for i in range(n):
        u = User(email=f"{prefix}-{i:03d}-{uuid.uuid4().hex[:6]}@example.com",
                 password_hash="!unusable", name=f"{prefix} {i}")
        if created_at is not None:
            u.created_at = created_at
        db.session.add(u)
        ids.append(u)
    db.session.commit()
    return [u.id for u in ids]


def walk(client, headers, limit: int, **params) -> tuple[list[dict], int]:
    """Follow next_cursor to the end; returns all items and the number of pages."""
    items, pages, cursor = [], 0, None
    while True:
        query = {"limit": limit, **params}
        if cursor:
            query["cursor"] = cursor
        resp = client.get("/api/users", headers=headers, query_string=query)
        assert resp.status_code == 200, resp.get_json()
        body = resp.get_json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= limit
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages
        assert len(body["items"]) == limit
        assert pages < 100, "pagination does not terminate"


# --- /api/users/me ----------------------------------------------------------------------


def test_get_me(client, user):
    resp = client.get("/api/users/me", headers=user["headers"])
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) == USER_KEYS
    assert body["id"] == user["user"]["id"]
    assert body["email"] == user["user"]["email"]


def test_me_needs_a_token(client):
    assert_error(client.get("/api/users/me"), 401, "unauthorized")
    assert_error(client.patch("/api/users/me", json={"name": "x"}), 401, "unauthorized")


def test_patch_me_changes_name_and_timezone(client, user):
    resp = client.patch("/api/users/me", headers=user["headers"],
                        json={"name": "Renamed", "timezone": "America/New_York"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["name"] == "Renamed" and body["timezone"] == "America/New_York"
    again = client.get("/api/users/me", headers=user["headers"]).get_json()
    assert again["name"] == "Renamed" and again["timezone"] == "America/New_York"
    # A partial update leaves the other field alone.
    body = client.patch("/api/users/me", headers=user["headers"], json={"name": "Only name"})
    assert body.get_json()["timezone"] == "America/New_York"
    assert body.get_json()["name"] == "Only name"


def test_patch_me_refuses_an_invalid_timezone(client, user):
    err = assert_error(client.patch("/api/users/me", headers=user["headers"],
                                    json={"timezone": "Moon/Crater"}), 400, "validation_error")
    assert [d["field"] for d in err["details"]] == ["timezone"]
    assert client.get("/api/users/me", headers=user["headers"]).get_json()["timezone"] == "UTC"


@pytest.mark.parametrize("payload, field", [
    ({"role": "admin"}, "role"),
    ({"is_active": False}, "is_active"),
    ({"email": "new@example.com"}, "email"),
    ({"name": "x" * 201}, "name"),
])
def test_patch_me_refuses_fields_a_user_may_not_change(client, user, payload, field):
    err = assert_error(client.patch("/api/users/me", headers=user["headers"], json=payload),
                       400, "validation_error")
    assert [d["field"] for d in err["details"]] == [field]
    me = client.get("/api/users/me", headers=user["headers"]).get_json()
    assert me["role"] == "user" and me["is_active"] is True
    assert me["email"] == user["user"]["email"]


# --- admin: list ------------------------------------------------------------------------


def test_admin_lists_users(client, admin, user, other_user):
    resp = client.get("/api/users", headers=admin["headers"])
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) == {"items", "next_cursor"}
    assert body["next_cursor"] is None
    ids = [u["id"] for u in body["items"]]
    assert sorted(ids) == sorted([admin["user"]["id"], user["user"]["id"],
                                  other_user["user"]["id"]])
    for item in body["items"]:
        assert set(item) == USER_KEYS
    assert "password" not in resp.get_data(as_text=True)


@pytest.mark.parametrize("method, path", [
    ("get", "/api/users"),
    ("get", "/api/users/{id}"),
    ("patch", "/api/users/{id}"),
])
def test_user_admin_endpoints_need_an_admin(client, user, other_user, method, path):
    url = path.format(id=other_user["user"]["id"])
    kwargs = {"json": {"role": "admin"}} if method == "patch" else {}
    resp = getattr(client, method)(url, headers=user["headers"], **kwargs)
    assert_error(resp, 403, "admin_required")
    assert_error(getattr(client, method)(url, **kwargs), 401, "unauthorized")
    from models_db import User, db

    db.session.expire_all()
    assert db.session.get(User, other_user["user"]["id"]).role == "user"


def test_admin_searches_by_email(client, admin):
    target = register(client, email="Needle.Person@Example.com")
    register(client, email="hay@example.com")
    for q in ("needle", "NEEDLE.person", "le.pers"):
        body = client.get("/api/users", headers=admin["headers"], query_string={"q": q}).get_json()
        assert [u["id"] for u in body["items"]] == [target["user"]["id"]], q
    # LIKE wildcards are taken literally.
    for q in ("%", "_"):
        body = client.get("/api/users", headers=admin["headers"], query_string={"q": q}).get_json()
        assert body["items"] == [], q
    body = client.get("/api/users", headers=admin["headers"], query_string={"q": "zzz"}).get_json()
    assert body == {"items": [], "next_cursor": None}


def test_admin_pagination_walks_every_user_once(client, admin):
    created = add_users(11)
    items, pages = walk(client, admin["headers"], limit=4)
    ids = [u["id"] for u in items]
    assert len(ids) == len(set(ids)) == 12
    assert set(ids) == set(created) | {admin["user"]["id"]}
    assert pages == 3
    # Same order as one big page.
    one_page = client.get("/api/users", headers=admin["headers"],
                          query_string={"limit": 100}).get_json()
    assert [u["id"] for u in one_page["items"]] == ids
    assert one_page["next_cursor"] is None


def test_admin_pagination_with_identical_timestamps(client, admin):
    """Rows created in the same microsecond are neither skipped nor repeated."""
    same = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    created = add_users(7, prefix="tie", created_at=same)
    created += add_users(3, prefix="later", created_at=same + timedelta(microseconds=1))
    for limit in (1, 2, 3, 5):
        items, _ = walk(client, admin["headers"], limit=limit)
        ids = [u["id"] for u in items]
        assert len(ids) == len(set(ids)) == 11, limit
        assert set(created) <= set(ids)


def test_admin_pagination_with_search(client, admin):
    wanted = add_users(5, prefix="findme")
    add_users(4, prefix="other")
    items, pages = walk(client, admin["headers"], limit=2, q="findme")
    assert sorted(u["id"] for u in items) == sorted(wanted)
    assert pages == 3


@pytest.mark.parametrize("cursor", [
    "not a cursor",
    "%%%",
    base64.urlsafe_b64encode(b"[1]").decode(),
    base64.urlsafe_b64encode(b'{"a": 1}').decode(),
    encode_cursor(["not-a-date", "some-id"]),
    encode_cursor([12345, "some-id"]),
    encode_cursor(["2026-01-01T00:00:00+00:00", 12345]),
])
def test_invalid_cursor_is_400(client, admin, cursor):
    resp = client.get("/api/users", headers=admin["headers"], query_string={"cursor": cursor})
    assert_error(resp, 400, "invalid_cursor")


@pytest.mark.parametrize("query, field", [
    ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"sort": "email"}, "sort"),
])
def test_invalid_list_query_is_400(client, admin, query, field):
    err = assert_error(client.get("/api/users", headers=admin["headers"], query_string=query),
                       400, "validation_error")
    assert [d["field"] for d in err["details"]] == [field]


def test_limit_100_is_allowed(client, admin):
    assert client.get("/api/users", headers=admin["headers"],
                      query_string={"limit": 100}).status_code == 200


# --- admin: one user --------------------------------------------------------------------


def test_admin_gets_one_user(client, admin, user):
    resp = client.get(f"/api/users/{user['user']['id']}", headers=admin["headers"])
    assert resp.status_code == 200
    assert resp.get_json()["email"] == user["user"]["email"]


def test_unknown_user_id_is_404(client, admin):
    missing = str(uuid.uuid4())
    assert_error(client.get(f"/api/users/{missing}", headers=admin["headers"]), 404, "not_found")
    assert_error(client.patch(f"/api/users/{missing}", headers=admin["headers"],
                              json={"role": "admin"}), 404, "not_found")
    assert audit_rows("admin_user_update") == []


def test_admin_changes_role_and_it_is_audited(client, admin, user):
    uid = user["user"]["id"]
    # Before: no admin powers.
    assert_error(client.get("/api/users", headers=user["headers"]), 403, "admin_required")
    resp = client.patch(f"/api/users/{uid}", headers=admin["headers"], json={"role": "admin"})
    assert resp.status_code == 200
    assert resp.get_json()["role"] == "admin"
    # The promotion counts at once, with the token the user already holds.
    assert client.get("/api/users", headers=user["headers"]).status_code == 200
    rows = audit_rows("admin_user_update")
    assert len(rows) == 1
    assert rows[0].user_id == uid and rows[0].actor_id == admin["user"]["id"]
    assert rows[0].details == {"role": "admin"}

    # Demotion also counts at once.
    resp = client.patch(f"/api/users/{uid}", headers=admin["headers"], json={"role": "user"})
    assert resp.get_json()["role"] == "user"
    assert_error(client.get("/api/users", headers=user["headers"]), 403, "admin_required")
    assert len(audit_rows("admin_user_update")) == 2


def test_admin_deactivation_is_audited(client, admin, user):
    uid = user["user"]["id"]
    resp = client.patch(f"/api/users/{uid}", headers=admin["headers"], json={"is_active": False})
    assert resp.status_code == 200 and resp.get_json()["is_active"] is False
    rows = audit_rows("admin_user_update")
    assert len(rows) == 1
    assert rows[0].actor_id == admin["user"]["id"]
    assert rows[0].details == {"is_active": False}
    # A no-op change writes no audit row.
    client.patch(f"/api/users/{uid}", headers=admin["headers"], json={"is_active": False})
    assert len(audit_rows("admin_user_update")) == 1


def test_admin_patch_validates_the_body(client, admin, user):
    err = assert_error(client.patch(f"/api/users/{user['user']['id']}", headers=admin["headers"],
                                    json={"role": "superuser", "password_hash": "x"}),
                       400, "validation_error")
    assert {d["field"] for d in err["details"]} == {"role", "password_hash"}


# --- validate_user_access ---------------------------------------------------------------


@pytest.fixture
def probe(app):
    """A throwaway route guarded like a per-user resource (added before the first request)."""

    @require_auth
    def probe_view(user_id):
        validate_user_access(user_id)
        return {"ok": True, "caller": g.user.id}

    app.add_url_rule("/api/_probe/users/<user_id>", "probe_user_access", probe_view)
    return "/api/_probe/users/{}"


def test_validate_user_access_answers_404_for_another_users_id(probe, client, user, other_user,
                                                                admin):
    own = client.get(probe.format(user["user"]["id"]), headers=user["headers"])
    assert own.status_code == 200 and own.get_json()["caller"] == user["user"]["id"]

    theirs = client.get(probe.format(other_user["user"]["id"]), headers=user["headers"])
    missing = client.get(probe.format(str(uuid.uuid4())), headers=user["headers"])
    assert_error(theirs, 404, "not_found")
    assert_error(missing, 404, "not_found")
    # Indistinguishable from a missing one.
    assert theirs.get_json() == missing.get_json()

    # An admin may act on anyone's data.
    assert client.get(probe.format(other_user["user"]["id"]),
                      headers=admin["headers"]).status_code == 200
    # And without a token it is 401, not 404.
    assert_error(client.get(probe.format(user["user"]["id"])), 401, "unauthorized")
