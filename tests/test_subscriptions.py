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


def grant(client, admin, user, tier_id, **extra):
    """An admin's grant of a plan to a user (the only way to a paid plan without Stripe)."""
    resp = client.post("/api/subscriptions/user",
                       json={"tier_id": tier_id, "user_id": user["user"]["id"], **extra},
                       headers=admin["headers"])
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


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


@pytest.mark.parametrize(
    "body,fields",
    [
        ({**NEW_TIER, "price": -1}, {"price"}),
        ({**NEW_TIER, "platforms": ["telegram"]}, {"platforms.0"}),
        ({**NEW_TIER, "monthly_ai_replies": -5}, {"monthly_ai_replies"}),
        ({k: v for k, v in NEW_TIER.items() if k != "name"}, {"name"}),
        (
            {**NEW_TIER, "currency": "euro", "billing_interval": "week"},
            {"currency", "billing_interval"},
        ),
        ({**NEW_TIER, "card_number": "4242424242424242"}, {"card_number"}),
    ],
)
def test_invalid_tier_bodies(client, admin, body, fields):
    resp = client.post("/api/subscriptions/tiers", json=body, headers=admin["headers"])
    assert resp.status_code == 400
    err = resp.get_json()["error"]
    assert err["code"] == "validation_error"
    assert {d["field"] for d in err["details"]} == fields


def test_tier_in_use_cannot_be_deleted_but_can_be_archived(client, user, admin):
    grant(client, admin, user, "starter")
    resp = client.delete("/api/subscriptions/tiers/starter", headers=admin["headers"])
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "tier_in_use"
    assert (
        client.delete("/api/subscriptions/tiers/free", headers=admin["headers"]).status_code == 409
    )
    arch = client.put(
        "/api/subscriptions/tiers/starter", json={"is_active": False}, headers=admin["headers"]
    )
    assert arch.status_code == 200 and arch.get_json()["is_active"] is False
    names = [t["name"] for t in client.get("/api/subscriptions/tiers").get_json()["items"]]
    assert "Starter" not in names
    # an archived plan cannot be newly chosen, but its subscriber keeps it
    other = client.post(
        "/api/subscriptions/user", json={"tier_id": "starter"}, headers=admin["headers"]
    )
    assert other.status_code == 404
    assert (
        client.get("/api/subscriptions/user", headers=user["headers"]).get_json()["effective_tier"][
            "id"
        ]
        == "starter"
    )


def test_plan_change_takes_effect_immediately(app, client, user, admin):
    uid = user["user"]["id"]
    with pytest.raises(PaymentRequired) as refused:
        entitlements.require_platform(uid, "instagram", connected_accounts=0)
    assert refused.value.code == "plan_limit" and "Starter" in refused.value.message
    body = grant(client, admin, user, "starter", payment_reference="INV-123")
    assert body["tier_id"] == "starter" and body["payment_reference"] == "INV-123"
    # a grant runs until an admin changes it
    assert (
        body["provider"],
        body["status"],
        body["current_period_end"],
        body["effective_until"],
    ) == ("admin", "active", None, None)
    entitlements.require_platform(uid, "instagram", connected_accounts=0)
    with pytest.raises(PaymentRequired) as refused:
        entitlements.require_platform(uid, "whatsapp", connected_accounts=0)
    assert "Professional" in refused.value.message
    bad = client.post("/api/subscriptions/user", json={"tier_id": "gold"}, headers=user["headers"])
    assert bad.status_code == 404
    bad = client.post(
        "/api/subscriptions/user",
        json={"tier_id": "gold", "user_id": uid},
        headers=admin["headers"],
    )
    assert bad.status_code == 404


