"""Sending messages to customers through the platform connectors (automated and human).

Every send is stored first (status `queued`), then sent, then marked `sent` with the
platform's message id or `failed` with an error code. An idempotency key (e.g. the inbound
message an automated reply answers) makes a retried send return the stored message instead
of messaging the customer twice (keys: utils/idempotency.py). The workflow actions, the
hand-off and the inbox's agent replies (services/messaging.py) all send through here.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from automation.connectors import connector_for
from automation.core.policy import policy
from automation.integrations.base import Notification
from automation.platforms import accounts
from automation.platforms.base import AccountCredentials, OutboundMessage, SendError
from utils import events
from utils.config import current_settings
from utils.errors import NotFound
from utils.idempotency import echo_tag
from utils.store import DuplicateMessage, NewMessage, get_store

log = logging.getLogger("dana.messaging")


def window_open(conversation: dict, now: datetime | None = None) -> bool:
    """Is the customer's last message recent enough to answer without a tag/template?"""
    last = conversation.get("last_inbound_at")
    if not last:
        return False
    hours = current_settings().MESSAGING_WINDOW_HOURS
    since = (now or datetime.now(timezone.utc)) - datetime.fromisoformat(last)
    return since < timedelta(hours=hours)


def set_status(owner_id: str, message: dict, status: str, error: str | None = None,
               platform_message_id: str | None = None, detail: str | None = None) -> dict:
    """Move a stored message's delivery status (never backwards) and announce it."""
    store = get_store()
    updated = store.update_message_status(owner_id, message["id"], status, error=error,
                                          platform_message_id=platform_message_id)
    if detail:
        updated = store.update_message(owner_id, message["id"], metadata={"error_detail": detail})
    events.message_status(owner_id, updated)
    return updated


def send_message(owner_id: str, conversation_id: str, outbound: OutboundMessage,
                 sender_type: str, *, idempotency_key: str | None = None,
                 metadata: dict | None = None, conversation: dict | None = None) -> dict:
    """Store and send one message in a conversation; returns the stored message.

    `conversation`: the conversation as the caller read it during this run (the pipeline
    has it at hand), so it is not read once more; what the send needs of it (platform,
    account, customer, last inbound time) does not change during a run.
    """
    store = get_store()
    conv = conversation if conversation is not None else \
        store.get_conversation(owner_id, conversation_id)
    if conv is None:
        raise NotFound("No such conversation.", code="conversation_not_found")
    new = NewMessage(conversation_id=conversation_id, direction="outbound",
                     sender_type=sender_type, text=outbound.text, status="queued",
                     platform=conv["platform"], idempotency_key=idempotency_key,
                     attachments=[outbound.media] if outbound.media else [],
                     metadata={**(metadata or {}),
                               **({"quick_replies": outbound.quick_replies}
                                  if outbound.quick_replies else {})})
    try:
        message = store.add_message(owner_id, new)
    except DuplicateMessage as dup:
        if dup.existing.get("status") != "queued":
            return dup.existing          # already sent (or failed for good): never twice
        message = dup.existing            # a previous attempt died mid-send: finish it
    else:
        events.new_message(owner_id, conversation_id, message)

    if not outbound.tag and not outbound.template and not window_open(conv):
        return set_status(owner_id, message, "failed", error="outside_window",
                          detail="The customer's last message is older than the messaging window; "
                                  "a tag or template is needed.")
    account = accounts.find_account(conv["platform"], conv["platform_account_id"])
    if account is None or account.user_id != owner_id:
        return set_status(owner_id, message, "failed", error="account_disconnected",
                          detail="The platform account of this conversation is not connected.")
    if account.status == "needs_reauth":
        return set_status(owner_id, message, "failed", error="token_invalid",
                          detail="The platform account needs to be re-authorized.")
    outbound.metadata = outbound.metadata or echo_tag(message["id"])
    try:
        result = connector_for(conv["platform"]).send(
            AccountCredentials(account.external_id, accounts.account_token(account)),
            conv["contact"]["platform_user_id"], outbound)
    except SendError as exc:
        log.warning("send failed for message %s: %s (%s)", message["id"], exc.code, exc.message)
        if exc.needs_reauth:
            accounts.mark_needs_reauth(account, exc.message)
        return set_status(owner_id, message, "failed", error=exc.code, detail=exc.message)
    sent = set_status(owner_id, message, "sent", platform_message_id=result.platform_message_id)
    _tell_the_team(owner_id, conv, sent)
    return sent


def _tell_the_team(owner_id: str, conv: dict, message: dict) -> None:
    """The business's replies reach the integrations following the conversation (after this
    request): its Slack thread, its Zendesk ticket (a note), analytics (`ai_answered`). Each
    connector skips a reply that was written in it (metadata "source").
    """
    policy().notify_team(Notification(
        owner_id=owner_id, kind="business_message", text=message.get("text") or "",
        conversation=conv, message=message))
