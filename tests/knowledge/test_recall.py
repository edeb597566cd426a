"""Recall for customers' words: Snowball stems, typo fixes, field weights, the in-memory
index (and its invalidation), and the full-text path for knowledge bases too large for it.
"""
from __future__ import annotations

import pytest

from automation.knowledge.text import (
    snowball_stems,
    stem_index,
    stems_match,
    term_matches,
    typo_fix,
    within_one_edit,
)
from tests.knowledge.conftest import create_doc, search


def test_snowball_stems_join_forms_the_prefix_rule_misses():
    # "happiness" → "happines" is no prefix of "happy"; both stem to "happi" in English
    assert not term_matches("happiness", {"happy"}, {"happy"})
    assert stems_match(["happiness"], stem_index("our happy customers"))
    # German and French forms
    assert stems_match(["zahnreinigungen"], stem_index("die zahnreinigung dauert"))
    assert stems_match(["reservations"], stem_index("pour reserver une table"))
    # short words and numbers stem only to themselves
    assert snowball_stems("pm") == frozenset({"=:pm"})
    assert not stems_match(["2024"], stem_index("2025 prices"))


def test_one_typo_apart():
    assert within_one_edit("apointment", "appointment")      # a letter dropped
    assert within_one_edit("recieve", "receive")             # two letters swapped
    assert within_one_edit("parkimg", "parking")             # a letter changed
    assert not within_one_edit("parking", "park")
    vocabulary = frozenset({"appointment", "appointments", "parking", "warranty"})
    assert typo_fix("apointment", vocabulary) == "appointment"
    assert typo_fix("waranty", vocabulary) == "warranty"
    assert typo_fix("parking", vocabulary) is None           # a known word needs no fix
    assert typo_fix("park", vocabulary) is None              # too short to guess
    assert typo_fix("zzzzzzz", vocabulary) is None


def test_an_ambiguous_typo_is_not_fixed():
    assert typo_fix("bxke", frozenset({"bike", "bake"})) is None
    assert typo_fix("brakex", frozenset({"brakes", "braked"})) is None


def test_a_misspelt_question_finds_its_passage(client, user, kb):
    h = user["headers"]
    top = search(client, h, "how do I get a refnud for my parcle")[0]
    assert top["heading"] == "Shipping › Returns"
    assert search(client, h, "is there free parkimg")[0]["document_id"] == kb["faq"]["id"]


def test_a_match_in_the_heading_outranks_one_in_passing(client, user):
    h = user["headers"]
    create_doc(client, h, title="Workshop", content="We service bikes of every brand. Book "
               "online; a battery check is part of every service.")
    battery = create_doc(client, h, title="Batteries", content="We sell spare packs for "
                         "every brand, with a two-year guarantee.")
    top = search(client, h, "battery")[0]
    assert top["document_id"] == battery["id"]


def test_the_right_section_of_a_document_wins_a_tie(client, user):
    h = user["headers"]
    create_doc(client, h, title="Shipping and returns", format="markdown", content=(
        "## Shipping\n\nWe ship to Austria and Spain.\n\n"
        "## Refunds\n\nRefunds reach your card within five days."))
    assert search(client, h, "refund")[0]["heading"] == "Refunds"


def test_the_index_follows_every_change(client, user):
    h = user["headers"]
    doc = create_doc(client, h, title="Bikes", content="We rent tandems for two riders.")
    assert search(client, h, "tandem")
    client.patch(f"/api/knowledge/{doc['id']}", headers=h,
                 json={"content": "We rent cargo bikes for families."})
    assert not search(client, h, "tandem")
    assert search(client, h, "cargo")
    client.patch(f"/api/knowledge/{doc['id']}", headers=h, json={"enabled": False})
    assert not search(client, h, "cargo")
    client.patch(f"/api/knowledge/{doc['id']}", headers=h, json={"enabled": True})
    assert search(client, h, "cargo")
    assert client.delete(f"/api/knowledge/{doc['id']}", headers=h).status_code == 204
    assert not search(client, h, "cargo")


def test_one_knowledge_base_never_answers_from_anothers_cache(client, user, other_user):
    create_doc(client, user["headers"], title="Secret", content="Our supplier is Acme Gears.")
    assert search(client, user["headers"], "supplier acme")
    assert search(client, other_user["headers"], "supplier acme") == []


@pytest.mark.parametrize("q", ["How can I return an item and get a refund?", "free parking",
                               "when are you open on saturday", "express delivery before 2 pm"])
def test_the_full_text_path_agrees_with_the_index(app, user, kb, monkeypatch, q):
    """A knowledge base over MAX_INDEXED_CHUNKS is searched by the database's engine."""
    import automation.knowledge.database as kdb

    uid = user["user"]["id"]
    indexed = kdb.search(uid, q)
    monkeypatch.setattr(kdb, "MAX_INDEXED_CHUNKS", 0)
    engine = kdb.search(uid, q)
    assert [p.chunk_id for p in engine][:1] == [p.chunk_id for p in indexed][:1]
    assert engine[0].score == pytest.approx(indexed[0].score, abs=0.01)
    assert engine[0].sem == pytest.approx(indexed[0].sem, abs=0.001)   # the same embedding
