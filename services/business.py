"""The business profile: name, AI persona and instructions, hand-off message, language and
answer confidence (how bold the offline AI is).

Reading it (with defaults) is automation/core/business_profile.py, which the pipeline uses.
"""
from __future__ import annotations

from automation.core.business_profile import get_profile
from models_db import BusinessProfile, db

__all__ = ["get_profile", "update_profile"]


def update_profile(user_id: str, changes: dict) -> dict:
    """Change the profile (None leaves a field as it is); returns the profile as read."""
    row = db.session.get(BusinessProfile, user_id)
    if row is None:
        row = BusinessProfile(user_id=user_id)
        db.session.add(row)
    mapping = {"name": "business_name"}
    for key, value in changes.items():
        if value is not None:
            setattr(row, mapping.get(key, key), value)
    db.session.commit()
    return get_profile(user_id)
