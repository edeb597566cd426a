"""Where stored webhook events get processed: after the response (inline) or on RQ.

What a run does (settle an interrupted run, then process) is automation/core/event_runner.py.

inline: the event runs in this process right after the 200 has been sent (Werkzeug's
call_on_close), so a delivery's own answer never waits for the AI or the Send API and nothing
else has to run. The serving thread is busy until the automation finishes, though, so under
load later deliveries queue behind it: production should use rq.
rq: the event id is enqueued on Redis and `flask worker` processes it.
"""
from __future__ import annotations

import logging

from flask import after_this_request, current_app, has_request_context

from automation.core.event_runner import run_event
from services.rq_queue import enqueue_event
from utils.config import current_settings

log = logging.getLogger("dana.queue")


def dispatch(event_id: int) -> None:
    """Hand a stored event to the configured queue."""
    if current_settings().AUTOMATION_QUEUE == "rq":
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
