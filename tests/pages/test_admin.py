"""The operator pages under /admin: admins only (others 404), users, plans, events, audit."""
from __future__ import annotations

import pytest

from tests.channels.conftest import PAGE_ID, connect, fb_text, post_webhook
from tests.helpers import audit_rows
from tests.pages.conftest import sign_in


def html(resp) -> str:
    return resp.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/admin", "/admin/users", "/admin/plans", "/admin/events",
                                  "/admin/audit", "/admin/health"])
def test_a_non_admin_gets_404_everywhere(browser, path):
    resp = browser.get(path)
    assert resp.status_code == 404 and "Not found" in html(resp)


def test_a_non_admin_cannot_post_to_admin_either(browser, user):
    for path in (f"/admin/users/{user['user']['id']}", "/admin/events/1/replay",
                 "/admin/plans/grant"):
        resp = browser.post(path, data={"role": "admin", "is_active": "y",
                                        "csrf_token": browser.csrf})
        assert resp.status_code == 404, path
    from models_db import User, db
    db.session.expire_all()
    assert db.session.get(User, user["user"]["id"]).role == "user"


def test_anonymous_is_sent_to_login(client):
    resp = client.get("/admin/users")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")


def test_admin_searches_users_and_deactivates_one(app, admin_browser, user, admin):
    victim = app.test_client()
    assert sign_in(victim, user["user"]["email"], user["password"]).status_code == 302
    page = html(admin_browser.get(f"/admin/users?q={user['user']['email'][:12]}"))
    assert user["user"]["email"] in page
    assert f'data-user-id="{admin["user"]["id"]}"' not in page
    resp = admin_browser.post(f"/admin/users/{user['user']['id']}", data={
        "role": "user", "deactivate": "1", "csrf_token": admin_browser.csrf})
    assert resp.status_code == 302
    assert victim.get("/app").status_code == 302  # signed out at once
    [row] = audit_rows("admin_user_update")
    assert row.actor_id == admin["user"]["id"] and row.details == {"is_active": False}


def test_admin_action_without_csrf_is_refused(admin_browser, user):
    resp = admin_browser.post(f"/admin/users/{user['user']['id']}", data={"role": "admin"})
    assert resp.status_code == 400 and "Form refused" in html(resp)
    assert audit_rows("admin_user_update") == []


def test_admin_grants_a_plan(admin_browser, client, user):
    page = html(admin_browser.get("/admin/plans"))
    assert "Professional" in page
    resp = admin_browser.post("/admin/plans/grant", data={
        "user_id": user["user"]["id"], "tier_id": "professional", "csrf_token": admin_browser.csrf})
    assert resp.status_code == 302, html(resp)
    sub = client.get("/api/subscriptions/user", headers=user["headers"]).get_json()
    assert sub["tier_id"] == "professional"
    missing = admin_browser.post("/admin/plans/grant", data={
        "user_id": "", "tier_id": "professional", "csrf_token": admin_browser.csrf})
    assert missing.status_code == 400 and 'id="user_id-error"' in html(missing)


def test_admin_filters_and_replays_a_webhook_event(admin_browser, client, user, fake_graph):
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    post_webhook(client, "facebook", fb_text("Hello?"))
    from services.webhook_events import list_events
    [event] = list_events(None, None, 10, None)["items"]
    page = html(admin_browser.get("/admin/events?platform=facebook"))
    assert f'data-event-id="{event["id"]}"' in page
    assert f'data-event-id="{event["id"]}"' not in html(admin_browser.get(
        "/admin/events?status=failed"))
    resp = admin_browser.post(f"/admin/events/{event['id']}/replay",
                              data={"csrf_token": admin_browser.csrf})
    assert resp.status_code == 302
    assert [r.details["event_id"] for r in audit_rows("webhook_event_replayed")] == [event["id"]]
    conv = client.get("/api/conversations", headers=user["headers"]).get_json()["items"]
    assert len(conv) == 1 and conv[0]["message_count"] >= 1  # nothing stored twice
    msgs = client.get(f"/api/conversations/{conv[0]['id']}/messages",
                      headers=user["headers"]).get_json()["items"]
    assert [m["text"] for m in msgs if m["direction"] == "inbound"] == ["Hello?"]


def test_audit_and_health_pages(app, admin_browser, user):
    sign_in(app.test_client(), user["user"]["email"], "wrong password")
    page = html(admin_browser.get("/admin/audit?event=login_failed"))
    assert "login_failed" in page and user["user"]["id"] in page
    health = html(admin_browser.get("/admin/health"))
    assert 'id="health-database">ok<' in health and "Redis" in health
