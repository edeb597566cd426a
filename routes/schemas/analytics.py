"""/api/analytics: the numbers behind the console's charts."""
from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from routes.schemas.common import StrictModel


class AnalyticsQuery(StrictModel):
    """The period of a summary: from and to (UTC days, inclusive)."""

    from_: date | None = Field(
        default=None, alias="from",
        description="first day (UTC, YYYY-MM-DD); default: 29 days before 'to'")
    to: date | None = Field(default=None, description="last day, inclusive (UTC); default: today")


class AnalyticsDayOut(BaseModel):
    """Messages of one day on one platform."""

    date: str
    platform: str
    inbound: int
    outbound: int


class AnalyticsSpreadOut(BaseModel):
    """How a duration spreads: median and 90th percentile, in seconds."""

    median: float | None = Field(description="seconds")
    p90: float | None = Field(description="seconds (nearest rank)")
    count: int


class AnalyticsConversationsOut(BaseModel):
    """Conversations opened, active and resolved in the period."""

    new: int
    active: int = Field(description="with a message in the period")
    resolved: int


class AnalyticsTotalsOut(BaseModel):
    """Messages in and out over the period."""

    inbound: int
    outbound: int


class AnalyticsSummaryOut(BaseModel):
    """The numbers behind the charts, for one period."""

    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    messages: list[AnalyticsDayOut] = Field(description="per day and platform; notes left out")
    totals: AnalyticsTotalsOut
    conversations: AnalyticsConversationsOut
    first_response_seconds: AnalyticsSpreadOut
    ai_answered_share: float | None = Field(
        description="answered conversations answered by the AI alone (0..1)")
    handoffs: int = Field(description="tasks opened on a conversation in the period")
    resolution_seconds: AnalyticsSpreadOut
