"""Pydantic request/response models; the OpenAPI spec is generated from these."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator


def _has_nul(value) -> bool:
    """True when a string anywhere in value (lists, dicts, their keys) holds a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_has_nul(v) for v in value)
    return False


class StrictModel(BaseModel):
    """Request bodies and query strings: unknown fields and NUL characters are refused.

    Unknown fields are reported, not ignored (typos). A NUL character is refused in every
    string, however deeply nested: PostgreSQL cannot store it, and no legitimate text has one
    (400 validation_error naming the field, on SQLite as on PostgreSQL).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value):
        if _has_nul(value):
            raise ValueError("must not contain NUL characters (\\u0000)")
        return value


def _check_timezone(value: str | None) -> str | None:
    if value is not None and value not in available_timezones():
        raise ValueError("unknown IANA time zone")
    return value


class RegisterIn(StrictModel):
    email: EmailStr
    password: str = Field(min_length=8, max_length=128)
    name: str = Field(default="", max_length=200)
    timezone: str = "UTC"

    _tz = field_validator("timezone")(_check_timezone)


class LoginIn(StrictModel):
    email: EmailStr
    password: str = Field(min_length=1, max_length=128)


class RefreshIn(StrictModel):
    refresh_token: str = Field(min_length=1)


class PasswordChangeIn(StrictModel):
    current_password: str = Field(min_length=1, max_length=128)
    new_password: str = Field(min_length=8, max_length=128)


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    role: Literal["user", "admin"]
    is_active: bool
    timezone: str
    created_at: datetime
    updated_at: datetime


class TokenPairOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    user: UserOut


class MeUpdateIn(StrictModel):
    name: str | None = Field(default=None, max_length=200)
    timezone: str | None = None

    _tz = field_validator("timezone")(_check_timezone)


class AdminUserUpdateIn(StrictModel):
    role: Literal["user", "admin"] | None = None
    is_active: bool | None = None
    name: str | None = Field(default=None, max_length=200)


class ListQuery(StrictModel):
    limit: int = Field(default=50, ge=1, le=100)
    cursor: str | None = None


class UserListQuery(ListQuery):
    q: str | None = Field(default=None, max_length=320, description="search by e-mail")


class UserListOut(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class OkOut(BaseModel):
    status: str


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    version: str


# ----------------------------------------------------------------- conversations store

Platform = Literal["facebook", "instagram", "whatsapp"]
ConversationStatus = Literal["open", "pending", "resolved", "snoozed"]
TaskStatus = Literal["open", "in_progress", "done"]
TaskPriority = Literal["low", "normal", "high"]


class ContactRef(BaseModel):
    id: str
    name: str | None
    platform_user_id: str
    profile_pic: str | None = None


class ConversationOut(BaseModel):
    id: str
    platform: Platform
    platform_account_id: str
    status: ConversationStatus
    ai_enabled: bool
    assignee_id: str | None
    labels: list[str]
    unread_count: int
    message_count: int
    last_message_at: datetime | None
    last_inbound_at: datetime | None
    last_message_preview: str | None
    snoozed_until: datetime | None
    contact: ContactRef
    created_at: datetime
    updated_at: datetime


class ConversationListOut(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None


class ConversationListQuery(ListQuery):
    status: ConversationStatus | None = None
    platform: Platform | None = None
    label: str | None = Field(default=None, max_length=64)
    assignee_id: str | None = Field(default=None, max_length=36)
    q: str | None = Field(default=None, min_length=1, max_length=200,
                          description="text search over the contact's name and the messages")


class ConversationPatchIn(StrictModel):
    status: ConversationStatus | None = None
    assignee_id: str | None = Field(default=None, max_length=36)
    labels: list[str] | None = Field(default=None, max_length=50)
    ai_enabled: bool | None = None
    snoozed_until: datetime | None = None

    @field_validator("labels")
    @classmethod
    def _clean_labels(cls, value):
        if value is None:
            return value
        out = []
        for label in value:
            label = label.strip()
            if not label or len(label) > 64:
                raise ValueError("labels must be 1-64 characters")
            if label not in out:
                out.append(label)
        return out


class MessageOut(BaseModel):
    id: str
    conversation_id: str
    direction: Literal["inbound", "outbound"]
    sender_type: Literal["contact", "ai", "agent", "system"]
    text: str | None
    attachments: list[dict]
    platform: str | None
    platform_message_id: str | None
    status: Literal["received", "queued", "sent", "delivered", "read", "failed"]
    error: str | None
    reply_to: str | None
    is_note: bool
    created_at: datetime


class MessageListOut(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


class NoteIn(StrictModel):
    text: str = Field(min_length=1, max_length=5000)


class ContactOut(BaseModel):
    id: str
    platform: Platform
    platform_user_id: str
    name: str | None
    first_name: str | None
    last_name: str | None
    username: str | None
    profile_pic: str | None
    locale: str | None
    phone: str | None
    email: str | None
    notes: str | None
    profile: dict
    created_at: datetime
    updated_at: datetime


class ContactListOut(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None


class ContactListQuery(ListQuery):
    q: str | None = Field(default=None, min_length=1, max_length=200)
    platform: Platform | None = None


class ContactPatchIn(StrictModel):
    name: str | None = Field(default=None, max_length=200)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=32)
    notes: str | None = Field(default=None, max_length=5000)


class TaskIn(StrictModel):
    title: str = Field(min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=10000)
    conversation_id: str | None = Field(default=None, max_length=36)
    status: TaskStatus = "open"
    priority: TaskPriority = "normal"
    due_at: datetime | None = None
    assignee_id: str | None = Field(default=None, max_length=36)


class TaskPatchIn(StrictModel):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=10000)
    conversation_id: str | None = Field(default=None, max_length=36)
    status: TaskStatus | None = None
    priority: TaskPriority | None = None
    due_at: datetime | None = None
    assignee_id: str | None = Field(default=None, max_length=36)


class TaskOut(BaseModel):
    id: str
    title: str
    description: str | None
    conversation_id: str | None
    status: TaskStatus
    priority: TaskPriority
    due_at: datetime | None
    assignee_id: str | None
    created_at: datetime
    updated_at: datetime


class TaskListOut(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None


class TaskListQuery(ListQuery):
    status: TaskStatus | None = None
    priority: TaskPriority | None = None
    conversation_id: str | None = Field(default=None, max_length=36)


# -------------------------------------------------------------------- subscriptions

FeatureName = Literal["ai_replies", "knowledge_base", "workflows", "slack", "email", "hubspot",
                      "salesforce", "google_analytics", "zendesk", "mysql", "postgresql",
                      "mongodb", "sqlserver"]
Limit = Annotated[int, Field(ge=0)] | None


StripePriceId = Annotated[str, Field(
    pattern=r"^price_[A-Za-z0-9_]+$", max_length=255,
    description="the Stripe Price that bills this plan (Checkout and webhooks map by it)")]


class TierIn(StrictModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    price: Decimal = Field(ge=0, max_digits=10, decimal_places=2)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    billing_interval: Literal["month", "year"] = "month"
    features: list[FeatureName] = Field(default_factory=list)
    platforms: list[Platform] = Field(default_factory=list)
    monthly_ai_replies: Limit = Field(description="null means unlimited")
    platform_accounts: Limit = Field(description="null means unlimited")
    integrations: Limit = Field(description="null means unlimited")
    knowledge_documents: Limit = Field(description="null means unlimited")
    is_active: bool = True
    trial_days: int = Field(default=0, ge=0, le=365,
                            description="days of free trial a user may start once; 0 = none")
    stripe_price_id: StripePriceId | None = None


class TierUpdateIn(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    price: Decimal | None = Field(default=None, ge=0, max_digits=10, decimal_places=2)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    billing_interval: Literal["month", "year"] | None = None
    features: list[FeatureName] | None = None
    platforms: list[Platform] | None = None
    monthly_ai_replies: Limit = None
    platform_accounts: Limit = None
    integrations: Limit = None
    knowledge_documents: Limit = None
    is_active: bool | None = None
    trial_days: int | None = Field(default=None, ge=0, le=365)
    stripe_price_id: StripePriceId | None = None


class TierOut(BaseModel):
    id: str
    name: str
    description: str
    price: float
    currency: str
    billing_interval: Literal["month", "year"]
    features: list[str]
    platforms: list[str]
    monthly_ai_replies: int | None
    platform_accounts: int | None
    integrations: int | None
    knowledge_documents: int | None
    is_active: bool
    trial_days: int
    stripe_price_id: str | None


class TierListOut(BaseModel):
    items: list[TierOut]
    next_cursor: str | None


class SubscribeIn(StrictModel):
    """A free plan or a trial for yourself; a paid plan answers 402 payment_required (with
    `checkout_url` when Stripe is configured). Admins grant any plan to `user_id` (default:
    themselves); a non-admin naming another user gets 404."""

    tier_id: str = Field(min_length=1, max_length=36)
    user_id: str | None = Field(default=None, min_length=1, max_length=36,
                                description="admin only: whose plan (default: the caller)")
    payment_reference: str | None = Field(
        default=None, max_length=255,
        description="admin grants: a reference kept with the grant (e.g. an invoice number; "
                    "never card data)")


SubscriptionStatus = Literal["active", "trialing", "past_due", "canceled", "expired"]
PaymentProvider = Literal["stripe", "admin"]


class UsageOut(BaseModel):
    period: str
    ai_replies: int
    ai_replies_limit: int | None


class SubscriptionOut(BaseModel):
    id: str
    user_id: str
    tier_id: str
    status: SubscriptionStatus
    started_at: datetime
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    payment_reference: str | None
    provider: PaymentProvider | None = Field(
        description="who bills it: stripe, admin (a grant), null (a free plan or a trial)")
    provider_customer_id: str | None
    provider_subscription_id: str | None
    past_due_since: datetime | None = Field(
        description="past_due: the plan is kept for STRIPE_GRACE_DAYS from here")
    trial_started_at: datetime | None = Field(description="set once: one trial per account")
    effective_until: datetime | None = Field(
        description="when the plan stops applying (null: until changed)")
    tier: TierOut
    effective_tier: TierOut
    usage: UsageOut


class SubscriptionRowOut(BaseModel):
    id: str
    user_id: str
    tier_id: str
    status: SubscriptionStatus
    started_at: datetime
    current_period_end: datetime | None
    cancel_at_period_end: bool
    provider: PaymentProvider | None


class SubscriptionListOut(BaseModel):
    items: list[SubscriptionRowOut]
    next_cursor: str | None


class SubscriptionListQuery(ListQuery):
    status: SubscriptionStatus | None = None


class AdminSubscriptionIn(StrictModel):
    tier_id: str | None = Field(default=None, min_length=1, max_length=36)
    status: SubscriptionStatus | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool | None = None


# ---------------------------------------------------------------- platforms / sending

class PlatformAccountIn(StrictModel):
    platform: Platform
    external_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
                             description="Page id, Instagram account id or WhatsApp phone_number_id")
    access_token: str = Field(min_length=10, max_length=4096, repr=False,
                              description="Page token (Messenger, Instagram) or system-user token "
                                          "(WhatsApp); checked with Graph before anything "
                                          "is stored")
    name: str = Field(default="", max_length=200,
                      description="empty: the Page name / Instagram username / WhatsApp verified "
                                  "name that Graph answers")


class PlatformAccountPatchIn(StrictModel):
    name: str | None = Field(default=None, max_length=200)
    access_token: str | None = Field(default=None, min_length=10, max_length=4096, repr=False)


class PlatformAccountOut(BaseModel):
    id: str
    platform: Platform
    external_id: str
    name: str
    display_phone_number: str | None = Field(
        description="WhatsApp: the number customers see, as Graph answers it; else null")
    status: Literal["active", "needs_reauth"]
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class PlatformAccountListOut(BaseModel):
    items: list[PlatformAccountOut]
    next_cursor: str | None


class WhatsAppTemplateIn(StrictModel):
    name: str = Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")
    language: str = Field(default="en_US", min_length=2, max_length=16)
    components: list[dict] = Field(default_factory=list, max_length=10,
                                   description="WhatsApp template components (header/body/button parameters)")


class SendMessageIn(StrictModel):
    text: str | None = Field(default=None, min_length=1, max_length=4096)
    template: WhatsAppTemplateIn | None = Field(
        default=None, description="WhatsApp only: a pre-approved template (allowed outside the 24 h window)")
    pause_ai: bool = Field(default=True, description="an agent reply pauses the AI unless false")
    tag: Literal["HUMAN_AGENT", "ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE",
                 "POST_PURCHASE_UPDATE"] | None = Field(
        default=None, description="Messenger/Instagram message tag to send outside the 24 h window")

    @model_validator(mode="after")
    def _text_or_template(self) -> "SendMessageIn":
        if not self.text and self.template is None:
            raise ValueError("send a text or a template")
        return self


class WebhookEventOut(BaseModel):
    id: int
    platform: str
    status: str
    attempts: int
    error: str | None
    received_at: datetime
    processed_at: datetime | None


# -------------------------------------------------------------------------- workflows

from automation.core.definitions import WorkflowDefinition  # noqa: E402


class WorkflowIn(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    enabled: bool = True
    position: int = Field(default=100, ge=0, le=100000, description="lower runs first")
    definition: WorkflowDefinition


class WorkflowPatchIn(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    enabled: bool | None = None
    position: int | None = Field(default=None, ge=0, le=100000)
    definition: WorkflowDefinition | None = None


class WorkflowOut(BaseModel):
    id: str
    name: str
    description: str
    enabled: bool
    position: int
    definition: dict
    created_at: datetime
    updated_at: datetime


class WorkflowListOut(BaseModel):
    items: list[WorkflowOut]
    next_cursor: str | None


class WorkflowRunOut(BaseModel):
    id: str
    workflow_id: str | None
    trigger: str
    conversation_id: str | None
    message_id: str | None
    matched: bool
    conditions: list[dict]
    actions: list[dict]
    status: Literal["completed", "failed", "not_matched"]
    error: str | None
    duration_ms: int
    started_at: datetime


class WorkflowRunListOut(BaseModel):
    items: list[WorkflowRunOut]
    next_cursor: str | None


class WorkflowRunQuery(ListQuery):
    workflow_id: str | None = Field(default=None, max_length=36)
    conversation_id: str | None = Field(default=None, max_length=36)
    matched: bool | None = None


class BusinessProfileIn(StrictModel):
    name: str | None = Field(default=None, max_length=200)
    persona: str | None = Field(default=None, max_length=4000,
                                description="how the AI should sound, e.g. 'friendly, concise'")
    instructions: str | None = Field(default=None, max_length=8000,
                                     description="rules the AI must follow")
    handoff_message: str | None = Field(default=None, min_length=1, max_length=1000)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")


class BusinessProfileOut(BaseModel):
    name: str
    persona: str
    instructions: str
    handoff_message: str
    language: str
    timezone: str


class SuggestOut(BaseModel):
    suggestions: list[str]


# ------------------------------------------------------------------------ knowledge base

KnowledgeFormat = Literal["text", "markdown", "faq"]
KnowledgeTag = Annotated[str, Field(min_length=1, max_length=64)]


class KnowledgeDocumentIn(StrictModel):
    title: str = Field(min_length=1, max_length=300)
    content: str = Field(min_length=1, max_length=200_000)
    format: KnowledgeFormat = Field(
        default="text", description='"faq" content is "Q: …" / "A: …" blocks, one passage each')
    tags: list[KnowledgeTag] = Field(default_factory=list, max_length=20)
    enabled: bool = True
    source: str = Field(default="api", max_length=300)


class KnowledgeDocumentPatchIn(StrictModel):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    content: str | None = Field(default=None, min_length=1, max_length=200_000)
    format: KnowledgeFormat | None = None
    tags: list[KnowledgeTag] | None = Field(default=None, max_length=20)
    enabled: bool | None = None
    source: str | None = Field(default=None, max_length=300)


class KnowledgeDocumentSummaryOut(BaseModel):
    id: str
    title: str
    format: KnowledgeFormat
    tags: list[str]
    enabled: bool
    source: str
    chunk_count: int
    chars: int
    created_at: datetime
    updated_at: datetime


class KnowledgeDocumentOut(KnowledgeDocumentSummaryOut):
    content: str


class KnowledgeListOut(BaseModel):
    items: list[KnowledgeDocumentSummaryOut]
    next_cursor: str | None


class KnowledgeListQuery(ListQuery):
    tag: str | None = Field(default=None, max_length=64)
    enabled: bool | None = None


class KnowledgeSearchQuery(StrictModel):
    q: str = Field(min_length=1, max_length=1000, description="the customer's question, any text")
    limit: int = Field(default=5, ge=1, le=20)


class KnowledgePassageOut(BaseModel):
    chunk_id: int
    document_id: str
    title: str
    heading: str | None
    text: str
    question: str | None
    answer: str | None
    score: float = Field(ge=0, le=1, description="0..1, higher is a better match")
    rank: int


class KnowledgeSearchOut(BaseModel):
    items: list[KnowledgePassageOut]
    next_cursor: str | None


class KnowledgeImportOut(BaseModel):
    created: int
    items: list[KnowledgeDocumentSummaryOut]


class WebhookEventListQuery(ListQuery):
    status: Literal["received", "processing", "processed", "ignored", "failed",
                    "rejected"] | None = None
    platform: Platform | None = None


class WebhookEventListOut(BaseModel):
    items: list[WebhookEventOut]
    next_cursor: str | None


class WebhookEventDetailOut(WebhookEventOut):
    raw_body: str


# --------------------------------------------------------------------------- integrations

class IntegrationIn(StrictModel):
    """Configure (or reconfigure) one integration; checked with the service before stored."""

    type: str = Field(min_length=1, max_length=32,
                      description="slack, email, hubspot, salesforce, zendesk, "
                                  "google_analytics, mysql, postgresql, mongodb, sqlserver")
    config: dict = Field(description="the type's fields (see /api/integrations/types); on an "
                                     "update, a secret left out or sent back masked is kept")
    enabled: bool = True


class IntegrationOut(BaseModel):
    type: str
    status: Literal["active", "pending", "error"]
    enabled: bool
    config: dict = Field(description="secret fields only as '••••' + their last 4 characters")
    last_checked_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class IntegrationListOut(BaseModel):
    items: list[IntegrationOut]
    next_cursor: str | None


class IntegrationTypeOut(BaseModel):
    type: str
    name: str
    category: Literal["messaging", "email", "crm", "helpdesk", "analytics", "database"]
    available: bool = Field(description="false: specified, not built yet (cannot be configured)")
    in_plan: bool = Field(description="whether the caller's plan includes this integration")
    operations: list[str]
    secret_fields: list[str]
    config_schema: dict = Field(description="JSON Schema of `config`")


class IntegrationTypeListOut(BaseModel):
    items: list[IntegrationTypeOut]
    next_cursor: str | None


class IntegrationTestOut(BaseModel):
    ok: bool
    detail: str
    checked_at: datetime


# ---------------------------------------------------------------------------------- slack

SlackTs = Annotated[str, Field(pattern=r"^\d{1,12}\.\d{1,9}$", max_length=24,
                               description="a Slack message timestamp, e.g. 1712345678.000100")]


class SlackHealthOut(BaseModel):
    status: Literal["ok", "error", "not_configured"]
    source: Literal["integration", "server"] | None = Field(
        description="the caller's own integration, or (admins) the server's SLACK_BOT_TOKEN")
    channel_id: str | None
    detail: str = Field(description="the workspace and channel, or Slack's reason")
    checked_at: datetime | None = None


class SlackMessageOut(BaseModel):
    ts: str
    user: str | None = Field(description="Slack user id (or bot id) of the author")
    text: str
    thread_ts: str | None
    reply_count: int


class SlackMessageListOut(BaseModel):
    items: list[SlackMessageOut]
    next_cursor: str | None


class SlackListQuery(StrictModel):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500)


class SlackPostIn(StrictModel):
    text: str = Field(min_length=1, max_length=4000,
                      description="plain text / mrkdwn; also the notification fallback")
    thread_ts: SlackTs | None = Field(default=None, description="reply in this thread")
    blocks: list[dict] | None = Field(default=None, max_length=50,
                                      description="Block Kit blocks (rich formatting)")


class SlackPostOut(BaseModel):
    ts: str
    channel: str
# ----------------------------------------------------------------- analytics

class AnalyticsQuery(StrictModel):
    from_: date | None = Field(
        default=None, alias="from",
        description="first day (UTC, YYYY-MM-DD); default: 29 days before 'to'")
    to: date | None = Field(default=None, description="last day, inclusive (UTC); default: today")


class AnalyticsDayOut(BaseModel):
    date: str
    platform: str
    inbound: int
    outbound: int


class AnalyticsSpreadOut(BaseModel):
    median: float | None = Field(description="seconds")
    p90: float | None = Field(description="seconds (nearest rank)")
    count: int


class AnalyticsConversationsOut(BaseModel):
    new: int
    active: int = Field(description="with a message in the period")
    resolved: int


class AnalyticsTotalsOut(BaseModel):
    inbound: int
    outbound: int


class AnalyticsSummaryOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    messages: list[AnalyticsDayOut] = Field(description="per day and platform; notes left out")
    totals: AnalyticsTotalsOut
    conversations: AnalyticsConversationsOut
    first_response_seconds: AnalyticsSpreadOut
    ai_answered_share: float | None = Field(
        description="answered conversations answered by the AI alone (0..1)")
    handoffs: int = Field(description="tasks opened on a conversation in the period")
    resolution_seconds: AnalyticsSpreadOut
