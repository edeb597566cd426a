"""Plans, subscriptions and the entitlement gates."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services import entitlements
from utils.errors import PaymentRequired

NEW_TIER = {"name": "Team", "description": "For teams", "price": "29.50", "currency": "EUR",
            "billing_interval": "month", "features": ["ai_replies", "slack"],
            "platforms": ["facebook", "whatsapp"], "monthly_ai_replies": 500,
            "platform_accounts": 3, "integrations": 1, "knowledge_documents": None}


def test_default_tiers_public_and_cheapest_first(client):
    resp = client.get("/api/subscriptions/tiers")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["next_cursor"] is None
    tiers = {t["name"]: t for t in body["items"]}
    assert [t["name"] for t in body["items"]] == ["Free", "Starter", "Professional", "Enterprise"]
    free, starter, pro, ent = (tiers[n] for n in ("Free", "Starter", "Professional", "Enterprise"))
    assert (free["price"], free["platforms"], free["platform_accounts"],
            free["monthly_ai_replies"], free["integrations"], free["knowledge_documents"]) == \
        (0, ["facebook"], 1, 100, 0, 20)
    assert (starter["price"], set(starter["platforms"]), starter["platform_accounts"],
            starter["monthly_ai_replies"]) == (19, {"facebook", "instagram"}, 2, 1000)
    assert {"slack", "email"} <= set(starter["features"]) and "hubspot" not in starter["features"]
    assert (pro["price"], len(pro["platforms"]), pro["platform_accounts"],
            pro["monthly_ai_replies"]) == (49, 3, 5, 10000)
    assert ent["price"] == 199 and all(ent[k] is None for k in (
        "monthly_ai_replies", "platform_accounts", "integrations", "knowledge_documents"))
    one = client.get(f"/api/subscriptions/tiers/{starter['id']}")
    assert one.status_code == 200 and one.get_json()["name"] == "Starter"
    assert client.get("/api/subscriptions/tiers/nope").status_code == 404


def test_new_user_starts_on_free(client, user):
    body = client.get("/api/subscriptions/user", headers=user["headers"]).get_json()
    assert body["tier"]["name"] == "Free" and body["status"] == "active"
    assert body["effective_tier"]["id"] == "free"
    assert body["usage"] == {"period": datetime.now(timezone.utc).strftime("%Y-%m"),
                             "ai_replies": 0, "ai_replies_limit": 100}


def test_admin_tier_crud_and_normal_user_403(client, user, admin):
    for method, path in [("post", "/api/subscriptions/tiers"),
                         ("put", "/api/subscriptions/tiers/starter"),
                         ("delete", "/api/subscriptions/tiers/starter"),
                         ("get", "/api/subscriptions/users"),
                         ("put", f"/api/subscriptions/user/{user['user']['id']}")]:
        resp = getattr(client, method)(path, json=NEW_TIER if method != "delete" else None,
                                       headers=user["headers"])
        assert resp.status_code == 403, path
        assert resp.get_json()["error"]["code"] == "admin_required"
    created = client.post("/api/subscriptions/tiers", json=NEW_TIER, headers=admin["headers"])
    assert created.status_code == 201
    tier = created.get_json()
    assert tier["price"] == 29.5 and tier["knowledge_documents"] is None
    dup = client.post("/api/subscriptions/tiers", json=NEW_TIER, headers=admin["headers"])
    assert dup.status_code == 409 and dup.get_json()["error"]["code"] == "tier_exists"
    upd = client.put(f"/api/subscriptions/tiers/{tier['id']}", json={"price": 35},
                     headers=admin["headers"])
    assert upd.status_code == 200 and upd.get_json()["price"] == 35
    assert client.delete(f"/api/subscriptions/tiers/{tier['id']}",
                         headers=admin["headers"]).status_code == 204
    assert client.get(f"/api/subscriptions/tiers/{tier['id']}").status_code == 404


@pytest.mark.parametrize("body,fields", [
    ({**NEW_TIER, "price": -1}, {"price"}),
    ({**NEW_TIER, "platforms": ["telegram"]}, {"platforms.0"}),
    ({**NEW_TIER, "monthly_ai_replies": -5}, {"monthly_ai_replies"}),
    ({k: v for k, v in NEW_TIER.items() if k != "name"}, {"name"}),
    ({**NEW_TIER, "currency": "euro", "billing_interval": "week"}, {"currency", "billing_interval"}),
    ({**NEW_TIER, "card_number": "4242424242424242"}, {"card_number"}),
])
def test_invalid_tier_bodies(client, admin, body, fields):
    resp = client.post("/api/subscriptions/tiers", json=body, headers=admin["headers"])
    assert resp.status_code == 400
    err = resp.get_json()["error"]
    assert err["code"] == "validation_error"
    assert {d["field"] for d in err["details"]} == fields


def test_tier_in_use_cannot_be_deleted_but_can_be_archived(client, user, admin):
    client.post("/api/subscriptions/user", json={"tier_id": "starter"}, headers=user["headers"])
    resp = client.delete("/api/subscriptions/tiers/starter", headers=admin["headers"])
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "tier_in_use"
    assert client.delete("/api/subscriptions/tiers/free", headers=admin["headers"]).status_code == 409
    arch = client.put("/api/subscriptions/tiers/starter", json={"is_active": False},
                      headers=admin["headers"])
    assert arch.status_code == 200 and arch.get_json()["is_active"] is False
    names = [t["name"] for t in client.get("/api/subscriptions/tiers").get_json()["items"]]
    assert "Starter" not in names
    # an archived plan cannot be newly chosen, but its subscriber keeps it
    other = client.post("/api/subscriptions/user", json={"tier_id": "starter"},
                        headers=admin["headers"])
    assert other.status_code == 404
    assert client.get("/api/subscriptions/user", headers=user["headers"]).get_json()[
        "effective_tier"]["id"] == "starter"


def test_plan_change_takes_effect_immediately(app, client, user):
    uid = user["user"]["id"]
    with pytest.raises(PaymentRequired) as refused:
        entitlements.require_platform(uid, "instagram", connected_accounts=0)
    assert refused.value.code == "plan_limit" and "Starter" in refused.value.message
    resp = client.post("/api/subscriptions/user", json={"tier_id": "starter",
                                                        "payment_reference": "pi_123"},
                       headers=user["headers"])
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["tier_id"] == "starter" and body["payment_reference"] == "pi_123"
    assert datetime.fromisoformat(body["current_period_end"]) > datetime.now(timezone.utc) + timedelta(days=29)
    entitlements.require_platform(uid, "instagram", connected_accounts=0)
    with pytest.raises(PaymentRequired) as refused:
        entitlements.require_platform(uid, "whatsapp", connected_accounts=0)
    assert "Professional" in refused.value.message
    bad = client.post("/api/subscriptions/user", json={"tier_id": "gold"}, headers=user["headers"])
    assert bad.status_code == 404


def test_cancel_own_others_and_admin(client, user, other_user, admin):
    uid, oid = user["user"]["id"], other_user["user"]["id"]
    client.post("/api/subscriptions/user", json={"tier_id": "professional"}, headers=user["headers"])
    # someone else's subscription: 404, and nothing changes
    resp = client.post(f"/api/subscriptions/user/{uid}/cancel", headers=other_user["headers"])
    assert resp.status_code == 404
    assert client.get("/api/subscriptions/user", headers=user["headers"]).get_json()["status"] == "active"
    own = client.post(f"/api/subscriptions/user/{uid}/cancel", headers=user["headers"])
    assert own.status_code == 200
    body = own.get_json()
    # a paid plan runs to the end of the paid period
    assert body["status"] == "canceled" and body["cancel_at_period_end"] is True
    assert body["effective_tier"]["id"] == "professional"
    again = client.post(f"/api/subscriptions/user/{uid}/cancel", headers=user["headers"])
    assert again.status_code == 409
    by_admin = client.post(f"/api/subscriptions/user/{oid}/cancel", headers=admin["headers"])
    assert by_admin.status_code == 200 and by_admin.get_json()["status"] == "canceled"
    assert by_admin.get_json()["effective_tier"]["id"] == "free"
    missing = client.post("/api/subscriptions/user/not-a-user/cancel", headers=admin["headers"])
    assert missing.status_code == 404


def test_expired_subscription_counts_as_free_on_read(app, client, user, admin):
    uid = user["user"]["id"]
    client.post("/api/subscriptions/user", json={"tier_id": "professional"}, headers=user["headers"])
    entitlements.require_platform(uid, "whatsapp", connected_accounts=0)
    past = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    resp = client.put(f"/api/subscriptions/user/{uid}", json={"current_period_end": past},
                      headers=admin["headers"])
    assert resp.status_code == 200
    body = client.get("/api/subscriptions/user", headers=user["headers"]).get_json()
    assert body["status"] == "expired" and body["effective_tier"]["id"] == "free"
    with pytest.raises(PaymentRequired):
        entitlements.require_platform(uid, "whatsapp", connected_accounts=0)
    listed = client.get("/api/subscriptions/users?status=expired", headers=admin["headers"]).get_json()
    assert [s["user_id"] for s in listed["items"]] == [uid]


def test_account_and_capacity_limits(app, user):
    uid = user["user"]["id"]
    entitlements.require_platform(uid, "facebook", connected_accounts=0)
    with pytest.raises(PaymentRequired) as refused:
        entitlements.require_platform(uid, "facebook", connected_accounts=1)
    assert "Starter" in refused.value.message and refused.value.status == 402
    entitlements.require_capacity(uid, "knowledge_documents", current_count=19)
    with pytest.raises(PaymentRequired):
        entitlements.require_capacity(uid, "knowledge_documents", current_count=19, adding=2)
    with pytest.raises(PaymentRequired) as refused:
        entitlements.require_feature(uid, "slack", current_count=0, limit_name="integrations")
    assert "Starter" in refused.value.message
    with pytest.raises(PaymentRequired) as refused:
        entitlements.require_feature(uid, "hubspot")
    assert "Professional" in refused.value.message


def test_ai_reply_quota_counts_per_user_and_month(app, client, user, other_user, admin):
    uid, oid = user["user"]["id"], other_user["user"]["id"]
    client.post("/api/subscriptions/tiers", json={**NEW_TIER, "name": "Tiny", "price": 1,
                                                  "monthly_ai_replies": 3},
                headers=admin["headers"])
    tiny = [t for t in client.get("/api/subscriptions/tiers").get_json()["items"]
            if t["name"] == "Tiny"][0]
    client.post("/api/subscriptions/user", json={"tier_id": tiny["id"]}, headers=user["headers"])
    assert [entitlements.consume_ai_reply(uid) for _ in range(5)] == [True, True, True, False, False]
    assert entitlements.ai_replies_used(uid) == 3
    assert entitlements.consume_ai_reply(oid) is True  # another user's quota is separate
    assert client.get("/api/subscriptions/user", headers=user["headers"]).get_json()["usage"][
        "ai_replies"] == 3
    next_month = datetime.now(timezone.utc) + timedelta(days=32)
    assert entitlements.ai_replies_used(uid, now=next_month) == 0


def test_admin_list_and_set(client, user, admin):
    uid = user["user"]["id"]
    listed = client.get("/api/subscriptions/users", headers=admin["headers"]).get_json()
    assert uid in {s["user_id"] for s in listed["items"]}
    resp = client.put(f"/api/subscriptions/user/{uid}", json={"tier_id": "enterprise"},
                      headers=admin["headers"])
    assert resp.status_code == 200 and resp.get_json()["effective_tier"]["id"] == "enterprise"
    assert client.get("/api/subscriptions/user", headers=user["headers"]).get_json()["tier_id"] == "enterprise"
    bad = client.put(f"/api/subscriptions/user/{uid}", json={"status": "paid"}, headers=admin["headers"])
    assert bad.status_code == 400 and bad.get_json()["error"]["details"][0]["field"] == "status"
    assert client.put("/api/subscriptions/user/nobody", json={"tier_id": "free"},
                      headers=admin["headers"]).status_code == 404
