"""Running a stored webhook event: claim it, settle an interrupted run, process, record.

The event row is the outbox. run_event(id) is what every queue calls (the inline dispatcher
thread, the Redis worker, the CLI's and the admin page's replay): it claims the event with one
conditional UPDATE (compare-and-set on its status and lease), so two processes never run the
same event at once; it renews the lease while the run lasts (one thread renews all of a
process's claims, including those its dispatcher holds queued), and it ends
by recording the final status and, for a failed run with a retry left, when to try again
(RQ_RETRY_INTERVALS). due_events() is what the sweeps ask for: unfinished events whose lease
ran out (their process died), received ones nobody took within EVENT_STALE_SECONDS (a lost
hand-off), failed ones whose retry time has come. Which queue runs them is
services/automation_queue.py (inline) and services/rq_queue.py (Redis worker).

The inline intake takes a new delivery's first step before storing it (new_event): it parses
the delivery and, when all its items are for one (platform, account), reads whether that
account is connected; the event's INSERT is then its claim (`processing`, leased) or its end
(`ignored`, as the full run would record it), and run_event goes on from that claim with the
items already parsed.

An event is `processing` only while a run holds it: a run that ends records its final status.
So a run that claims an event still `processing` knows the previous run was killed mid-way
and first settles the automated replies that run left unfinished (settle_interrupted_sends).
An event whose runs were interrupted EVENT_MAX_ATTEMPTS times is `dead`: listed, replayable.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import NamedTuple

from flask import current_app
from sqlalchemy import and_, bindparam, exists, or_, select, update
from sqlalchemy.exc import DBAPIError

from automation.connectors import connector_for
from automation.core.message_processor import process_webhook_event
from automation.core.policy import policy
from automation.platforms import accounts
from automation.platforms.base import InboundEvent
from models_db import WebhookEvent, db, utcnow
from utils import events
from utils.config import current_settings
from utils.db import SoloStatement, retry_locked, run_scope
from utils.idempotency import AUTO, reply_keys
from utils.store import get_store

log = logging.getLogger("dana.queue")

UNKNOWN_OUTCOME = "unknown_outcome"
FINISHED = ("processed", "ignored")
_T = WebhookEvent.__table__.c
_RUNNER = f"{socket.gethostname()[:40]}:{os.getpid()}"


def runner_name() -> str:
    """Who holds a claim: host and process id (kept in webhook_events.claimed_by)."""
    return f"{_RUNNER}:{threading.get_ident() % 100000}"


def _free(now):
    """No live lease held by another run."""
    return or_(_T.claimed_until.is_(None), _T.claimed_until < now)


def _claimable_received(now):
    """`received` rows a run may take now: free, and not waiting for a retry time."""
    return and_(_T.status == "received", _free(now),
                or_(_T.next_attempt_at.is_(None), _T.next_attempt_at <= now))


def _claimable(now):
    """Rows a run may take now: not finished, and no live lease held by another run."""
    return or_(
        _claimable_received(now),
        and_(_T.status == "processing", _free(now)),
        and_(_T.status == "failed", _T.next_attempt_at.is_not(None), _T.next_attempt_at <= now),
    )


def due_events(limit: int = 100) -> list[int]:
    """Events a sweep should run now (oldest first): an interrupted run's (lease expired), a
    received one nobody claimed within EVENT_STALE_SECONDS, a failed one due for its retry.
    """
    now = utcnow()
    stale = now - timedelta(seconds=current_settings().EVENT_STALE_SECONDS)
    stmt = (select(_T.id).where(_claimable(now))
            .where(or_(_T.status != "received", _T.received_at < stale,
                       _T.next_attempt_at.is_not(None)))
            .order_by(_T.id).limit(limit))
    try:
        return list(db.session.scalars(stmt))
    finally:
        db.session.rollback()  # end the read: no snapshot kept across the runs that follow


class ClaimedEvent(NamedTuple):
    """What a claim returns of the event's row: what process_webhook_event reads next."""

    status: str
    platform: str
    raw_body: str


