"""Connecting platform accounts: ownership proven with Graph, encryption at rest, plan gates,
uniqueness, scoping."""
from __future__ import annotations

import pytest

from tests.channels.conftest import IG_ID, PAGE_ID, PHONE_ID, account_token, connect, set_plan
from tests.fakes.graph import Reply

OTHER_PAGE = "209876543210987"   # somebody else's Page


def _post(client, user, platform, external_id, token, name=""):
    return client.post("/api/platforms", json={"platform": platform, "external_id": external_id,
                                               "access_token": token, "name": name},
                       headers=user["headers"])


def _stored() -> list:
    from models_db import PlatformAccount, db
    return [(a.platform, a.external_id, a.user_id) for a in db.session.query(PlatformAccount)]


def test_connect_list_delete_and_token_never_returned(app, client, user, other_user, fake_graph):
    acc = connect(client, user, fake_graph, "facebook", PAGE_ID, token="EAAG-secret-token-xyz")
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
    assert (
        client.delete(f"/api/platforms/{acc['id']}", headers=other_user["headers"]).status_code
        == 404
    )
    assert client.delete(f"/api/platforms/{acc['id']}", headers=user["headers"]).status_code == 204
    assert client.get("/api/platforms", headers=user["headers"]).get_json()["items"] == []


@pytest.mark.parametrize(
    "platform,external_id,path,fields",
    [
        ("facebook", PAGE_ID, "/v21.0/me", "id,name"),
        ("instagram", IG_ID, f"/v21.0/{IG_ID}", "id,username"),
        ("whatsapp", PHONE_ID, f"/v21.0/{PHONE_ID}", "id,display_phone_number,verified_name"),
    ],
)
def test_connect_makes_one_graph_call_with_the_token_and_fills_the_name(
    client, user, fake_graph, platform, external_id, path, fields
):
    set_plan(user["user"]["id"], "professional")
    acc = connect(client, user, fake_graph, platform, external_id, name="")
    [check] = fake_graph.requests
    assert (check.method, check.path, check.query) == (
        "GET",
        path,
        "fields=" + fields.replace(",", "%2C"),
    )
    assert check.headers["authorization"] == f"Bearer {account_token(platform, external_id)}"
    assert (
        acc["name"]
        == {"facebook": "Nora's Page", "instagram": "nora.shop", "whatsapp": "Nora Shop"}[platform]
    )
    assert acc["display_phone_number"] == ("+1 555-078-3881" if platform == "whatsapp" else None)


def test_a_name_given_by_the_user_is_kept(client, user, fake_graph):
    assert connect(client, user, fake_graph, "facebook", PAGE_ID, name="Shop")["name"] == "Shop"


def test_your_token_cannot_claim_someone_elses_page(client, user, fake_graph):
    """Messenger: a valid Page token whose /me is another Page is a mismatch."""
    fake_graph.manage("EAAG-my-own-page-token", PAGE_ID, name="Mine")
    resp = _post(client, user, "facebook", OTHER_PAGE, "EAAG-my-own-page-token")
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert err["code"] == "platform_check_failed" and OTHER_PAGE in err["message"]
    assert _stored() == []


@pytest.mark.parametrize("platform,external_id", [("instagram", IG_ID), ("whatsapp", PHONE_ID)])
def test_your_token_cannot_claim_someone_elses_ig_account_or_number(
    client, user, fake_graph, platform, external_id
):
    """Instagram/WhatsApp: Graph refuses to read an object the token does not manage."""
    set_plan(user["user"]["id"], "professional")
    fake_graph.manage("EAAG-mine-token", "17840000000000001", username="me")
    resp = _post(client, user, platform, external_id, "EAAG-mine-token")
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert err["code"] == "platform_check_failed"
    assert "does not exist, cannot be loaded due to missing permissions" in err["message"]
    assert _stored() == []


def test_a_junk_token_is_422_with_metas_reason(client, user, fake_graph):
    resp = _post(client, user, "facebook", PAGE_ID, "junk-token-0000")
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert err["code"] == "platform_check_failed"
    assert "Invalid OAuth access token" in err["message"]
    assert err["details"][0]["field"] == "access_token" and err["details"][0]["graph_code"] == 190
    assert _stored() == []


def test_a_junk_token_learns_nothing_about_who_connected_an_id(
    client, user, other_user, fake_graph
):
    """Already connected by someone else: a junk token gets 422, never the telling 409."""
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    resp = _post(client, other_user, "facebook", PAGE_ID, "junk-token-0000")
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "platform_check_failed"


