"""Where stored webhook events get processed: after the response (inline) or on RQ.

inline: the event runs in this process right after the 200 has been sent (Werkzeug's
call_on_close), so a delivery's own answer never waits for the AI or the Send API and nothing
else has to run. The serving thread is busy until the automation finishes, though, so under
load later deliveries queue behind it: production should use rq.
rq: the event id is enqueued on Redis and `flask worker` processes it.

An event is `processing` only while a run is in progress: a run that ends records its final
status. So a run that finds its event still `processing` knows the previous run was killed
mid-way (a worker SIGKILLed, a web process restarted during inline processing) and first
settles the automated replies that run left unfinished (see settle_interrupted_sends).
"""
from __future__ import annotations

import json
import logging

from flask import after_this_request, current_app, has_request_context

log = logging.getLogger("dana.queue")

UNKNOWN_OUTCOME = "unknown_outcome"


def run_event(event_id: int) -> str:
    """Process one event inside an app context (inline path, RQ job, CLI); its final status."""
    from automation.core.message_processor import process_webhook_event
    from models_db import WebhookEvent, db

    event = db.session.get(WebhookEvent, event_id)
    if event is not None and event.status == "processing":
        settle_interrupted_sends(event)
    return process_webhook_event(event_id)


def _reply_keys(inbound_id: str):
    """Idempotency keys of the automated sends answering one inbound message, in send order.

    They mirror automation.core.actions.RunContext.reply_key ("auto:<id>", "auto:<id>:<n>")
    and services.handoff.hand_off ("handoff:<id>").
    """
    yield f"handoff:{inbound_id}"
    yield f"auto:{inbound_id}"
    n = 2
    while True:
        yield f"auto:{inbound_id}:{n}"
        n += 1


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
    from services import platforms as platforms_service
    from services.messaging import connector_for
    from utils.realtime import publish
    from utils.store import get_store

    store = get_store()
    try:
        items = connector_for(event.platform).parse(json.loads(event.raw_body))
    except Exception:  # unparsable: the run itself will record why; nothing was sent
        return 0
    settled = 0
    for item in items:
        if not item.message_id:
            continue
        account = platforms_service.find_account(item.platform, item.account_id)
        if account is None:
            continue
        owner = account.user_id
        inbound = store.find_message(owner, item.platform, item.message_id)
        if inbound is None or inbound["direction"] != "inbound":
            continue
        misses = 0
        for key in _reply_keys(inbound["id"]):
            message = store.find_message_by_key(owner, key)
            if message is None:
                if key.startswith("auto:"):
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
            publish(owner, "message_status", {
                "conversation_id": updated["conversation_id"], "message_id": updated["id"],
                "status": updated["status"], "error": updated["error"],
                "platform_message_id": updated["platform_message_id"]})
            log.warning("event %s: reply %s was interrupted mid-send; marked %s",
                        event.id, message["id"], UNKNOWN_OUTCOME)
            settled += 1
    return settled


def abandon_event(event_id: int, reason: str) -> None:
    """Give up on an interrupted event that will not be re-run by its queue (no retry left):
    settle its unfinished sends and record it as failed, so `flask events retry` lists it."""
    from models_db import WebhookEvent, db, utcnow

    event = db.session.get(WebhookEvent, event_id)
    if event is None or event.status in ("processed", "ignored", "failed"):
        return
    if event.status == "processing":
        settle_interrupted_sends(event)
    event.status, event.error, event.processed_at = "failed", reason, utcnow()
    db.session.commit()


def dispatch(event_id: int) -> None:
    """Hand a stored event to the configured queue."""
    settings = current_app.config["DANA_SETTINGS"]
    if settings.AUTOMATION_QUEUE == "rq":
        from services.rq_queue import enqueue_event
        enqueue_event(event_id)
        return
    if not has_request_context():
        run_event(event_id)
        return
    app = current_app._get_current_object()

    @after_this_request
    def _process_after_response(response):
        def _run():
            with app.app_context():
                try:
                    run_event(event_id)
                except Exception:  # process_webhook_event records its own failures
                    log.exception("inline processing of event %s crashed", event_id)
        response.call_on_close(_run)
        return response
