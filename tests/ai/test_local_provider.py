"""The offline provider (AI_PROVIDER=local, the default): templates, quotes, hand-offs."""
from __future__ import annotations

import pytest

from automation.ai.response_generator import Answer, ReplyContext, generate_reply, suggest_replies
from automation.knowledge.decision import load_model


def test_default_provider_is_local(app):
    assert app.config["DANA_SETTINGS"].AI_PROVIDER == "local"


def test_answers_a_faq_question_with_its_answer(make_ctx, owner):
    answer = generate_reply(make_ctx("When are you open on Saturday?"))
    assert isinstance(answer, Answer)
    assert not answer.handoff and answer.reason is None
    assert answer.text == ("We are open Monday to Friday from 9 am to 6 pm and on Saturday "
                           "from 10 am to 4 pm.")
    assert answer.sources == [owner["faq"]] and answer.provider == "local"
    assert load_model().threshold <= answer.confidence <= 1  # the decision's probability
    assert answer.fallback_from is None and answer.usage == {}


def test_quotes_the_relevant_sentences_of_prose(make_ctx, owner):
    answer = generate_reply(make_ctx("How long does standard delivery take?"))
    assert not answer.handoff and answer.sources == [owner["shipping"]]
    assert answer.text.startswith("Here's what I can tell you about shipping:")
    assert "Standard delivery takes 3 to 5 business days." in answer.text
    assert "baked fresh" not in answer.text  # an unrelated sentence of the same passage


def test_quotes_the_sentence_that_answers_the_kind_of_question(make_ctx):
    answer = generate_reply(make_ctx("When do I get my refund?"))
    assert answer.text.endswith("Refunds are paid to your card within five working days after "
                                "the return arrives.")
    assert "30 days" not in answer.text


def test_a_list_is_quoted_with_its_items(make_ctx):
    answer = generate_reply(make_ctx("Where does your van deliver cakes?"))
    assert answer.text == ("Here's what I can tell you about delivery area:\n"
                           "Our own van delivers cakes to:\n- Leipzig and Halle\n- Markkleeberg")


def test_greets_back_before_answering(make_ctx):
    answer = generate_reply(make_ctx("Hi! Is there parking?"))
    assert answer.text == "Hi Anna! Yes, there is free parking behind the shop."


def test_unknown_questions_hand_off_with_low_confidence(make_ctx):
    answer = generate_reply(make_ctx("Do you sell birthday candles in bulk?"))
    assert answer.handoff and answer.reason == "low_confidence"
    assert answer.text == "One of our bakers will reply to you here soon!"
    assert answer.confidence < load_model().threshold and answer.sources == []


def test_empty_knowledge_base_hands_off(app, user):
    ctx = ReplyContext(user_id=user["user"]["id"], business={}, conversation_id=None,
                       message_text="What are your opening hours?", history=[],
                       contact_name=None, platform="whatsapp")
    answer = generate_reply(ctx)
    assert answer.handoff and answer.reason == "low_confidence" and answer.confidence == 0
    assert answer.text.startswith("Thanks for your message!")  # the default hand-off text


@pytest.mark.parametrize("text,expected", [
    ("hi", "Hi Anna! Thanks for messaging Crumb & Co. How can I help you today?"),
    ("Good morning 👋", "Hi Anna! Thanks for messaging Crumb & Co. How can I help you today?"),
    ("thanks a lot!", "You're welcome, Anna! Is there anything else I can help you with?"),
    ("bye, have a nice day", "Thanks for chatting with Crumb & Co, Anna. Have a great day!"),
    ("Hallo", "Hallo Anna! Danke für deine Nachricht an Crumb & Co. Wie kann ich dir helfen?"),
    ("Merci beaucoup", "Avec plaisir, Anna ! Puis-je vous aider pour autre chose ?"),
    ("¡Hola!", "¡Hola Anna! Gracias por escribir a Crumb & Co. ¿En qué puedo ayudarte?"),
])
def test_small_talk_templates(make_ctx, text, expected):
    answer = generate_reply(make_ctx(text))
    assert answer.text == expected and not answer.handoff and answer.confidence == 1.0


def test_templates_without_a_contact_name(make_ctx):
    assert generate_reply(make_ctx("hello", contact_name=None)).text.startswith(
        "Hi! Thanks for messaging")


@pytest.mark.parametrize("text", ["Can I talk to a real person please?",
                                  "Ich möchte mit einem Mitarbeiter sprechen",
                                  "je voudrais parler à un conseiller",
                                  "quiero hablar con un humano"])
def test_asking_for_a_human_hands_off(make_ctx, text):
    answer = generate_reply(make_ctx(text))
    assert answer.handoff and answer.reason == "customer_asked_for_human"


def test_history_does_not_change_a_clear_answer(make_ctx, owner):
    history = [{"role": "customer", "text": "Do you have parking?"},
               {"role": "business", "text": "Yes, behind the shop."},
               {"role": "customer", "text": "And how long does express delivery take?"}]
    answer = generate_reply(make_ctx("And how long does express delivery take?", history=history))
    assert not answer.handoff and answer.sources == [owner["shipping"]]
    assert "Express delivery arrives the next business day" in answer.text


def test_never_raises_even_when_search_breaks(app, make_ctx, monkeypatch):
    import automation.ai.response_generator as rg

    def broken(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(rg, "search", broken)
    answer = generate_reply(make_ctx("What are your opening hours?"))
    assert answer.handoff and answer.reason == "low_confidence"


def test_suggest_replies_offers_knowledge_and_generic_drafts(make_ctx):
    drafts = suggest_replies(make_ctx("Is there parking?"), n=3)
    assert len(drafts) == 3 and len(set(drafts)) == 3
    assert drafts[0] == "Yes, there is free parking behind the shop."
    german = suggest_replies(make_ctx("Hallo, habt ihr Parkplätze für Kunden?"), n=2)
    assert len(german) == 2 and all(isinstance(s, str) and s for s in german)
