"""Zendesk: a hand-off becomes a ticket, the conversation goes on as its comments, and an
agent's public comment in Zendesk goes back to the customer.

Calls are the Zendesk Support REST API over httpx, at https://{subdomain}.zendesk.com (the
ZENDESK_API_URL setting overrides it; tests point it at a loopback fake), authenticated as
`{email}/token` with an API token. `check()` is GET /api/v2/users/me and insists on an agent.

Tickets are never duplicated: the customer is upserted as a Zendesk end user by
external_id (our contact id, POST /api/v2/users/create_or_update), and a ticket carries our
external_id (the hand-off task's), so a retried run finds the ticket it already opened
(GET /api/v2/tickets?external_id=...) instead of opening a second one. The transcript is the
ticket's first comment, private, so Zendesk does not e-mail it to anybody. Later customer
messages are public comments authored by the requester; the business's replies (AI, agents
in Dana) are private notes, so the ticket reads as the whole conversation and none of them
comes back through the webhook.

Zendesk's webhooks are signed: base64(HMAC-SHA256(signing secret, timestamp + body)) in
X-Zendesk-Webhook-Signature, the timestamp in X-Zendesk-Webhook-Signature-Timestamp
(`verify_signature`). services/zendesk.py handles what they bring.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import ClassVar

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
from automation.integrations.catalogue import ZendeskConfig as CatalogueZendeskConfig

DEFAULT_API_URL = "https://{subdomain}.zendesk.com"
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
MAX_COMMENT = 60_000        # Zendesk's comment limit is 64 KB
MAX_SUBJECT = 150
SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"


class ZendeskConfig(CatalogueZendeskConfig):
    """The catalogue's Zendesk config, plus the webhook's signing secret and ticket options."""

    subdomain: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
                           description="yourcompany in yourcompany.zendesk.com")
    api_token: str = Field(min_length=8, max_length=300, json_schema_extra=SECRET,
                           description="Admin Center > Apps and integrations > Zendesk API")
    webhook_secret: str | None = Field(
        default=None, min_length=8, max_length=300, json_schema_extra=SECRET,
        description="signing secret of the Zendesk webhook that sends agents' comments to "
                    "Dana (without it, Zendesk replies do not reach the customer)")
    tags: list[str] = Field(default_factory=lambda: ["dana"], max_length=20,
                            description="tags put on every ticket Dana opens")
    comment_messages: bool = Field(
        default=True, description="add the conversation's later messages to its ticket")


@dataclass(frozen=True)
class TicketRequest:
    """What a ticket is opened with (built by the create_ticket action from a conversation)."""

    external_id: str                   # ours, e.g. "dana-task-<task id>": finds it back
    subject: str
    transcript: str
    requester_name: str
    requester_external_id: str         # our contact id
    requester_email: str | None = None
    tags: tuple[str, ...] = ()
    priority: str | None = None        # low | normal | high | urgent


def verify_signature(secret: str, body: bytes, timestamp: str | None, signature: str | None,
                     tolerance: int = 300, now: float | None = None) -> bool:
    """Zendesk's webhook signature over timestamp + body, the timestamp within `tolerance`."""
    if not secret or not timestamp or not signature:
        return False
    try:
        # Zendesk sends ISO 8601 ("2024-01-01T12:00:00Z"); seconds since the epoch also pass.
        when = _timestamp_seconds(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - when) > tolerance:
        return False
    # bytes on both sides: compare_digest refuses non-ASCII str (a header may carry any)
    return hmac.compare_digest(sign(secret, body, timestamp).encode(),
                               signature.strip().encode("utf-8", "replace"))


