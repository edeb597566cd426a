"""The answer decision: synonyms in search, the evidence features, and the fitted model."""
from __future__ import annotations

import json

from automation.knowledge.decision import (
    DEFAULT_LEVEL,
    FALLBACK,
    FEATURES,
    LEVELS,
    DecisionModel,
    _cache,
    answer_kind,
    features,
    fit,
    load_model,
)
from automation.knowledge.text import alternatives, content_terms, rewrite_phrases
from tests.knowledge.conftest import create_doc, search


def test_synonyms_and_phrases_are_expanded():
    assert "store" in alternatives("shop") and alternatives("shop")[0] == "shop"
    assert rewrite_phrases("Can I SEND BACK my shoes?") == "can i return my shoes"
    assert alternatives("zebra") == ["zebra"]


def test_chat_filler_is_not_a_content_word():
    assert content_terms("whats ur phone number guys") == ["phone", "number"]


def test_customers_words_find_the_knowledges_words(client, user, kb):
    h = user["headers"]
    # the knowledge says "return" and "refund"; the customer says "send back"
    hit = search(client, h, "can I send back something I bought")[0]
    assert hit["heading"] == "Shipping › Returns"
    # "store" finds the passage that says "shop"
    assert "shop" in search(client, h, "is there parking at the store")[0]["text"]


def test_a_question_for_a_contact_wants_a_number_or_an_address():
    kind = answer_kind("what's your phone number?")
    assert kind.search("Call us on 0341 555 0192 during opening hours.")
    assert kind.search("Write to hello@velo-verde.example any time.")
    assert not kind.search("We are open Monday to Friday from 9 am to 6 pm.")
    assert answer_kind("Wie ist Ihre Telefonnummer?") is kind


def test_search_api_does_not_leak_decision_evidence(client, user, kb):
    item = search(client, user["headers"], "parking")[0]
    assert not {"focus", "qsim", "missing", "unknown", "n_terms", "sem"} & set(item)


def test_features_of_the_search_evidence(app, user, kb):
    from automation.knowledge import search as search_fn

    uid = user["user"]["id"]
    good = features("How much does standard shipping cost?",
                    search_fn(uid, "How much does standard shipping cost?", 5))
    assert set(good) == set(FEATURES)
    assert good["kind_fit"] == 1.0 and good["kind_miss"] == 0.0  # a price was asked and given
    assert good["score"] > 0.5 and good["unknown"] == 0.0
    odd = features("How much is shipping to Japan by zeppelin?",
                   search_fn(uid, "How much is shipping to Japan by zeppelin?", 5))
    assert odd["unknown"] > 0.3 and odd["missing"] > 0.2   # words the knowledge never uses
    assert features("anything", []) == {k: 0.0 for k in FEATURES}


def test_fit_separates_and_prefers_hand_offs_when_wrong_answers_cost_more():
    rows = ([{"score": 0.9, "margin": 0.5}] * 10 + [{"score": 0.3, "margin": 0.0}] * 10
            + [{"score": 0.6, "margin": 0.1}] * 4)
    labels = [1] * 10 + [0] * 10 + [1, 0, 0, 1]
    model = fit(rows, labels, costs={"cautious": 4.0, "bold": 0.5})
    assert model.weights["score"] > 0
    assert model.should_answer({"score": 0.9, "margin": 0.5})
    assert not model.should_answer({"score": 0.3, "margin": 0.0})
    # an even chance of being wrong is not worth a wrong answer that costs 4 hand-offs
    assert not model.should_answer({"score": 0.6, "margin": 0.1})
    assert not model.should_answer({"score": 0.6, "margin": 0.1}, "cautious")
    # ... but it is when a wrong answer costs half a hand-off: one fit, a threshold per level
    assert model.should_answer({"score": 0.6, "margin": 0.1}, "bold")
    assert model.threshold_for("bold") < model.threshold_for("cautious") == model.threshold
    assert model.meta["wrong_costs"] == {"cautious": 4.0, "bold": 0.5}
    # a level the model has no threshold for (or none given) decides as the default level
    assert model.threshold_for("balanced") == model.threshold_for(None) == model.threshold


def test_the_levels_are_ordered_from_cautious_to_bold():
    assert list(LEVELS) == ["cautious", "balanced", "bold"] and DEFAULT_LEVEL == "cautious"
    assert LEVELS["cautious"] > LEVELS["balanced"] > LEVELS["bold"]
    shipped = load_model()
    assert set(shipped.thresholds) == set(LEVELS)
    assert shipped.threshold_for("cautious") > shipped.threshold_for("balanced") \
        > shipped.threshold_for("bold")
    assert shipped.meta["wrong_costs"] == LEVELS   # fitted at the costs the code names


def test_model_round_trips_and_a_broken_file_falls_back(tmp_path):
    model = DecisionModel(weights={"score": 3.0}, bias=-1.0,
                          thresholds={"cautious": 0.7, "bold": 0.4}, meta={"x": 1})
    path = tmp_path / "decision.json"
    path.write_text(json.dumps(model.to_json()))
    loaded = load_model(path)
    assert loaded.weights == {"score": 3.0} and loaded.threshold == 0.7
    assert loaded.threshold_for("bold") == 0.4
    # a file from before the levels (one threshold) is the default level's
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"weights": {"score": 3.0}, "bias": -1.0, "threshold": 0.6}))
    assert load_model(old).thresholds == {"cautious": 0.6}
    # thresholds without the default level's: unusable, the fallback rule decides
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"weights": {"score": 3.0}, "bias": -1.0,
                               "thresholds": {"bold": 0.4}}))
    assert load_model(odd) is FALLBACK
    assert loaded.probability({"score": 1.0}) == model.probability({"score": 1.0})
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert load_model(broken) is FALLBACK
    assert load_model(tmp_path / "missing.json") is FALLBACK
    for name in (path, old, odd):
        _cache.pop(str(name), None)


def test_the_shipped_model_is_fitted():
    model = load_model()
    assert model is not FALLBACK and model.meta.get("fitted_on", "").startswith("bench/data dev")
    assert 0 < model.threshold < 1 and set(model.weights) <= set(FEATURES)


def test_a_near_miss_sharing_words_is_handed_off(app, client, user):
    h = user["headers"]
    create_doc(client, h, title="Rental", content="We rent city bikes for 15 euros per day. "
               "Every rental includes a helmet and a lock.")
    from automation.knowledge import search as search_fn

    uid = user["user"]["id"]
    q = "Do you rent cargo bikes with a child seat?"
    assert not load_model().should_answer(features(q, search_fn(uid, q, 5)))
    q = "How much is it to rent a city bike for a day?"
    assert load_model().should_answer(features(q, search_fn(uid, q, 5)))
