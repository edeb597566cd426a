"""Replies written by a person in the inbox (the agent's side of services/conversations.py).

The send itself (store first, then the Send API, idempotent, status announced) is
automation/core/sending.py, shared with the automated replies.
"""
from __future__ import annotations

from automation.core.sending import send_message, window_open
from automation.platforms.base import OutboundMessage
from utils import events
from utils.errors import NotFound, Unprocessable
from utils.store import get_store

# The send itself and the messaging-window rule are the pipeline's; the inbox and Slack
# threads use them through this module.
__all__ = ["send_agent_reply", "send_message", "window_open"]


def send_agent_reply(owner_id: str, agent_id: str, conversation_id: str, text: str | None,
                     pause_ai: bool = True, tag: str | None = None,
                     template: dict | None = None, *, idempotency_key: str | None = None,
                     metadata: dict | None = None) -> dict:
    """A human reply from the inbox (or a Slack thread); by default it pauses the AI here.

    `template` (WhatsApp only) sends a pre-approved template, which WhatsApp allows outside
    the 24-hour window; the thread shows it as "[template <name>]". `idempotency_key` makes a
    repeated request (e.g. Slack's retry of one thread reply) return the first send.
    """
    if template is not None:
        conv = get_store().get_conversation(owner_id, conversation_id)
        if conv is None:
            raise NotFound("No such conversation.", code="conversation_not_found")
        if conv["platform"] != "whatsapp":
            raise Unprocessable("Message templates are a WhatsApp feature; on Messenger and "
                                "Instagram use a tag such as HUMAN_AGENT.",
                                code="template_not_supported")
        text = text or f"[template {template['name']}]"
    message = send_message(owner_id, conversation_id,
                           OutboundMessage(text=text, tag=tag, template=template),
                           "agent", idempotency_key=idempotency_key,
                           metadata={**(metadata or {}), "author_id": agent_id,
                                     **({"template": template} if template else {})})
    if pause_ai:
        conv = get_store().get_conversation(owner_id, conversation_id)
        if conv and conv["ai_enabled"]:
            conv = get_store().update_conversation(owner_id, conversation_id, {"ai_enabled": False})
            events.conversation_updated(owner_id, conv)
    return message
