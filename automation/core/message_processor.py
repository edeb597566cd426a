"""Turn a stored webhook delivery into stored messages, statuses and automated replies.

process_webhook_event(id) is the one entry point, used inline after the webhook answered,
by the RQ worker, and by `flask events retry`. An event of a stored channel that is not a
platform (Slack's events and clicks: policy().channels) is handed to that channel's `run`.
It is safe to run more than once for the same event: messages are unique per platform
message id, automation runs once per inbound message (marked on the message), and replies
are keyed by the inbound message.
"""
from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar
from datetime import datetime

from sqlalchemy import bindparam, select, update

from automation.connectors import connector_for
from automation.core import workflow_engine
from automation.core.policy import policy
from automation.integrations.base import Notification, conversation_link
from automation.platforms import accounts
from automation.platforms import base as ev
from automation.platforms.base import InboundEvent
from models_db import WebhookEvent, db, utcnow
from utils import events
from utils.db import execute, retry_locked
from utils.idempotency import message_id_from_echo_tag, reply_keys
from utils.locks import named_lock
from utils.store import DuplicateMessage, NewMessage, get_store

log = logging.getLogger("dana.processor")


_E = WebhookEvent.__table__.c
_READ_EVENT = select(_E.status, _E.platform, _E.raw_body).where(_E.id == bindparam("event_id"))
_FINISH_EVENT = (update(WebhookEvent.__table__).where(_E.id == bindparam("event_id"))
                 .values(status=bindparam("status_"), error=bindparam("error_"),
                         processed_at=bindparam("at"),
                         claimed_until=None))  # the run's lease ends with it


def process_webhook_event(event_id: int, event=None,
                          items: list[InboundEvent] | None = None) -> str:
    """Parse and ingest one stored delivery; returns its final status. Never raises.

    `event`: its row (status, platform, raw_body) as the run's claim returned it; read here
    when not given. `items`: the delivery's items when the caller has already parsed its body
    (run_event with the intake's parsed delivery): not parsed again.
    """
    if event is None:
        event = execute(_READ_EVENT, {"event_id": event_id}).first()
    if event is None:
        log.warning("webhook event %s does not exist", event_id)
        return "missing"
    if event.status in ("processed", "ignored"):
        return event.status
    if event.status != "processing":  # not claimed by run_event (a direct call)
        def _mark() -> None:
            db.session.execute(update(WebhookEvent.__table__).where(_E.id == event_id)
                               .values(status="processing", attempts=_E.attempts + 1))
            db.session.commit()

        retry_locked(_mark)
    platform, raw_body = event.platform, event.raw_body
    db.session.rollback()  # end the read: the items' own transactions follow
    errors: list[str] = []
    handled = 0
    channel = policy().channels.get(platform)
    try:
        if channel is not None:  # not a platform's messages: the channel's own work
            handled = int(bool(channel.run(raw_body)))
            items = []
        elif items is None:
            items = connector_for(platform).parse(json.loads(raw_body))
        # Out-of-order redeliveries: handle a batch in the platform's timestamp order.
        items.sort(key=lambda item: item.timestamp)
        _NEWER_IN_BATCH.set(_followed_in_batch(items))
        for item in items:
            try:
                handled += bool(handle_item(item))
            except Exception as exc:  # one bad item must not drop the others
                db.session.rollback()
                log.exception("event %s: %s item failed", event_id, item.kind)
                errors.append(f"{item.kind} {item.message_id or ''}: {type(exc).__name__}: {exc}")
    except Exception as exc:
        db.session.rollback()
        log.exception("event %s failed", event_id)
        errors.append(f"{type(exc).__name__}: {exc}")
    status = "failed" if errors else ("processed" if handled else "ignored")
    error = "\n".join(errors)[:10000] if errors else None

    # The UPDATE joins the reads since the last commit (e.g. the integrations the team was
    # told through) instead of ending them with a rollback first: on SQLite those reads ran
    # outside any transaction and the UPDATE begins it IMMEDIATE (app.py); on PostgreSQL it
    # is one transaction instead of two, two round trips fewer. Every failure above was
    # rolled back where it was caught; retry_locked rolls back before running it again.
    def _record() -> None:
        execute(_FINISH_EVENT, {"event_id": event_id, "status_": status, "error_": error,
                                "at": utcnow()})
        db.session.commit()

    retry_locked(_record)
    return status