# The claim runs for every event: one statement, alone, autocommitted on a raw connection
# (utils.db.SoloStatement; on PostgreSQL one round trip instead of BEGIN, UPDATE, COMMIT),
# and it returns the row the run needs (no second read).
_CLAIM = SoloStatement(
    update(WebhookEvent.__table__)
    .where(_T.id == bindparam("event_id"), _T.status == bindparam("seen"),
           _claimable(bindparam("now")))
    .values(status="processing", attempts=_T.attempts + 1,
            claimed_by=bindparam("owner"), claimed_until=bindparam("until"),
            next_attempt_at=None)
    .returning(_T.status, _T.platform, _T.raw_body),
    ["event_id", "seen", "now", "owner", "until"])


def claim_event(event_id: int) -> str | None:
    """Take the event for this run; the status it had ("received", "processing", "failed"), or
    None when it is finished or another live run holds it. One conditional UPDATE on the
    status seen: of any number of processes trying at once, exactly one gets it.
    """
    claimed = _claim_event(event_id)
    return claimed[0] if claimed is not None else None


def _claim_event(event_id: int) -> tuple[str, ClaimedEvent] | None:
    """claim_event's status, with the claimed row."""
    settings = current_settings()

    def _take(seen: str) -> ClaimedEvent | None:
        now = utcnow()
        _, rows = _CLAIM.run(event_id=event_id, seen=seen, now=now, owner=runner_name(),
                             until=now + timedelta(seconds=settings.EVENT_STALE_SECONDS))
        return ClaimedEvent(*rows[0]) if rows else None

    def _claim() -> tuple[str, ClaimedEvent] | None:
        db.session.rollback()  # end what this session read before the run
        row = _take("received")
        if row is not None:  # the usual case: a new event, one statement
            return "received", row
        seen = db.session.execute(select(_T.status).where(_T.id == event_id)).scalar()
        db.session.rollback()
        if seen is None or seen in FINISHED or seen in ("rejected", "dead", "received"):
            return None
        row = _take(seen)
        return (seen, row) if row is not None else None

    return retry_locked(_claim)


# The routing lookup (an index probe of platform_accounts' unique key), built once.
_ROUTED = exists().where(*accounts.routing_criteria(bindparam("platform"),
                                                    bindparam("account")))


def _delivery_items(channel: str, payload: dict) -> list[InboundEvent] | None:
    """A parsed delivery's items (the channel connector's parse); None when it does not
    parse (the full run parses it again and records why).
    """
    try:
        return connector_for(channel).parse(payload)
    except Exception:  # noqa: BLE001 - recorded by the run
        return None


def _one_route(items: list[InboundEvent]) -> tuple[str, str] | None:
    """The (platform, account) that all the items are for; None for none or several."""
    routes = {(item.platform, item.account_id) for item in items}
    if len(routes) != 1:
        return None
    [route] = routes
    return route if route[1] else None


class Handed(NamedTuple):
    """What the first step (new_event) did for a new event's run: its delivery's
    items, parsed once, and, when it claimed the event, the claimed row and the claim's owner.
    """

    items: list[InboundEvent] | None
    row: ClaimedEvent | None = None
    owner: str | None = None


# The routing lookup alone, a read (on SQLite no writer's turn, no write lock).
_ROUTED_READ = SoloStatement(select(_ROUTED), ["platform", "account"])


class NewEvent(NamedTuple):
    """A new delivery's first step, taken before it is stored (new_event): the columns its
    INSERT sets besides the delivery itself (status, claim), what its run is handed (None:
    nothing is left to run), and its (platform, account) when it has one.
    """

    columns: dict
    handed: Handed | None
    route: tuple[str, str] | None = None


