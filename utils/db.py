"""Writes that survive a busy database: a locked write is retried, boundedly, with backoff.

On SQLite one process writes at a time: a writer waits for the lock up to the busy timeout
(app.py) and then fails with "database is locked". On PostgreSQL the equivalents are a
serialization failure or a deadlock, reported on one of the parties. Both are transient:
`retry_locked(fn)` rolls the session back and runs the whole unit (`fn`) again, a few times
with exponential backoff, and re-raises the last error. Any other error (an integrity error,
a bad statement) is raised at once: retrying it would only repeat it.
"""
from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from models_db import db

log = logging.getLogger("dana.db")
T = TypeVar("T")

# SQLite's messages for a lock it could not get, PostgreSQL's SQLSTATEs for transient conflicts
_LOCKED_MESSAGES = ("database is locked", "database table is locked", "database is busy")
_TRANSIENT_SQLSTATES = ("40001", "40P01", "55P03")
ATTEMPTS = 5


def is_locked(exc: BaseException) -> bool:
    """True for a database error that says "locked/busy, try again" (and nothing else)."""
    # (a driver error raised from an engine event arrives unwrapped)
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if not isinstance(orig, (DBAPIError, sqlite3.OperationalError)) and \
            getattr(orig, "sqlstate", None) is None:
        return False
    if getattr(orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    text = str(orig).lower()
    return any(message in text for message in _LOCKED_MESSAGES)


def _before_retry(retry_state) -> None:
    """End the failed transaction (its locks and snapshot) and say that a retry follows."""
    db.session.rollback()
    log.warning("database busy (%s); retry %s", retry_state.outcome.exception(),
                retry_state.attempt_number)


def _before_retry_first(exc: BaseException) -> None:
    db.session.rollback()
    log.warning("database busy (%s); retrying", exc)
    time.sleep(random.uniform(0.02, 0.08))  # noqa: S311  (jitter, not security)


def retry_locked(fn: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """Run `fn` (a unit of work that ends with its commit); a locked write runs it again.

    The session is rolled back before each new attempt. After `attempts` tries the last
    error is raised, as is at once any error that is not a lock conflict.
    """
    try:  # the usual case, without building a retry loop (the webhook's hot path)
        return fn()
    except Exception as exc:
        if not is_locked(exc) or attempts <= 1:
            raise
        _before_retry_first(exc)
    for attempt in Retrying(retry=retry_if_exception(is_locked),
                            stop=stop_after_attempt(attempts - 1),
                            wait=wait_exponential_jitter(multiplier=0.05, max=1.0, jitter=0.05),
                            before_sleep=_before_retry,
                            reraise=True):
        with attempt:
            return fn()
    raise AssertionError("unreachable")  # pragma: no cover


# ------------------------------------------------------------- Core on the hot path

def execute(statement, params: dict | None = None):
    """Run a Core statement on the session's connection, in the session's transaction (as
    db.session.execute does: commit and rollback are the session's).

    For the pipeline's prebuilt statements: the session's own execute costs several times
    the statement itself (about 130 against 35 microseconds for a primary-key SELECT on
    SQLite), for ORM work that a Core statement does not need. Pending ORM changes are
    flushed first, as the session would.
    """
    session = db.session()  # the scoped session's current Session, looked up once
    if session.new or session.deleted or session.dirty:
        session.flush()
    return session.connection().execute(statement, params)


# ------------------------------------------------------------------ per-run read memo

_run_memo: ContextVar[dict | None] = ContextVar("dana_run_memo", default=None)


@contextmanager
def run_scope() -> Iterator[None]:
    """Reads inside the block may be remembered until it ends (see `memoized`).

    One event run (automation/core/event_runner.py) is such a scope: it asks for the same
    rarely changing rows (the Page's account, the business profile, the plan, the knowledge
    base's version, the enabled integrations) several times within a few milliseconds, and
    each time it would be a query. Outside a scope nothing is remembered.
    """
    token = _run_memo.set({})
    try:
        yield
    finally:
        _run_memo.reset(token)


def memoized(key: tuple, compute: Callable[[], T]) -> T:
    """compute(), remembered under `key` until the current run_scope ends (no scope: no
    memo). A writer that changes what `key` reads calls forget(key).
    """
    memo = _run_memo.get()
    if memo is None:
        return compute()
    try:
        return memo[key]
    except KeyError:
        value = memo[key] = compute()
        return value


def forget(key: tuple) -> None:
    """Drop what the current run_scope remembers under `key` (after a write that changed it)."""
    memo = _run_memo.get()
    if memo is not None:
        memo.pop(key, None)
