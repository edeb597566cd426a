"""Flask-Limiter: memory storage by default, Redis when REDIS_URL is set.

Register and login are limited per client IP and per account (the e-mail in the body),
so neither many accounts from one IP nor one account from many IPs can be brute-forced.

Signed webhooks (every path under /webhooks/) are exempt from the API limits: their senders
(Meta, Stripe, Zendesk, Slack) prove who they are with a signature, and a burst of authentic
deliveries must never be refused. What is limited instead is forgery: a delivery whose
signature fails counts against RATE_LIMIT_WEBHOOK_FORGED for its client IP, and once over it
the forger gets 429 in the error shape (`signed_webhook`). The signature is checked over the
raw bytes before the body is parsed (Meta, Stripe), so an authentic delivery from the same
IP is still stored: it never counts and is never refused.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse
from werkzeug.exceptions import TooManyRequests

from utils.config import current_settings
from utils.errors import ApiError

log = logging.getLogger("dana.ratelimit")

WEBHOOK_PREFIX = "/webhooks/"


class DanaLimiter(Limiter):
    """Flask-Limiter, with signed webhooks exempt from every API limit before any of its
    per-request work (endpoint lookup, limit resolution, storage): a webhook delivery costs
    the limiter one string comparison.
    """

    def _check_request_limit(self, callable_name: str | None = None,
                             in_middleware: bool = True) -> None:
        if request.path.startswith(WEBHOOK_PREFIX):
            return
        super()._check_request_limit(callable_name, in_middleware)


limiter = DanaLimiter(key_func=get_remote_address, headers_enabled=True)
# Error codes of a delivery whose signature is missing or does not verify (Meta, Stripe:
# signature_missing / signature_invalid; Zendesk, Slack: invalid_signature).
FORGED_CODES = frozenset({"signature_missing", "signature_invalid", "invalid_signature"})
_FORGED_SCOPE = "webhook-forged"


def auth_limit() -> str:
    """The configured RATE_LIMIT_AUTH, read per request from the app's settings."""
    return current_settings().RATE_LIMIT_AUTH


def account_key() -> str:
    """Rate-limit key for the account named in the JSON body or the sign-in form (lower-cased
    e-mail).
    """
    data = request.get_json(silent=True) if request.is_json else request.form
    email = data.get("email") if hasattr(data, "get") else None
    if not isinstance(email, str) or not email.strip():
        return "account:" + get_remote_address()
    return "account:" + email.strip().lower()


@functools.lru_cache(maxsize=8)
def _parsed(limit: str):
    return parse(limit)


def count_forged_delivery() -> None:
    """Count one delivery whose signature failed against the client IP's
    RATE_LIMIT_WEBHOOK_FORGED; over it, 429 (the error shape's rate_limited, Retry-After).

    Nothing happens when rate limits are off. If the limit storage (Redis) cannot be
    reached the delivery is refused as forged anyway (401/403/400), only not counted.
    """
    if not (limiter.enabled and limiter.initialized):
        return
    limit = _parsed(current_settings().RATE_LIMIT_WEBHOOK_FORGED)
    try:
        allowed = limiter.limiter.hit(limit, _FORGED_SCOPE, get_remote_address())
    except Exception:  # noqa: BLE001 - storage down: the forgery is refused all the same
        log.warning("could not count a forged webhook delivery (rate-limit storage down?)")
        return
    if not allowed:
        raise TooManyRequests(f"{limit} with a bad webhook signature",
                              retry_after=max(1, int(limit.get_expiry())))


def signed_webhook(view: Callable) -> Callable:
    """Decorate a signed webhook's view: a delivery refused for its signature counts as
    forged for the client IP (429 once over RATE_LIMIT_WEBHOOK_FORGED); every other
    outcome, authentic deliveries above all, passes through untouched.
    """
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except ApiError as exc:
            if exc.code in FORGED_CODES:
                count_forged_delivery()
            raise
    return wrapper