def sign(secret: str, body: bytes, timestamp: str) -> str:
    """The signature Zendesk sends: base64 HMAC-SHA256 of timestamp + body."""
    digest = hmac.new(secret.encode(), timestamp.encode("utf-8", "replace") + body,
                      hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _timestamp_seconds(value: str) -> float:
    text = value.strip()
    if text.isdigit():
        return float(text)
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def ticket_tags(base: list[str], extra: tuple[str, ...] | list[str], platform: str | None
                ) -> list[str]:
    """Zendesk tags: lower case, no spaces, unique, in order."""
    out: list[str] = []
    for tag in [*base, *(extra or ()), *([platform] if platform else [])]:
        clean = "_".join(str(tag).lower().split())[:80]
        if clean and clean not in out:
            out.append(clean)
    return out


PRIORITIES = {"low": "low", "normal": "normal", "high": "high", "urgent": "urgent"}


def ticket_request(request: ActionRequest) -> TicketRequest:
    """What a ticket is opened with, from a `create_ticket` action run."""
    conversation, task, contact = request.conversation, request.task, request.contact or {}
    name = contact.get("name") or contact.get("platform_user_id") or "Customer"
    platform = str(conversation.get("platform") or "").capitalize()
    key = f"dana-task-{task['id']}" if task else f"dana-conversation-{conversation['id']}"
    lines = [f"Conversation with {name} on {platform}"]
    if request.link:
        lines.append(f"Open in Dana: {request.link}")
    said = "\n".join(f"{name if t['role'] == 'customer' else 'Business'}: {t['text']}"
                     for t in request.transcript)
    lines += ["", said[-(MAX_COMMENT - 1000):]]
    params = request.params or {}
    return TicketRequest(
        external_id=key,
        subject=params.get("subject") or (task or {}).get("title") or f"{name} on {platform}",
        transcript="\n".join(lines).strip(), requester_name=name,
        requester_external_id=f"dana-contact-{contact.get('id') or conversation['id']}",
        requester_email=contact.get("email"), tags=tuple(params.get("tags") or ()),
        priority=params.get("priority") or PRIORITIES.get((task or {}).get("priority", "")))


class ZendeskConnector(IntegrationConnector):
    """Opens tickets, adds comments and reads who it is, through Zendesk's REST API."""

    type: ClassVar[str] = "zendesk"
    name: ClassVar[str] = "Zendesk"
    category: ClassVar[str] = "helpdesk"
    config_model: ClassVar[type[BaseModel]] = ZendeskConfig
    secret_fields: ClassVar[frozenset[str]] = frozenset({"api_token", "webhook_secret"})
    operations: ClassVar[frozenset[str]] = frozenset({"create_ticket", "notify"})

    def __init__(self, config: ZendeskConfig, settings) -> None:
        """Keep the config; the base URL is ZENDESK_API_URL or the account's own."""
        super().__init__(config, settings)
        base = getattr(settings, "ZENDESK_API_URL", None) or DEFAULT_API_URL
        self.base_url = base.replace("{subdomain}", config.subdomain).rstrip("/")
        self._client: httpx.Client | None = None

    # ------------------------------------------------------------------ HTTP

    @property
    def client(self) -> httpx.Client:
        """An httpx client with the API token's basic auth (made on first use)."""
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.base_url, timeout=TIMEOUT, follow_redirects=False,
                auth=httpx.BasicAuth(f"{self.config.email}/token", self.config.api_token),
                headers={"Accept": "application/json"})
        return self._client

    def close(self) -> None:
        """Release the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _json(self, what: str, method: str, path: str, **kwargs) -> dict:
        response = web.call("Zendesk", what,
                            lambda: self.client.request(method, path, **kwargs))
        try:
            body = response.json()
        except ValueError:
            raise IntegrationError(f"Zendesk {what} failed: the answer is not JSON") from None
        if not isinstance(body, dict):
            raise IntegrationError(f"Zendesk {what} failed: unexpected answer")
        return body

    # ------------------------------------------------------------------ calls

    def me(self) -> dict:
        """GET /api/v2/users/me: the user the token acts as."""
        return self._json("users/me", "GET", "/api/v2/users/me").get("user") or {}

    def check(self) -> str:
        """One authenticated read (users/me); the token must act as an agent or admin."""
        try:
            user = self.me()
        except IntegrationError as exc:
            raise IntegrationCheckFailed(str(exc)) from None
        if not user.get("id"):
            raise IntegrationCheckFailed("Zendesk did not recognise the e-mail and API token")
        if user.get("role") not in ("agent", "admin"):
            raise IntegrationCheckFailed(
                f"{user.get('email') or self.config.email} is a Zendesk "
                f"{user.get('role') or 'end-user'}; use an agent's or admin's e-mail")
        return f"{user.get('name') or user.get('email')} ({user['role']}) on " \
               f"{self.config.subdomain}.zendesk.com"

    def upsert_requester(self, name: str, external_id: str, email: str | None = None) -> int:
        """The customer as a Zendesk end user, created or updated by external_id; its id."""
        user: dict = {"name": (name or "Customer")[:255], "external_id": external_id,
                      "role": "end-user"}
        if email:
            user["email"] = email
        body = self._json("users/create_or_update", "POST", "/api/v2/users/create_or_update",
                          json={"user": user})
        user_id = (body.get("user") or {}).get("id")
        if not user_id:
            raise IntegrationError("Zendesk users/create_or_update failed: no user id")
        return int(user_id)

    def find_ticket(self, external_id: str) -> dict | None:
        """The newest ticket that is not closed with our external_id, or None."""
        body = self._json("tickets?external_id", "GET", "/api/v2/tickets",
                          params={"external_id": external_id})
        tickets = [t for t in body.get("tickets") or []
                   if isinstance(t, dict) and t.get("status") != "closed"]
        return max(tickets, key=lambda t: int(t.get("id") or 0)) if tickets else None

    def ticket_url(self, ticket_id: int | str) -> str:
        """The agent's link to a ticket (always the account's own host)."""
        return f"https://{self.config.subdomain}.zendesk.com/agent/tickets/{ticket_id}"

    def open_ticket(self, request: TicketRequest, platform: str | None = None) -> dict:
        """Open the ticket (or find the one already opened for this external id).

        Returns {"ticket_id", "requester_id", "url", "created"}.
        """
        requester_id = self.upsert_requester(request.requester_name,
                                             request.requester_external_id,
                                             request.requester_email)
        existing = self.find_ticket(request.external_id)
        if existing is not None:
            return {"ticket_id": int(existing["id"]), "requester_id": requester_id,
                    "url": self.ticket_url(existing["id"]), "created": False}
        ticket: dict = {
            "subject": (request.subject or "Conversation from Dana")[:MAX_SUBJECT],
            "comment": {"body": (request.transcript or "(no messages)")[:MAX_COMMENT],
                        "public": False},
            "requester_id": requester_id, "external_id": request.external_id,
            "tags": ticket_tags(self.config.tags, request.tags, platform),
        }
        if request.priority:
            ticket["priority"] = request.priority
        body = self._json("tickets (create)", "POST", "/api/v2/tickets",
                          json={"ticket": ticket})
        ticket_id = (body.get("ticket") or {}).get("id")
        if not ticket_id:
            raise IntegrationError("Zendesk tickets (create) failed: no ticket id")
        return {"ticket_id": int(ticket_id), "requester_id": requester_id,
                "url": self.ticket_url(ticket_id), "created": True}

    def create_ticket(self, request: ActionRequest) -> dict:
        """The `create_ticket` workflow action: the conversation's ticket, opened once.

        One ticket per hand-off task (or, without one, per conversation): the conversation's
        kept ticket is reused, and Zendesk's external_id finds a ticket Dana opened but did
        not get to record. Keeps the ticket on the task and the conversation (its id finds
        the conversation back from a webhook) and the Zendesk user on the contact.
        """
        conversation, task = request.conversation, request.task
        kept = (conversation.get("integration_refs") or {}).get(self.type) or {}
        if kept.get("ticket_id") and (task is None or kept.get("task_id") == task.get("id")):
            ticket = {"ticket_id": kept["ticket_id"], "requester_id": kept.get("requester_id"),
                      "url": kept.get("url") or self.ticket_url(kept["ticket_id"]),
                      "created": False}
        else:
            ticket = self.open_ticket(ticket_request(request),
                                      platform=conversation.get("platform"))
        refs: dict = {"conversation": {
            "id": ticket["ticket_id"], "ticket_id": ticket["ticket_id"],
            "requester_id": ticket["requester_id"], "url": ticket["url"],
            **({"task_id": task["id"]} if task else {})}}
        if task:
            refs["task"] = {"id": ticket["ticket_id"], "url": ticket["url"]}
        if ticket["requester_id"]:
            refs["contact"] = {"id": ticket["requester_id"]}
        return {"status": "created" if ticket["created"] else "found",
                "external_id": ticket["ticket_id"], "url": ticket["url"], "refs": refs}

    def add_comment(self, ticket_id: int | str, body: str, *, public: bool,
                    author_id: int | None = None) -> dict:
        """PUT a comment on a ticket; {"ticket_id", "audit_id"}."""
        comment: dict = {"body": (body or "(attachment)")[:MAX_COMMENT], "public": public}
        if author_id:
            comment["author_id"] = int(author_id)
        answer = self._json("tickets (comment)", "PUT", f"/api/v2/tickets/{int(ticket_id)}",
                            json={"ticket": {"comment": comment}})
        return {"ticket_id": int(ticket_id),
                "audit_id": (answer.get("audit") or {}).get("id")}

    # ------------------------------------------------------------------ notifications

    def notify(self, notification: Notification) -> dict:
        """A conversation's later messages become comments on its ticket; others: skipped."""
        n = notification
        refs = ((n.conversation or {}).get("integration_refs") or {}).get("zendesk") or {}
        ticket_id = refs.get("ticket_id")
        written_here = (((n.message or {}).get("metadata") or {}).get("source") == "zendesk")
        if not ticket_id or not self.config.comment_messages or written_here or \
                n.kind not in ("customer_message", "business_message"):
            return {"status": "skipped"}
        text = n.text or ""
        attachments = [a.get("url") for a in (n.message or {}).get("attachments") or []
                       if isinstance(a, dict) and a.get("url")]
        if attachments:
            text = "\n".join([text, *attachments]).strip()
        if n.kind == "customer_message":
            result = self.add_comment(ticket_id, text, public=True,
                                      author_id=refs.get("requester_id"))
        else:
            sender = (n.message or {}).get("sender_type")
            who = {"ai": "AI", "agent": "Agent in Dana", "system": "Dana"}.get(sender, "Dana")
            result = self.add_comment(ticket_id, f"{who} replied: {text}", public=False)
        return {"status": "ok", **result}