def new_event(channel: str, payload: dict, raw_body: str) -> NewEvent:
    """The first step of a delivery's run, for a caller that stores it next and runs it in
    this process (the inline intake): parse its items and, when they are all for one
    (platform, account), read whether an account has that route. The event's INSERT is then
    its claim for this run (`processing`, attempts 1, leased for EVENT_STALE_SECONDS: if this
    process dies first, a sweep runs it once the lease is out) or its end (`ignored`, as the
    full run would record it): one write where storing it `received` and then claiming it
    were two (on SQLite each a turn at the write lock). With no single route, or when the
    read fails, it is stored `received` and its run claims it as usual.
    """
    items = _delivery_items(channel, payload)
    route = _one_route(items) if items else None
    if route is None:
        return NewEvent({}, Handed(items))
    try:
        [(routed,)] = _ROUTED_READ.run(platform=route[0], account=route[1])[1]
    except DBAPIError as exc:  # its run routes it; storing it is what matters now
        log.warning("routing a %s delivery failed (%s); its run routes it", channel, exc)
        return NewEvent({}, Handed(items), route)
    now, owner = utcnow(), runner_name()
    if not routed:
        return NewEvent({"status": "ignored", "attempts": 1, "claimed_by": owner,
                         "processed_at": now}, None, route)
    until = now + timedelta(seconds=current_settings().EVENT_STALE_SECONDS)
    return NewEvent({"status": "processing", "attempts": 1, "claimed_by": owner,
                     "claimed_until": until},
                    Handed(items, ClaimedEvent("processing", channel, raw_body), owner), route)


def reset_for_replay(event_id: int) -> None:
    """Make a finished, failed or dead event runnable again now (an operator's replay)."""
    def _reset() -> None:
        db.session.execute(
            update(WebhookEvent.__table__)
            .where(_T.id == event_id, _T.status.in_(FINISHED + ("failed", "dead")))
            .values(status="received", next_attempt_at=None, claimed_until=None,
                    claimed_by=None))
        db.session.commit()

    retry_locked(_reset)


class _Lease:
    """One claim's lease: renewed every `every` seconds while anything holds it (a run, or
    the dispatcher while the claimed event waits for a runner), plus the holders' extra beats
    (e.g. the worker's Redis locks). `lost` once a renewal finds the claim gone (another run
    took it over): whoever holds it must not start the run.
    """

    def __init__(self, app, every: float):
        self.app, self.every = app, every
        self.due = time.monotonic() + every
        self.holds = 0
        self.extras: list = []
        self.lost = False


