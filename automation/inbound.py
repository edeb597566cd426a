"""InboundHook: the door of one inbound channel (a platform's webhook, later Slack, Stripe).

The HTTP route only turns a request into a call; services/intake.py stores what comes in and
hands it on. What differs per channel lives in its hook: how to verify that a request really
comes from the channel (a signature over the raw bytes), and how to answer the channel's
verification handshake. Adding a channel is one hook module plus one line in
automation.registry.INBOUND_HOOKS.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from utils.errors import NotFound


class InboundHook:
    """Base class of a channel's inbound adapter; subclasses override what their channel has."""

    channel: ClassVar[str]

    def verify_request(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        """Raise an ApiError (401 missing, 403 wrong, 503 unconfigured) unless authentic."""
        raise NotImplementedError

    def handshake(self, args: Mapping[str, str]) -> str:
        """Answer the channel's subscription handshake (the text to reply with), or raise."""
        raise NotFound("No such webhook.")

    def instant_reply(self, payload: dict) -> dict | None:
        """A reply owed at once instead of storing the delivery (e.g. a URL check), or None."""
        return None
