"""/api/admin/webhook-events: stored deliveries for operators."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from routes.schemas.common import ListQuery

# What webhook_events.platform holds: the platforms' deliveries and Slack's stored requests.
EventChannel = Literal["facebook", "instagram", "whatsapp", "slack"]


class WebhookEventOut(BaseModel):
    """A stored delivery and how its processing ended."""

    id: int
    platform: str
    status: str
    attempts: int
    error: str | None
    received_at: datetime
    processed_at: datetime | None


class WebhookEventListQuery(ListQuery):
    """Stored delivery filters: status and platform."""

    status: Literal["received", "processing", "processed", "ignored", "failed", "dead",
                    "rejected"] | None = None
    platform: EventChannel | None = None


class WebhookEventListOut(BaseModel):
    """A page of stored deliveries, newest first."""

    items: list[WebhookEventOut]
    next_cursor: str | None


class WebhookEventDetailOut(WebhookEventOut):
    """A stored delivery with its raw body."""

    raw_body: str
