"""Where stored webhook events get processed: a dispatcher thread (inline) or a worker (rq).

The event row is the outbox (automation/core/event_runner.py claims, leases and records).
Handing an event on is only a wake-up: if it is lost (the process dies right after the
commit, Redis hiccups), the event is still `received` and a sweep runs it once it is
EVENT_STALE_SECONDS old. Every process that runs events sweeps at start-up and every
EVENT_SWEEP_SECONDS, so whatever was committed and not finished is picked up.

inline: one dispatcher per process, woken by each new delivery, runs the events on a few
threads (RUNNERS: a run mostly waits for the database, the AI or the Send API, so one thread
alone would leave the CPU idle); the request that stored the event has long been answered,
and the serving threads never wait for the AI or the Send API. Several web processes
(gunicorn) share the work safely: a claim is atomic.
rq: the event id is pushed on a Redis list and `flask worker` processes run it
(services/rq_queue.py).
"""
from __future__ import annotations

import logging
import queue
import threading
import time

from flask import Flask, current_app
from sqlalchemy import bindparam, exists, update

from automation.ai.response_generator import warm_up
from automation.connectors import connector_for
from automation.core.event_runner import due_events, run_event, runner_name
from automation.platforms import accounts
from models_db import WebhookEvent, utcnow
from services.rq_queue import enqueue_event
from utils.config import current_settings
from utils.db import SoloStatement, retry_locked

log = logging.getLogger("dana.queue")
_KEY = "dana_dispatcher"
RUNNERS = 4  # threads running events in each process (one of them also sweeps)
_guard = threading.Lock()
_T = WebhookEvent.__table__.c

# An event nobody has touched yet is finished as `ignored` when no connected account has the
# (platform, external id) its items are for: one statement, the routing lookup (an index
# probe of platform_accounts' unique key) inside the compare-and-set of the status.
_IGNORE_UNROUTED = SoloStatement(
    update(WebhookEvent.__table__)
    .where(_T.id == bindparam("event_id"), _T.status == "received",
           _T.claimed_until.is_(None), _T.next_attempt_at.is_(None),
           ~exists().where(*accounts.routing_criteria(bindparam("platform"),
                                                      bindparam("account"))))
    .values(status="ignored", attempts=_T.attempts + 1, error=None,
            claimed_by=bindparam("runner"),
            processed_at=bindparam("now", type_=_T.processed_at.type)),
    ["event_id", "platform", "account", "runner", "now"])


def dispatch(event_id: int, channel: str | None = None, payload: dict | None = None) -> None:
    """Hand a stored event on to whatever runs events in this deployment (never raises).

    The intake passes the delivery it has just parsed (`channel`, `payload`): the inline
    dispatcher routes it without reading the row back (see run_handed_on).
    """
    app = current_app._get_current_object()
    if current_settings(app).AUTOMATION_QUEUE == "rq":
        enqueue_event(event_id)
        return
    start(app).submit(event_id, (channel, payload) if payload is not None else None)


def run_handed_on(event_id: int, delivery: tuple[str, dict] | None = None) -> str:
    """Run a stored event handed on by the intake; its status afterwards.

    A delivery whose items are all for one account that is not connected (a Page that left
    Dana, traffic for another app) ends `ignored` at the cost of one statement
    (ignore_unrouted); every other event, and one a sweep or a replay already took, goes
    through run_event (claim, process, record), which would end it the same way.
    """
    if delivery is not None and ignore_unrouted(event_id, *delivery):
        return "ignored"
    return run_event(event_id)


def ignore_unrouted(event_id: int, channel: str, payload: dict) -> bool:
    """True when the event was still untouched and its delivery routes to no account: then it
    is now `ignored`, as process_webhook_event would have recorded it. False, with nothing
    changed, in every other case (a connected account, several accounts, no items, an
    event already taken).
    """
    try:
        items = connector_for(channel).parse(payload)
    except Exception:  # noqa: BLE001 - the full run parses it again and records the error
        return False
    routes = {(item.platform, item.account_id) for item in items}
    if len(routes) != 1:
        return False
    [(platform, account)] = routes
    if not account:
        return False
    ignored, _ = retry_locked(lambda: _IGNORE_UNROUTED.run(
        event_id=event_id, platform=platform, account=account, runner=runner_name(),
        now=utcnow()))
    if ignored != 1:
        return False
    for item in items:
        log.info("no connected %s account %s: item ignored", item.platform, item.account_id)
    return True


