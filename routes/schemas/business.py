"""/api/business: the business profile the AI speaks for."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from automation.knowledge.decision import DEFAULT_LEVEL, LEVELS
from routes.schemas.common import StrictModel

# The answer-confidence levels a business may choose, named once in the decision's LEVELS.
AnswerConfidence = Literal[tuple(LEVELS)]
ANSWER_CONFIDENCE_HELP = (
    f"how bold the offline AI is, from '{DEFAULT_LEVEL}' (the default: it answers only when a "
    "wrong answer is very unlikely) to bolder levels that answer more questions and get more "
    "of them wrong; each level prices a wrong answer at so many hand-offs: "
    + ", ".join(f"{level} {cost:g}" for level, cost in LEVELS.items()))


class BusinessProfileIn(StrictModel):
    """Changes to the business profile; a field left out keeps its value."""

    name: str | None = Field(default=None, max_length=200)
    persona: str | None = Field(default=None, max_length=4000,
                                description="how the AI should sound, e.g. 'friendly, concise'")
    instructions: str | None = Field(default=None, max_length=8000,
                                     description="rules the AI must follow")
    handoff_message: str | None = Field(default=None, min_length=1, max_length=1000)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    answer_confidence: AnswerConfidence | None = Field(default=None,
                                                       description=ANSWER_CONFIDENCE_HELP)


class BusinessProfileOut(BaseModel):
    """The business profile the AI speaks for, with defaults filled in."""

    name: str
    persona: str
    instructions: str
    handoff_message: str
    language: str
    timezone: str
    answer_confidence: AnswerConfidence = Field(description=ANSWER_CONFIDENCE_HELP)
