"""SQL tables of the store (SQL backend), on the app's metadata so Alembic covers them.

The Supabase backend has the same tables in supabase/migrations/*.sql, with RLS.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models_db import TZDateTime, db, new_id, utcnow


class Contact(db.Model):
    """A customer on one platform, unique per (owner, platform, platform user id)."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("owner_id", "platform", "platform_user_id",
                         name="uq_contacts_owner_platform_user"),
        Index("ix_contacts_owner_created", "owner_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                          nullable=False)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    platform_user_id: Mapped[str] = mapped_column(String(128), nullable=False)
    name: Mapped[str | None] = mapped_column(String(200))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    username: Mapped[str | None] = mapped_column(String(100))
    profile_pic: Mapped[str | None] = mapped_column(Text)
    locale: Mapped[str | None] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(320))
    notes: Mapped[str | None] = mapped_column(Text)
    profile: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow,
                                                 onupdate=utcnow)


class Conversation(db.Model):
    """The thread with one contact on one connected account, with inbox counters."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("owner_id", "platform_account_id", "contact_id",
                         name="uq_conversations_owner_account_contact"),
        # the inbox: newest activity first, keyset on (last_message_at, id)
        Index("ix_conversations_owner_last", "owner_id", "last_message_at", "id"),
        Index("ix_conversations_owner_status_last", "owner_id", "status", "last_message_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                          nullable=False)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    platform_account_id: Mapped[str] = mapped_column(String(128), nullable=False)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"),
                                            nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    assignee_id: Mapped[str | None] = mapped_column(String(36))
    labels: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    ai_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    last_message_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    last_inbound_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    last_message_preview: Mapped[str | None] = mapped_column(String(200))
    unread_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    message_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0,
                                               server_default="0")
    snoozed_until: Mapped[datetime | None] = mapped_column(TZDateTime())
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow,
                                                 onupdate=utcnow)

    contact: Mapped[Contact] = relationship(lazy="raise")


class Message(db.Model):
    """One message of a conversation; unique per platform message id and idempotency key."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("platform", "platform_message_id", name="uq_messages_platform_mid"),
        # newest page of a conversation, keyset on (created_at, id)
        Index("ix_messages_conversation_created", "conversation_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                          nullable=False, index=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False)
    direction: Mapped[str] = mapped_column(String(8), nullable=False)
    sender_type: Mapped[str] = mapped_column(String(8), nullable=False)
    text: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    platform: Mapped[str | None] = mapped_column(String(16))
    platform_message_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="received")
    error: Mapped[str | None] = mapped_column(Text)
    reply_to: Mapped[str | None] = mapped_column(String(255))
    is_note: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Makes automated sends idempotent: one reply per inbound message, whoever retries.
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    meta: Mapped[dict] = mapped_column("metadata", JSON, nullable=False, default=dict)
    # The platform's timestamp for inbound messages; server time otherwise. Orders the thread.
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow,
                                                 onupdate=utcnow)


class Task(db.Model):
    """A task for a human, optionally about a conversation."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_owner_created", "owner_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                          nullable=False)
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="open")
    priority: Mapped[str] = mapped_column(String(8), nullable=False, default="normal")
    due_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    assignee_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow,
                                                 onupdate=utcnow)


class SubscriptionTier(db.Model):
    """A plan. Limits are None for unlimited."""

    __tablename__ = "subscription_tiers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False, default=0)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="USD")
    billing_interval: Mapped[str] = mapped_column(String(8), nullable=False, default="month")
    features: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    platforms: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    monthly_ai_replies: Mapped[int | None] = mapped_column(Integer)
    platform_accounts: Mapped[int | None] = mapped_column(Integer)
    integrations: Mapped[int | None] = mapped_column(Integer)
    knowledge_documents: Mapped[int | None] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # days of free trial a user may start once (0 = no trial); the Stripe Price that bills it
    trial_days: Mapped[int] = mapped_column(Integer, nullable=False, default=0,
                                            server_default="0")
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow,
                                                 onupdate=utcnow)


class UserSubscription(db.Model):
    """A user's current plan (one row per user). Never holds card data."""

    __tablename__ = "user_subscriptions"
    __table_args__ = (Index("ix_user_subscriptions_tier", "tier_id"),
                      Index("ix_user_subscriptions_provider_customer", "provider_customer_id"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False, unique=True)
    tier_id: Mapped[str] = mapped_column(ForeignKey("subscription_tiers.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="active")
    started_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    current_period_end: Mapped[datetime | None] = mapped_column(TZDateTime())
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    canceled_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    payment_reference: Mapped[str | None] = mapped_column(String(255))
    # payment information: who bills it ("stripe", "admin" for a grant, None for a user's own
    # free plan or trial), the provider's ids, since when a payment is overdue, and when the
    # user's one trial started (it is never offered again once set)
    provider: Mapped[str | None] = mapped_column(String(16))
    provider_customer_id: Mapped[str | None] = mapped_column(String(255))
    provider_subscription_id: Mapped[str | None] = mapped_column(String(255))
    past_due_since: Mapped[datetime | None] = mapped_column(TZDateTime())
    trial_started_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow,
                                                 onupdate=utcnow)
