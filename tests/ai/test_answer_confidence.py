"""Issue 19: each business chooses how bold its offline AI is (profile `answer_confidence`)."""
from __future__ import annotations

import pytest

from automation.ai.providers.local import prefer
from automation.ai.response_generator import generate_reply
from automation.knowledge import search
from automation.knowledge.decision import features, load_model

# Answerable from the shipping page ("Our cakes are baked fresh every morning."), yet with a
# probability between the bold and the cautious thresholds.
BETWEEN = "Are your cakes fresh?"


def _probability(owner_id: str, question: str) -> float:
    return load_model().probability(
        features(question, prefer(question, search(owner_id, question, 5), "en")))


def test_a_question_between_two_levels_is_handed_off_when_cautious_answered_when_bold(
        owner, make_ctx):
    model = load_model()
    p = _probability(owner["id"], BETWEEN)
    assert model.threshold_for("bold") <= p < model.threshold_for("cautious"), p
    cautious = generate_reply(make_ctx(BETWEEN, answer_confidence="cautious"))
    assert cautious.handoff and cautious.reason == "low_confidence"
    assert cautious.confidence == pytest.approx(p, abs=1e-4)
    bold = generate_reply(make_ctx(BETWEEN, answer_confidence="bold"))
    assert not bold.handoff and "baked fresh every morning" in bold.text
    assert bold.sources == [owner["shipping"]]
    # no level, or one no longer offered: the default (cautious)
    assert generate_reply(make_ctx(BETWEEN)).handoff
    assert generate_reply(make_ctx(BETWEEN, answer_confidence="reckless")).handoff


def test_even_the_bold_level_hands_off_what_the_knowledge_cannot_answer(make_ctx):
    answer = generate_reply(make_ctx("Do you ship to Italy?", answer_confidence="bold"))
    assert answer.handoff


def test_profile_round_trip_and_validation(client, user, other_user):
    h = user["headers"]
    assert client.get("/api/business", headers=h).get_json()["answer_confidence"] == "cautious"
    resp = client.put("/api/business", json={"answer_confidence": "bold"}, headers=h)
    assert resp.status_code == 200 and resp.get_json()["answer_confidence"] == "bold"
    # another change leaves the level as it is
    resp = client.put("/api/business", json={"persona": "warm"}, headers=h)
    assert resp.get_json()["answer_confidence"] == "bold"
    assert client.get("/api/business", headers=h).get_json()["answer_confidence"] == "bold"
    bad = client.put("/api/business", json={"answer_confidence": "reckless"}, headers=h)
    assert bad.status_code == 400
    error = bad.get_json()["error"]
    assert error["code"] == "validation_error" and error["message"]
    assert any("answer_confidence" in d["field"] for d in error["details"])
    assert client.get("/api/business", headers=h).get_json()["answer_confidence"] == "bold"
    # another user's profile is untouched
    other = client.get("/api/business", headers=other_user["headers"]).get_json()
    assert other["answer_confidence"] == "cautious"


def test_the_openapi_document_names_the_levels(client):
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    levels = ["cautious", "balanced", "bold"]
    assert schemas["BusinessProfileOut"]["properties"]["answer_confidence"]["enum"] == levels
    given = schemas["BusinessProfileIn"]["properties"]["answer_confidence"]["anyOf"]
    assert {"enum": levels, "type": "string"} in given


def test_the_level_chosen_through_the_api_decides_the_reply(client, user, owner):
    from automation.ai.response_generator import ReplyContext
    from automation.core.business_profile import get_profile

    def reply():
        return generate_reply(ReplyContext(
            user_id=owner["id"], business=get_profile(owner["id"]), conversation_id=None,
            message_text=BETWEEN, history=[], contact_name=None, platform="facebook"))

    assert reply().handoff
    client.put("/api/business", json={"answer_confidence": "balanced"}, headers=user["headers"])
    assert not reply().handoff
