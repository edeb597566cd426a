"""RQ: webhook events processed by `flask worker` processes (AUTOMATION_QUEUE=rq).

The webhook stores the delivery and enqueues its id; a worker runs process_webhook_event in
the app context. Three failure modes, three answers:

- The event fails (process_webhook_event recorded an error): the job raises, RQ retries it
  after RQ_RETRY_INTERVALS; after the last retry it stays in RQ's FailedJobRegistry and
  `failed` in webhook_events, where `flask events retry --id N` replays it.
- The worker is stopped (SIGTERM/SIGINT): RQ's warm shutdown finishes the current job first.
- The worker dies (SIGKILL, OOM, lost host): a busy DanaWorker heartbeats every
  RQ_HEARTBEAT_SECONDS, renewing a lease of three heartbeats on its job's entry in the
  StartedJobRegistry and on the Redis locks the job holds (utils.locks). When the beats stop,
  the locks expire within the lease and the next registry maintenance of any live worker
  (one every lease) hands the job to RQ's abandoned-job path, which counts it as one retry
  and re-runs it. The re-run finds the event still `processing` and settles the sends the
  dead worker left unfinished before processing it again (automation/core/event_runner.py).
"""
from __future__ import annotations

import logging
import threading

import redis
from flask import Flask, current_app
from redis.exceptions import LockError
from redis.lock import Lock
from rq import Queue, Retry
from rq.exceptions import AbandonedJobError
from rq.registry import FailedJobRegistry
from rq.worker import SimpleWorker, WorkerStatus

from automation.core.event_runner import abandon_event, run_event
from utils.config import current_settings

log = logging.getLogger("dana.rq")
QUEUE_NAME = "dana-automation"
JOB_TIMEOUT = 300            # seconds; a job past it is killed and counts as failed
LEASE_HEARTBEATS = 3         # a worker silent for this many heartbeats is dead


def queue(connection: redis.Redis | None = None) -> Queue:
    """The automation queue on the app's Redis (or the given connection)."""
    return Queue(QUEUE_NAME, connection=connection or current_app.extensions["dana_redis"])


def job_id(event_id: int) -> str:
    """One job per stored event: the id finds it in RQ's registries (e.g. after a replay)."""
    return f"dana-event-{event_id}"


def enqueue_event(event_id: int) -> None:
    """Put a stored event on the automation queue."""
    intervals = current_settings().RQ_RETRY_INTERVALS
    q = queue()
    # One pipeline: saving the job and pushing it on the queue cost one round trip, not two.
    with q.connection.pipeline() as pipe:
        q.enqueue(process_event_job, event_id, job_id=job_id(event_id),
                  retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
                  job_timeout=JOB_TIMEOUT, result_ttl=3600, failure_ttl=7 * 24 * 3600,
                  description=f"webhook event {event_id}", pipeline=pipe)
        pipe.execute()


def forget_failed_job(event_id: int) -> None:
    """Drop an event's job from the FailedJobRegistry (it was replayed by other means)."""
    client = current_app.extensions.get("dana_redis")
    if client is None:
        return
    registry = FailedJobRegistry(queue=queue(client))
    try:
        if job_id(event_id) in registry.get_job_ids(cleanup=False):
            # The job hash itself expires with its failure TTL; deleting it here can trip
            # over a dead worker's execution record (rq 2.12).
            registry.remove(job_id(event_id))
    except redis.RedisError:  # the replay itself succeeded; the registry entry expires anyway
        log.warning("could not remove job %s from the failed registry", job_id(event_id))


class EventProcessingFailed(RuntimeError):
    """Raised from a job so that RQ retries it and finally records it as failed."""


def process_event_job(event_id: int) -> str:
    """The RQ job: processes one event in a fresh app context of the worker's app."""
    # A context per job: a clean database session for every job, removed at the end.
    with current_app._get_current_object().app_context():
        status = run_event(event_id)
    if status == "failed":
        raise EventProcessingFailed(f"webhook event {event_id} failed; see webhook_events.error")
    return status


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

