"""POST /webhooks/stripe: Stripe's signed events that activate, renew, degrade and cancel plans.

The view only hands the raw bytes and the Stripe-Signature header to services/billing.py,
which verifies them with the stripe library before anything is stored (400 otherwise).
"""
from __future__ import annotations

from flask import Blueprint, request

from services import billing
from utils.ratelimit import signed_webhook

bp = Blueprint("stripe_webhooks", __name__, url_prefix="/webhooks")


@bp.post("/stripe")
@signed_webhook
def receive():
    """Apply one Stripe event (once per event id); 400 when the signature does not verify."""
    return billing.handle_webhook(request.get_data(cache=False),
                                  request.headers.get("Stripe-Signature"))