class _LeaseKeeper:
    """Renews the leases of every claim this process holds, from one thread with its own
    connections (a thread per run would be started and joined for every event), in one
    UPDATE per beat whatever their number: a backlog of claimed events waiting for a runner
    costs one write per beat, not one per event.

    Why a waiting claim is renewed too: the inline intake's INSERT claims an event for this
    process (event_runner.new_event) and the dispatcher may take longer than the lease to
    come to it under a burst; a lease left to run out would let another process's sweep take
    the event while it is still queued here, and both would run it.
    """

    TICK = 0.1  # seconds between looks at the leases' due times
    CHUNK = 500  # claims per UPDATE

    def __init__(self):
        self.leases: dict[tuple[int, str], _Lease] = {}
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def keep(self, app, event_id: int, owner: str, extra=None) -> None:
        """Keep the claim (event_id, owner) alive until as many release() calls come."""
        with self.lock:
            lease = self.leases.get((event_id, owner))
            if lease is None:
                settings = current_settings(app)
                every = max(0.5, min(settings.RQ_HEARTBEAT_SECONDS,
                                     settings.EVENT_STALE_SECONDS / 3))
                lease = self.leases[(event_id, owner)] = _Lease(app, every)
            lease.holds += 1
            if extra is not None:
                lease.extras.append(extra)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="dana-leases",
                                               daemon=True)
                self.thread.start()

    def release(self, event_id: int, owner: str, extra=None) -> None:
        """One holder of the claim is done with it (and with its extra beat)."""
        with self.lock:
            lease = self.leases.get((event_id, owner))
            if lease is None:
                return
            if extra is not None and extra in lease.extras:
                lease.extras.remove(extra)
            lease.holds -= 1
            if lease.holds <= 0:
                del self.leases[(event_id, owner)]

    def lost(self, event_id: int, owner: str) -> bool:
        """True when a renewal found that this claim is no longer held by `owner`."""
        with self.lock:
            lease = self.leases.get((event_id, owner))
            return lease is not None and lease.lost

    @contextmanager
    def hold(self, app, event_id: int, owner: str, extra=None) -> Iterator[None]:
        """Keep this run's lease alive for the duration of the block."""
        self.keep(app, event_id, owner, extra)
        try:
            yield
        finally:
            self.release(event_id, owner, extra)

    def _loop(self) -> None:
        while True:
            time.sleep(self.TICK)
            now = time.monotonic()
            with self.lock:
                if not any(lease.due <= now for lease in self.leases.values()):
                    continue
                # Renew everything due within half a beat with it: the beats fall together.
                due = [(key, lease) for key, lease in self.leases.items()
                       if not lease.lost and lease.due <= now + lease.every / 2]
                for _, lease in due:
                    lease.due = now + lease.every
            by_app: dict = {}
            for key, lease in due:
                by_app.setdefault(lease.app, []).append((key, lease))
            for app, claims in by_app.items():
                self._renew(app, claims)

    def _renew(self, app, claims: list) -> None:
        """One UPDATE per CHUNK claims; a claim it does not find is lost; then the extras."""
        try:
            with app.app_context():
                until = utcnow() + timedelta(seconds=current_settings().EVENT_STALE_SECONDS)
                kept: set[tuple[int, str]] = set()
                for start in range(0, len(claims), self.CHUNK):
                    keys = [key for key, _ in claims[start:start + self.CHUNK]]
                    # ids and owners apart (a pair IN scans the table on SQLite); a row
                    # another of this process's owners holds comes back under its owner.
                    with db.engine.begin() as conn:
                        kept.update(conn.execute(
                            update(WebhookEvent.__table__)
                            .where(_T.status == "processing",
                                   _T.id.in_([event_id for event_id, _ in keys]),
                                   _T.claimed_by.in_({owner for _, owner in keys}))
                            .values(claimed_until=until)
                            .returning(_T.id, _T.claimed_by)).tuples())
        except Exception:  # a busy database: the next beat is within the lease
            log.exception("renewing the leases of %s events failed", len(claims))
            return
        for key, lease in claims:
            if key not in kept:
                with self.lock:
                    lease.lost = True
                log.warning("event %s: its claim by %s was taken over before it ended",
                            *key)
            for extra in list(lease.extras):
                try:
                    extra()
                except Exception:  # Redis away: its own lease covers the next beat
                    log.exception("the extra lease beat of event %s failed", key[0])


_leases = _LeaseKeeper()


def _claimed_at_insert(handed: Handed | None) -> bool:
    """The event's INSERT was its claim for this process's run (new_event)."""
    return handed is not None and handed.row is not None


def keep_claim(app, event_id: int, handed: Handed | None) -> None:
    """Keep the lease of the claim its INSERT made alive until release_claim(), while the
    event waits in this process for its run (nothing to keep for an unclaimed event).
    """
    if _claimed_at_insert(handed):
        _leases.keep(app, event_id, handed.owner)


def release_claim(event_id: int, handed: Handed | None) -> None:
    """The end of keep_claim()'s hold (the run, if any, holds its own)."""
    if _claimed_at_insert(handed):
        _leases.release(event_id, handed.owner)


def run_event(event_id: int, heartbeat=None, handed: Handed | None = None) -> str:
    """Claim and process one event inside an app context; its status afterwards.

    When another live run holds the event (or it is finished) nothing runs and the current
    status is returned. `heartbeat` is called with every lease renewal (the worker renews
    its Redis locks there). `handed` is what the delivery's first step (new_event) did of
    this run, when the caller took it: the run goes on from there (its claim, its parsed
    items); without it the run claims the event and parses the stored body itself. The run
    is one utils.db.run_scope: the rarely changing rows it reads several times (account,
    profile, plan) are read once.
    """
    with run_scope():
        return _run_event(event_id, heartbeat, handed)


