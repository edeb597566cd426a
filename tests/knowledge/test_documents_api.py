"""/api/knowledge documents: CRUD, owner scoping, pagination, filters, plan limit."""
from __future__ import annotations

import pytest

from tests.knowledge.conftest import SHIPPING, create_doc, search


def test_create_get_patch_delete(client, user):
    h = user["headers"]
    doc = create_doc(client, h, title="  Hours ", content="We open at 9.", tags=["a", "a", " b "])
    assert doc["title"] == "Hours"
    assert doc["tags"] == ["a", "b"]
    assert doc["enabled"] is True and doc["format"] == "text" and doc["source"] == "api"
    assert doc["chunk_count"] == 1 and doc["content"] == "We open at 9."

    got = client.get(f"/api/knowledge/{doc['id']}", headers=h)
    assert got.status_code == 200 and got.get_json()["content"] == "We open at 9."

    patched = client.patch(f"/api/knowledge/{doc['id']}", json={"tags": ["x"], "enabled": False},
                           headers=h)
    assert patched.status_code == 200
    assert patched.get_json()["tags"] == ["x"] and patched.get_json()["enabled"] is False

    assert client.delete(f"/api/knowledge/{doc['id']}", headers=h).status_code == 204
    gone = client.get(f"/api/knowledge/{doc['id']}", headers=h)
    assert gone.status_code == 404
    assert gone.get_json()["error"]["code"] == "document_not_found"


def test_requires_auth(client):
    resp = client.get("/api/knowledge")
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("body", [
    {"content": "no title"},
    {"title": "no content"},
    {"title": "t", "content": "c", "unknown": 1},
    {"title": "t", "content": "c", "format": "pdf"},
    {"title": "t", "content": "c", "tags": ["x" * 65]},
    {"title": "", "content": "c"},
])
def test_invalid_bodies_are_400(client, user, body):
    resp = client.post("/api/knowledge", json=body, headers=user["headers"])
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "validation_error"


def test_another_users_document_is_404(client, user, other_user):
    doc = create_doc(client, user["headers"], title="Secret", content="Our supplier is ACME.")
    oh = other_user["headers"]
    for method in ("get", "delete"):
        resp = getattr(client, method)(f"/api/knowledge/{doc['id']}", headers=oh)
        assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "document_not_found"
    resp = client.patch(f"/api/knowledge/{doc['id']}", json={"title": "mine"}, headers=oh)
    assert resp.status_code == 404
    assert client.get("/api/knowledge", headers=oh).get_json()["items"] == []
    assert search(client, oh, "supplier ACME") == []
    # ... and the owner still has it, unchanged
    assert client.get(f"/api/knowledge/{doc['id']}",
                      headers=user["headers"]).get_json()["title"] == "Secret"
    assert search(client, user["headers"], "supplier ACME")[0]["document_id"] == doc["id"]


def test_list_pagination_and_filters(client, user):
    h = user["headers"]
    ids = [create_doc(client, h, title=f"Doc {i}", content=f"Text number {i}.",
                      tags=["even"] if i % 2 == 0 else ["odd"], enabled=i != 3)["id"]
           for i in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/knowledge", query_string=params, headers=h).get_json()
        assert len(page["items"]) <= 2
        assert all("content" not in item for item in page["items"])
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))  # newest first, each once

    even = client.get("/api/knowledge?tag=even", headers=h).get_json()["items"]
    assert sorted(d["id"] for d in even) == sorted(ids[0::2])
    disabled = client.get("/api/knowledge?enabled=false", headers=h).get_json()["items"]
    assert [d["id"] for d in disabled] == [ids[3]]
    both = client.get("/api/knowledge?enabled=true&tag=odd", headers=h).get_json()["items"]
    assert [d["id"] for d in both] == [ids[1]]

    bad = client.get("/api/knowledge?cursor=garbage", headers=h)
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_cursor"


def test_free_plan_allows_twenty_documents(client, user):
    h = user["headers"]
    for i in range(20):
        create_doc(client, h, title=f"Doc {i}", content="x")
    resp = client.post("/api/knowledge", json={"title": "one too many", "content": "x"}, headers=h)
    assert resp.status_code == 402
    err = resp.get_json()["error"]
    assert err["code"] == "plan_limit" and "20 knowledge documents" in err["message"]
    # deleting one makes room again
    first = client.get("/api/knowledge?limit=1", headers=h).get_json()["items"][0]
    assert client.delete(f"/api/knowledge/{first['id']}", headers=h).status_code == 204
    create_doc(client, h, title="fits again", content="x")


def test_patching_content_rechunks_and_reindexes(client, user):
    h = user["headers"]
    doc = create_doc(client, h, title="Pets", content="Dogs are welcome in the shop.")
    assert search(client, h, "dogs")[0]["document_id"] == doc["id"]

    resp = client.patch(f"/api/knowledge/{doc['id']}", headers=h,
                        json={"content": SHIPPING, "format": "markdown"})
    assert resp.status_code == 200
    assert resp.get_json()["chunk_count"] == 3  # Shipping, Costs, Returns
    assert search(client, h, "dogs") == []
    hit = search(client, h, "return an item for a refund")[0]
    assert hit["document_id"] == doc["id"] and hit["heading"] == "Shipping › Returns"

    # a title change re-indexes too (the title is searchable)
    client.patch(f"/api/knowledge/{doc['id']}", json={"title": "Zebra policy"}, headers=h)
    assert search(client, h, "zebra")[0]["document_id"] == doc["id"]


def test_disabled_documents_are_never_searched(client, user, kb):
    h = user["headers"]
    assert search(client, h, "parking")[0]["document_id"] == kb["faq"]["id"]
    client.patch(f"/api/knowledge/{kb['faq']['id']}", json={"enabled": False}, headers=h)
    assert all(item["document_id"] != kb["faq"]["id"] for item in search(client, h, "parking"))
    client.patch(f"/api/knowledge/{kb['faq']['id']}", json={"enabled": True}, headers=h)
    assert search(client, h, "parking")[0]["document_id"] == kb["faq"]["id"]


def test_deleted_documents_leave_no_index_entries(app, client, user, kb):
    from sqlalchemy import text

    from models_db import db

    h = user["headers"]
    client.delete(f"/api/knowledge/{kb['faq']['id']}", headers=h)
    assert search(client, h, "parking") == []
    if db.engine.dialect.name == "sqlite":
        # FTS5 compares its index with knowledge_chunks; raises on any difference
        db.session.execute(text("INSERT INTO knowledge_chunks_fts(knowledge_chunks_fts) "
                                "VALUES('integrity-check')"))
    fts_rows = db.session.execute(text(
        "SELECT count(*) FROM knowledge_chunks_fts" if db.engine.dialect.name == "postgresql"
        else "SELECT count(*) FROM knowledge_chunks_fts_docsize")).scalar_one()
    chunks = db.session.execute(text("SELECT count(*) FROM knowledge_chunks")).scalar_one()
    assert fts_rows == chunks == kb["shipping"]["chunk_count"]


def test_openapi_documents_the_endpoints(client):
    spec = client.get("/api/openapi.json").get_json()
    assert {"/api/knowledge", "/api/knowledge/{document_id}", "/api/knowledge/search",
            "/api/knowledge/import"} <= set(spec["paths"])
    assert "402" in spec["paths"]["/api/knowledge"]["post"]["responses"]
