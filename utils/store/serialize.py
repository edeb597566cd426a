"""What both store backends share: the API's dict shapes and the backend-neutral helpers.

The serializers read attributes, so they take a SQLAlchemy row (SQL backend) or a
SimpleNamespace made from a PostgREST row (Supabase backend) alike; that is what keeps the two
backends' answers identical. Nothing here touches a database.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

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


def conversation_dict(c: Any, contact: Any = None) -> dict:
    """A conversation with its contact's summary, in the API's shape.

    Without `contact`, `c` is one flat row that also carries the contact's columns as
    contact_name, contact_platform_user_id and contact_profile_pic (the SQL list's cheap
    column query, utils.store.sql.CONVERSATION_COLUMNS).
    """
    if contact is None:
        summary = {"id": c.contact_id, "name": c.contact_name,
                   "platform_user_id": c.contact_platform_user_id,
                   "profile_pic": c.contact_profile_pic}
    else:
        summary = {"id": contact.id, "name": contact.name,
                   "platform_user_id": contact.platform_user_id,
                   "profile_pic": contact.profile_pic}
    return {
        "id": c.id, "platform": c.platform, "platform_account_id": c.platform_account_id,
        "status": c.status, "ai_enabled": c.ai_enabled, "assignee_id": c.assignee_id,
        "labels": list(c.labels or []), "unread_count": c.unread_count,
        "message_count": c.message_count,
        "last_message_at": iso(c.last_message_at), "last_inbound_at": iso(c.last_inbound_at),
        "last_message_preview": c.last_message_preview, "snoozed_until": iso(c.snoozed_until),
        "contact": summary,
        "created_at": iso(c.created_at), "updated_at": iso(c.updated_at),
    }


def message_dict(m: Any) -> dict:
    """A message in the API's shape (the `meta` attribute is the `metadata` key)."""
    return {
        "id": m.id, "conversation_id": m.conversation_id, "direction": m.direction,
        "sender_type": m.sender_type, "text": m.text, "attachments": list(m.attachments or []),
        "platform": m.platform, "platform_message_id": m.platform_message_id,
        "status": m.status, "error": m.error, "reply_to": m.reply_to, "is_note": m.is_note,
        "metadata": m.meta or {}, "created_at": iso(m.created_at),
    }


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
