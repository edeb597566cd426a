"""A minimal loopback fake of GA4's Measurement Protocol (test infrastructure).

GA_MEASUREMENT_URL points at `fake.collect_url` (…/mp/collect); the validation server is
…/debug/mp/collect, as at Google. Like Google's, /mp/collect answers 204 with no body and
records the events; /debug/mp/collect records nothing and answers 200
`{"validationMessages": [...]}`, listing a message for a bad measurement_id, a missing
client_id or an invalid event name. It records every request (query and JSON body) and can
answer scripted failures (FakeRest.fail("POST /mp/collect", ...)): 401, 429 with
Retry-After, 500, any status, with no body.
"""
from __future__ import annotations

import re

from tests.fakes.rest import FakeRest, Request

MEASUREMENT_ID = "G-DANA12345"
API_SECRET = "ga-api-secret-0123456789"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")


def _events(request: Request) -> list[dict]:
    """The events a request carried."""
    body = request.body if isinstance(request.body, dict) else {}
    return list(body.get("events") or [])


class FakeGoogleAnalytics(FakeRest):
    """The server: `collect_url`, `requests` recorded, the events /mp/collect accepted."""

    def __init__(self) -> None:
        """Nothing collected yet; call start() to serve."""
        super().__init__()
        self._collected: list[dict] = []

    @property
    def collect_url(self) -> str:
        """What GA_MEASUREMENT_URL should be."""
        return f"{self.base_url}/mp/collect"

    def collected(self) -> list[dict]:
        """Every event /mp/collect accepted, with its client_id: [{client_id, name, params}]."""
        with self._lock:
            return list(self._collected)

    def error_body(self, status: int) -> None:
        """Google's failures carry no body."""
        return None

    def answer(self, request: Request) -> tuple:
        """The validation server's messages, or 204 (keeping the events of a valid request)."""
        if request.route == "POST /debug/mp/collect":
            return 200, {"validationMessages": self._validate(request)}
        if request.route == "POST /mp/collect":
            # Google answers 2xx even to a bad secret; the fake keeps only valid requests.
            if not self._validate(request):
                self._collected += [{"client_id": request.body["client_id"], **event}
                                    for event in _events(request)]
            return 204, None
        return 404, None

    @staticmethod
    def _validate(request: Request) -> list[dict]:
        messages = []
        if request.query.get("measurement_id") != MEASUREMENT_ID or \
                request.query.get("api_secret") != API_SECRET:
            messages.append({"fieldPath": "measurement_id", "description":
                             "Unable to find a stream for this measurement_id and api_secret.",
                             "validationCode": "VALUE_INVALID"})
        if not isinstance(request.body, dict) or not request.body.get("client_id"):
            messages.append({"fieldPath": "client_id", "description": "client_id is required.",
                             "validationCode": "VALUE_REQUIRED"})
        for event in _events(request):
            if not _NAME.match(str(event.get("name", ""))):
                messages.append({"fieldPath": "events.name", "description":
                                 f"Event name {event.get('name')!r} is invalid.",
                                 "validationCode": "NAME_INVALID"})
        return messages
