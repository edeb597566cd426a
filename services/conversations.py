"""Conversations, messages and contacts of one owner, through the store."""
from __future__ import annotations

from automation.ai.response_generator import ReplyContext, generate_reply, retrieve
from automation.ai.response_generator import suggest_replies as draft
from automation.core.assignees import check_assignee
from automation.core.business_profile import get_profile
from automation.core.handoff import conversation_history
from automation.core.milestones import status_changed
from utils import events
from utils.errors import NotFound
from utils.store import ConversationFilters, NewMessage, get_store


def list_conversations(owner_id: str, filters: ConversationFilters, limit: int,
                       cursor: str | None) -> dict:
    """The owner's inbox, newest activity first."""
    return get_store().list_conversations(owner_id, filters, limit, cursor).to_dict()


def get_conversation(owner_id: str, conversation_id: str) -> dict:
    """One conversation of the owner, or 404 (also for another owner's id)."""
    conv = get_store().get_conversation(owner_id, conversation_id)
    if conv is None:
        raise NotFound("No such conversation.", code="conversation_not_found")
    return conv


def update_conversation(owner_id: str, conversation_id: str, changes: dict) -> dict:
    """Change status, assignee, labels or ai_enabled; notifies the owner."""
    if changes.get("status") and changes["status"] != "snoozed":
        changes.setdefault("snoozed_until", None)
    check_assignee(owner_id, changes.get("assignee_id"))
    before = get_store().get_conversation(owner_id, conversation_id) \
        if changes.get("status") == "resolved" else None
    conv = get_store().update_conversation(owner_id, conversation_id, changes)
    if conv is None:
        raise NotFound("No such conversation.", code="conversation_not_found")
    events.conversation_updated(owner_id, conv)
    if before is not None:
        status_changed(owner_id, before["status"], conv)
    return conv


def mark_read(owner_id: str, conversation_id: str) -> dict:
    """Reset the unread counter; notifies the owner."""
    conv = get_store().mark_conversation_read(owner_id, conversation_id)
    if conv is None:
        raise NotFound("No such conversation.", code="conversation_not_found")
    events.conversation_updated(owner_id, conv)
    return conv


def list_messages(owner_id: str, conversation_id: str, limit: int, cursor: str | None) -> dict:
    """A page of the thread (newest page first, oldest first within the page)."""
    get_conversation(owner_id, conversation_id)
    return get_store().list_messages(owner_id, conversation_id, limit, cursor).to_dict()


def add_note(owner_id: str, conversation_id: str, text: str, author_id: str) -> dict:
    """An internal note: stored in the thread, never sent to the customer."""
    get_conversation(owner_id, conversation_id)
    note = get_store().add_message(owner_id, NewMessage(
        conversation_id=conversation_id, direction="outbound", sender_type="agent", text=text,
        is_note=True, status="sent", metadata={"author_id": author_id}))
    events.new_message(owner_id, conversation_id, note)
    return note


def list_contacts(owner_id: str, q: str | None, platform: str | None, limit: int,
                  cursor: str | None) -> dict:
    """The owner's contacts, newest first, searched by name, e-mail or phone."""
    return get_store().list_contacts(owner_id, q, platform, limit, cursor).to_dict()


def get_contact(owner_id: str, contact_id: str) -> dict:
    """One of the owner's contacts, or 404 (also for another owner's id)."""
    contact = get_store().get_contact(owner_id, contact_id)
    if contact is None:
        raise NotFound("No such contact.", code="contact_not_found")
    return contact


def update_contact(owner_id: str, contact_id: str, changes: dict) -> dict:
    """Change a contact's details and notes; 404 when not the owner's."""
    contact = get_store().update_contact(owner_id, contact_id, changes)
    if contact is None:
        raise NotFound("No such contact.", code="contact_not_found")
    return contact


def suggest_replies(owner_id: str, conversation_id: str, n: int = 3) -> dict:
    """Draft replies an agent could send, from the knowledge base and the recent thread."""
    conv = get_conversation(owner_id, conversation_id)
    history = conversation_history(owner_id, conversation_id)
    last_customer = next((h["text"] for h in reversed(history) if h["role"] == "customer"), "")
    ctx = ReplyContext(user_id=owner_id, business=get_profile(owner_id),
                       conversation_id=conversation_id, message_text=last_customer,
                       history=history, contact_name=conv["contact"].get("name"),
                       platform=conv["platform"])
    return {"suggestions": draft(ctx, n)}


def preview_answer(owner_id: str, question: str) -> dict:
    """What the AI would answer a customer asking `question` now (nothing is sent or stored):
    the knowledge base's passages it found and its answer or hand-off.
    """
    ctx = ReplyContext(user_id=owner_id, business=get_profile(owner_id),
                       conversation_id=None, message_text=question, history=[],
                       contact_name=None, platform="facebook")
    answer = generate_reply(ctx)
    return {"text": answer.text, "handoff": answer.handoff, "reason": answer.reason,
            "confidence": answer.confidence,
            "passages": [p.to_dict() for p in retrieve(ctx)]}