def start(app: Flask) -> "Dispatcher":
    """This process's dispatcher for the app, started (with its start-up sweep) if needed."""
    with _guard:
        dispatcher = app.extensions.get(_KEY)
        if dispatcher is None or not dispatcher.alive():
            dispatcher = app.extensions[_KEY] = Dispatcher(app)
            dispatcher.start()
        return dispatcher


def drain(app: Flask, timeout: float = 60.0) -> None:
    """Wait until this process's dispatcher has run every event handed to it so far.

    For callers that need the outcome now: the tests' client, a command that stores and then
    reports. Raises TimeoutError when the events are still running after `timeout` seconds.
    """
    dispatcher = app.extensions.get(_KEY)
    if dispatcher is not None:
        dispatcher.drain(timeout)


def stop(app: Flask) -> None:
    """Stop this process's dispatcher for the app (after the event it is running)."""
    dispatcher = app.extensions.pop(_KEY, None)
    if dispatcher is not None:
        dispatcher.close()


def sweep(run=run_event) -> int:
    """Run every event that is due (interrupted, never handed on, due for a retry): how many.

    Inside an app context; any process that runs events calls it now and then.
    """
    ran = 0
    for event_id in due_events():
        try:
            run(event_id)
        except Exception:  # recorded on the event where possible; the next sweep retries
            log.exception("sweep: event %s crashed", event_id)
        ran += 1
    return ran


class Dispatcher:
    """One per process: runs the events handed to it on RUNNERS threads; one of them sweeps
    at start and every EVENT_SWEEP_SECONDS.
    """

    def __init__(self, app: Flask):
        """A dispatcher for `app` (not started)."""
        self.app = app
        self.every = current_settings(app).EVENT_SWEEP_SECONDS
        self.ids: queue.Queue[tuple[int, tuple | None] | None] = queue.Queue()
        self.threads = [threading.Thread(target=self._loop, args=(n == 0,), daemon=True,
                                         name=f"dana-dispatcher-{n}") for n in range(RUNNERS)]
        self.stopping = False

    def start(self) -> None:
        """Start the threads; the sweeper's first act is a sweep (what a previous process
        left unfinished).
        """
        for thread in self.threads:
            thread.start()

    def alive(self) -> bool:
        """True while the threads run."""
        return self.threads[0].is_alive() and not self.stopping

    def submit(self, event_id: int, delivery: tuple[str, dict] | None = None) -> None:
        """Wake a thread for this event (with its parsed delivery, when the intake has it)."""
        self.ids.put((event_id, delivery))

    def drain(self, timeout: float) -> None:
        """Block until every event submitted so far has been run."""
        deadline = time.monotonic() + timeout
        with self.ids.all_tasks_done:
            while self.ids.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the dispatcher did not finish its events in time")
                self.ids.all_tasks_done.wait(left)

    def close(self) -> None:
        """Stop after the current events."""
        self.stopping = True
        for _ in self.threads:
            self.ids.put(None)
        for thread in self.threads:
            thread.join(timeout=30)

    def _loop(self, sweeper: bool) -> None:
        if sweeper:  # what the offline AI reads from disk, before the first event needs it
            self._guarded(warm_up)
        next_sweep = 0.0 if sweeper else float("inf")
        while not self.stopping:
            if time.monotonic() >= next_sweep:
                self._guarded(sweep)
                next_sweep = time.monotonic() + self.every
            try:
                handed = self.ids.get(timeout=min(5.0, max(0.0, next_sweep - time.monotonic())))
            except queue.Empty:
                continue
            try:
                if handed is not None:
                    self._guarded(lambda one=handed: run_handed_on(*one))
            finally:
                self.ids.task_done()

    def _guarded(self, work) -> None:
        """Run `work` in a fresh app context; a crash is logged, the thread goes on."""
        try:
            with self.app.app_context():
                work()
        except Exception:
            log.exception("the dispatcher's work crashed; it goes on")
