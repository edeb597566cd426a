"""Knowledge search: best first, calibrated 0..1 scores, safe for any text, owner-scoped."""
from __future__ import annotations

import pytest

from tests.knowledge.conftest import search

TRICKY = [
    'x" OR 1=1 --', "'; DROP TABLE knowledge_chunks; --", "NEAR(refund parcel)", "*", "**",
    "AND OR NOT", "refund NOT", '"unbalanced', "title:refund", "^refund", "refund*",
    "(parking", "parking)", "{parking}", "a-b c+d", "parking 🚗🚗", "🙂", "???", "!!!",
    "\\", "%", "_", "::", "'", "réfund çafé naïve", "日本語のテキスト",
    "Привет, где мой заказ?", "x" * 1000, "parking " * 120, "refund:* | parking & !x",
]


def test_best_first_with_scores_in_0_1(client, user, kb):
    items = search(client, user["headers"], "How can I return an item and get a refund?", limit=5)
    assert items, "a partial match must still be found"
    top = items[0]
    assert top["document_id"] == kb["shipping"]["id"]
    assert top["heading"] == "Shipping › Returns" and "30 days" in top["text"]
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert [i["rank"] for i in items] == list(range(1, len(items) + 1))
    assert top["score"] >= 0.6


def test_qa_passages_keep_question_and_answer_apart(client, user, kb):
    top = search(client, user["headers"], "when are you open on saturday")[0]
    assert top["document_id"] == kb["faq"]["id"]
    assert top["question"] == "What are your opening hours?"
    assert top["answer"].startswith("We are open Monday to Friday")
    assert top["text"] == f"{top['question']}\n{top['answer']}"


def test_light_stemming_matches_other_word_forms(client, user, kb):
    h = user["headers"]
    for q in ("refunds", "returning", "shipped", "deliveries", "opening", "parked"):
        assert search(client, h, q), q


def test_unrelated_questions_score_low(client, user, kb):
    items = search(client, user["headers"], "Do you sell gift cards for birthdays?")
    assert not items or items[0]["score"] < 0.5


def test_full_coverage_scores_higher_than_partial(client, user, kb):
    h = user["headers"]
    full = search(client, h, "free parking")[0]["score"]
    partial = search(client, h, "free parking for trucks and horses")[0]["score"]
    assert full == 1.0 and partial < full


@pytest.mark.parametrize("q", TRICKY)
def test_any_text_is_a_safe_query(client, user, kb, q):
    resp = client.get("/api/knowledge/search", query_string={"q": q}, headers=user["headers"])
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert set(body) == {"items", "next_cursor"} and body["next_cursor"] is None
    assert all(0 <= i["score"] <= 1 for i in body["items"])


def test_a_nul_character_in_q_is_400_naming_q(client, user, kb):
    """NUL is refused in every request string (PostgreSQL cannot hold it), search included."""
    resp = client.get("/api/knowledge/search", query_string={"q": "\u0000parking"},
                      headers=user["headers"])
    assert resp.status_code == 400
    assert [d["field"] for d in resp.get_json()["error"]["details"]] == ["q"]


def test_empty_or_missing_q_is_400(client, user):
    for qs in ({}, {"q": ""}, {"q": "x" * 1001}):
        resp = client.get("/api/knowledge/search", query_string=qs, headers=user["headers"])
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "validation_error"


def test_search_function_filters_by_user(app, client, user, other_user, kb):
    from automation.knowledge import search as kb_search

    assert kb_search(user["user"]["id"], "parking")[0].document_id == kb["faq"]["id"]
    assert kb_search(other_user["user"]["id"], "parking") == []
    assert kb_search(user["user"]["id"], "   ") == []
    assert kb_search(user["user"]["id"], "the and of") == []  # stopwords only


def test_limit_is_respected(client, user, kb):
    assert len(search(client, user["headers"], "shipping returns refund parking hours",
                      limit=2)) == 2


def test_many_candidates_use_the_engines_document_counts(app, client, user, kb, monkeypatch):
    """Past CANDIDATES matches the IDF comes from FTS counts instead of the candidates."""
    import automation.knowledge.database as kdb

    q = "How do I return an item for a refund?"
    full = kdb.search(user["user"]["id"], q)
    monkeypatch.setattr(kdb, "MAX_INDEXED_CHUNKS", 0)  # the full-text engine path
    monkeypatch.setattr(kdb, "CANDIDATES", 1)
    truncated = kdb.search(user["user"]["id"], q)
    assert len(truncated) == 1
    assert truncated[0].chunk_id == full[0].chunk_id
    assert truncated[0].score == pytest.approx(full[0].score, abs=0.1)


def test_knowledge_schema_matches_the_models(app):
    """The migrated knowledge tables are what the models declare; the FTS objects exist
    (named knowledge_chunks_fts*, which models_db.include_object leaves out)."""
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from models_db import db, include_object, render_item

    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                     "render_item": render_item,
                                                     "include_object": include_object})
        diff = [d for d in compare_metadata(ctx, db.metadata) if "knowledge" in repr(d)]
    assert diff == []
    assert "knowledge_chunks_fts" in sa.inspect(db.engine).get_table_names()
    assert not any(name.startswith("knowledge_chunks_fts") for name in db.metadata.tables)