def test_cancel_own_others_and_admin(client, user, other_user, admin):
    uid, oid = user["user"]["id"], other_user["user"]["id"]
    grant(client, admin, user, "professional")
    paid_until = (datetime.now(timezone.utc) + timedelta(days=30)).isoformat()
    client.put(
        f"/api/subscriptions/user/{uid}",
        json={"current_period_end": paid_until},
        headers=admin["headers"],
    )
    # someone else's subscription: 404, and nothing changes
    resp = client.post(f"/api/subscriptions/user/{uid}/cancel", headers=other_user["headers"])
    assert resp.status_code == 404
    assert (
        client.get("/api/subscriptions/user", headers=user["headers"]).get_json()["status"]
        == "active"
    )
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
    grant(client, admin, user, "professional")
    entitlements.require_platform(uid, "whatsapp", connected_accounts=0)
    past = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    resp = client.put(
        f"/api/subscriptions/user/{uid}",
        json={"current_period_end": past},
        headers=admin["headers"],
    )
    assert resp.status_code == 200
    body = client.get("/api/subscriptions/user", headers=user["headers"]).get_json()
    assert body["status"] == "expired" and body["effective_tier"]["id"] == "free"
    with pytest.raises(PaymentRequired):
        entitlements.require_platform(uid, "whatsapp", connected_accounts=0)
    listed = client.get(
        "/api/subscriptions/users?status=expired", headers=admin["headers"]
    ).get_json()
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
    client.post(
        "/api/subscriptions/tiers",
        json={**NEW_TIER, "name": "Tiny", "price": 1, "monthly_ai_replies": 3},
        headers=admin["headers"],
    )
    tiny = [
        t for t in client.get("/api/subscriptions/tiers").get_json()["items"] if t["name"] == "Tiny"
    ][0]
    grant(client, admin, user, tiny["id"])
    assert [entitlements.consume_ai_reply(uid) for _ in range(5)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert entitlements.ai_replies_used(uid) == 3
    assert entitlements.consume_ai_reply(oid) is True  # another user's quota is separate
    assert (
        client.get("/api/subscriptions/user", headers=user["headers"]).get_json()["usage"][
            "ai_replies"
        ]
        == 3
    )
    next_month = datetime.now(timezone.utc) + timedelta(days=32)
    assert entitlements.ai_replies_used(uid, now=next_month) == 0


def test_admin_list_and_set(client, user, admin):
    uid = user["user"]["id"]
    listed = client.get("/api/subscriptions/users", headers=admin["headers"]).get_json()
    assert uid in {s["user_id"] for s in listed["items"]}
    resp = client.put(
        f"/api/subscriptions/user/{uid}", json={"tier_id": "enterprise"}, headers=admin["headers"]
    )
    assert resp.status_code == 200 and resp.get_json()["effective_tier"]["id"] == "enterprise"
    assert (
        client.get("/api/subscriptions/user", headers=user["headers"]).get_json()["tier_id"]
        == "enterprise"
    )
    bad = client.put(
        f"/api/subscriptions/user/{uid}", json={"status": "paid"}, headers=admin["headers"]
    )
    assert bad.status_code == 400 and bad.get_json()["error"]["details"][0]["field"] == "status"
    assert (
        client.put(
            "/api/subscriptions/user/nobody", json={"tier_id": "free"}, headers=admin["headers"]
        ).status_code
        == 404
    )


# ------------------------------------------------------------ who may change a plan


def _audit(event: str) -> list:
    from models_db import AuditLog, db

    return list(
        db.session.scalars(db.select(AuditLog).where(AuditLog.event == event).order_by(AuditLog.id))
    )


def test_user_cannot_give_themselves_a_paid_plan(app, client, user):
    uid = user["user"]["id"]
    for tier in ("starter", "professional", "enterprise"):
        resp = client.post(
            "/api/subscriptions/user",
            json={"tier_id": tier, "payment_reference": "pi_made_up"},
            headers=user["headers"],
        )
        assert resp.status_code == 402, tier
        err = resp.get_json()["error"]
        # no payment provider here: no checkout link, an admin grants paid plans
        assert err["code"] == "payment_required" and "checkout_url" not in err
        assert "administrator" in err["message"]
    body = client.get("/api/subscriptions/user", headers=user["headers"]).get_json()
    assert (
        body["tier_id"],
        body["effective_tier"]["id"],
        body["payment_reference"],
        body["provider"],
    ) == ("free", "free", None, None)
    with pytest.raises(PaymentRequired):
        entitlements.require_platform(uid, "instagram", connected_accounts=0)
    assert _audit("subscription_granted") == [] and _audit("subscription_changed") == []


def test_admin_grants_any_plan_to_any_user_or_themselves(app, client, user, admin):
    uid, aid = user["user"]["id"], admin["user"]["id"]
    own = client.post(
        "/api/subscriptions/user", json={"tier_id": "enterprise"}, headers=admin["headers"]
    )
    assert own.status_code == 200
    assert (own.get_json()["user_id"], own.get_json()["tier_id"]) == (aid, "enterprise")
    body = grant(client, admin, user, "professional")
    assert (body["user_id"], body["tier_id"], body["provider"]) == (uid, "professional", "admin")
    entitlements.require_platform(uid, "whatsapp", connected_accounts=0)
    # the admin's own plan is untouched by the grant to the user
    assert (
        client.get("/api/subscriptions/user", headers=admin["headers"]).get_json()["tier_id"]
        == "enterprise"
    )
    granted = [
        (e.user_id, e.actor_id, e.details["to_tier"]) for e in _audit("subscription_granted")
    ]
    assert granted == [(aid, aid, "enterprise"), (uid, aid, "professional")]
    missing = client.post(
        "/api/subscriptions/user",
        json={"tier_id": "starter", "user_id": "no-such-user"},
        headers=admin["headers"],
    )
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "user_not_found"


def test_non_admin_naming_another_user_gets_404(app, client, user, other_user, admin):
    uid, oid = user["user"]["id"], other_user["user"]["id"]
    grant(client, admin, other_user, "starter")
    answers = []
    for target in (oid, "no-such-user"):
        for tier in ("free", "enterprise"):
            resp = client.post(
                "/api/subscriptions/user",
                json={"tier_id": tier, "user_id": target},
                headers=user["headers"],
            )
            answers.append((resp.status_code, resp.get_json()))
    # another user's id answers exactly like an id that does not exist
    assert {a[0] for a in answers} == {404} and len({str(a[1]) for a in answers}) == 1
    other = client.get("/api/subscriptions/user", headers=other_user["headers"]).get_json()
    assert (other["tier_id"], other["provider"]) == ("starter", "admin")
    # naming yourself is the same as naming nobody
    mine = client.post(
        "/api/subscriptions/user", json={"tier_id": "free", "user_id": uid}, headers=user["headers"]
    )
    assert mine.status_code == 200 and mine.get_json()["user_id"] == uid


def test_user_moves_themselves_to_a_free_plan(app, client, user, admin):
    uid = user["user"]["id"]
    grant(client, admin, user, "professional")
    resp = client.post("/api/subscriptions/user", json={"tier_id": "free"}, headers=user["headers"])
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["tier_id"], body["effective_tier"]["id"], body["provider"]) == (
        "free",
        "free",
        None,
    )
    with pytest.raises(PaymentRequired):
        entitlements.require_platform(uid, "whatsapp", connected_accounts=0)
    assert [
        (e.user_id, e.details["from_tier"], e.details["to_tier"])
        for e in _audit("subscription_changed")
    ] == [(uid, "professional", "free")]


