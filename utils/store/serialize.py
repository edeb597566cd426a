"""What both store backends share: the API's dict shapes and the backend-neutral helpers.

The serializers read attributes, so they take a SQLAlchemy row (SQL backend) or a
SimpleNamespace made from a PostgREST row (Supabase backend) alike; that is what keeps the two
backends' answers identical. Nothing here touches a database.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple

PROFILE_FIELDS = ("name", "first_name", "last_name", "username", "profile_pic", "locale",
                  "phone", "email")
TIER_FIELDS = ("name", "description", "currency", "billing_interval", "features", "platforms",
               "monthly_ai_replies", "platform_accounts", "integrations", "knowledge_documents",
               "is_active", "trial_days", "stripe_price_id")


def iso(value: datetime | None) -> str | None:
    """ISO 8601 text of a timestamp, or None."""
    return value.isoformat() if value else None


def contact_dict(c: Any) -> dict:
    """A contact (ORM row or PostgREST object) in the API's shape."""
    return {
        "id": c.id, "platform": c.platform, "platform_user_id": c.platform_user_id,
        "name": c.name, "first_name": c.first_name, "last_name": c.last_name,
        "username": c.username, "profile_pic": c.profile_pic, "locale": c.locale,
        "phone": c.phone, "email": c.email, "notes": c.notes, "profile": c.profile or {},
        "created_at": iso(c.created_at), "updated_at": iso(c.updated_at),
    }


def unchanged(value: Any) -> Any:
    """A Codec step for values that already are what the API shows."""
    return value


class Codec(NamedTuple):
    """How a backend's column values become the API's: timestamps to ISO text, JSON columns to
    Python values, booleans to bool. OBJECTS is for values that already are Python's (ORM
    rows, PostgREST objects); the SQL backend reads lists as raw driver values with its
    dialect's codec (utils.store.sql), which skips SQLAlchemy's per-column type processing.
    """

    time: Callable[[Any], str | None]
    json: Callable[[Any], Any]
    flag: Callable[[Any], Any]


OBJECTS = Codec(iso, unchanged, unchanged)

# The order in which conversation_values and message_values read a row's values (the SQL
# backend selects its columns in this order). A conversation row ends with its contact's
# summary: CONTACT_SUMMARY_FIELDS of the contact.
CONVERSATION_FIELDS = (
    "id", "platform", "platform_account_id", "status", "ai_enabled", "assignee_id", "labels",
    "unread_count", "message_count", "last_message_at", "last_inbound_at",
    "last_message_preview", "snoozed_until", "created_at", "updated_at",
)
CONTACT_SUMMARY_FIELDS = ("id", "name", "platform_user_id", "profile_pic")
MESSAGE_FIELDS = (
    "id", "conversation_id", "direction", "sender_type", "text", "attachments", "platform",
    "platform_message_id", "status", "error", "reply_to", "is_note", "meta", "created_at",
)
_conversation_values = attrgetter(*CONVERSATION_FIELDS)
_contact_summary = attrgetter(*CONTACT_SUMMARY_FIELDS)
_flat_contact_summary = attrgetter("contact_id", "contact_name", "contact_platform_user_id",
                                   "contact_profile_pic")
_message_values = attrgetter(*MESSAGE_FIELDS)


def conversation_values(v: Sequence, codec: Codec = OBJECTS) -> dict:
    """A conversation in the API's shape from its values in CONVERSATION_FIELDS order followed
    by its contact's CONTACT_SUMMARY_FIELDS (the one definition of that shape: every
    backend's conversations come through here).
    """
    time, json, flag = codec
    return {
        "id": v[0], "platform": v[1], "platform_account_id": v[2], "status": v[3],
        "ai_enabled": flag(v[4]), "assignee_id": v[5], "labels": list(json(v[6]) or []),
        "unread_count": v[7], "message_count": v[8],
        "last_message_at": time(v[9]), "last_inbound_at": time(v[10]),
        "last_message_preview": v[11], "snoozed_until": time(v[12]),
        "contact": {"id": v[15], "name": v[16], "platform_user_id": v[17],
                    "profile_pic": v[18]},
        "created_at": time(v[13]), "updated_at": time(v[14]),
    }


