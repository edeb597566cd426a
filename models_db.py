"""SQLAlchemy 2.x typed models: users, auth sessions and refresh tokens, audit log, platform
accounts, integrations, webhook events, workflows, knowledge.

The SQL side of the conversation/subscription store lives in utils/store/sql_models.py: it
builds on this module's `db` and shares its metadata, so one Alembic history covers every
table. This module sits at the bottom of the layers and imports no project module; the store
package (utils/store/__init__.py) registers its tables when it is imported.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator
from werkzeug.security import check_password_hash, generate_password_hash

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The declarative base: one metadata with a naming convention for constraints."""

    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)


def utcnow() -> datetime:
    """Now, timezone-aware in UTC (the default of every timestamp column)."""
    return datetime.now(timezone.utc)


def new_id() -> str:
    """A new UUID4 as text (the primary key of most rows)."""
    return str(uuid.uuid4())


class TZDateTime(TypeDecorator):
    """A timezone-aware UTC DateTime on every database.

    SQLite has no time zones: values are stored as naive UTC and read back as aware UTC,
    so comparisons and ISO output are the same on SQLite and PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        """Store as UTC: naive on SQLite, aware on PostgreSQL."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        """Read back as aware UTC on every database."""
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def render_item(type_, obj, autogen_context):
    """Alembic autogenerate: write TZDateTime as a plain sa.DateTime(timezone=True)."""
    if type_ == "type" and isinstance(obj, TZDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def include_object(obj, name, type_, reflected, compare_to):
    """Alembic autogenerate: search structures managed by hand in migrations (the knowledge
    base's full-text tables, the inbox search's FTS5 tables, trigram indexes and PostgreSQL's
    messages.search_head, migration 0015) are left alone.
    """
    if type_ == "table" and name and name.startswith(("knowledge_chunks_fts", "messages_fts",
                                                      "contacts_fts")):
        return False
    if type_ == "column" and name == "search_head" and reflected:
        return False
    return not (type_ == "index" and name in ("ix_messages_text_trgm", "ix_contacts_name_trgm"))


class User(db.Model):
    """A business account (or an operator with role admin)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # Stored lower-cased: uniqueness is case-insensitive on every database.
    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    role: Mapped[str] = mapped_column(String(16), nullable=False, default="user")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, default="UTC")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow,
                                                 onupdate=utcnow)

    @staticmethod
    def normalize_email(email: str) -> str:
        """The form e-mails are stored and compared in (trimmed, lower-case)."""
        return email.strip().lower()

    def set_password(self, password: str) -> None:
        """Hash and keep a new password (Werkzeug's scrypt/pbkdf2)."""
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        """True when the password matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    @property
    def is_admin(self) -> bool:
        """True for operators (role admin)."""
        return self.role == "admin"

    def to_dict(self) -> dict:
        """The user as the API shows it; never the password hash."""
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "is_active": self.is_active,
            "timezone": self.timezone,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class AuthSession(db.Model):
    """One login: the family of rotated refresh tokens and the access tokens minted from it.

    Revoking the session (logout, reuse detection, password change) refuses its access
    tokens at once too, because every access token carries the session id (`sid`).
    """

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    ip: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship(lazy="joined")


class RefreshToken(db.Model):
    """A refresh token by jti; spent on use (rotation)."""

    __tablename__ = "refresh_tokens"

    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("auth_sessions.id", ondelete="CASCADE"),
                                            nullable=False, index=True)
    issued_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False)
    spent_at: Mapped[datetime | None] = mapped_column(TZDateTime())

    session: Mapped[AuthSession] = relationship(lazy="joined")


class AuditLog(db.Model):
    """Security events: failed logins, refresh-token reuse, admin changes, password changes."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    event: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    user_id: Mapped[str | None] = mapped_column(String(36))
    actor_id: Mapped[str | None] = mapped_column(String(36))
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict | None] = mapped_column(JSON)



class UsageCounter(db.Model):
    """Metered usage per user and calendar month (e.g. AI replies), incremented atomically."""

    __tablename__ = "usage_counters"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM (UTC)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)