# Customer messages of the batch being handled that a later message of the same customer
# follows: they are stored, and answered together with the last one (a burst).
_NEWER_IN_BATCH: ContextVar[frozenset] = ContextVar("newer_in_batch", default=frozenset())
_CUSTOMER_KINDS = (ev.MESSAGE, ev.POSTBACK)
BURST_LIMIT = 20  # at most this many earlier unanswered messages join an answer


def _followed_in_batch(items: list[InboundEvent]) -> frozenset:
    """The message ids of the customer messages a later one of the same sender follows."""
    last: dict[tuple, str] = {}
    followed = set()
    for item in items:
        if item.kind not in _CUSTOMER_KINDS or not item.message_id:
            continue
        who = (item.platform, item.account_id, item.contact_id)
        if who in last:
            followed.add(last[who])
        last[who] = item.message_id
    return frozenset(followed)


def handle_item(item: InboundEvent) -> bool:
    """Ingest one normalized item; False when it is not for a connected account."""
    account = accounts.find_account(item.platform, item.account_id)
    if account is None:
        log.info("no connected %s account %s: item ignored", item.platform, item.account_id)
        return False
    if item.kind in (ev.MESSAGE, ev.POSTBACK):
        _ingest_customer_message(account, item)
    elif item.kind == ev.ECHO:
        _ingest_echo(account, item)
    elif item.kind in (ev.REACTION, ev.UNSEND, ev.EDIT):
        _annotate_message(account, item)
    elif item.kind in (ev.DELIVERY, ev.READ, ev.STATUS):
        _apply_status(account, item)
    else:
        return False
    return True


def _conversation_for(account: accounts.Account, item: InboundEvent) -> tuple[dict, bool, bool]:
    """Find or open the conversation with this contact on this account."""
    store = get_store()
    contact, new_contact = store.upsert_contact(account.user_id, item.platform, item.contact_id,
                                                item.profile)
    conv, created = store.open_conversation(account.user_id, item.platform, account.external_id,
                                            contact["id"], contact=contact)
    return conv, created, new_contact


def _ingest_customer_message(account: accounts.Account, item: InboundEvent) -> None:
    # Team notifications (Slack, e-mail) raised while handling the message are delivered when
    # this block ends: after the customer's reply, outside the conversation's lock.
    with policy().deferred_notifications():
        _ingest_customer_message_locked(account, item)


def _ingest_customer_message_locked(account: accounts.Account, item: InboundEvent) -> None:
    owner = account.user_id
    store = get_store()
    if not item.contact_id:
        raise ValueError("customer message without a sender id")
    # One conversation per (account, contact): its messages are handled one at a time. The
    # contact, the conversation and the message are stored in one transaction (store.unit).
    with named_lock(f"conversation:{item.platform}:{account.external_id}:{item.contact_id}"):
        metadata = {k: v for k, v in {
            "message_type": item.message_type, "payload": item.payload, "title": item.title,
            "kind": item.kind, **item.metadata}.items() if v not in (None, "", [], {})}
        duplicate = False
        with store.unit():
            conv, opened, new_contact = _conversation_for(account, item)
            try:  # the conversation as the message left it comes back with it
                message, conv = store.add_message_in(owner, NewMessage(
                    conversation_id=conv["id"], direction="inbound", sender_type="contact",
                    text=item.text if item.text is not None else item.title,
                    attachments=item.attachments, platform=item.platform,
                    platform_message_id=item.message_id, status="received",
                    reply_to=item.reply_to, created_at=item.timestamp, metadata=metadata), conv)
            except DuplicateMessage as dup:
                message, duplicate = dup.existing, True
        if duplicate:
            if message.get("metadata", {}).get("automation"):
                return  # a redelivery of a message already handled: nothing to do
            conv = store.get_conversation(owner, conv["id"])
        else:
            events.new_message(owner, conv["id"], message)
            _tell_the_team(owner, conv, message, opened)
        if conv["status"] in ("resolved", "snoozed"):
            conv = store.update_conversation(owner, conv["id"], {"status": "open",
                                                                 "snoozed_until": None})
            events.conversation_updated(owner, conv)
        _run_automation(owner, conv, message, item, opened=opened, new_contact=new_contact,
                        fresh=not duplicate)


