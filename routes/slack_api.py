"""Slack's requests to Dana: the Events API and interactivity (button clicks).

Both are verified (X-Slack-Signature v0 over the raw body, X-Slack-Request-Timestamp within
5 minutes) before anything else, stored, answered at once (Slack retries after 3 s), and
handled by whatever runs stored events. The rules are in services/slack.py.
"""
from __future__ import annotations

from flask import Blueprint, g, request

from services import slack as svc
from utils.ratelimit import signed_webhook

bp = Blueprint("slack_api", __name__, url_prefix="/webhooks/slack")


def _signed() -> tuple[bytes, str | None, str | None, str | None]:
    return (request.get_data(cache=True), request.headers.get("X-Slack-Request-Timestamp"),
            request.headers.get("X-Slack-Signature"), g.get("request_id"))


@bp.post("/events")
@signed_webhook
def events():
    """Events API: url_verification's challenge, or an event (a thread reply) accepted."""
    return svc.receive_event(*_signed())


@bp.post("/interactions")
@signed_webhook
def interactions():
    """Interactivity: the take / close / approve / send-edited buttons on Dana's posts."""
    return svc.receive_interaction(*_signed())