def _run_event(event_id: int, heartbeat, handed: Handed | None) -> str:
    items = handed.items if handed is not None else None
    if _claimed_at_insert(handed):
        # The intake's claim, unless a renewal found it taken over while it waited here.
        owner = handed.owner
        claimed = None if _leases.lost(event_id, owner) else ("received", handed.row)
    else:
        owner, claimed = runner_name(), _claim_event(event_id)
    if claimed is None:
        db.session.rollback()
        event = db.session.get(WebhookEvent, event_id)
        return event.status if event is not None else "missing"
    previous, row = claimed
    settings = current_settings()
    if previous == "processing":
        event = db.session.get(WebhookEvent, event_id)
        log.warning("event %s: its previous run was interrupted (the process running it "
                    "died); settling its unfinished sends, then running it again", event_id)
        settle_interrupted_sends(event)
        if event.attempts > settings.EVENT_MAX_ATTEMPTS:
            _finish(event_id, owner, "dead", f"its runs were interrupted {event.attempts - 1} "
                                             "times (the process running it died)")
            return "dead"
    app = current_app._get_current_object()
    with _leases.hold(app, event_id, owner, heartbeat):
        status = process_webhook_event(event_id, row, items)
    if status == "failed":
        return _schedule_retry(event_id, owner)
    return status  # process_webhook_event's final write ended the lease


def _finish(event_id: int, owner: str, status: str, error: str) -> None:
    def _write() -> None:
        db.session.execute(update(WebhookEvent.__table__)
                           .where(_T.id == event_id, _T.claimed_by == owner)
                           .values(status=status, error=error, processed_at=utcnow(),
                                   claimed_until=None, next_attempt_at=None))
        db.session.commit()

    retry_locked(_write)


def _schedule_retry(event_id: int, owner: str) -> str:
    """A failed run: try again after the next of RQ_RETRY_INTERVALS, if one is left."""
    settings = current_settings()
    db.session.rollback()
    attempts = db.session.execute(select(_T.attempts).where(_T.id == event_id)).scalar() or 0
    db.session.rollback()
    intervals = settings.RQ_RETRY_INTERVALS
    retry_at = None
    if attempts <= len(intervals) and attempts < settings.EVENT_MAX_ATTEMPTS:
        retry_at = utcnow() + timedelta(seconds=intervals[attempts - 1])

    def _write() -> None:
        db.session.execute(update(WebhookEvent.__table__)
                           .where(_T.id == event_id, _T.claimed_by == owner,
                                  _T.status == "failed")
                           .values(claimed_until=None, next_attempt_at=retry_at))
        db.session.commit()

    retry_locked(_write)
    if retry_at is not None:
        log.warning("event %s failed (attempt %s); next attempt at %s", event_id, attempts,
                    retry_at.isoformat())
    else:
        log.error("event %s failed (attempt %s); no retry left: replay it once fixed "
                  "(`flask events retry --id %s`)", event_id, attempts, event_id)
    return "failed"


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
    channel = policy().channels.get(event.platform)
    if channel is not None:  # a stored channel's own sends (e.g. a Slack thread's reply)
        return channel.settle(event.raw_body)
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
            settled += settle_send(owner, message)
    return settled


def settle_send(owner: str, message: dict) -> int:
    """If `message` is still `queued` (its sender died mid-send), fail it with
    `unknown_outcome` and announce it: it will not be sent again. 1 when settled, else 0.
    """
    if message["status"] != "queued":
        return 0
    store = get_store()
    updated = store.update_message_status(owner, message["id"], "failed",
                                          error=UNKNOWN_OUTCOME)
    store.update_message(owner, message["id"], metadata={"error_detail": (
        "The process sending this message stopped during the send: it may or may not "
        "have reached the customer. It is not sent again automatically; check the "
        "conversation and resend it if needed.")})
    events.message_status(owner, updated)
    log.warning("message %s was interrupted mid-send; marked %s", message["id"],
                UNKNOWN_OUTCOME)
    return 1
