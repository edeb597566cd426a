"""Google Analytics 4: conversation events sent with the Measurement Protocol.

Events are POSTed over httpx to GA_MEASUREMENT_URL (Google's /mp/collect by default; tests
point it at a loopback fake) with the property's measurement_id and API secret. `check()`
sends one event to the /debug/mp/collect twin of that URL, Google's validation server, which
records nothing and answers with validation messages.

Privacy: GA never learns who the customer is. The client id is pseudonymous, an HMAC of the
owner and our contact id under the server's secret key (stable for one customer, meaningless
outside Dana), and an event's parameters are the platform and counters: never the
customer's name, phone number, e-mail or message text (`clean_params` drops anything that
looks like one, and a workflow's own parameters go through it too).

Automatic events (`AUTOMATIC_EVENTS`): conversation_started, ai_answered, handoff and
resolved, each when the config's `automatic_events` lists it; the pipeline's notifications
bring them (`notify`), and `track_event` workflow actions send their own.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from typing import ClassVar, Literal

import httpx
from pydantic import BaseModel, Field

from automation.integrations import web
from automation.integrations.base import (
    ActionRequest,
    IntegrationCheckFailed,
    IntegrationConnector,
    IntegrationError,
    Notification,
)
from automation.integrations.catalogue import SECRET
from automation.integrations.catalogue import (
    GoogleAnalyticsConfig as CatalogueGoogleAnalyticsConfig,
)

DEFAULT_MEASUREMENT_URL = "https://www.google-analytics.com/mp/collect"
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
AutomaticEvent = Literal["conversation_started", "ai_answered", "handoff", "resolved"]
AUTOMATIC_EVENTS: tuple[str, ...] = ("conversation_started", "ai_answered", "handoff",
                                     "resolved")
# The pipeline's notification kinds that are automatic events (the others are named alike).
# An AI reply is a "business_message" whose sender_type is "ai".
KIND_EVENTS = {"new_conversation": "conversation_started", "handoff": "handoff",
               "resolved": "resolved"}
# GA4's naming rules: a letter first, then letters, digits, underscores; at most 40.
EVENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
RESERVED_PREFIXES = ("google_", "ga_", "firebase_")
MAX_PARAMS = 25
MAX_PARAM_VALUE = 100
# Values that identify a person (e-mail address, phone number) are never sent.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")
# Parameter names that would carry who the customer is or what they wrote.
PERSONAL_PARAMS = frozenset({"name", "first_name", "last_name", "full_name", "email", "phone",
                             "phone_number", "text", "message", "message_text", "body",
                             "contact_name", "user_name", "username", "address"})


class GoogleAnalyticsConfig(CatalogueGoogleAnalyticsConfig):
    """The catalogue's GA4 config, plus which automatic events to send."""

    measurement_id: str = Field(pattern=r"^G-[A-Z0-9]+$",
                                description="the web stream's Measurement ID (G-…)")
    api_secret: str = Field(min_length=8, max_length=300, json_schema_extra=SECRET,
                            description="Admin > Data streams > your stream > Measurement "
                                        "Protocol API secrets")
    automatic_events: list[AutomaticEvent] = Field(
        default_factory=lambda: list(AUTOMATIC_EVENTS),
        description="events sent without a workflow (an empty list sends none)")


def pseudonymous_client_id(key: str, owner_id: str, contact_id: str) -> str:
    """A stable client id for one customer that reveals nothing about them ("n.n", as GA's)."""
    digest = hmac.new(key.encode(), f"dana-ga:{owner_id}:{contact_id}".encode(),
                      hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:4], 'big')}.{int.from_bytes(digest[4:8], 'big')}"


def valid_event_name(name: str) -> bool:
    """GA4's rules for an event name (letters, digits, underscores; no reserved prefix)."""
    return bool(EVENT_NAME.match(name or "")) and not name.lower().startswith(RESERVED_PREFIXES)


def clean_params(params: dict | None) -> dict:
    """Parameters GA may have: scalar, short, valid names, and nothing personal."""
    out: dict = {}
    for key, value in (params or {}).items():
        name = str(key)
        if len(out) >= MAX_PARAMS or not valid_event_name(name) or \
                name.lower() in PERSONAL_PARAMS:
            continue
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, (int, float)):
            out[name] = value
        elif isinstance(value, str):
            if _EMAIL.search(value) or _PHONE.search(value):
                continue
            out[name] = value[:MAX_PARAM_VALUE]
    return out


