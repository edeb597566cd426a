"""/api/business: the business profile the AI speaks for."""
from __future__ import annotations

from pydantic import BaseModel, Field

from routes.schemas.common import StrictModel


class BusinessProfileIn(StrictModel):
    """Changes to the business profile; a field left out keeps its value."""

    name: str | None = Field(default=None, max_length=200)
    persona: str | None = Field(default=None, max_length=4000,
                                description="how the AI should sound, e.g. 'friendly, concise'")
    instructions: str | None = Field(default=None, max_length=8000,
                                     description="rules the AI must follow")
    handoff_message: str | None = Field(default=None, min_length=1, max_length=1000)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")


class BusinessProfileOut(BaseModel):
    """The business profile the AI speaks for, with defaults filled in."""

    name: str
    persona: str
    instructions: str
    handoff_message: str
    language: str
    timezone: str