def _tell_the_team(owner: str, conv: dict, message: dict, opened: bool) -> None:
    """A new conversation (its first customer message) or a later customer message: for the
    team's integrations (a Slack thread per conversation follows the customer's messages).
    """
    contact = conv.get("contact") or {}
    who = contact.get("name") or contact.get("platform_user_id") or "A customer"
    text = message.get("text") or "(attachment)"
    platform = conv["platform"].capitalize()
    policy().notify_team(Notification(
        owner_id=owner, kind="new_conversation" if opened else "customer_message",
        title=f"New conversation with {who} on {platform}" if opened else f"{who} on {platform}",
        text=text, conversation=conv, message=message,
        link=conversation_link(conv["id"])))


def _run_automation(owner: str, conv: dict, message: dict, item: InboundEvent, *,
                    opened: bool, new_contact: bool, fresh: bool = False) -> None:
    """Hand the message to the workflow engine once, and record that it was handled.

    A burst (customer messages in a row that no reply followed yet) is answered once: the
    older messages are `superseded` (stored, not answered on their own) and the newest is
    answered with the texts of all of them; the answer's metadata lists the messages it
    answers (`answers`), and each of them the replies that answered it (`answered_by`).
    """
    started = time.monotonic()
    store = get_store()
    newer = (conv["last_inbound_at"]
             and datetime.fromisoformat(conv["last_inbound_at"]) > item.timestamp)
    if newer or item.message_id in _NEWER_IN_BATCH.get():
        outcome = "superseded"  # a newer customer message exists: answered with that one
        burst = [message]
    else:
        # A conversation this message opened holds nothing else: no read needed.
        burst = [message] if opened else _burst(owner, conv["id"], message)
        asked = message
        if len(burst) > 1:
            asked = {**message, "text": "\n".join(m["text"] for m in burst if m.get("text"))}
        with workflow_engine.runs_join_next_write():  # the mark below commits them
            outcome = workflow_engine.handle_inbound(owner, conv, asked, item, opened=opened,
                                                     new_contact=new_contact, fresh=fresh)
    ms = round((time.monotonic() - started) * 1000)
    store.set_message_meta(owner, message["id"], "automation", {"outcome": outcome, "ms": ms})
    if outcome != "superseded" and len(burst) > 1:
        _link_answers(owner, message, burst)


def _burst(owner: str, conversation_id: str, message: dict) -> list[dict]:
    """The customer messages in a row ending with `message` that no reply follows and none
    of which was answered yet (oldest first); just [message] when it stands alone.
    """
    page = get_store().list_messages(owner, conversation_id, BURST_LIMIT + 1, None)
    burst: list[dict] = []
    for m in reversed(page.items):  # newest first
        if m["id"] == message["id"]:
            continue
        if m["is_note"]:
            continue
        if m["direction"] != "inbound":
            break
        outcome = ((m.get("metadata") or {}).get("automation") or {}).get("outcome")
        if outcome not in ("superseded", None) or (m.get("metadata") or {}).get("answered_by"):
            break
        if m["created_at"] > message["created_at"]:
            continue  # newer than this one: it will be answered on its own
        burst.append(m)
    return list(reversed(burst)) + [message]


def _link_answers(owner: str, message: dict, burst: list[dict]) -> None:
    """Record which replies answered which customer messages (shown in the inbox)."""
    store = get_store()
    replies, misses = [], 0
    for key in reply_keys(message["id"]):
        reply = store.find_message_by_key(owner, key)
        if reply is None:
            misses += 1
            if misses > 1:
                break
            continue
        replies.append(reply)
    if not replies:
        return
    answered = [m["id"] for m in burst]
    for reply in replies:
        updated = store.update_message(owner, reply["id"], metadata={"answers": answered})
        events.message_status(owner, updated)
    for m in burst:
        updated = store.update_message(owner, m["id"],
                                       metadata={"answered_by": [r["id"] for r in replies]})
        events.message_status(owner, updated)


