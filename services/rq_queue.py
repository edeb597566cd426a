"""AUTOMATION_QUEUE=rq: webhook events run by `flask worker` processes, handed on via Redis.

(The setting keeps its name; RQ jobs are no longer used: a job per event cost the web process
a job object and a MULTI of about six commands per delivery.) The web process stores the event
(the row is the outbox), answers, and pushes its id on a Redis list: a hand-off thread per
process LPUSHes every id gathered over a few milliseconds in one command, off the request's
path (HandOff). A worker BRPOPs ids and runs each (automation/core/event_runner.run_event
claims the row atomically first, so an id popped twice, or also found by a sweep, still runs
once). Failure modes:

- The hand-off is lost (Redis down for a moment, the web process killed after the commit or
  before its hand-off thread pushed the id):
  the event stays `received` and a worker's sweep runs it once EVENT_STALE_SECONDS old.
- The event fails (process_webhook_event recorded an error): it is `failed` with a
  next_attempt_at after RQ_RETRY_INTERVALS; the sweep runs it again then. With no retry left
  it stays `failed`; `flask events retry --id N` or the admin page replays it.
- The worker is stopped (SIGTERM/SIGINT): it finishes the current event, then exits.
- The worker dies (SIGKILL, OOM, lost host): while it runs an event it renews the event's
  lease (and its Redis locks, utils.locks) every RQ_HEARTBEAT_SECONDS (at most a third of
  EVENT_STALE_SECONDS). When the beats stop, the lease runs out within EVENT_STALE_SECONDS
  and the next sweep of any worker (every EVENT_SWEEP_SECONDS) claims the event again: the
  re-run settles the sends the dead worker left unfinished before processing it again.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

import redis
from flask import Flask, current_app
from redis.exceptions import LockError
from redis.lock import Lock

from automation.ai.response_generator import warm_up
from automation.core.event_runner import due_events, run_event
from utils.config import app_resource, current_settings

log = logging.getLogger("dana.rq")
QUEUE_NAME = "dana-automation"
READY_KEY = f"dana:{QUEUE_NAME}:ready"   # the Redis list of event ids handed on
WORKERS_KEY = f"dana:{QUEUE_NAME}:workers"  # the running workers: name -> last sign of life


LIVE_WITHIN_SECONDS = 60  # a worker silent for longer is not counted as running


def live_workers(client: redis.Redis) -> int:
    """How many workers gave a sign of life lately (the operations page shows it)."""
    since = time.time() - LIVE_WITHIN_SECONDS
    return sum(1 for seen in client.hvals(WORKERS_KEY) if float(seen) >= since)


def enqueue_event(event_id: int) -> None:
    """Hand a stored event to the workers: its id joins this process's next LPUSH (HandOff).
    Never raises and never waits for Redis: a lost hand-off is found by the sweep, since the
    event is stored.
    """
    app_resource("dana_handoff",
                 lambda: HandOff(current_app.extensions["dana_redis"])).push(event_id)


# How long a woken hand-off waits to gather the deliveries arriving just behind the first
# (here and in the inline dispatcher, services/automation_queue.py): a few milliseconds of
# delay for an event, against a wake-up per delivery.
GATHER_SECONDS = 0.005


class HandOff:
    """Pushes the ids of stored events on READY_KEY from one thread of this process.

    push() only appends the id, and wakes the thread when it is the first one waiting. The
    thread, once woken, lets GATHER_SECONDS pass, then LPUSHes every id waiting at that moment
    in one command: under load one wake-up and one round trip to Redis carry many deliveries
    (a wake-up and a command per delivery cost the web process more CPU than its INSERT), a
    request never waits for Redis (its 200 needs the stored row only), and a worker sees an
    event at most a few milliseconds later. A failed LPUSH is logged and its ids left to the
    sweep. The thread is a daemon, started on the first push in each process (never across a
    fork).
    """

    GATHER_SECONDS = GATHER_SECONDS

    def __init__(self, client: redis.Redis):
        """A hand-off to Redis through `client` (not started until the first push)."""
        self.client = client
        self.waiting: list[int] = []
        self.wake = threading.Condition()
        self.thread: threading.Thread | None = None

    def push(self, event_id: int) -> None:
        """Queue the id for the next LPUSH; wake the thread if it is the first one waiting."""
        with self.wake:
            self.waiting.append(event_id)
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="dana-handoff",
                                               daemon=True)
                self.thread.start()
            if len(self.waiting) == 1:
                self.wake.notify()

    def _loop(self) -> None:
        while True:
            with self.wake:
                while not self.waiting:
                    self.wake.wait()
            time.sleep(self.GATHER_SECONDS)
            with self.wake:
                ids, self.waiting = self.waiting, []
            try:
                self.client.lpush(READY_KEY, *ids)
            except redis.RedisError as exc:
                log.warning("events %s stored but not handed on (%s): a worker's sweep runs "
                            "them", ids, exc)


# ----------------------------------------------------------------------------- leased locks

class LeasedLock(Lock):
    """A utils.locks lock taken inside a worker: short TTL, renewed by the worker's heartbeat.

    utils.locks gives its Redis locks a TTL long enough for any job (minutes): right for a
    live process, but a killed worker's lock would then block the re-run of its job for that
    long. Here the TTL is the worker's lease and the heartbeat extends every held lock.
    """

    def __init__(self, redis_client: "LeasedLocksRedis", name: str, timeout=None, **kwargs):
        """A lock whose TTL is the worker's lease, extendable from the heartbeat thread."""
        kwargs["thread_local"] = False  # the heartbeat thread extends it
        super().__init__(redis_client, name, timeout=redis_client.lease_seconds, **kwargs)

    def acquire(self, *args, **kwargs) -> bool:
        """Take the lock and remember it, so the heartbeat renews it."""
        acquired = super().acquire(*args, **kwargs)
        if acquired:
            self.redis.held_locks.add(self)
        return acquired

    def release(self) -> None:
        """Forget the lock and release it."""
        self.redis.held_locks.discard(self)
        super().release()


