"""StrictModel: the base of every Pydantic model that validates input from outside.

Request bodies and query strings (routes/schemas/) and workflow definitions
(automation/core/definitions.py) refuse unknown fields, so a typo is reported instead of
silently ignored, and NUL characters, which PostgreSQL cannot store and no legitimate text
has (400 validation_error naming the field, on SQLite as on PostgreSQL).
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator


def _has_nul(value) -> bool:
    """True when a string anywhere in value (lists, dicts, their keys) holds a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_has_nul(v) for v in value)
    return False


class StrictModel(BaseModel):
    """Refuses unknown fields and NUL characters; strips surrounding whitespace from strings."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value):
        if _has_nul(value):
            raise ValueError("must not contain NUL characters (\\u0000)")
        return value