class PlatformAccount(db.Model):
    """A connected Facebook Page, Instagram professional account or WhatsApp number.

    external_id is the Page id / IG account id / phone_number_id that inbound deliveries
    carry; it is unique per platform across all users (one owner per account).
    """

    __tablename__ = "platform_accounts"
    __table_args__ = (UniqueConstraint("platform", "external_id",
                                       name="uq_platform_accounts_external"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False, index=True)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    external_id: Mapped[str] = mapped_column(String(128), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    display_phone_number: Mapped[str | None] = mapped_column(String(32))  # WhatsApp, from Graph
    access_token_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow,
                                                 onupdate=utcnow)

    def to_dict(self) -> dict:
        """The account as the API shows it: never the token."""
        return {"id": self.id, "platform": self.platform, "external_id": self.external_id,
                "name": self.name, "display_phone_number": self.display_phone_number,
                "status": self.status, "last_error": self.last_error,
                "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat()}


class WebhookEvent(db.Model):
    """Every authentic delivery, stored raw before anything else so nothing is lost.

    status: received -> processing -> processed | ignored | failed (retryable) | dead (its
    runs were interrupted EVENT_MAX_ATTEMPTS times); rejected (authentic but unparseable, kept
    for inspection). The row is the outbox: a run first claims it (claimed_by, a lease until
    claimed_until, renewed while it runs); an unfinished event whose lease ran out, or a
    failed one whose next_attempt_at has come, is claimed again by a sweep.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_status_received", "status", "received_at"),
                      Index("ix_webhook_events_status_next_attempt", "status",
                            "next_attempt_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    raw_body: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="received")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    request_id: Mapped[str | None] = mapped_column(String(64))
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(TZDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(TZDateTime())

    def to_dict(self) -> dict:
        """The delivery as the admin API lists it (without the raw body)."""
        return {"id": self.id, "platform": self.platform, "status": self.status,
                "attempts": self.attempts, "error": self.error,
                "received_at": self.received_at.isoformat(),
                "processed_at": self.processed_at.isoformat() if self.processed_at else None,
                "next_attempt_at": (self.next_attempt_at.isoformat()
                                    if self.next_attempt_at else None)}


class StripeEvent(db.Model):
    """A Stripe webhook event that was (or is being) applied: its id is unique, so a
    redelivered or replayed event is recognised and applied once. Only events whose
    signature verified are ever written here.
    """

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100), nullable=False)
    user_id: Mapped[str | None] = mapped_column(String(36))
    outcome: Mapped[str | None] = mapped_column(String(32))
    # when Stripe created the event: deliveries are not ordered, so an event older than one
    # already applied for the same user is not applied over it
    created_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    received_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)


class BusinessProfile(db.Model):
    """How the business wants its AI to sound and when it hands off (one row per user)."""

    __tablename__ = "business_profiles"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    business_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    persona: Mapped[str] = mapped_column(Text, nullable=False, default="")
    instructions: Mapped[str] = mapped_column(Text, nullable=False, default="")
    handoff_message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    language: Mapped[str] = mapped_column(String(8), nullable=False, default="en")
    # How bold the offline AI is: a level of automation.knowledge.decision.LEVELS; NULL is the
    # default level (migration 0016).
    answer_confidence: Mapped[str | None] = mapped_column(String(16), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow,
                                                 onupdate=utcnow)


class Workflow(db.Model):
    """A business's automation rule: trigger, conditions and ordered actions (JSON, validated)."""

    __tablename__ = "workflows"
    __table_args__ = (Index("ix_workflows_user_position", "user_id", "position"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=100)
    trigger_type: Mapped[str] = mapped_column(String(32), nullable=False)
    definition: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow,
                                                 onupdate=utcnow)

    def to_dict(self) -> dict:
        """The workflow as the API shows it."""
        return {"id": self.id, "name": self.name, "description": self.description,
                "enabled": self.enabled, "position": self.position,
                "definition": self.definition, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat()}


class WorkflowRun(db.Model):
    """One evaluation of a workflow: what triggered it, what matched, what each action did."""

    __tablename__ = "workflow_runs"
    __table_args__ = (Index("ix_workflow_runs_user_started", "user_id", "started_at", "id"),
                      Index("ix_workflow_runs_workflow_started", "workflow_id", "started_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    workflow_id: Mapped[str | None] = mapped_column(ForeignKey("workflows.id", ondelete="SET NULL"))
    trigger: Mapped[str] = mapped_column(String(32), nullable=False)
    conversation_id: Mapped[str | None] = mapped_column(String(36))
    message_id: Mapped[str | None] = mapped_column(String(36), index=True)
    matched: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    conditions: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    actions: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="completed")
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    started_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)

    def to_dict(self) -> dict:
        """The run as the API shows it."""
        return {"id": self.id, "workflow_id": self.workflow_id, "trigger": self.trigger,
                "conversation_id": self.conversation_id, "message_id": self.message_id,
                "matched": self.matched, "conditions": self.conditions, "actions": self.actions,
                "status": self.status, "error": self.error, "duration_ms": self.duration_ms,
                "started_at": self.started_at.isoformat()}


class KnowledgeDocument(db.Model):
    """A piece of the business's own knowledge: an article, notes, or an FAQ.

    format: "text" | "markdown" (prose, cut along headings and paragraphs) or "faq"
    ("Q: …"/"A: …" blocks, one passage per question). Disabled documents are never searched.
    """

    __tablename__ = "knowledge_documents"
    __table_args__ = (Index("ix_knowledge_documents_user_created", "user_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    format: Mapped[str] = mapped_column(String(16), nullable=False, default="text")
    tags: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    source: Mapped[str] = mapped_column(String(300), nullable=False, default="api")
    chunk_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow,
                                                 onupdate=utcnow)


class KnowledgeChunk(db.Model):
    """A searchable passage of a document, the unit the AI quotes.

    The integer id is the full-text index's rowid (SQLite FTS5). search_text is the folded
    token stream (title, heading path, text) that both databases index; the FTS objects
    themselves (migration 0005) are raw DDL and deliberately not part of this metadata.
    """

    __tablename__ = "knowledge_chunks"
    __table_args__ = (Index("ix_knowledge_chunks_document_position", "document_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(
        ForeignKey("knowledge_documents.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False, index=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    heading: Mapped[str | None] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text, nullable=False)
    question: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    search_text: Mapped[str] = mapped_column(Text, nullable=False)


class Integration(db.Model):
    """A business tool connected by a user: one row per user and type.

    `config` is the validated config with its secret fields (the connector's secret_fields)
    replaced by Fernet tokens (utils/crypto.py); status: pending -> active | error.
    """

    __tablename__ = "integrations"
    __table_args__ = (UniqueConstraint("user_id", "type", name="uq_integrations_user_type"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False, index=True)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    config: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    last_checked_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow,
                                                 onupdate=utcnow)


class IntegrationRef(db.Model):
    """What an integration keeps about one conversation (e.g. its Slack channel and thread ts).

    external_id is the integration's own key for it (e.g. the thread ts), so an inbound event
    from the service (a reply in that thread) finds its conversation.
    """

    __tablename__ = "integration_refs"
    __table_args__ = (
        UniqueConstraint("user_id", "conversation_id", "type", name="uq_integration_refs_conv"),
        Index("ix_integration_refs_external", "type", "external_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False)
    conversation_id: Mapped[str] = mapped_column(String(36), nullable=False)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    external_id: Mapped[str | None] = mapped_column(String(255))
    refs: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow,
                                                 onupdate=utcnow)


class IntegrationLink(db.Model):
    """What an integration keeps about one of our contacts or tasks (a HubSpot contact id,
    a Salesforce lead id, a Zendesk ticket id, ...): one row per (owner, type, object).

    Per-conversation state (a Slack thread) is IntegrationRef; external_id finds the object
    back from the service's side (e.g. a Zendesk webhook naming its ticket).
    """

    __tablename__ = "integration_links"
    __table_args__ = (
        UniqueConstraint("user_id", "type", "object_type", "object_id",
                         name="uq_integration_links_object"),
        Index("ix_integration_links_external", "type", "object_type", "external_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    object_type: Mapped[str] = mapped_column(String(16), nullable=False)  # "contact" | "task"
    object_id: Mapped[str] = mapped_column(String(36), nullable=False)
    external_id: Mapped[str | None] = mapped_column(String(255))
    refs: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow,
                                                 onupdate=utcnow)


class IntegrationAction(db.Model):
    """One run of a workflow action (crm_sync, create_ticket, track_event) on one integration,
    by its idempotency key: a retried workflow run finds it `done` and calls nothing again.

    status: `running` (claimed by a process), `done` (external_id and result kept), `failed`
    (the next run of the same key tries again).
    """

    __tablename__ = "integration_actions"
    __table_args__ = (
        UniqueConstraint("user_id", "type", "action", "idempotency_key",
                         name="uq_integration_actions_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(255), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="running")
    conversation_id: Mapped[str | None] = mapped_column(String(36))
    external_id: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow,
                                                 onupdate=utcnow)


class SlackInbound(db.Model):
    """Each request from Slack that Dana acted on, by its unique key: the Events API's
    `event_id` (Slack retries a delivery with the same id) or an interaction's trigger id.
    The primary key makes a retry or a replayed request a no-op, in every process.
    """

    __tablename__ = "slack_inbound"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    team_id: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(TZDateTime(), nullable=False, default=utcnow)