class LeasedLocksRedis(redis.Redis):
    """The worker's Redis client: its lock() hands out LeasedLocks and remembers them."""

    lease_seconds: int = 30

    def __init__(self, *args, **kwargs):
        """A Redis client that keeps track of the leased locks it handed out."""
        super().__init__(*args, **kwargs)
        self.held_locks: set[LeasedLock] = set()

    def lock(self, name, timeout=None, **kwargs):
        """A LeasedLock (whatever lock class the caller asked for)."""
        kwargs["lock_class"] = LeasedLock
        kwargs.pop("thread_local", None)
        return super().lock(name, timeout=timeout, **kwargs)

    def renew_locks(self) -> None:
        """Extend every held lock to a full lease; forget the ones lost meanwhile."""
        for lock in list(self.held_locks):
            try:
                lock.extend(self.lease_seconds, replace_ttl=True)
            except LockError:  # expired and maybe taken by another process: not ours any more
                log.warning("lock %s was lost while held", lock.name)
                self.held_locks.discard(lock)


# ----------------------------------------------------------------------------- the worker

class EventWorker:
    """Pops event ids from the Redis list and runs them; sweeps at start and every
    EVENT_SWEEP_SECONDS; finishes the current event on SIGTERM/SIGINT.
    """

    def __init__(self, app: Flask, client: "LeasedLocksRedis"):
        """A worker on the app's database and this Redis client."""
        settings = current_settings(app)
        self.app, self.client = app, client
        self.every = settings.EVENT_SWEEP_SECONDS
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.stopping = False

    def stop(self, *_args) -> None:
        """Finish the event being run, then exit."""
        self.stopping = True

    def _run(self, event_id: int) -> None:
        with self.app.app_context():
            try:
                run_event(event_id, heartbeat=self._beat)
            except Exception:  # recorded on the event where possible; a sweep retries
                log.exception("event %s crashed", event_id)

    def _beat(self) -> None:
        """With every lease renewal: the Redis locks the run holds, and a sign of life."""
        self.client.renew_locks()
        self._alive()

    def _sweep(self) -> int:
        with self.app.app_context():
            due = due_events()
        for event_id in due:
            if self.stopping:
                break
            self._run(event_id)
        return len(due)

    def _alive(self) -> None:
        try:
            self.client.hset(WORKERS_KEY, self.name, int(time.time()))
        except redis.RedisError:
            pass

    def work(self, burst: bool = False) -> bool:
        """Run until stopped (with burst: until nothing is queued or due)."""
        log.info("worker %s: list %s, sweep every %ss", self.name, READY_KEY, self.every)
        next_sweep = 0.0
        try:
            while not self.stopping:
                self._alive()
                swept = 0
                if time.monotonic() >= next_sweep:
                    swept = self._sweep()
                    next_sweep = time.monotonic() + self.every
                wait = max(1, round(next_sweep - time.monotonic()))
                try:
                    popped = (self.client.rpop(READY_KEY) if burst
                              else self.client.brpop([READY_KEY], timeout=wait))
                except redis.RedisError as exc:  # Redis away: sweeps still find the events
                    log.warning("worker %s: Redis unavailable (%s)", self.name, exc)
                    time.sleep(min(wait, 2))
                    continue
                if popped is None:
                    if burst and not swept:
                        return True
                    if burst:
                        next_sweep = 0.0
                    continue
                value = popped[1] if isinstance(popped, (list, tuple)) else popped
                self._run(int(value))
        finally:
            try:
                self.client.hdel(WORKERS_KEY, self.name)
            except redis.RedisError:
                pass
        return True


def run_worker(app: Flask, *, burst: bool = False) -> bool:
    """Work on the events until stopped (or, with burst, until none is queued or due)."""
    settings = current_settings(app)
    client = LeasedLocksRedis.from_url(settings.REDIS_URL, socket_connect_timeout=3,
                                       health_check_interval=30)
    client.lease_seconds = settings.EVENT_STALE_SECONDS
    # Jobs take their locks (utils.locks) through this client: leased, renewed by heartbeat.
    app.extensions["dana_redis"] = client
    worker = EventWorker(app, client)
    warm_up()  # the offline AI's language model, read before the first job needs it
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    return worker.work(burst=burst)
