"""A small adapter over the official `stripe` library: the few calls Dana makes to Stripe.

Everything Stripe-shaped that is not a business rule lives here: building a StripeClient
from the settings (STRIPE_API_URL becomes the library's api_base, so tests talk to a
loopback fake), the four API calls, and verifying a webhook's `Stripe-Signature` with
`stripe.Webhook.construct_event`. Any failure to reach Stripe, or an answer Stripe would
call its own error, becomes `PaymentProviderUnavailable` (503 payment_provider_unavailable)
so callers change nothing; a webhook whose signature does not verify is `InvalidStripeEvent`.
Results are plain dicts.
"""
from __future__ import annotations

import json
import logging

import stripe

from utils.config import app_resource, current_settings
from utils.errors import BadRequest, ServiceUnavailable

log = logging.getLogger("dana.stripe")


class PaymentProviderUnavailable(ServiceUnavailable):
    """Stripe could not be reached or refused the call; nothing was changed."""

    code = "payment_provider_unavailable"
    message = "The payment provider is unavailable; nothing was changed. Try again later."


class InvalidStripeEvent(BadRequest):
    """A webhook whose Stripe-Signature is missing, wrong or too old: answered 400, stored
    nowhere, and counted as a forged delivery for the sender's address.
    """

    code = "signature_invalid"
    message = "The Stripe-Signature header does not verify this body."


class NotAStripeEvent(BadRequest):
    """A body signed with our secret that is not a Stripe event: answered 400 and stored
    nowhere, but not counted as a forgery (whoever signed it holds the secret).
    """

    code = "invalid_event"
    message = "The body is signed but is not a Stripe event."


def _settings():
    return current_settings()


def is_configured() -> bool:
    """True when a Stripe secret key is set (paid plans are then sold through Checkout)."""
    return bool(_settings().STRIPE_SECRET_KEY)


def _client() -> stripe.StripeClient:
    """The app's StripeClient, built once per process (its HTTP connection pool is reused)."""
    return app_resource("dana_stripe", _new_client)


def _new_client() -> stripe.StripeClient:
    settings = _settings()
    addresses = ({"api": settings.STRIPE_API_URL.rstrip("/")}
                 if settings.STRIPE_API_URL else None)
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY, base_addresses=addresses,
        max_network_retries=settings.STRIPE_MAX_RETRIES,
        # httpx is already a pinned runtime dependency (requests is only a test one)
        http_client=stripe.HTTPXClient(timeout=settings.STRIPE_TIMEOUT_SECONDS,
                                       allow_sync_methods=True))


def _call(what: str, fn):
    """Run one Stripe call; any Stripe error is a 503 that changed nothing."""
    if not is_configured():
        raise PaymentProviderUnavailable("No payment provider is configured.")
    try:
        return fn(_client()).to_dict()
    except stripe.StripeError as exc:
        log.warning("stripe %s failed: %s %s", what, type(exc).__name__,
                    getattr(exc, "user_message", None) or exc.http_status)
        raise PaymentProviderUnavailable() from None


def create_customer(email: str, user_id: str) -> dict:
    """A Stripe Customer for this user (its id is kept and reused for every checkout)."""
    return _call("customer create", lambda c: c.v1.customers.create(params={
        "email": email, "metadata": {"user_id": user_id}}))


def create_checkout_session(*, customer_id: str, price_id: str, user_id: str,
                            tier_id: str) -> dict:
    """A hosted Checkout Session that subscribes the customer to the price."""
    settings = _settings()
    return _call("checkout session create", lambda c: c.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer": customer_id, "client_reference_id": user_id,
        "line_items": [{"price": price_id, "quantity": 1}],
        "metadata": {"user_id": user_id, "tier_id": tier_id},
        "subscription_data": {"metadata": {"user_id": user_id, "tier_id": tier_id}},
        "success_url": settings.STRIPE_SUCCESS_URL, "cancel_url": settings.STRIPE_CANCEL_URL}))


def retrieve_subscription(subscription_id: str) -> dict:
    """Stripe's current view of a subscription (status, price, period)."""
    return _call("subscription retrieve",
                 lambda c: c.v1.subscriptions.retrieve(subscription_id))


def cancel_at_period_end(subscription_id: str) -> dict:
    """Ask Stripe to end the subscription when the paid period ends (no further invoice)."""
    return _call("subscription update", lambda c: c.v1.subscriptions.update(
        subscription_id, params={"cancel_at_period_end": True}))


def verify_event(payload: bytes, signature: str | None) -> dict:
    """The event in a webhook body, after the library has checked its Stripe-Signature
    (HMAC-SHA256 with STRIPE_WEBHOOK_SECRET, timestamp within the tolerance).
    """
    settings = _settings()
    try:
        stripe.Webhook.construct_event(payload, signature or "",
                                       settings.STRIPE_WEBHOOK_SECRET,
                                       tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        raise InvalidStripeEvent(f"The Stripe-Signature does not verify: {exc.user_message}"
                                 ) from None
    except (ValueError, TypeError, AttributeError, KeyError):  # verified, but not an event
        raise NotAStripeEvent() from None
    event = json.loads(payload)
    if not (isinstance(event, dict) and isinstance(event.get("id"), str)
            and isinstance(event.get("type"), str)
            and isinstance((event.get("data") or {}).get("object"), dict)):
        raise NotAStripeEvent()
    return event