class DanaWorker(SimpleWorker):
    """SimpleWorker (no fork per job: the app context and its pools stay valid) plus a
    heartbeat thread while a job runs, so that a dead worker is noticed within a lease.
    """

    def __init__(self, *args, heartbeat_seconds: int, **kwargs):
        """A worker whose lease is `LEASE_HEARTBEATS` heartbeats long."""
        self.heartbeat_seconds = heartbeat_seconds
        self.lease_seconds = heartbeat_seconds * LEASE_HEARTBEATS
        # Registry maintenance (where abandoned jobs are found) once per lease; an idle worker
        # wakes from its blocking dequeue as often (RQ: dequeue timeout = worker_ttl - 15).
        kwargs.setdefault("maintenance_interval", self.lease_seconds)
        kwargs.setdefault("worker_ttl", self.lease_seconds + 15)
        super().__init__(*args, **kwargs)
        self._beat_guard = threading.Lock()
        self._beat_stop = threading.Event()
        self._beat_thread: threading.Thread | None = None

    def get_heartbeat_ttl(self, job) -> int:
        """The job's StartedJobRegistry entry lives one lease past the last heartbeat."""
        return self.lease_seconds

    def execute_job(self, job, queue):
        """Run one job with a heartbeat thread beating beside it."""
        self.prepare_execution(job)
        self._start_beat(job)
        try:
            self.perform_job(job, queue)
        finally:
            self._stop_beat()
        self.set_state(WorkerStatus.IDLE)

    def handle_execution_ended(self, job, queue, heartbeat_ttl):
        # The job function has returned or raised: stop beating before RQ's own bookkeeping
        # removes the execution, so that no late beat re-creates what it deletes.
        """Stop beating, then let RQ do its bookkeeping."""
        self._stop_beat()
        super().handle_execution_ended(job, queue, heartbeat_ttl)

    def _start_beat(self, job) -> None:
        self._beat_stop = threading.Event()
        self._beat_thread = threading.Thread(target=self._beat, args=(job, self._beat_stop),
                                             name="dana-rq-heartbeat", daemon=True)
        self._beat_thread.start()

    def _stop_beat(self) -> None:
        with self._beat_guard:
            self._beat_stop.set()
        thread, self._beat_thread = self._beat_thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _beat(self, job, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_seconds):
            with self._beat_guard:
                if stop.is_set():
                    return
                try:
                    self.maintain_heartbeats(job)
                    renew = getattr(self.connection, "renew_locks", None)
                    if renew:
                        renew()
                except Exception:  # Redis hiccup: the next beat tries again within the lease
                    log.exception("heartbeat for job %s failed", job.id)


def _on_abandoned_job(app: Flask):
    """An RQ exception handler: log jobs whose worker died; settle the ones not re-run."""

    def handler(job, exc_type, exc_value, tb):
        if exc_type is not AbandonedJobError:
            return True  # ordinary failures: RQ's default handling
        event_id = job.args[0] if job.args else None
        if job.retries_left:
            log.warning("job %s (event %s): worker %s died; the job runs again",
                        job.id, event_id, job.worker_name or "?")
            return True
        log.error("job %s (event %s): worker %s died and no retry is left; the event is "
                  "marked failed", job.id, event_id, job.worker_name or "?")
        if event_id is not None:
            with app.app_context():
                abandon_event(event_id, f"the worker processing it died ({job.worker_name}) "
                                        "and no retry was left")
        return True

    return handler


def run_worker(app: Flask, *, burst: bool = False) -> bool:
    """Work on the automation queue until stopped (or, with burst, until it is empty)."""
    settings = current_settings(app)
    client = LeasedLocksRedis.from_url(settings.REDIS_URL, socket_connect_timeout=3,
                                       health_check_interval=30)
    client.lease_seconds = settings.RQ_HEARTBEAT_SECONDS * LEASE_HEARTBEATS
    # Jobs take their locks (utils.locks) through this client: leased, renewed by heartbeat.
    app.extensions["dana_redis"] = client
    worker = DanaWorker([queue(client)], connection=client,
                        heartbeat_seconds=settings.RQ_HEARTBEAT_SECONDS)
    worker.push_exc_handler(_on_abandoned_job(app))
    log.info("worker %s: queue %s, heartbeat %ss, lease %ss", worker.name, QUEUE_NAME,
             settings.RQ_HEARTBEAT_SECONDS, worker.lease_seconds)
    return worker.work(burst=burst, with_scheduler=True,
                       logging_level=settings.LOG_LEVEL.upper())
