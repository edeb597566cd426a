"""Sending messages to customers through the platform connectors.

Every send is stored first (status `queued`), then sent, then marked `sent` with the
platform's message id or `failed` with an error code. An idempotency key (e.g. the inbound
message an automated reply answers) makes a retried send return the stored message instead
of messaging the customer twice.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from flask import current_app

from automation.platforms.base import AccountCredentials, OutboundMessage, SendError
from services import platforms as platforms_service
from services.connectors import connector_for, graph_config  # noqa: F401  (re-exported)
from utils.errors import NotFound, Unprocessable
from utils.realtime import publish
from utils.store import DuplicateMessage, NewMessage, get_store

log = logging.getLogger("dana.messaging")


def window_open(conversation: dict, now: datetime | None = None) -> bool:
    """Is the customer's last message recent enough to answer without a tag/template?"""
    last = conversation.get("last_inbound_at")
    if not last:
        return False
    hours = current_app.config["DANA_SETTINGS"].MESSAGING_WINDOW_HOURS
    return (now or datetime.now(timezone.utc)) - datetime.fromisoformat(last) < timedelta(hours=hours)


def _set_status(owner_id: str, message: dict, status: str, error: str | None = None,
                platform_message_id: str | None = None, detail: str | None = None) -> dict:
    store = get_store()
    updated = store.update_message_status(owner_id, message["id"], status, error=error,
                                          platform_message_id=platform_message_id)
    if detail:
        updated = store.update_message(owner_id, message["id"], metadata={"error_detail": detail})
    publish(owner_id, "message_status", {"conversation_id": updated["conversation_id"],
                                         "message_id": updated["id"], "status": updated["status"],
                                         "error": updated["error"],
                                         "platform_message_id": updated["platform_message_id"]})
    return updated


def send_message(owner_id: str, conversation_id: str, outbound: OutboundMessage,
                 sender_type: str, *, idempotency_key: str | None = None,
                 metadata: dict | None = None) -> dict:
    """Store and send one message in a conversation; returns the stored message."""
    store = get_store()
    conv = store.get_conversation(owner_id, conversation_id)
    if conv is None:
        raise NotFound("No such conversation.", code="conversation_not_found")
    new = NewMessage(conversation_id=conversation_id, direction="outbound",
                     sender_type=sender_type, text=outbound.text, status="queued",
                     platform=conv["platform"], idempotency_key=idempotency_key,
                     attachments=[outbound.media] if outbound.media else [],
                     metadata={**(metadata or {}),
                               **({"quick_replies": outbound.quick_replies} if outbound.quick_replies else {})})
    try:
        message = store.add_message(owner_id, new)
    except DuplicateMessage as dup:
        if dup.existing.get("status") != "queued":
            return dup.existing          # already sent (or failed for good): never twice
        message = dup.existing            # a previous attempt died mid-send: finish it
    else:
        publish(owner_id, "new_message", {"conversation_id": conversation_id, "message": message})

    if not outbound.tag and not outbound.template and not window_open(conv):
        return _set_status(owner_id, message, "failed", error="outside_window",
                           detail="The customer's last message is older than the messaging window; "
                                  "a tag or template is needed.")
    account = platforms_service.find_account(conv["platform"], conv["platform_account_id"])
    if account is None or account.user_id != owner_id:
        return _set_status(owner_id, message, "failed", error="account_disconnected",
                           detail="The platform account of this conversation is not connected.")
    if account.status == "needs_reauth":
        return _set_status(owner_id, message, "failed", error="token_invalid",
                           detail="The platform account needs to be re-authorized.")
    outbound.metadata = outbound.metadata or f"dana:{message['id']}"
    try:
        result = connector_for(conv["platform"]).send(
            AccountCredentials(account.external_id, platforms_service.account_token(account)),
            conv["contact"]["platform_user_id"], outbound)
    except SendError as exc:
        log.warning("send failed for message %s: %s (%s)", message["id"], exc.code, exc.message)
        if exc.needs_reauth:
            platforms_service.mark_needs_reauth(account, exc.message)
        return _set_status(owner_id, message, "failed", error=exc.code, detail=exc.message)
    return _set_status(owner_id, message, "sent", platform_message_id=result.platform_message_id)


def send_agent_reply(owner_id: str, agent_id: str, conversation_id: str, text: str | None,
                     pause_ai: bool = True, tag: str | None = None,
                     template: dict | None = None) -> dict:
    """A human reply from the inbox; by default it pauses the AI for this conversation.

    `template` (WhatsApp only) sends a pre-approved template, which WhatsApp allows outside
    the 24-hour window; the thread shows it as "[template <name>]".
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
                           "agent", metadata={"author_id": agent_id,
                                              **({"template": template} if template else {})})
    if pause_ai:
        conv = get_store().get_conversation(owner_id, conversation_id)
        if conv and conv["ai_enabled"]:
            conv = get_store().update_conversation(owner_id, conversation_id, {"ai_enabled": False})
            publish(owner_id, "conversation_updated", conv)
    return message
