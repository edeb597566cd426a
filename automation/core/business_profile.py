"""Reading the business profile (name, AI persona and instructions, hand-off message,
language, time zone, answer confidence) with its defaults: the workflows, the AI and the
hand-off all need it. Changing it is services/business.py.
"""
from __future__ import annotations

from sqlalchemy import bindparam, select

from automation.knowledge.decision import DEFAULT_LEVEL, LEVELS
from models_db import BusinessProfile, User
from utils.db import execute, memoized

DEFAULT_HANDOFF_MESSAGE = ("Thanks for your message! A member of our team will get back to you "
                           "here as soon as possible.")

_U, _P = User.__table__.c, BusinessProfile.__table__.c
# One Core query (built once) for the user and their profile, if any.
_READ = (select(_U.name, _U.timezone, _P.user_id, _P.business_name, _P.persona,
                _P.instructions, _P.handoff_message, _P.language, _P.answer_confidence)
         .select_from(User.__table__.outerjoin(BusinessProfile.__table__, _P.user_id == _U.id))
         .where(_U.id == bindparam("user_id")))


def get_profile(user_id: str) -> dict:
    """The profile with defaults filled in (the business name defaults to the user's name).

    Read once per event run (utils.db.memoized): the workflows and the hand-off ask again.
    """
    return dict(memoized(("business_profile", user_id), lambda: _read(user_id)))


def _read(user_id: str) -> dict:
    row = execute(_READ, {"user_id": user_id}).first()
    user_name, timezone = (row.name, row.timezone) if row else ("", "UTC")
    has = row is not None and row.user_id is not None  # the profile row exists
    return {
        "name": (row.business_name if has and row.business_name else (user_name or "")),
        "persona": row.persona if has else "",
        "instructions": row.instructions if has else "",
        "handoff_message": (row.handoff_message if has and row.handoff_message
                            else DEFAULT_HANDOFF_MESSAGE),
        "language": row.language if has else "en",
        "timezone": timezone if row else "UTC",
        # how bold the offline AI is (automation.knowledge.decision.LEVELS); none chosen, or
        # a level no longer offered: the default level
        "answer_confidence": (row.answer_confidence
                              if has and row.answer_confidence in LEVELS else DEFAULT_LEVEL),
    }
