"""Reading the business profile (name, AI persona and instructions, hand-off message,
language, time zone) with its defaults: the workflows, the AI and the hand-off all need it.
Changing it is services/business.py.
"""
from __future__ import annotations

from models_db import BusinessProfile, User, db

DEFAULT_HANDOFF_MESSAGE = ("Thanks for your message! A member of our team will get back to you "
                           "here as soon as possible.")


def get_profile(user_id: str) -> dict:
    """The profile with defaults filled in (the business name defaults to the user's name)."""
    row = db.session.get(BusinessProfile, user_id)
    user = db.session.get(User, user_id)
    return {
        "name": (row.business_name if row and row.business_name else (user.name if user else "")),
        "persona": row.persona if row else "",
        "instructions": row.instructions if row else "",
        "handoff_message": (row.handoff_message if row and row.handoff_message
                            else DEFAULT_HANDOFF_MESSAGE),
        "language": row.language if row else "en",
        "timezone": user.timezone if user else "UTC",
    }
