"""Human hand-off: a task with the conversation's summary and link, the AI paused for the
conversation, and the customer told that a person will reply. Never silence.
"""
from __future__ import annotations

import logging

from automation.ai.response_generator import summarize_conversation
from automation.core.business_profile import get_profile
from automation.core.policy import policy
from automation.core.sending import send_message
from automation.core.tasks import create_task
from automation.integrations.base import Notification, conversation_link
from automation.platforms.base import OutboundMessage
from utils import events
from utils.idempotency import HANDOFF, idempotency_key
from utils.store import TaskFilters, get_store

log = logging.getLogger("dana.handoff")

URGENT_REASONS = {"customer_asked_for_human", "complaint", "quota_exhausted"}


def conversation_history(owner_id: str, conversation_id: str, limit: int = 20, *,
                         opened_by: dict | None = None) -> list[dict]:
    """The recent thread as [{role: customer|business, text}], oldest first, notes excluded.

    `opened_by`: the customer message that opened the conversation during this run; the
    thread is that message alone, not read.
    """
    thread = [opened_by] if opened_by is not None else \
        get_store().list_messages(owner_id, conversation_id, limit, None).items
    return [{"role": "customer" if m["direction"] == "inbound" else "business", "text": m["text"]}
            for m in thread if not m["is_note"] and m["text"]]


def hand_off(owner_id: str, conversation: dict, reason: str, *,
             trigger_message_id: str | None = None,
             notify_customer: bool = True, on_created=None,
             history: list[dict] | None = None) -> dict:
    """Call a human in; returns the (new or already open) hand-off task.

    on_created(task) is called when a new task was opened (not for one already open): the
    engine then runs the owner's `handoff` workflows. `history`: conversation_history() as
    the caller just read it (the AI reply that decided to hand off), not read again.
    """
    store = get_store()
    conv_id = conversation["id"]
    open_tasks = store.list_tasks(owner_id, TaskFilters(status="open", conversation_id=conv_id), 20,
                                  None)
    task = next((t for t in open_tasks.items if t["title"].startswith("Reply to ")), None)
    if task is None:
        contact = conversation["contact"]
        name = contact.get("name") or contact["platform_user_id"]
        if history is None:
            history = conversation_history(owner_id, conv_id)
        summary = summarize_conversation(history, contact.get("name"))
        link = conversation_link(conv_id)
        task = create_task(owner_id, {
            "title": f"Reply to {name} on {conversation['platform'].capitalize()}",
            "description": f"{summary}\n\nWhy a human: {reason.replace('_', ' ')}\n"
                           f"Conversation: {link}",
            "conversation_id": conv_id,
            "priority": "high" if reason in URGENT_REASONS else "normal"},
            conversation=conversation)
        # Every enabled team integration (Slack, e-mail) hears of each new hand-off; delivered
        # after the customer's answer (the policy's notify_team: services/integrations.py).
        policy().notify_team(Notification(
            owner_id=owner_id, kind="handoff", title=task["title"], text=task["description"],
            conversation=conversation, task=task, link=link))
        if on_created is not None:
            on_created(task)
    changes = {}
    if conversation["ai_enabled"]:
        changes["ai_enabled"] = False
    if conversation["status"] != "pending":
        changes["status"] = "pending"
    if changes:
        updated = store.update_conversation(owner_id, conv_id, changes)
        events.conversation_updated(owner_id, updated)
    if notify_customer:
        text = get_profile(owner_id)["handoff_message"]
        key = idempotency_key(HANDOFF, trigger_message_id) if trigger_message_id else None
        sent = send_message(owner_id, conv_id, OutboundMessage(text=text), "system",
                            idempotency_key=key, metadata={"handoff": reason},
                            conversation=conversation)
        if sent["status"] == "failed":
            log.warning("hand-off notice to the customer failed: %s", sent["error"])
    return task
