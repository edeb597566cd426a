"""Cutting documents into passages, and the text helpers search relies on."""
from __future__ import annotations

from automation.knowledge.chunking import MAX_CHARS, chunk_document, faq_content
from automation.knowledge.text import content_terms, index_text, sentences, stem


def test_prose_is_packed_into_400_to_800_character_passages():
    para = "This sentence is about our delivery options and takes some room. " * 3  # ~200
    content = "\n\n".join([para.strip()] * 12)
    chunks = chunk_document(content, "text")
    assert len(chunks) >= 3
    assert all(len(c.text) <= MAX_CHARS for c in chunks)
    assert all(len(c.text) >= 400 for c in chunks[:-1])
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_a_passage_never_spans_two_headings():
    content = "# A\nalpha text\n## B\nbeta text\n# C\ngamma text"
    chunks = chunk_document(content, "markdown")
    assert [(c.heading, c.text) for c in chunks] == [
        ("A", "alpha text"), ("A › B", "beta text"), ("C", "gamma text")]


def test_an_overlong_paragraph_is_cut_at_sentences():
    content = " ".join(f"Sentence number {i} is here." for i in range(100))
    chunks = chunk_document(content)
    assert len(chunks) > 1 and all(len(c.text) <= MAX_CHARS for c in chunks)
    assert all(c.text.endswith(".") for c in chunks)


def test_one_enormous_word_is_still_cut():
    chunks = chunk_document("x" * 2000)
    assert all(len(c.text) <= MAX_CHARS for c in chunks)
    assert "".join(c.text for c in chunks) == "x" * 2000


def test_faq_blocks_become_question_answer_passages():
    content = "Some free text first.\n\n" + faq_content(
        [("Open on Sunday?", "No."), ("Parking?", "Yes,\n\nbehind the shop.")])
    chunks = chunk_document(content, "faq")
    # an answer runs until the next question, blank lines included
    assert [(c.question, c.answer) for c in chunks[:2]] == [
        ("Open on Sunday?", "No."), ("Parking?", "Yes,\n\nbehind the shop.")]
    assert chunks[0].text == "Open on Sunday?\nNo."
    assert chunks[2].question is None and chunks[2].text == "Some free text first."


def test_headings_only_still_gives_a_passage():
    assert [c.text for c in chunk_document("# Title\n## Sub")] == ["# Title\n## Sub"]


def test_text_helpers():
    assert index_text("Öffnungszeiten: Mo–Fr!", None, "Café 24/7 🙂") == \
        "offnungszeiten mo fr cafe 24 7"
    assert content_terms("Hi! What are your opening hours on Sundays?") == \
        ["opening", "hours", "sundays"]
    assert stem("shipping") == stem("ships") == "ship"
    assert stem("deliveries") == stem("delivery") == "deliver"
    assert stem("cancellation") == "cancel"


def test_sentences_join_wrapped_lines_and_keep_list_items():
    text = ("We ship to Germany and\nAustria. Parts arrive in 2 days.\n\nWe deliver to:\n"
            "- Leipzig\n- Halle and\n  Markkleeberg\n## Next\nMore text.")
    assert sentences(text) == ["We ship to Germany and Austria.", "Parts arrive in 2 days.",
                               "We deliver to:", "- Leipzig", "- Halle and Markkleeberg",
                               "## Next", "More text."]
