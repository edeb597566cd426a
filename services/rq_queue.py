"""RQ: webhook events processed by `flask worker` processes (AUTOMATION_QUEUE=rq).

A job that raises is retried with backoff; one that keeps failing ends in RQ's failed job
registry and stays `failed` in webhook_events, where `flask events retry` can replay it.
"""
from __future__ import annotations

import logging

from flask import current_app
from rq import Queue, Retry

log = logging.getLogger("dana.rq")
QUEUE_NAME = "dana-automation"
RETRY_INTERVALS = [2, 10, 60]


def queue() -> Queue:
    return Queue(QUEUE_NAME, connection=current_app.extensions["dana_redis"])


def enqueue_event(event_id: int) -> None:
    """Put a stored event on the automation queue."""
    queue().enqueue(process_event_job, event_id, retry=Retry(max=len(RETRY_INTERVALS),
                                                             interval=RETRY_INTERVALS),
                    job_timeout=300, result_ttl=3600, failure_ttl=7 * 24 * 3600,
                    description=f"webhook event {event_id}")


class EventProcessingFailed(RuntimeError):
    """Raised from a job so that RQ retries it and finally records it as failed."""


def process_event_job(event_id: int) -> str:
    """The RQ job: runs inside the worker's app context (see cli.worker)."""
    from services.automation_queue import run_event

    status = run_event(event_id)
    if status == "failed":
        raise EventProcessingFailed(f"webhook event {event_id} failed; see webhook_events.error")
    return status
