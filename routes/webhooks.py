"""Inbound webhooks, `/webhooks/<channel>`: GET answers the channel's handshake, POST hands
the raw delivery to the intake (services/intake.py). Nothing channel-specific lives here: the
channel's hook (automation.registry.INBOUND_HOOKS) verifies signatures and handshakes.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, request

from services import intake
from utils.ratelimit import signed_webhook

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.get("/<channel>")
def verify(channel: str):
    """The channel's subscription handshake (Meta: echo hub.challenge when the token matches)."""
    answer = intake.handshake(channel, request.args)
    return current_app.response_class(answer, status=200, mimetype="text/plain")


@bp.post("/<channel>")
@signed_webhook
def receive(channel: str):
    """Verify, store and dispatch an authentic delivery; answer 200 once it is stored."""
    raw = request.get_data(cache=True)  # raw bytes, whatever the Content-Type says
    return intake.receive(channel, request.headers, raw, g.get("request_id"))