def conversation_dict(c: Any, contact: Any = None) -> dict:
    """A conversation (ORM row or PostgREST object) with its contact's summary, in the API's
    shape.

    Without `contact`, `c` also carries the contact's columns as contact_id, contact_name,
    contact_platform_user_id and contact_profile_pic.
    """
    summary = _flat_contact_summary(c) if contact is None else _contact_summary(contact)
    return conversation_values(_conversation_values(c) + summary)


def message_values(v: Sequence, codec: Codec = OBJECTS) -> dict:
    """A message in the API's shape from its values in MESSAGE_FIELDS order (`meta` is the
    `metadata` key).
    """
    time, json, flag = codec
    return {
        "id": v[0], "conversation_id": v[1], "direction": v[2], "sender_type": v[3],
        "text": v[4], "attachments": list(json(v[5]) or []), "platform": v[6],
        "platform_message_id": v[7], "status": v[8], "error": v[9], "reply_to": v[10],
        "is_note": flag(v[11]), "metadata": json(v[12]) or {}, "created_at": time(v[13]),
    }


def message_dict(m: Any) -> dict:
    """A message (ORM row or PostgREST object) in the API's shape."""
    return message_values(_message_values(m))


def task_dict(t: Any) -> dict:
    """A task in the API's shape."""
    return {
        "id": t.id, "title": t.title, "description": t.description,
        "conversation_id": t.conversation_id, "status": t.status, "priority": t.priority,
        "due_at": iso(t.due_at), "assignee_id": t.assignee_id,
        "created_at": iso(t.created_at), "updated_at": iso(t.updated_at),
    }


def tier_dict(t: Any) -> dict:
    """A plan in the API's shape (the price as a number)."""
    out = {"id": t.id, "price": float(t.price)}
    out.update({f: getattr(t, f) for f in TIER_FIELDS})
    out["features"] = list(out["features"] or [])
    out["platforms"] = list(out["platforms"] or [])
    out["created_at"], out["updated_at"] = iso(t.created_at), iso(t.updated_at)
    return out


def subscription_dict(s: Any) -> dict:
    """A subscription in the API's shape."""
    return {
        "id": s.id, "user_id": s.user_id, "tier_id": s.tier_id, "status": s.status,
        "started_at": iso(s.started_at), "current_period_end": iso(s.current_period_end),
        "cancel_at_period_end": s.cancel_at_period_end, "canceled_at": iso(s.canceled_at),
        "payment_reference": s.payment_reference, "provider": s.provider,
        "provider_customer_id": s.provider_customer_id,
        "provider_subscription_id": s.provider_subscription_id,
        "past_due_since": iso(s.past_due_since), "trial_started_at": iso(s.trial_started_at),
        "created_at": iso(s.created_at), "updated_at": iso(s.updated_at),
    }


def apply_profile(contact: Any, profile: dict) -> None:
    """Merge a platform profile into a contact: non-empty fields win, `name` is derived from
    first/last name when missing, and the free-form `profile` dict is merged key by key.
    """
    for key in PROFILE_FIELDS:
        if profile.get(key):
            setattr(contact, key, profile[key])
    if not contact.name and (contact.first_name or contact.last_name):
        contact.name = " ".join(p for p in (contact.first_name, contact.last_name) if p)
    extra = profile.get("profile")
    if isinstance(extra, dict) and extra:
        contact.profile = {**(contact.profile or {}), **extra}


def like_pattern(value: str) -> str:
    r"""`value` as a LIKE pattern matching it literally anywhere (\, % and _ escaped)."""
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
