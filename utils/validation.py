"""StrictModel: the base of every Pydantic model that validates input from outside.

Request bodies (routes/schemas/) and workflow definitions (automation/core/definitions.py)
refuse unknown fields, so a typo is reported instead of silently ignored.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Refuses unknown fields and strips surrounding whitespace from strings."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
