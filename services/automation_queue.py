"""Where stored webhook events get processed: a dispatcher thread (inline) or a worker (rq).

The event row is the outbox (automation/core/event_runner.py claims, leases and records).
Handing an event on is only a wake-up: if it is lost (the process dies right after the
commit, Redis hiccups), the event is still `received` and a sweep runs it once it is
EVENT_STALE_SECONDS old (or, when its inline INSERT claimed it, `processing` with a
lease that runs out as long after). Every process that runs events sweeps at start-up and every
EVENT_SWEEP_SECONDS, so whatever was committed and not finished is picked up.

inline: the intake takes a delivery's first step before storing it (first_step: parse, the
routing read), so that its INSERT is its claim for this process's run, or its end when no
connected account has its route (`ignored`); one dispatcher per process (see Dispatcher: one
wake-up serves all that arrive within a few milliseconds), runs the events on a few
threads (RUNNERS: a run mostly waits for the database, the AI or the Send API, so one thread
alone would leave the CPU idle); the request that stored the event has long been answered,
and the serving threads never wait for the AI or the Send API. Several web processes
(gunicorn) share the work safely: a claim is atomic.
rq: the event id is pushed on a Redis list and `flask worker` processes run it
(services/rq_queue.py).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque

from flask import Flask, current_app

from automation.ai.response_generator import warm_up
from automation.core.event_runner import (
    Handed,
    NewEvent,
    due_events,
    keep_claim,
    new_event,
    release_claim,
    run_event,
)
from models_db import db
from services.rq_queue import GATHER_SECONDS, enqueue_event
from utils.config import current_settings

log = logging.getLogger("dana.queue")
_KEY = "dana_dispatcher"
RUNNERS = 4  # threads running events in each process (one of them also sweeps)
_guard = threading.Lock()


def first_step(channel: str, payload: dict, raw_body: str) -> NewEvent | None:
    """Before the intake stores a delivery: inline, its run's first step
    (event_runner.new_event: parse, the routing read), whose columns the event's INSERT
    sets; rq: None (it is stored `received`, a worker claims it). Never raises: a crash is
    logged and the delivery stored `received`, for the dispatcher's run to take from there.
    """
    if current_settings().AUTOMATION_QUEUE == "rq":
        return None
    try:
        return new_event(channel, payload, raw_body)
    except Exception:  # a bug: storing the delivery comes first, its run records the rest
        log.exception("the first step of a %s delivery crashed", channel)
        return NewEvent({}, Handed(None))


def dispatch(event_id: int, new: NewEvent | None = None) -> None:
    """Hand a stored event on to whatever runs events in this deployment (never raises).

    rq: its id joins this process's next LPUSH. Inline: the dispatcher runs it, from its
    first step (`new`, first_step's) when the intake took one; nothing is left to run when
    that step finished it (no connected account: `ignored`). Either way only a wake-up: a
    lost one is made up for by the sweep, since the event is stored.
    """
    app = current_app._get_current_object()
    if current_settings(app).AUTOMATION_QUEUE == "rq":
        enqueue_event(event_id)
        return
    if new is not None and new.handed is None:
        log.info("no connected %s account %s: event %s ignored", *new.route, event_id)
        return
    start(app).submit(event_id, new.handed if new is not None else None)


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

    A hand-off wakes a thread only when none is already on its way to the waiting events;
    the woken thread lets GATHER_SECONDS pass, then runs every event waiting, one after the
    other in one app context. So under load one wake-up serves many deliveries (a wake-up per
    delivery, and the threads' turns at the interpreter that come with it, cost more CPU than
    an unrouted event's run), while a long run (the AI, the Send API) still leaves the next
    events to the other threads: a hand-off during a run wakes another one.
    """

    GATHER_SECONDS = GATHER_SECONDS

    def __init__(self, app: Flask):
        """A dispatcher for `app` (not started)."""
        self.app = app
        self.every = current_settings(app).EVENT_SWEEP_SECONDS
        self.waiting: deque[tuple[int, Handed | None]] = deque()
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)  # an event is waiting, or stop
        self.idle = threading.Condition(self.lock)    # every event handed on has run
        self.unfinished = 0
        self.called = False  # a thread was woken and has not taken an event yet
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

    def submit(self, event_id: int, handed: Handed | None = None) -> None:
        """Queue this event (with what its first step did of its run, if it was taken, for
        run_event); wake a thread unless one is already on its way. An event its INSERT
        claimed for this process keeps its lease while it waits (a burst can queue more than
        a lease's worth of runs), so no other process's sweep runs it meanwhile.
        """
        keep_claim(self.app, event_id, handed)
        with self.lock:
            self.waiting.append((event_id, handed))
            self.unfinished += 1
            if not self.called:
                self.called = True
                self.wake.notify()

    def drain(self, timeout: float) -> None:
        """Block until every event submitted so far has been run."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.unfinished:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the dispatcher did not finish its events in time")
                self.idle.wait(left)

    def close(self) -> None:
        """Stop after the current events."""
        with self.lock:
            self.stopping = True
            self.wake.notify_all()
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
            with self.lock:
                if not self.waiting:
                    self.wake.wait(min(5.0, max(0.0, next_sweep - time.monotonic())))
                if not self.waiting or self.stopping:
                    continue
            time.sleep(self.GATHER_SECONDS)
            self._guarded(self._run_waiting)

    def _take(self) -> tuple[int, Handed | None] | None:
        with self.lock:
            self.called = False  # the events handed on from now wake another thread
            return self.waiting.popleft() if self.waiting and not self.stopping else None

    def _done(self) -> None:
        with self.lock:
            self.unfinished -= 1
            if not self.unfinished:
                self.idle.notify_all()

    def _run_waiting(self) -> None:
        """Run the waiting events one by one (in the caller's app context) until none is left;
        one that crashes is logged (its row records what it could) and the next one runs.
        """
        while (taken := self._take()) is not None:
            event_id, handed = taken
            try:
                run_event(event_id, handed=handed)
            except Exception:
                db.session.rollback()
                log.exception("event %s crashed in the dispatcher; the sweep retries it",
                              event_id)
            finally:
                release_claim(event_id, handed)
                self._done()

    def _guarded(self, work) -> None:
        """Run `work` in a fresh app context; a crash is logged, the thread goes on."""
        try:
            with self.app.app_context():
                work()
        except Exception:
            log.exception("the dispatcher's work crashed; it goes on")