class GoogleAnalyticsConnector(IntegrationConnector):
    """Sends a business's conversation events to its GA4 property."""

    type: ClassVar[str] = "google_analytics"
    name: ClassVar[str] = "Google Analytics 4"
    category: ClassVar[str] = "analytics"
    config_model: ClassVar[type[BaseModel]] = GoogleAnalyticsConfig
    secret_fields: ClassVar[frozenset[str]] = frozenset({"api_secret"})
    operations: ClassVar[frozenset[str]] = frozenset({"track_event", "notify"})

    def __init__(self, config: GoogleAnalyticsConfig, settings) -> None:
        """Keep the config; the endpoint is GA_MEASUREMENT_URL."""
        super().__init__(config, settings)
        self.url = (getattr(settings, "GA_MEASUREMENT_URL", None)
                    or DEFAULT_MEASUREMENT_URL).rstrip("/")
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        """An httpx client (made on first use)."""
        if self._client is None:
            self._client = httpx.Client(timeout=TIMEOUT, follow_redirects=False)
        return self._client

    def close(self) -> None:
        """Release the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def debug_url(self) -> str:
        """The validation server: /mp/collect -> /debug/mp/collect on the same host."""
        head, sep, tail = self.url.rpartition("/mp/collect")
        return f"{head}/debug/mp/collect{tail}" if sep else f"{self.url}/debug"

    def client_id(self, owner_id: str, contact_id: str) -> str:
        """The customer's pseudonymous client id (keyed by the server's SECRET_KEY)."""
        key = getattr(self.settings, "SECRET_KEY", None) or self.config.api_secret
        return pseudonymous_client_id(key, owner_id, contact_id)

    def _post(self, url: str, what: str, client_id: str, events: list[dict]) -> httpx.Response:
        params = {"measurement_id": self.config.measurement_id,
                  "api_secret": self.config.api_secret}
        return web.call("Google Analytics", what, lambda: self.client.post(
            url, params=params, json={"client_id": client_id, "events": events}))

    def check(self) -> str:
        """Validate a sample event with Google's /debug/mp/collect (nothing is recorded)."""
        try:
            response = self._post(self.debug_url, "validation", "0.0",
                                  [{"name": "dana_connection_check", "params": {}}])
            body = response.json() if response.content else {}
        except IntegrationError as exc:
            raise IntegrationCheckFailed(str(exc)) from None
        except ValueError:
            raise IntegrationCheckFailed("the validation server did not answer JSON") from None
        messages = body.get("validationMessages") if isinstance(body, dict) else None
        if messages:
            first = messages[0] if isinstance(messages[0], dict) else {}
            raise IntegrationCheckFailed(str(first.get("description") or first)[:300])
        return f"Measurement Protocol accepted events for {self.config.measurement_id}"

    def track(self, client_id: str, name: str, params: dict | None = None) -> dict:
        """Send one event; {"status": "ok", "event": name}. Bad names are refused."""
        if not valid_event_name(name):
            raise IntegrationError(f"Google Analytics refused: {name!r} is not a valid event "
                                   "name", permanent=True)
        clean = {**clean_params(params), "engagement_time_msec": 1}
        self._post(self.url, "collect", client_id, [{"name": name, "params": clean}])
        return {"status": "ok", "event": name}

    def track_event(self, request: ActionRequest) -> dict:
        """The `track_event` workflow action: the workflow's event for this customer."""
        params = request.params or {}
        contact_id = (request.contact or {}).get("id") or request.conversation["id"]
        return self.track(self.client_id(request.owner_id, contact_id), params.get("event", ""),
                          self.event_params(request.conversation, params.get("params")))

    def event_params(self, conversation: dict, extra: dict | None = None) -> dict:
        """The parameters of a conversation event: platform (and counters), nothing personal."""
        return clean_params({"platform": conversation.get("platform") or "unknown",
                             **(extra or {})})

    def notify(self, notification: Notification) -> dict:
        """Automatic events from the pipeline's notifications (when the config wants them)."""
        n = notification
        event = KIND_EVENTS.get(n.kind)
        if n.kind == "business_message" and (n.message or {}).get("sender_type") == "ai":
            event = "ai_answered"
        conversation = n.conversation or {}
        contact = conversation.get("contact") or {}
        if event is None or event not in self.config.automatic_events or \
                not contact.get("id"):
            return {"status": "skipped"}
        extra = {"priority": (n.task or {}).get("priority")} if event == "handoff" else {}
        params = self.event_params(conversation, {k: v for k, v in extra.items() if v})
        return self.track(self.client_id(n.owner_id, contact["id"]), event, params)