def test_a_trial_is_taken_once(app, client, user, admin):
    uid = user["user"]["id"]
    for tier, days in (("starter", 14), ("professional", 7)):
        resp = client.put(
            f"/api/subscriptions/tiers/{tier}", json={"trial_days": days}, headers=admin["headers"]
        )
        assert resp.status_code == 200 and resp.get_json()["trial_days"] == days
    resp = client.post(
        "/api/subscriptions/user", json={"tier_id": "starter"}, headers=user["headers"]
    )
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["status"], body["tier_id"], body["effective_tier"]["id"]) == (
        "trialing",
        "starter",
        "starter",
    )
    ends = datetime.fromisoformat(body["current_period_end"])
    assert timedelta(days=13, hours=23) < ends - datetime.now(timezone.utc) <= timedelta(days=14)
    assert body["trial_started_at"] and body["effective_until"] == body["current_period_end"]
    entitlements.require_platform(uid, "instagram", connected_accounts=0)
    # asking again for the plan you are trying changes nothing
    again = client.post(
        "/api/subscriptions/user", json={"tier_id": "starter"}, headers=user["headers"]
    )
    assert (
        again.status_code == 200
        and again.get_json()["current_period_end"] == body["current_period_end"]
    )
    # leave the trial, then try to start it (or another plan's) again: one per account
    assert (
        client.post(
            "/api/subscriptions/user", json={"tier_id": "free"}, headers=user["headers"]
        ).status_code
        == 200
    )
    for tier in ("starter", "professional"):
        refused = client.post(
            "/api/subscriptions/user", json={"tier_id": tier}, headers=user["headers"]
        )
        assert refused.status_code == 402, tier
        assert refused.get_json()["error"]["code"] == "payment_required"
    assert (
        client.get("/api/subscriptions/user", headers=user["headers"]).get_json()["tier_id"]
        == "free"
    )
    assert [e.user_id for e in _audit("trial_started")] == [uid]


def test_a_trial_ends_on_free(app, client, user, admin):
    uid = user["user"]["id"]
    client.put("/api/subscriptions/tiers/starter", json={"trial_days": 3}, headers=admin["headers"])
    assert (
        client.post(
            "/api/subscriptions/user", json={"tier_id": "starter"}, headers=user["headers"]
        ).get_json()["status"]
        == "trialing"
    )
    past = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    client.put(
        f"/api/subscriptions/user/{uid}",
        json={"current_period_end": past},
        headers=admin["headers"],
    )
    body = client.get("/api/subscriptions/user", headers=user["headers"]).get_json()
    assert body["status"] == "expired" and body["effective_tier"]["id"] == "free"
    with pytest.raises(PaymentRequired):
        entitlements.require_platform(uid, "instagram", connected_accounts=0)


