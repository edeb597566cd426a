"""The IntegrationConnector contract shared by every business-tool integration.

An integration is one module with a subclass and one line in automation.registry.INTEGRATIONS.
Connectors import NO services (only utils/ and lower automation pieces): services/integrations.py
stores their config (secrets encrypted), runs `check()` before storing and runs `notify()` with
retries, recording failures on the integration's row.

How a CRM, help-desk or analytics connector plugs in (the workflow actions `crm_sync`,
`create_ticket`, `track_event`; services/integration_actions.py runs them):

1. Put the action's name in `operations` (e.g. `frozenset({"crm_sync"})`) and implement the
   method of the same name: `crm_sync(request)`, `create_ticket(request)` or
   `track_event(request)`. Each takes an ActionRequest (below) and returns a dict.
2. Raise IntegrationError for run-time failures; `http_error()` builds one from an HTTP
   answer (429/503 + Retry-After -> `retry_after`, 401/403 -> `permanent`). Never retry or
   sleep in the connector: the service retries (tenacity, Retry-After honoured), marks the
   integration `error` with `last_error` and publishes `integration_error` when it gives up.
3. The call happens after the customer's reply (in the RQ worker when RQ is on), once per
   action run: the service keeps an idempotency record per (owner, type, action,
   `request.idempotency_key`) and never calls the connector again once it succeeded.
   A connector whose service deduplicates natively may also send the key along.
4. What the connector returns is kept: `external_id` (the object it created or found: the
   contact, lead, ticket, ...) on the idempotency record, and `refs` =
   `{"contact": {...}, "task": {...}, "conversation": {...}}` merged into what this type keeps
   about our contact, task and conversation (an `"id"` in one of them is also its external id,
   so an inbound webhook finds the object back). What was kept before comes in as
   `request.contact["integration_refs"][type]` (same for `task`, `conversation`), so a second
   sync updates the contact it created instead of searching again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pydantic

from utils.config import current_settings


class IntegrationCheckFailed(Exception):
    """The service refused the credentials/config; str(exc) is the service's reason."""


class IntegrationError(Exception):
    """A run-time failure talking to the service.

    `retry_after` (seconds|None) when the service said so (HTTP 429/503 Retry-After);
    `permanent=True` for auth failures (401/403) that no retry fixes.
    """

    def __init__(self, message: str, *, retry_after: float | None = None,
                 permanent: bool = False):
        """Keep the service's reason, its Retry-After and whether a retry could help."""
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


@dataclass(frozen=True)
class Notification:
    """What a `notify` action or a hand-off delivers to a team channel."""

    owner_id: str
    # "handoff" | "new_conversation" | "customer_message" | "notify" | "digest"
    kind: str
    # plain-text body (already rendered from the workflow's template)
    text: str
    title: str = ""
    # the store's conversation dict (id, platform, contact, integration_refs...)
    conversation: dict | None = None
    message: dict | None = None
    task: dict | None = None
    link: str | None = None
    # per-workflow override: Slack channel id / e-mail addresses (comma-separated)
    target: str | None = None


# The workflow actions run by an integration, and the connector category that offers each.
ACTION_CATEGORIES = {"crm_sync": "crm", "create_ticket": "helpdesk", "track_event": "analytics"}


@dataclass(frozen=True)
class ActionRequest:
    """One workflow action (`crm_sync`, `create_ticket`, `track_event`) for one integration.

    Built by services/integration_actions.py after the customer's reply. `conversation`,
    `contact` and `task` are the store's dicts, each with an `integration_refs` dict
    ({type: refs}) of what the integrations kept about it before.
    """

    owner_id: str
    action: str
    # stable per action run ("wf:<workflow>:<message>:<index>"): a retried run reuses it
    idempotency_key: str
    conversation: dict
    contact: dict
    message: dict | None = None
    task: dict | None = None
    # the conversation so far, oldest first: [{"role": "customer"|"business", "text"}]
    transcript: tuple = ()
    # the action's own fields from the workflow (subject, tags, event name, params, ...)
    params: dict = field(default_factory=dict)
    link: str | None = None
    trigger: str = ""

    def transcript_text(self, limit: int = 20000) -> str:
        """The transcript as plain lines ("Customer: ...", "Business: ..."), at most `limit`."""
        lines = [f"{'Customer' if t['role'] == 'customer' else 'Business'}: {t['text']}"
                 for t in self.transcript]
        return "\n".join(lines)[-limit:]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds; an HTTP date counts as unknown)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def http_error(service: str, status: int | None, reason: str = "",
               headers=None) -> IntegrationError:
    """An IntegrationError for an HTTP answer: 401/403 permanent, Retry-After kept.

    Other 4xx are permanent too (the same request would be refused again), except 408, 409
    and 429; 5xx and connection failures (status None) are retried.
    """
    headers = headers or {}
    retry_after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
    permanent = status is not None and 400 <= status < 500 and status not in (408, 409, 429)
    label = f"HTTP {status}" if status is not None else "unreachable"
    detail = f"{service}: {label}" + (f" {reason}" if reason else "")
    if status in (401, 403):
        detail += " (check the token and its scopes)"
    return IntegrationError(detail[:1000], retry_after=retry_after, permanent=permanent)


