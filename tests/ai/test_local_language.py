"""The offline reply comes from the knowledge in the customer's language, when it has one."""
from __future__ import annotations

import pytest

from automation.ai.response_generator import ReplyContext, generate_reply

FAQ_EN = ("Q: How do I cancel my plan?\n"
          "A: Go to Settings > Billing > Cancel plan. Monthly plans stay active until the end "
          "of the paid month.\n\n"
          "Q: Is there a free trial?\n"
          "A: Yes, every plan starts with a 14-day free trial, no card needed.")
FAQ_ES = ("Q: ¿Cómo cancelo mi plan?\n"
          "A: Ve a Ajustes > Facturación > Cancelar plan. Los planes mensuales siguen activos "
          "hasta el final del mes pagado.\n\n"
          "Q: ¿Hay una prueba gratis?\n"
          "A: Sí, cada plan empieza con una prueba gratis de 14 días, sin tarjeta.")


@pytest.fixture
def ask(app, user):
    """Ask the offline provider, for a business whose FAQ exists in English and Spanish."""
    from automation.knowledge import create_document

    uid = user["user"]["id"]
    # The Spanish twin first: on a tie the older passage would win without a language rule.
    create_document(uid, {"title": "FAQ es", "content": FAQ_ES, "format": "faq"})
    create_document(uid, {"title": "FAQ", "content": FAQ_EN, "format": "faq"})

    def run(text: str):
        return generate_reply(ReplyContext(
            user_id=uid, business={"name": "Tallyho", "language": "en",
                                   "handoff_message": "A person will reply soon."},
            conversation_id=None, message_text=text, history=[], contact_name=None,
            platform="facebook"))
    return run


@pytest.mark.parametrize("text,expected,not_expected", [
    ("How do I cancel my plan?", "Settings > Billing > Cancel plan", "Ajustes"),
    ("¿Cómo cancelo mi plan?", "Ajustes > Facturación > Cancelar plan", "Settings"),
    ("¿Hay una prueba gratis?", "prueba gratis de 14 días", "free trial"),
])
def test_the_answer_is_in_the_customers_language(ask, text, expected, not_expected):
    answer = ask(text)
    assert not answer.handoff
    assert expected in answer.text and not_expected not in answer.text


def test_prefer_keeps_the_best_passage_when_no_other_is_close():
    from automation.ai.providers.local import prefer
    from automation.knowledge.database import Passage

    def passage(i, text, score):
        return Passage(chunk_id=i, document_id=str(i), title="t", text=text, question=None,
                       answer=None, score=score, rank=i, heading=None)

    best = passage(1, "Puedes cancelar en cualquier momento en los ajustes de la cuenta.", 0.9)
    far = passage(2, "You can cancel at any time in your account settings.", 0.5)
    assert prefer("how do I cancel", [best, far], "en") == [best, far]   # 0.4 apart: no swap
    near = passage(3, "You can cancel at any time in your account settings.", 0.85)
    assert prefer("how do I cancel", [best, near], "en")[0] is near        # close: English wins