def test_plan_trial_and_stripe_price_are_admin_settings(client, user, admin):
    created = client.post(
        "/api/subscriptions/tiers",
        json={**NEW_TIER, "trial_days": 10, "stripe_price_id": "price_1Team"},
        headers=admin["headers"],
    )
    assert created.status_code == 201
    tier = created.get_json()
    assert (tier["trial_days"], tier["stripe_price_id"]) == (10, "price_1Team")
    cleared = client.put(
        f"/api/subscriptions/tiers/{tier['id']}",
        json={"stripe_price_id": None, "trial_days": 0},
        headers=admin["headers"],
    )
    assert (cleared.get_json()["stripe_price_id"], cleared.get_json()["trial_days"]) == (None, 0)
    bad = client.put(
        f"/api/subscriptions/tiers/{tier['id']}",
        json={"stripe_price_id": "prod_123", "trial_days": -1},
        headers=admin["headers"],
    )
    assert bad.status_code == 400
    assert {d["field"] for d in bad.get_json()["error"]["details"]} == {
        "stripe_price_id",
        "trial_days",
    }
    assert (
        client.put(
            f"/api/subscriptions/tiers/{tier['id']}",
            json={"trial_days": 30},
            headers=user["headers"],
        ).status_code
        == 403
    )
    # one Stripe price bills one plan: webhooks find the plan by it
    assert (
        client.put(
            "/api/subscriptions/tiers/starter",
            json={"stripe_price_id": "price_1S"},
            headers=admin["headers"],
        ).status_code
        == 200
    )
    for method, path in (
        ("put", f"/api/subscriptions/tiers/{tier['id']}"),
        ("post", "/api/subscriptions/tiers"),
    ):
        taken = getattr(client, method)(
            path,
            json={**NEW_TIER, "name": "Other", "stripe_price_id": "price_1S"},
            headers=admin["headers"],
        )
        assert taken.status_code == 409, method
        assert taken.get_json()["error"]["code"] == "stripe_price_in_use"
    assert (
        client.put(
            "/api/subscriptions/tiers/starter",
            json={"stripe_price_id": "price_1S"},
            headers=admin["headers"],
        ).status_code
        == 200
    )  # its own price again
    defaults = client.get("/api/subscriptions/tiers/professional").get_json()
    assert (defaults["trial_days"], defaults["stripe_price_id"]) == (0, None)


def test_cli_grant_plan_and_set_stripe_price(app, client, user):
    uid, email = user["user"]["id"], user["user"]["email"]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["grant-plan", "--email", email.upper(), "--tier", "professional"])
    assert result.exit_code == 0, result.output
    body = client.get("/api/subscriptions/user", headers=user["headers"]).get_json()
    assert (body["tier_id"], body["provider"], body["current_period_end"]) == (
        "professional",
        "admin",
        None,
    )
    entitlements.require_platform(uid, "whatsapp", connected_accounts=0)
    assert [e.user_id for e in _audit("subscription_granted_cli")] == [uid]
    for args in (
        ["--email", "nobody@example.com", "--tier", "Starter"],
        ["--email", email, "--tier", "Gold"],
    ):
        result = runner.invoke(args=["grant-plan", *args])
        assert result.exit_code != 0 and (
            "No account" in result.output or "No plan" in result.output
        )

    result = runner.invoke(
        args=[
            "set-stripe-price",
            "--tier",
            "Starter",
            "--price-id",
            "price_1Starter",
            "--trial-days",
            "14",
        ]
    )
    assert result.exit_code == 0, result.output
    starter = client.get("/api/subscriptions/tiers/starter").get_json()
    assert (starter["stripe_price_id"], starter["trial_days"]) == ("price_1Starter", 14)
    result = runner.invoke(args=["set-stripe-price", "--tier", "Starter", "--price-id", "nope"])
    assert result.exit_code != 0
    result = runner.invoke(
        args=["set-stripe-price", "--tier", "Enterprise", "--price-id", "price_1Starter"]
    )
    assert result.exit_code != 0 and "already has this Stripe price" in result.output
    assert (
        client.get("/api/subscriptions/tiers/starter").get_json()["stripe_price_id"]
        == "price_1Starter"
    )
