"""/api/slack: the Slack channel as the team sees it."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from routes.schemas.common import StrictModel

SlackTs = Annotated[str, Field(pattern=r"^\d{1,12}\.\d{1,9}$", max_length=24,
                               description="a Slack message timestamp, e.g. 1712345678.000100")]


class SlackHealthOut(BaseModel):
    """Whether the caller's Slack connection works, and which one is used."""

    status: Literal["ok", "error", "not_configured"]
    source: Literal["integration", "server"] | None = Field(
        description="the caller's own integration, or (admins) the server's SLACK_BOT_TOKEN")
    channel_id: str | None
    detail: str = Field(description="the workspace and channel, or Slack's reason")
    checked_at: datetime | None = None


class SlackMessageOut(BaseModel):
    """One message of the Slack channel."""

    ts: str
    user: str | None = Field(description="Slack user id (or bot id) of the author")
    text: str
    thread_ts: str | None
    reply_count: int


class SlackMessageListOut(BaseModel):
    """A page of the channel (or of a thread), newest first."""

    items: list[SlackMessageOut]
    next_cursor: str | None


class SlackListQuery(StrictModel):
    """Slack paging: Slack's own cursor."""

    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500)


class SlackPostIn(StrictModel):
    """A message to post in the channel (or in a thread)."""

    text: str = Field(min_length=1, max_length=4000,
                      description="plain text / mrkdwn; also the notification fallback")
    thread_ts: SlackTs | None = Field(default=None, description="reply in this thread")
    blocks: list[dict] | None = Field(default=None, max_length=50,
                                      description="Block Kit blocks (rich formatting)")


class SlackPostOut(BaseModel):
    """Where the posted message landed."""

    ts: str
    channel: str