def _ingest_echo(account: accounts.Account, item: InboundEvent) -> None:
    """A message the business sent: ours (recognized by metadata) or from the native inbox."""
    owner = account.user_id
    store = get_store()
    own_id = message_id_from_echo_tag(str(item.metadata.get("metadata") or ""))
    if own_id:
        own = store.get_message(owner, own_id)
        if own is not None:
            if item.message_id and not own["platform_message_id"]:
                store.update_message_status(owner, own["id"], "sent",
                                            platform_message_id=item.message_id)
            return
    if item.message_id and store.find_message(owner, item.platform, item.message_id):
        return  # our own send, already stored with its id
    if not item.contact_id:
        return
    conv, _, _ = _conversation_for(account, item)
    try:
        message = store.add_message(owner, NewMessage(
            conversation_id=conv["id"], direction="outbound", sender_type="agent", text=item.text,
            attachments=item.attachments, platform=item.platform,
            platform_message_id=item.message_id, status="sent", created_at=item.timestamp,
            metadata={"source": "native_app", "app_id": item.metadata.get("app_id")}))
    except DuplicateMessage:
        return
    events.new_message(owner, conv["id"], message)


def _annotate_message(account: accounts.Account, item: InboundEvent) -> None:
    """Reactions, unsends and edits change an existing message; unknown targets are ignored."""
    owner = account.user_id
    store = get_store()
    target_id = (item.target_ids or [item.message_id])[0]
    if not target_id:
        return
    target = store.find_message(owner, item.platform, target_id)
    if target is None:
        return
    if item.kind == ev.REACTION:
        reactions = dict(target["metadata"].get("reactions") or {})
        emoji = (item.reaction or {}).get("emoji")
        if (item.reaction or {}).get("action") == "unreact" or not emoji:
            reactions.pop("contact", None)
        else:
            reactions["contact"] = emoji
        updated = store.update_message(owner, target["id"], metadata={"reactions": reactions})
    elif item.kind == ev.UNSEND:
        updated = store.update_message(owner, target["id"], text="",
                                       metadata={"unsent": True, "attachments_removed": True})
    else:  # EDIT
        edits = int(target["metadata"].get("edits") or 0) + 1
        updated = store.update_message(owner, target["id"], text=item.text or "",
                                       metadata={"edits": edits})
    events.message_status(owner, updated)


def _apply_status(account: accounts.Account, item: InboundEvent) -> None:
    """Delivery/read watermarks and WhatsApp statuses; a status never moves backwards."""
    owner = account.user_id
    store = get_store()
    status = {ev.DELIVERY: "delivered", ev.READ: "read"}.get(item.kind, item.status)
    if status not in ("sent", "delivered", "read", "failed"):
        return
    touched = []
    for target_id in item.target_ids:
        message = store.find_message(owner, item.platform, target_id)
        if message is None:
            continue  # sent by another app or before we connected: nothing to update
        error = None
        if status == "failed":
            error = _status_error_code(item.platform, item.error)
        updated = store.update_message_status(owner, message["id"], status, error=error)
        if status == "failed" and item.error and updated["status"] == "failed":
            store.update_message(owner, message["id"], metadata={"error_detail": item.error})
        touched.append(updated)
        if item.kind == ev.READ and item.watermark is None:
            until = datetime.fromisoformat(message["created_at"])
            store.mark_outbound_up_to(owner, message["conversation_id"], "read", until)
    if item.watermark is not None and item.contact_id:
        conv = store.find_conversation(owner, item.platform, account.external_id, item.contact_id)
        if conv is not None:
            store.mark_outbound_up_to(owner, conv["id"], status, item.watermark)
            events.status_watermark(owner, conv["id"], status, item.watermark)
    for message in touched:
        events.message_status(owner, message)
        if message["status"] == "failed" and status == "failed":
            workflow_engine.handle_message_failed(owner, message)


def _status_error_code(platform: str, error: dict | None) -> str:
    """Map a failed status's Graph error to our error vocabulary, as the connector does for
    sends.
    """
    if not error:
        return "platform_error"
    return connector_for(platform).classify_error(400, {"error": error}).code
