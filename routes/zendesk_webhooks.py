"""POST /webhooks/zendesk: Zendesk's signed webhook events (an agent's comment on a ticket).

The view hands the raw bytes and the headers to services/zendesk.py, which verifies the
signature before anything else (401 otherwise) and sends an agent's public comment to the
customer of the ticket's conversation.
"""
from __future__ import annotations

from flask import Blueprint, request

from services import zendesk
from utils.ratelimit import signed_webhook

bp = Blueprint("zendesk_webhooks", __name__, url_prefix="/webhooks")


@bp.post("/zendesk")
@signed_webhook
def receive():
    """Verify one Zendesk event and act on it (at most once per Zendesk comment)."""
    return zendesk.receive_webhook(request.get_data(cache=True), request.headers)
