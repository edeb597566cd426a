"""Connecting platform accounts: encryption at rest, plan gates, uniqueness, scoping."""
from __future__ import annotations

from tests.channels.conftest import PAGE_ID, PHONE_ID, connect, set_plan


def test_connect_list_delete_and_token_never_returned(app, client, user, other_user):
    acc = connect(client, user, "facebook", PAGE_ID, token="EAAG-secret-token-xyz")
    assert acc["status"] == "active" and acc["external_id"] == PAGE_ID
    assert "access_token" not in acc and "EAAG-secret-token-xyz" not in str(acc)
    from models_db import PlatformAccount, db
    from utils.crypto import decrypt
    row = db.session.get(PlatformAccount, acc["id"])
    assert row.access_token_encrypted != "EAAG-secret-token-xyz"
    assert decrypt(row.access_token_encrypted) == "EAAG-secret-token-xyz"
    listed = client.get("/api/platforms", headers=user["headers"]).get_json()
    assert [a["id"] for a in listed["items"]] == [acc["id"]] and listed["next_cursor"] is None
    assert "EAAG" not in str(listed)
    assert client.get("/api/platforms", headers=other_user["headers"]).get_json()["items"] == []
    assert client.delete(f"/api/platforms/{acc['id']}", headers=other_user["headers"]).status_code == 404
    assert client.delete(f"/api/platforms/{acc['id']}", headers=user["headers"]).status_code == 204
    assert client.get("/api/platforms", headers=user["headers"]).get_json()["items"] == []


def test_external_id_connected_by_anyone_is_409(client, user, other_user):
    connect(client, user, "facebook", PAGE_ID)
    resp = client.post("/api/platforms", json={"platform": "facebook", "external_id": PAGE_ID,
                                               "access_token": "EAAG-other-token"},
                       headers=other_user["headers"])
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "account_already_connected"


def test_plan_gates_platform_and_account_count(client, user):
    ig = client.post("/api/platforms", json={"platform": "instagram", "external_id": "1784",
                                             "access_token": "IGQ-token-12345"}, headers=user["headers"])
    assert ig.status_code == 402
    err = ig.get_json()["error"]
    assert err["code"] == "plan_limit" and "Starter" in err["message"]
    connect(client, user, "facebook", PAGE_ID)
    second = client.post("/api/platforms", json={"platform": "facebook", "external_id": "999",
                                                 "access_token": "EAAG-token-2222"},
                         headers=user["headers"])
    assert second.status_code == 402 and "Starter" in second.get_json()["error"]["message"]
    set_plan(user["user"]["id"], "professional")
    connect(client, user, "whatsapp", PHONE_ID)


def test_invalid_bodies(client, user):
    resp = client.post("/api/platforms", json={"platform": "telegram", "external_id": "x y",
                                               "access_token": "short"}, headers=user["headers"])
    assert resp.status_code == 400
    assert {d["field"] for d in resp.get_json()["error"]["details"]} == {
        "platform", "external_id", "access_token"}


def test_reauthorize_with_new_token(client, user):
    acc = connect(client, user, "facebook", PAGE_ID)
    from models_db import PlatformAccount, db
    row = db.session.get(PlatformAccount, acc["id"])
    row.status = "needs_reauth"
    db.session.commit()
    resp = client.patch(f"/api/platforms/{acc['id']}", json={"access_token": "EAAG-fresh-token-1"},
                        headers=user["headers"])
    assert resp.status_code == 200 and resp.get_json()["status"] == "active"
