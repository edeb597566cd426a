"""The store contract shared by the SQL and Supabase backends.

The store holds contacts, conversations, messages and tasks (and, from the subscriptions
work, tiers and user subscriptions). Every user-scoped method takes `owner_id` first and
never returns another owner's row: a row that is not the caller's is indistinguishable from
a missing one (None / False); a write that names another owner's parent row (open_conversation
with a contact, add_message with a conversation) raises LookupError, as for a missing one.
Ingest methods (no user request behind them) still take the owner explicitly; the one lookup
without an owner is find_message(None, ...), the cross-owner duplicate check. Methods return
plain dicts in the REST API's shape.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from utils.pagination import Page  # the page type of every list (re-exported)

CONVERSATION_STATUSES = ("open", "pending", "resolved", "snoozed")
MESSAGE_DIRECTIONS = ("inbound", "outbound")
SENDER_TYPES = ("contact", "ai", "agent", "system")
MESSAGE_STATUSES = ("received", "queued", "sent", "delivered", "read", "failed")
TASK_STATUSES = ("open", "in_progress", "done")
TASK_PRIORITIES = ("low", "normal", "high")

# Delivery states only move forward: a late 'sent' never undoes 'delivered' or 'read'.
STATUS_RANK = {"received": 0, "queued": 1, "sent": 2, "delivered": 3, "read": 4}


def status_moves_forward(current: str, new: str) -> bool:
    """True when a delivery status update may replace the current status."""
    if current == new:
        return False
    if new == "failed":
        return current in ("queued", "sent")
    if current == "failed":
        return False
    return STATUS_RANK.get(new, -1) > STATUS_RANK.get(current, -1)


class DuplicateTier(Exception):
    """A tier with this name already exists."""


class DuplicateMessage(Exception):
    """A message with this (platform, platform_message_id) is already stored."""

    def __init__(self, existing: dict):
        """Carry the stored message, so the caller can use it instead of storing twice."""
        super().__init__("duplicate platform message id")
        self.existing = existing


@dataclass
class ConversationFilters:
    """Inbox filters; None means "any"."""

    status: str | None = None
    platform: str | None = None
    label: str | None = None
    assignee_id: str | None = None
    q: str | None = None


@dataclass
class TaskFilters:
    """Task list filters; None means "any"."""

    status: str | None = None
    priority: str | None = None
    conversation_id: str | None = None


@dataclass
class NewMessage:
    """A message to store (add_message): its conversation, direction, content and state."""

    conversation_id: str
    direction: str
    sender_type: str
    text: str | None = None
    attachments: list[dict] = field(default_factory=list)
    platform: str | None = None
    platform_message_id: str | None = None
    status: str = "received"
    error: str | None = None
    reply_to: str | None = None
    is_note: bool = False
    created_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None   # unique; see utils/idempotency.py


class Store(Protocol):
    """What both backends implement. See the module docstring for the scoping rule."""

    def unit(self) -> AbstractContextManager:
        """A block whose contact, conversation and message writes (upsert_contact,
        open_conversation, add_message) are committed together when it ends, or not at all
        if it raises: a customer's message arrives in one transaction, not three.

        The SQL backend holds one database transaction (on SQLite the write lock, from the
        block's first write to its end: keep slow calls out of it). Over PostgREST each write
        is its own request, so the Supabase backend commits each at once, as outside a unit.
        """
        return nullcontext()

    # contacts
    def upsert_contact(self, owner_id: str, platform: str, platform_user_id: str,
                       profile: dict) -> tuple[dict, bool]:
        """Find or create the owner's contact for a platform user; (contact, created).

        `profile` (name, locale, ...) fills in what the platform shared, never erasing.
        """
        ...

    def get_contact(self, owner_id: str, contact_id: str) -> dict | None:
        """One of the owner's contacts, or None."""
        ...

    def list_contacts(self, owner_id: str, q: str | None, platform: str | None, limit: int,
                      cursor: str | None) -> Page:
        """The owner's contacts, newest first; `q` searches name, e-mail and phone."""
        ...

    def update_contact(self, owner_id: str, contact_id: str, changes: dict) -> dict | None:
        """Change a contact's details; None when it is not the owner's."""
        ...

    # conversations
    def open_conversation(self, owner_id: str, platform: str, platform_account_id: str,
                          contact_id: str, *, contact: dict | None = None) -> tuple[dict, bool]:
        """Find or open the conversation with a contact on an account; (conversation, opened).

        `contact`: that contact as upsert_contact returned it during this run (so known to be
        the owner's): a backend may skip checking and reading it again.
        """
        ...

    def get_conversation(self, owner_id: str, conversation_id: str) -> dict | None:
        """One of the owner's conversations with its contact, or None."""
        ...

    def find_conversation(self, owner_id: str, platform: str, platform_account_id: str,
                          platform_user_id: str) -> dict | None:
        """The conversation with a platform user on an account, or None (ingest)."""
        ...

    def list_conversations(self, owner_id: str, filters: ConversationFilters, limit: int,
                           cursor: str | None) -> Page:
        """The owner's inbox, newest activity first, filtered."""
        ...

    def update_conversation(self, owner_id: str, conversation_id: str,
                            changes: dict) -> dict | None:
        """Change status, assignee, labels, AI on/off or counters; None when not the owner's."""
        ...

    def mark_conversation_read(self, owner_id: str, conversation_id: str) -> dict | None:
        """Reset the unread counter; None when not the owner's."""
        ...

    # messages
    def add_message(self, owner_id: str, message: NewMessage) -> dict:
        """Store a message and update its conversation's counters and preview.

        Raises DuplicateMessage (with the stored one) for a known platform message id or
        idempotency key, LookupError when the conversation is not the owner's.
        """
        ...

    def add_message_in(self, owner_id: str, message: NewMessage,
                       conversation: dict) -> tuple[dict, dict]:
        """add_message for a caller that holds the conversation (as read or opened during
        this run): the stored message and the conversation as it is after it (counters,
        preview, times, status from the store; its contact as given), which the caller
        would otherwise read again. The SQL backend gets both from its two statements.
        """
        stored = self.add_message(owner_id, message)
        return stored, self.get_conversation(owner_id, message.conversation_id)

    def set_message_meta(self, owner_id: str, message_id: str, key: str, value: Any) -> bool:
        """Set one key of a message's metadata, the others kept (False: not the owner's
        message). update_message's metadata merge for one key, which the SQL backend does in
        one statement: the pipeline marks every customer message it handled (`automation`).
        """
        return self.update_message(owner_id, message_id, metadata={key: value}) is not None

    def get_message(self, owner_id: str, message_id: str) -> dict | None:
        """One of the owner's messages, or None."""
        ...

    def find_message(self, owner_id: str | None, platform: str,
                     platform_message_id: str) -> dict | None:
        """A message by the platform's id; owner None looks across owners (duplicate check)."""
        ...

    def find_message_by_key(self, owner_id: str, idempotency_key: str) -> dict | None:
        """The owner's message stored with this idempotency key, or None."""
        ...

    def list_messages(self, owner_id: str, conversation_id: str, limit: int,
                      cursor: str | None) -> Page:
        """A page of a thread: the newest page first, oldest first within the page."""
        ...

    def update_message(self, owner_id: str, message_id: str, text: str | None = None,
                       metadata: dict | None = None) -> dict | None:
        """Replace the text and/or merge into the metadata; None when not the owner's."""
        ...

    def mark_outbound_up_to(self, owner_id: str, conversation_id: str, status: str,
                            until: datetime) -> int:
        """Move every earlier outbound message up to `until` forward to `status`; how many."""
        ...

    def update_message_status(self, owner_id: str, message_id: str, status: str,
                              error: str | None = None,
                              platform_message_id: str | None = None) -> dict | None:
        """Move a delivery status forward only (status_moves_forward); the message as it is."""
        ...

    # tasks
    def create_task(self, owner_id: str, data: dict) -> dict:
        """Store a task for a human."""
        ...

    def get_task(self, owner_id: str, task_id: str) -> dict | None:
        """One of the owner's tasks, or None."""
        ...

    def list_tasks(self, owner_id: str, filters: TaskFilters, limit: int,
                   cursor: str | None) -> Page:
        """The owner's tasks, newest first, filtered."""
        ...

    def update_task(self, owner_id: str, task_id: str, changes: dict) -> dict | None:
        """Change a task; None when not the owner's."""
        ...

    def delete_task(self, owner_id: str, task_id: str) -> bool:
        """Delete a task; False when not the owner's."""
        ...

    # subscriptions (tiers are public; a user's subscription is readable by its owner only)
    def list_tiers(self, include_inactive: bool = False) -> list[dict]:
        """The plans, cheapest first (archived ones only on request)."""
        ...

    def get_tier(self, tier_id: str) -> dict | None:
        """One plan, or None."""
        ...

    def create_tier(self, data: dict) -> dict:
        """Store a plan; DuplicateTier when its name is taken."""
        ...

    def update_tier(self, tier_id: str, data: dict) -> dict | None:
        """Change a plan; DuplicateTier when the new name is taken."""
        ...

    def delete_tier(self, tier_id: str) -> bool:
        """Delete a plan; False when there is none."""
        ...

    def count_tier_subscriptions(self, tier_id: str) -> int:
        """How many subscriptions use a plan (across users)."""
        ...

    def get_subscription(self, user_id: str) -> dict | None:
        """The user's subscription as stored (expiry is applied by the services), or None."""
        ...

    def get_subscription_and_tier(self, user_id: str) -> tuple[dict | None, dict | None]:
        """The user's subscription as stored (or None) and the plan it names (None without
        one): every AI reply asks for the plan in effect, and the SQL backend reads both with
        one join.
        """
        sub = self.get_subscription(user_id)
        return sub, (self.get_tier(sub["tier_id"]) if sub is not None else None)

    def save_subscription(self, user_id: str, data: dict) -> dict:
        """Create or change the user's one subscription row."""
        ...

    def list_subscriptions(self, limit: int, cursor: str | None,
                           status: str | None = None) -> Page:
        """Every user's subscription, newest first (admin)."""
        ...

    def find_subscription_by_customer(self, customer_id: str) -> dict | None:
        """The subscription of a payment provider's customer id (webhooks: no user), or None."""
        ...

    # analytics: the raw facts of a period, aggregated by services/analytics.py
    def analytics_facts(self, owner_id: str, since: datetime, until: datetime) -> dict:
        """A period's messages, resolved conversations and hand-off counts (raw facts)."""
        ...
