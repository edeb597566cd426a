"""Running a stored webhook event, safely after an interrupted run.

run_event(id) is what every queue calls (inline after the response, the RQ job, the CLI's and
the admin page's replay): it settles what an interrupted previous run left unfinished, then
processes the event (automation/core/message_processor.py). Which queue runs it is
services/automation_queue.py (inline) and services/rq_queue.py (RQ).

An event is `processing` only while a run is in progress: a run that ends records its final
status. So a run that finds its event still `processing` knows the previous run was killed
mid-way (a worker SIGKILLed, a web process restarted during inline processing) and first
settles the automated replies that run left unfinished (see settle_interrupted_sends).
"""
from __future__ import annotations

import json
import logging

from automation.connectors import connector_for
from automation.core.message_processor import process_webhook_event
from automation.platforms import accounts
from models_db import WebhookEvent, db, utcnow
from utils import events
from utils.idempotency import AUTO, reply_keys
from utils.store import get_store

log = logging.getLogger("dana.queue")

UNKNOWN_OUTCOME = "unknown_outcome"


def run_event(event_id: int) -> str:
    """Process one event inside an app context (inline path, RQ job, CLI); its final status."""
    event = db.session.get(WebhookEvent, event_id)
    if event is not None and event.status == "processing":
        settle_interrupted_sends(event)
    return process_webhook_event(event_id)


def settle_interrupted_sends(event) -> int:
    """Mark the replies an interrupted run left `queued` as failed with `unknown_outcome`.

    Such a message was stored, then its process died during the Send API call (or just
    before or after it). Graph may have delivered it or not, and there is no way to ask. A
    retried send reuses the stored message (idempotency key) and would send it again, so
    the customer could get the same reply twice. Dana chooses at most once: the message is
    failed with `unknown_outcome` (shown in the inbox, announced with `message_status`) and
    the re-run will not send it again; a person can check the conversation and resend.
    Returns how many messages were settled.
    """
    store = get_store()
    try:
        items = connector_for(event.platform).parse(json.loads(event.raw_body))
    except Exception:  # unparsable: the run itself will record why; nothing was sent
        return 0
    settled = 0
    for item in items:
        if not item.message_id:
            continue
        account = accounts.find_account(item.platform, item.account_id)
        if account is None:
            continue
        owner = account.user_id
        inbound = store.find_message(owner, item.platform, item.message_id)
        if inbound is None or inbound["direction"] != "inbound":
            continue
        misses = 0
        for key in reply_keys(inbound["id"]):
            message = store.find_message_by_key(owner, key)
            if message is None:
                if key.startswith(AUTO + ":"):
                    misses += 1
                    if misses > 1:  # "auto:<id>" and "auto:<id>:2" are taken in order
                        break
                continue
            if message["status"] != "queued":
                continue
            updated = store.update_message_status(owner, message["id"], "failed",
                                                  error=UNKNOWN_OUTCOME)
            store.update_message(owner, message["id"], metadata={"error_detail": (
                "The process sending this message stopped during the send: it may or may not "
                "have reached the customer. It is not sent again automatically; check the "
                "conversation and resend it if needed.")})
            events.message_status(owner, updated)
            log.warning("event %s: reply %s was interrupted mid-send; marked %s",
                        event.id, message["id"], UNKNOWN_OUTCOME)
            settled += 1
    return settled


def abandon_event(event_id: int, reason: str) -> None:
    """Give up on an interrupted event that will not be re-run by its queue (no retry left):
    settle its unfinished sends and record it as failed, so `flask events retry` lists it.
    """
    event = db.session.get(WebhookEvent, event_id)
    if event is None or event.status in ("processed", "ignored", "failed"):
        return
    if event.status == "processing":
        settle_interrupted_sends(event)
    event.status, event.error, event.processed_at = "failed", reason, utcnow()
    db.session.commit()