def test_external_id_connected_by_anyone_is_409_for_a_token_that_manages_it(
    client, user, other_user, fake_graph
):
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    fake_graph.manage("EAAG-second-admin-token", PAGE_ID, name="Nora's Page")
    resp = _post(client, other_user, "facebook", PAGE_ID, "EAAG-second-admin-token")
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "account_already_connected"
    assert [owner for *_, owner in _stored()] == [user["user"]["id"]]


def test_plan_limit_is_checked_before_any_call_to_meta(client, user, fake_graph):
    fake_graph.manage("IGQ-token-12345", "1784", username="x")
    ig = _post(client, user, "instagram", "1784", "IGQ-token-12345")
    assert ig.status_code == 402
    err = ig.get_json()["error"]
    assert err["code"] == "plan_limit" and "Starter" in err["message"]
    assert fake_graph.requests == []
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    fake_graph.requests.clear()
    second = _post(client, user, "facebook", "999", "junk-token-2222")
    assert second.status_code == 402 and "Starter" in second.get_json()["error"]["message"]
    assert fake_graph.requests == []
    set_plan(user["user"]["id"], "professional")
    connect(client, user, fake_graph, "whatsapp", PHONE_ID)


def test_meta_unreachable_is_503_and_nothing_stored(client, user, fake_graph):
    fake_graph.queue("/me", Reply(status=500, body={"error": {"message": "down", "code": 2}}))
    resp = _post(client, user, "facebook", PAGE_ID, "EAAG-whatever-token")
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "platform_unavailable"
    assert _stored() == []


def test_invalid_bodies(client, user, fake_graph):
    resp = client.post(
        "/api/platforms",
        json={"platform": "telegram", "external_id": "x y", "access_token": "short"},
        headers=user["headers"],
    )
    assert resp.status_code == 400
    assert {d["field"] for d in resp.get_json()["error"]["details"]} == {
        "platform",
        "external_id",
        "access_token",
    }
    assert fake_graph.requests == []


def test_reauthorize_with_new_token(client, user, fake_graph):
    acc = connect(client, user, fake_graph, "facebook", PAGE_ID)
    from models_db import PlatformAccount, db

    row = db.session.get(PlatformAccount, acc["id"])
    row.status = "needs_reauth"
    db.session.commit()
    fake_graph.manage("EAAG-fresh-token-1", PAGE_ID, name="Nora's Page")
    resp = client.patch(
        f"/api/platforms/{acc['id']}",
        json={"access_token": "EAAG-fresh-token-1"},
        headers=user["headers"],
    )
    assert resp.status_code == 200 and resp.get_json()["status"] == "active"


def test_patch_cannot_swap_in_a_token_of_another_account(client, user, fake_graph):
    """Re-authorizing with a token for a different Page is refused and changes nothing."""
    acc = connect(client, user, fake_graph, "facebook", PAGE_ID, token="EAAG-original-token")
    fake_graph.manage("EAAG-other-page-token", OTHER_PAGE, name="Not yours")
    resp = client.patch(
        f"/api/platforms/{acc['id']}",
        json={"access_token": "EAAG-other-page-token", "name": "renamed"},
        headers=user["headers"],
    )
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "platform_check_failed"
    from models_db import PlatformAccount, db
    from utils.crypto import decrypt

    db.session.expire_all()
    row = db.session.get(PlatformAccount, acc["id"])
    assert decrypt(row.access_token_encrypted) == "EAAG-original-token" and row.name == acc["name"]
    junk = client.patch(
        f"/api/platforms/{acc['id']}",
        json={"access_token": "junk-token-0000"},
        headers=user["headers"],
    )
    assert junk.status_code == 422


def test_openapi_documents_the_check(client):
    spec = client.get("/api/openapi.json").get_json()
    post = spec["paths"]["/api/platforms"]["post"]["responses"]
    patch = spec["paths"]["/api/platforms/{account_id}"]["patch"]["responses"]
    assert {"402", "409", "422"} <= set(post) and "422" in patch


@pytest.mark.parametrize("external_id", ["me", "..", "me.."])
def test_an_id_that_is_not_an_account_id_cannot_pass_the_check(
    client, user, fake_graph, external_id
):
    """`GET /me` with an Instagram token answers the token's own account: the answered id must
    equal the claimed one, so "me" (or a path trick) never gets stored."""
    set_plan(user["user"]["id"], "professional")
    fake_graph.manage("IGQ-real-token-123", IG_ID, username="nora.shop")
    resp = _post(client, user, "instagram", external_id, "IGQ-real-token-123")
    assert resp.status_code == 422
    assert _stored() == []
