"""The local provider's decision on whole messages: several questions, near misses, spans."""
from __future__ import annotations

import pytest

from automation.ai.providers.local import split_questions
from automation.ai.response_generator import generate_reply


@pytest.mark.parametrize("text,parts", [
    ("How much is whitening and do you do it at home?",
     ["How much is whitening", "do you do it at home"]),
    ("What are your hours on Thursday? Is there parking?",
     ["What are your hours on Thursday", "Is there parking"]),
    ("Hi! Is there parking?", ["Hi! Is there parking?"]),          # a greeting is no question
    ("Do you sell salt and pepper?", ["Do you sell salt and pepper?"]),  # one question
    ("Where is it? How much?", ["Where is it? How much?"]),        # parts without content
])
def test_split_questions(text, parts):
    assert split_questions(text) == parts


def test_two_questions_in_one_message_get_both_answers(make_ctx, owner):
    answer = generate_reply(make_ctx("When are you open on Saturday and do you have parking?"))
    assert not answer.handoff
    assert "Saturday from 10 am to 4 pm" in answer.text
    assert "free parking behind the shop" in answer.text
    assert answer.sources == [owner["faq"]]


def test_one_unanswerable_question_hands_off_the_whole_message(make_ctx):
    answer = generate_reply(make_ctx(
        "Do you have parking? And can I pay for a wedding cake in bitcoin?"))
    assert answer.handoff and answer.reason == "low_confidence"
    assert answer.text == "One of our bakers will reply to you here soon!"


def test_a_near_miss_that_shares_words_is_handed_off(make_ctx):
    # shares "delivery", "express" and "days" with the shipping page, but it is not there
    answer = generate_reply(make_ctx("Is express delivery available on Sundays to Poland?"))
    assert answer.handoff


@pytest.mark.parametrize("text,expected", [
    ("when do I get my refnud?", "within five working days"),          # a typo
    ("is there parkimg?", "free parking behind the shop"),              # a typo
    ("Can I send back unused things?", "within 30 days"),               # a paraphrase
    ("when do I get my reimbursement", "within five working days"),     # no shared word
])
def test_a_misspelt_or_paraphrased_question_is_answered(make_ctx, text, expected):
    answer = generate_reply(make_ctx(text))
    assert not answer.handoff and expected in answer.text


def _passage(text, **kw):
    from automation.knowledge.database import Passage

    return Passage(chunk_id=1, document_id="d", title="Rental", text=text, question=None,
                   answer=None, score=1.0, rank=1, heading=kw.get("heading", "Bike rental"))


def test_the_span_quoted_is_the_sentence_that_answers():
    from automation.ai.providers.local import compose_answer

    p = _passage("We rent city bikes and e-bikes. City bikes cost 15 euros per day and e-bikes "
                 "35 euros per day. Every rental includes a helmet and a lock. You need a photo "
                 "ID and a deposit of 100 euros.")
    text = compose_answer(p, "How much is an e-bike for a day?", "en")
    assert "35 euros per day" in text
    assert "helmet" not in text and "deposit" not in text     # nothing that was not asked
    text = compose_answer(p, "Is a helmet included?", "en")
    assert "helmet and a lock" in text and "35 euros" not in text


def test_an_edited_passage_is_quoted_as_it_now_reads():
    """The sentences of a passage are remembered by its text: the same passage asked twice
    answers the same, and its edited text (same title, same heading) is quoted, never the
    remembered one."""
    from automation.ai.providers.local import compose_answer

    before = _passage("City bikes cost 15 euros per day. Every rental includes a helmet.")
    after = _passage("City bikes cost 18 euros per day. Every rental includes a helmet.")
    question = "How much is a city bike for a day?"
    assert "15 euros" in compose_answer(before, question, "en")
    assert compose_answer(before, question, "en") == compose_answer(before, question, "en")
    text = compose_answer(after, question, "en")
    assert "18 euros" in text and "15 euros" not in text


def test_an_faq_answer_is_quoted_alone_and_never_extended():
    from automation.ai.providers.local import compose_answer
    from automation.knowledge.database import Passage

    p = Passage(chunk_id=1, document_id="d", title="FAQ", text="Q: Dogs?\nA: Dogs are welcome.",
                question="Dogs?", answer="Dogs are welcome.", score=1.0, rank=1)
    assert compose_answer(p, "can I bring my dog and my cat", "en") == "Dogs are welcome."


def test_the_span_found_through_a_synonym_is_quoted():
    from automation.ai.providers.local import compose_answer

    p = _passage("The shop is open Monday to Friday from 9:00 to 18:00. Between 13:00 and "
                 "14:00 the phone is not staffed. We are closed at weekends and on holidays.",
                 heading="Opening hours")
    text = compose_answer(p, "are you guys open on a sunday?", "en")
    assert "closed at weekends" in text          # "sunday" is a "weekend" (synonyms/en.txt)
    assert "phone is not staffed" not in text


def test_the_span_found_through_a_snowball_stem_is_quoted():
    from automation.ai.providers.local import compose_answer

    p = _passage("There is no patient car park. Street parking is metered; the Parkhaus "
                 "Hauptstraße 150 is the closest garage.", heading="Getting here")
    # "Patienten" is "patient" only by its Snowball stem, as search matched it
    text = compose_answer(p, "Habt ihr einen Parkplatz für Patienten?", "de")
    assert "no patient car park" in text