class IntegrationConnector:
    """One external service. Subclass per type + one line in automation.registry.INTEGRATIONS."""

    type: ClassVar[str]                    # "slack"
    name: ClassVar[str]                    # "Slack"
    # "messaging" | "email" | "crm" | "helpdesk" | "analytics" | "database"
    category: ClassVar[str]
    config_model: ClassVar[type[pydantic.BaseModel]]   # validates `config`; JSON schema for /types
    secret_fields: ClassVar[frozenset[str]]             # encrypted at rest, masked "••••"+last4
    operations: ClassVar[frozenset[str]] = frozenset()  # e.g. {"notify"}; later {"crm_sync"}, ...
    available: ClassVar[bool] = True       # False = specified but not built yet (listed in /types)

    def __init__(self, config: pydantic.BaseModel, settings) -> None:
        """Keep the validated config and the app's typed Settings (e.g. SLACK_API_URL)."""
        self.config, self.settings = config, settings

    def check(self) -> str:
        """ONE real call proving the credentials work.

        Returns a short detail; raises IntegrationCheckFailed with the service's reason.
        """
        raise NotImplementedError

    def notify(self, notification: Notification) -> dict:
        """Deliver it; raises IntegrationError.

        Returns refs to keep about the conversation (e.g. {"thread_ts": ..., "channel": ...}).
        """
        raise NotImplementedError

    def dispose(self) -> None:
        """Release what this connection holds (a pool); the config changed or was deleted."""

    # The workflow actions (see the module's docstring): implement the ones in `operations`.
    def crm_sync(self, request: ActionRequest) -> dict:
        """Upsert the customer as a CRM contact/lead (never a duplicate); log the conversation.

        Returns {"external_id": <the CRM's id>, "refs": {"contact": {"id": ...}}, ...}.
        """
        raise NotImplementedError

    def create_ticket(self, request: ActionRequest) -> dict:
        """Open a ticket with the transcript; returns {"external_id": <ticket id>, "refs": ...}."""
        raise NotImplementedError

    def track_event(self, request: ActionRequest) -> dict:
        """Record an analytics event (pseudonymous ids only); returns {"external_id"?: ...}."""
        raise NotImplementedError


def contact_names(contact: dict) -> tuple[str | None, str | None]:
    """The customer's (first, last) name for a CRM: the ones we know, else the display name
    split before its last word ("Anna Maria Schmidt" -> "Anna Maria", "Schmidt"); a one-word
    display name is a first name (chat names usually are). One rule for every CRM, so a
    customer synced to two of them is the same person in both.
    """
    first, last = contact.get("first_name"), contact.get("last_name")
    if not first and not last and contact.get("name"):
        first, _, last = str(contact["name"]).strip().rpartition(" ")
        if not first:
            first, last = last, None
    return (first or None), (last or None)


def contact_phone(contact: dict) -> str | None:
    """The customer's phone: the one we know, or a WhatsApp id as an E.164 number."""
    if contact.get("phone"):
        return contact["phone"]
    if contact.get("platform") == "whatsapp" and str(contact.get("platform_user_id")).isdigit():
        return "+" + contact["platform_user_id"]
    return None


def conversation_link(conversation_id: str) -> str:
    """The frontend's link to a conversation (APP_URL), as notifications carry it."""
    return f"{current_settings().APP_URL.rstrip('/')}/conversations/{conversation_id}"
