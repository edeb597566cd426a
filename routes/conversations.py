"""/api/conversations and /api/contacts: the owner's inbox."""
from __future__ import annotations

from flask import Blueprint, g

from routes.schemas import (
    ContactListOut,
    ContactListQuery,
    ContactOut,
    ContactPatchIn,
    ConversationListOut,
    ConversationListQuery,
    ConversationOut,
    ConversationPatchIn,
    ListQuery,
    MessageListOut,
    MessageOut,
    NoteIn,
    SendMessageIn,
    SuggestOut,
)
from services import conversations as svc
from services import messaging
from utils.auth import require_auth
from utils.openapi import endpoint
from utils.store import ConversationFilters

bp = Blueprint("conversations", __name__, url_prefix="/api")
TAGS = ["conversations"]


@bp.get("/conversations")
@require_auth
@endpoint(query=ConversationListQuery, response=ConversationListOut, tags=TAGS)
def list_conversations(query: ConversationListQuery):
    """The inbox, newest activity first, with filters and keyset pagination."""
    filters = ConversationFilters(status=query.status, platform=query.platform, label=query.label,
                                  assignee_id=query.assignee_id, q=query.q)
    return svc.list_conversations(g.user.id, filters, query.limit, query.cursor)


@bp.get("/conversations/<conversation_id>")
@require_auth
@endpoint(response=ConversationOut, tags=TAGS, errors=(404,))
def get_conversation(conversation_id: str):
    """One conversation."""
    return svc.get_conversation(g.user.id, conversation_id)


@bp.patch("/conversations/<conversation_id>")
@require_auth
@endpoint(body=ConversationPatchIn, response=ConversationOut, tags=TAGS, errors=(404,))
def patch_conversation(conversation_id: str, body: ConversationPatchIn):
    """Change status, assignee, labels or whether the AI answers."""
    return svc.update_conversation(g.user.id, conversation_id, body.model_dump(exclude_unset=True))


@bp.post("/conversations/<conversation_id>/read")
@require_auth
@endpoint(response=ConversationOut, tags=TAGS, errors=(404,))
def read_conversation(conversation_id: str):
    """Mark the conversation read (unread_count 0)."""
    return svc.mark_read(g.user.id, conversation_id)


@bp.get("/conversations/<conversation_id>/messages")
@require_auth
@endpoint(query=ListQuery, response=MessageListOut, tags=TAGS, errors=(404,))
def list_messages(conversation_id: str, query: ListQuery):
    """Messages: the newest page first, oldest first within a page; next_cursor goes back."""
    return svc.list_messages(g.user.id, conversation_id, query.limit, query.cursor)


@bp.post("/conversations/<conversation_id>/messages")
@require_auth
@endpoint(body=SendMessageIn, response=MessageOut, status=201, tags=TAGS, errors=(404, 422))
def send_message(conversation_id: str, body: SendMessageIn):
    """Send an agent reply through the platform; the stored message shows sent or failed."""
    template = body.template.model_dump() if body.template else None
    return messaging.send_agent_reply(g.user.id, g.user.id, conversation_id, body.text,
                                      pause_ai=body.pause_ai, tag=body.tag,
                                      template=template), 201


@bp.post("/conversations/<conversation_id>/suggest")
@require_auth
@endpoint(response=SuggestOut, tags=TAGS, errors=(404,))
def suggest(conversation_id: str):
    """Reply suggestions for an agent, grounded in the knowledge base."""
    return svc.suggest_replies(g.user.id, conversation_id)


@bp.post("/conversations/<conversation_id>/notes")
@require_auth
@endpoint(body=NoteIn, response=MessageOut, status=201, tags=TAGS, errors=(404,))
def add_note(conversation_id: str, body: NoteIn):
    """Add an internal note (never sent to the customer)."""
    return svc.add_note(g.user.id, conversation_id, body.text, g.user.id), 201


@bp.get("/contacts")
@require_auth
@endpoint(query=ContactListQuery, response=ContactListOut, tags=["contacts"])
def list_contacts(query: ContactListQuery):
    """The owner's contacts, newest first; search by name, e-mail or phone."""
    return svc.list_contacts(g.user.id, query.q, query.platform, query.limit, query.cursor)


@bp.get("/contacts/<contact_id>")
@require_auth
@endpoint(response=ContactOut, tags=["contacts"], errors=(404,))
def get_contact(contact_id: str):
    """One contact."""
    return svc.get_contact(g.user.id, contact_id)


@bp.patch("/contacts/<contact_id>")
@require_auth
@endpoint(body=ContactPatchIn, response=ContactOut, tags=["contacts"], errors=(404,))
def patch_contact(contact_id: str, body: ContactPatchIn):
    """Edit a contact's name, e-mail, phone or notes."""
    return svc.update_contact(g.user.id, contact_id, body.model_dump(exclude_unset=True))
