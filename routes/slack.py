"""/api/slack: the caller's Slack channel (health, messages, threads).

The caller's own Slack integration is used; an admin without one uses the server's
SLACK_BOT_TOKEN/SLACK_CHANNEL_ID. Without either: health answers `not_configured`, the other
endpoints 409 `slack_not_configured`. A thread of another user's conversation is a 404.
"""
from __future__ import annotations

from flask import Blueprint, g
from pydantic import TypeAdapter, ValidationError

from routes.schemas import (
    SlackHealthOut,
    SlackListQuery,
    SlackMessageListOut,
    SlackPostIn,
    SlackPostOut,
    SlackTs,
)
from services import slack as svc
from utils.auth import require_auth
from utils.errors import NotFound
from utils.openapi import endpoint

bp = Blueprint("slack", __name__, url_prefix="/api/slack")
TAGS = ["slack"]
_TS = TypeAdapter(SlackTs)


@bp.get("/health")
@require_auth
@endpoint(response=SlackHealthOut, tags=TAGS)
def health():
    """Check the caller's Slack now: ok, error (Slack's reason) or not_configured."""
    return svc.health(g.user)


@bp.get("/messages")
@require_auth
@endpoint(query=SlackListQuery, response=SlackMessageListOut, tags=TAGS, errors=(409, 502))
def list_messages(query: SlackListQuery):
    """The channel's latest messages, newest first (threads as their parent)."""
    return svc.list_messages(g.user, query.limit, query.cursor)


@bp.post("/messages")
@require_auth
@endpoint(body=SlackPostIn, response=SlackPostOut, status=201, tags=TAGS,
          errors=(404, 409, 502))
def post_message(body: SlackPostIn):
    """Post in the channel, or reply in one of its threads (thread_ts)."""
    return svc.post_message(g.user, body.text, body.thread_ts, body.blocks), 201


@bp.get("/threads/<thread_ts>")
@require_auth
@endpoint(query=SlackListQuery, response=SlackMessageListOut, tags=TAGS,
          errors=(404, 409, 502))
def thread(thread_ts: str, query: SlackListQuery):
    """A thread: its parent message then the replies, oldest first."""
    try:
        _TS.validate_python(thread_ts)
    except ValidationError:
        raise NotFound("No such Slack thread.", code="thread_not_found") from None
    return svc.thread(g.user, thread_ts, query.limit, query.cursor)
