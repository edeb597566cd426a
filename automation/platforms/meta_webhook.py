"""Meta's webhook door (Messenger, Instagram, WhatsApp): X-Hub-Signature-256 and hub.challenge.

Meta signs every delivery with HMAC-SHA256 of the raw bytes under the app secret, and checks
a new subscription with a GET carrying hub.verify_token, echoing hub.challenge when the token
matches META_VERIFY_TOKEN (docs: README, "Connecting a real Facebook Page").
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping

from automation.inbound import InboundHook
from utils.config import current_settings
from utils.errors import ApiError, Forbidden, Unauthorized

log = logging.getLogger("dana.webhooks")

SIGNATURE_HEADER = "X-Hub-Signature-256"


def verify_signature(secret: str, raw_body: bytes, header: str | None) -> None:
    """Check X-Hub-Signature-256 over the raw bytes (constant time); 401 missing, 403 wrong."""
    if not header:
        raise Unauthorized("The X-Hub-Signature-256 header is missing.", code="signature_missing")
    scheme, _, received = header.partition("=")
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    if scheme != "sha256" or not hmac.compare_digest(expected, received.strip().lower()):
        raise Forbidden("The signature does not match the body.", code="signature_invalid")


class MetaWebhook(InboundHook):
    """One Meta product's webhook; `secret_setting` names the setting with its app secret."""

    def __init__(self, channel: str, secret_setting: str = "META_APP_SECRET"):
        """Bind the hook to a platform name and the setting that holds its app secret."""
        self.channel = channel
        self.secret_setting = secret_setting

    def verify_request(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        """Refuse a delivery whose signature does not match (503 when no secret is set)."""
        settings = current_settings()
        secret = getattr(settings, self.secret_setting) or settings.META_APP_SECRET
        if not secret:
            log.error("%s is not set: cannot verify %s webhooks", self.secret_setting,
                      self.channel)
            raise ApiError("Webhook signature secret is not configured.", status=503,
                           code="webhook_not_configured")
        verify_signature(secret, raw_body, headers.get(SIGNATURE_HEADER))

    def handshake(self, args: Mapping[str, str]) -> str:
        """Meta's subscription check: echo hub.challenge when the verify token matches."""
        mode = args.get("hub.mode")
        token = args.get("hub.verify_token")
        challenge = args.get("hub.challenge")
        if token is None or challenge is None:
            raise ApiError("hub.verify_token and hub.challenge are required.",
                           code="bad_verification")
        expected = current_settings().META_VERIFY_TOKEN or ""
        if mode != "subscribe" or not expected \
                or not hmac.compare_digest(token.encode(), expected.encode()):
            raise Forbidden("The verify token does not match.", code="verify_token_mismatch")
        return challenge
