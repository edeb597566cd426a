"""AI tests: a user with a small knowledge base, and ReplyContext builders."""
from __future__ import annotations

import pytest

from automation.ai.response_generator import ReplyContext

FAQ = ("Q: What are your opening hours?\n"
       "A: We are open Monday to Friday from 9 am to 6 pm and on Saturday from 10 am to 4 pm.\n\n"
       "Q: Do you have parking?\n"
       "A: Yes, there is free parking behind the shop.")
SHIPPING = """## Shipping

We ship to Germany, Austria, France and Spain. Standard delivery takes 3 to 5 business days.
Express delivery arrives the next business day if you order before 2 pm.
Our cakes are baked fresh every morning.

## Returns

Unused items can be returned within 30 days for a full refund.
Refunds are paid to your card within five working days after the return arrives.

## Delivery area

Our own van delivers cakes to:
- Leipzig and Halle
- Markkleeberg
"""

BUSINESS = {"name": "Crumb & Co", "persona": "A cheerful baker who loves puns.",
            "instructions": "Always mention that cakes are baked fresh daily.",
            "handoff_message": "One of our bakers will reply to you here soon!",
            "language": "en"}


@pytest.fixture
def owner(app, user):
    """The user's id, with an FAQ and a shipping page in their knowledge base."""
    from automation.knowledge import create_document

    uid = user["user"]["id"]
    faq = create_document(uid, {"title": "FAQ", "content": FAQ, "format": "faq"})
    shipping = create_document(uid, {"title": "Shipping and returns", "content": SHIPPING,
                                     "format": "markdown"})
    return {"id": uid, "faq": faq["id"], "shipping": shipping["id"]}


@pytest.fixture
def make_ctx(owner):
    def make(text: str, history=None, contact_name="Anna Schmidt", **business) -> ReplyContext:
        return ReplyContext(user_id=owner["id"], business={**BUSINESS, **business},
                            conversation_id="conv-1", message_text=text,
                            history=history if history is not None
                            else [{"role": "customer", "text": text}],
                            contact_name=contact_name, platform="facebook")
    return make
