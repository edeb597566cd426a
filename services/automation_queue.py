"""Where stored webhook events get processed: after the response (inline) or on RQ.

inline: the event runs in this process right after the 200 has been sent (Werkzeug's
call_on_close), so Meta never waits for the AI or the Send API and nothing else has to run.
rq: the event id is enqueued on Redis and `flask worker` processes it.
"""
from __future__ import annotations

import logging

from flask import after_this_request, current_app, has_request_context

log = logging.getLogger("dana.queue")


def run_event(event_id: int) -> str:
    """Process one event inside an app context (used by the inline path and the CLI)."""
    from automation.core.message_processor import process_webhook_event
    return process_webhook_event(event_id)


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
