"""/api/conversations and /api/contacts: the inbox, threads, notes, replies."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, EmailStr, Field, field_validator, model_validator

from routes.schemas.common import ListQuery, Platform, StrictModel

ConversationStatus = Literal["open", "pending", "resolved", "snoozed"]


class ContactRef(BaseModel):
    """The customer a conversation is with, as embedded in the conversation."""

    id: str
    name: str | None
    platform_user_id: str
    profile_pic: str | None = None


class ConversationOut(BaseModel):
    """One conversation of the inbox: its state, counters and customer."""

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
    """A page of the inbox, newest activity first."""

    items: list[ConversationOut]
    next_cursor: str | None


class ConversationListQuery(ListQuery):
    """Inbox filters: status, platform, label, assignee, text search."""

    status: ConversationStatus | None = None
    platform: Platform | None = None
    label: str | None = Field(default=None, max_length=64)
    assignee_id: str | None = Field(default=None, max_length=36)
    q: str | None = Field(default=None, min_length=1, max_length=200,
                          description="text search over the contact's name and the messages")


class ConversationPatchIn(StrictModel):
    """Changes to a conversation: status, snooze, assignee, labels, AI on/off."""

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
    """One message of a thread (inbound, outbound or an internal note)."""

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
    """A page of a thread: the newest page first, oldest first within it."""

    items: list[MessageOut]
    next_cursor: str | None


class NoteIn(StrictModel):
    """An internal note for the team; never sent to the customer."""

    text: str = Field(min_length=1, max_length=5000)


class ContactOut(BaseModel):
    """A customer known on one platform, with the profile the platform shared."""

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
    """A page of contacts, newest first."""

    items: list[ContactOut]
    next_cursor: str | None


class ContactListQuery(ListQuery):
    """Contact filters: text search (name, e-mail, phone) and platform."""

    q: str | None = Field(default=None, min_length=1, max_length=200)
    platform: Platform | None = None


class ContactPatchIn(StrictModel):
    """Changes to a contact's details and notes."""

    name: str | None = Field(default=None, max_length=200)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=32)
    notes: str | None = Field(default=None, max_length=5000)


class WhatsAppTemplateIn(StrictModel):
    """A pre-approved WhatsApp template with its parameters."""

    name: str = Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")
    language: str = Field(default="en_US", min_length=2, max_length=16)
    components: list[dict] = Field(default_factory=list, max_length=10,
                                   description="WhatsApp template components "
                                               "(header/body/button parameters)")


class SendMessageIn(StrictModel):
    """An agent reply: a text, or a WhatsApp template, optionally with a message tag."""

    text: str | None = Field(default=None, min_length=1, max_length=4096)
    template: WhatsAppTemplateIn | None = Field(
        default=None,
        description="WhatsApp only: a pre-approved template (allowed outside the 24 h window)")
    pause_ai: bool = Field(default=True, description="an agent reply pauses the AI unless false")
    tag: Literal["HUMAN_AGENT", "ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE",
                 "POST_PURCHASE_UPDATE"] | None = Field(
        default=None, description="Messenger/Instagram message tag to send outside the 24 h window")

    @model_validator(mode="after")
    def _text_or_template(self) -> "SendMessageIn":
        if not self.text and self.template is None:
            raise ValueError("send a text or a template")
        return self


class SuggestOut(BaseModel):
    """Draft replies an agent may send or edit."""

    suggestions: list[str]
