"""detect_intent, detect_language and summarize_conversation (offline, deterministic)."""
from __future__ import annotations

import pytest

from automation.ai.response_generator import detect_intent, detect_language, summarize_conversation


@pytest.mark.parametrize("text,intent", [
    ("hi", "greeting"), ("Hello there!", "greeting"), ("hey, how are you?", "greeting"),
    ("Guten Morgen", "greeting"), ("Bonjour !", "greeting"), ("Buenas tardes", "greeting"),
    ("thank you so much!", "thanks"), ("Vielen Dank", "thanks"), ("merci", "thanks"),
    ("muchas gracias", "thanks"),
    ("bye", "goodbye"), ("Thanks, bye!", "goodbye"), ("Tschüss", "goodbye"),
    ("au revoir", "goodbye"), ("hasta luego", "goodbye"),
    ("Can I speak to a human?", "human_request"), ("I need a real person", "human_request"),
    ("Bitte einen Mitarbeiter", "human_request"), ("parler à un humain", "human_request"),
    ("quiero hablar con alguien", "human_request"),
    ("This is unacceptable, the cake arrived broken", "complaint"),
    ("Ich bin sehr enttäuscht", "complaint"), ("Je suis déçu", "complaint"),
    ("Tengo una queja", "complaint"),
    ("Where is my order?", "order_status"), ("tracking number for order #48213", "order_status"),
    ("Wo ist mein Paket?", "order_status"), ("Où est ma commande ?", "order_status"),
    ("¿Dónde está mi pedido?", "order_status"),
    ("How much is a birthday cake?", "pricing"), ("Was kostet das?", "pricing"),
    ("C'est combien ?", "pricing"), ("¿Cuánto cuesta?", "pricing"),
    ("Do you deliver on Sundays?", "question"), ("Hi, are you open on Sunday?", "question"),
    ("Wann habt ihr geöffnet?", "question"), ("Quand êtes-vous ouverts", "question"),
    ("¿Tienen pan sin gluten?", "question"),
    ("I like turtles", "other"), ("", "other"), ("🙂", "other"),
])
def test_detect_intent(text, intent):
    assert detect_intent(text) == intent


@pytest.mark.parametrize("text,lang", [
    ("Hello, what time do you open tomorrow morning?", "en"),
    ("Hallo, wann habt ihr morgen früh geöffnet?", "de"),
    ("Bonjour, à quelle heure ouvrez-vous demain matin ?", "fr"),
    ("Hola, ¿a qué hora abren mañana por la mañana?", "es"),
    ("Buongiorno, a che ora aprite domani mattina?", "it"),
    ("hi", "en"), ("Hallo", "de"), ("merci", "fr"), ("gracias", "es"), ("danke!", "de"),
])
def test_detect_language(text, lang):
    assert detect_language(text) == lang


def test_detect_language_falls_back_for_texts_without_words():
    assert detect_language("👍") == "en"
    assert detect_language("12345", default="de") == "de"
    assert detect_language("") == "en"


def test_language_model_ships_inside_the_package():
    from pathlib import Path

    import py3langid.langid as langid

    assert (Path(langid.__file__).parent / langid.MODEL_FILE).is_file()


def test_summary_names_the_contact_their_questions_and_the_last_messages():
    history = [
        {"role": "customer", "text": "Hi!"},
        {"role": "business", "text": "Hello Anna, how can I help?"},
        {"role": "customer", "text": "Where is my order #4821? It was due on Monday."},
        {"role": "business", "text": "Let me check."},
        {"role": "customer", "text": "Also, how much is express delivery?"},
    ]
    summary = summarize_conversation(history, "Anna Schmidt")
    assert summary == summarize_conversation(history, "Anna Schmidt")  # deterministic
    lines = summary.splitlines()
    assert lines[0] == "Customer: Anna Schmidt (3 messages from them, 5 in total)."
    assert lines[1] == ('Asked: "Where is my order #4821? It was due on Monday."; '
                        '"Also, how much is express delivery?"')
    assert lines[2] == "Topics: order status, prices."
    assert lines[3] == "Last messages:"
    assert lines[-1] == "- Anna: Also, how much is express delivery?"
    assert "- Business: Let me check." in lines


def test_summary_without_name_or_messages():
    assert summarize_conversation([], None) == "The customer has not written anything yet."
    text = summarize_conversation([{"role": "customer", "text": "Wann öffnet ihr morgen?"}], None)
    assert text.startswith("Customer: The customer (1 message from them, 1 in total).")
    assert "Language: de." in text and "- Customer: Wann öffnet ihr morgen?" in text
    long = summarize_conversation([{"role": "customer", "text": "x" * 1000}], "Bo")
    assert max(len(line) for line in long.splitlines()) < 260
