"""A minimal loopback fake of the Stripe API (test infrastructure), for the real `stripe` library.

It runs on FakeRest: `base_url` is what STRIPE_API_URL points the library at, `requests`
records every request (method, path, the form fields as the library encodes them in `body`,
headers). It keeps just enough state for Dana's calls: customers (create), Checkout Sessions
(create), subscriptions (retrieve, update cancel_at_period_end). Tests play Stripe's part of
the flow with `complete_checkout` (the customer paid: a subscription now exists) and build
the webhook events Stripe would send with the helpers below, signed like Stripe signs them
(`sign`: t=<unix time>,v1=HMAC-SHA256(secret, "<t>.<body>")).

`fake.outage = True` answers every call 500 with Stripe's error envelope (an outage).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

from tests.fakes.rest import FakeRest, Request

SECRET_KEY = "sk_test_dana_fake_" + "k" * 24
WEBHOOK_SECRET = "whsec_dana_fake_" + "w" * 24
DAY = 24 * 3600


def sign(body: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for body, computed the way Stripe does it."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(kind: str, obj: dict, event_id: str | None = None, created: int | None = None) -> str:
    """The JSON body of a Stripe event of this type carrying obj (created: now by default)."""
    return json.dumps({"id": event_id or "evt_" + uuid.uuid4().hex[:24], "object": "event",
                       "api_version": "2025-03-31.basil",
                       "created": int(time.time()) if created is None else created,
                       "livemode": False, "pending_webhooks": 1, "type": kind,
                       "data": {"object": obj}})


def invoice(customer: str, subscription: str, price: str, period_end: int,
            paid: bool = True) -> dict:
    """An invoice object for one subscription period (the 2025 API's `parent` shape)."""
    return {"id": "in_" + uuid.uuid4().hex[:24], "object": "invoice", "customer": customer,
            "status": "paid" if paid else "open",
            "parent": {"type": "subscription_details",
                       "subscription_details": {"subscription": subscription}},
            "lines": {"object": "list", "data": [{
                "object": "line_item", "period": {"start": period_end - 30 * DAY,
                                                  "end": period_end},
                "pricing": {"price_details": {"price": price}}}]}}


class StripeFake(FakeRest):
    """The fake's state and its HTTP server; use as a context manager."""

    def __init__(self) -> None:
        """No customers, sessions or subscriptions yet."""
        super().__init__()
        self.customers: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.outage = False

    # ------------------------------------------------------------- Stripe's side
    def complete_checkout(self, session_id: str, *, status: str = "active",
                          period_end: int | None = None) -> dict:
        """The customer paid the session: its subscription exists. Returns the
        checkout.session.completed object Stripe would send."""
        session = self.sessions[session_id]
        sub = self.add_subscription(session["customer"], session["_price"], status=status,
                                    period_end=period_end)
        session.update(status="complete", payment_status="paid", subscription=sub["id"])
        return {k: v for k, v in session.items() if not k.startswith("_")}

    def add_subscription(self, customer: str, price: str, *, status: str = "active",
                         period_end: int | None = None) -> dict:
        """A subscription in Stripe's 2025 shape (period on the item and, for older API
        versions, on the subscription)."""
        end = period_end or int(time.time()) + 30 * DAY
        sub_id = "sub_" + uuid.uuid4().hex[:24]
        sub = {"id": sub_id, "object": "subscription", "customer": customer,
               "status": status, "cancel_at_period_end": False, "canceled_at": None,
               "ended_at": None, "current_period_end": end,
               "items": {"object": "list", "data": [{
                   "id": "si_" + uuid.uuid4().hex[:20], "object": "subscription_item",
                   "price": {"id": price, "object": "price"},
                   "current_period_start": end - 30 * DAY, "current_period_end": end}]}}
        self.subscriptions[sub_id] = sub
        return sub

    # ---------------------------------------------------------------- the API
    @staticmethod
    def _error(status: int, message: str, type_: str = "invalid_request_error") -> tuple:
        return status, {"error": {"type": type_, "message": message}}

    def answer(self, request: Request) -> tuple[int, dict, dict]:
        """Stripe's answer with its Request-Id header."""
        status, body = self._route(request.method, request.path, request.body or {},
                                   request.token)
        return status, body, {"Request-Id": "req_" + uuid.uuid4().hex[:14]}

    def _route(self, method: str, path: str, form: dict, token: str | None) -> tuple[int, dict]:
        if self.outage:
            return self._error(500, "An unknown error occurred", "api_error")
        if token != SECRET_KEY:
            return self._error(401, "Invalid API Key provided")
        if (method, path) == ("POST", "/v1/customers"):
            cus = {"id": "cus_" + uuid.uuid4().hex[:14], "object": "customer",
                   "email": form.get("email"),
                   "metadata": {"user_id": form.get("metadata[user_id]")}}
            self.customers[cus["id"]] = cus
            return 200, cus
        if (method, path) == ("POST", "/v1/checkout/sessions"):
            if form.get("customer") not in self.customers:
                return self._error(400, "No such customer")
            sid = "cs_test_" + uuid.uuid4().hex[:24]
            session = {"id": sid, "object": "checkout.session", "mode": form.get("mode"),
                       "customer": form["customer"], "status": "open",
                       "payment_status": "unpaid", "subscription": None,
                       "client_reference_id": form.get("client_reference_id"),
                       "metadata": {"user_id": form.get("metadata[user_id]"),
                                    "tier_id": form.get("metadata[tier_id]")},
                       "url": f"https://checkout.stripe.test/c/pay/{sid}",
                       "_price": form.get("line_items[0][price]")}
            self.sessions[sid] = session
            return 200, {k: v for k, v in session.items() if not k.startswith("_")}
        if path.startswith("/v1/subscriptions/"):
            sub = self.subscriptions.get(path.rsplit("/", 1)[1])
            if sub is None:
                return self._error(404, "No such subscription")
            if method == "POST" and "cancel_at_period_end" in form:
                sub["cancel_at_period_end"] = form["cancel_at_period_end"] == "true"
            return 200, sub
        return self._error(404, f"Unrecognized request URL ({method}: {path})")
