"""Writes that survive a busy database: a locked write is retried, boundedly, with backoff.

On SQLite one process writes at a time: a writer waits for the lock up to the busy timeout
(app.py) and then fails with "database is locked". On PostgreSQL the equivalents are a
serialization failure or a deadlock, reported on one of the parties. Both are transient:
`retry_locked(fn)` rolls the session back and runs the whole unit (`fn`) again, a few times
with exponential backoff, and re-raises the last error. Any other error (an integrity error,
a bad statement) is raised at once: retrying it would only repeat it.

The hottest statements (a webhook's event INSERT, the inline intake's routing read, a run's
claim) are SoloStatements: one statement compiled once and run alone, autocommitted, on a raw
connection (pooled on PostgreSQL, the thread's own on SQLite; on SQLite about 70 against 130
microseconds for the INSERT through a Core execute on the same engine).
"""
from __future__ import annotations

import atexit
import fcntl
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from sqlalchemy import create_engine, event, insert
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from models_db import db
from utils.config import app_resource

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



# One writer at a time per SQLite file, queued before BEGIN IMMEDIATE (app.py) and before a
# SoloStatement: first on a lock of this process, then on flock(2) of a file beside the
# database, shared by every process. SQLite itself makes a waiting writer sleep and poll (1,
# 2, 5, 10 ... 100 ms), so with a dozen threads, or two gunicorn workers, a waiter sleeps
# through many of the others' short transactions (a convoy: the lock idle, everyone asleep,
# and one process starved for up to 100 ms at a time); on these locks the next writer takes
# the turn within a fraction of a millisecond. Waiting is bounded (SQLITE_WRITER_WAIT, the
# busy timeout), then SQLite decides.
SQLITE_WRITER_WAIT = 10.0


def flock_until(fd: int, deadline: float, poll: tuple[float, float]) -> bool:
    """Take flock(2) LOCK_EX on `fd` before time.monotonic() reaches `deadline`; True if taken.

    Tries without blocking (a blocking flock would wait without bound), sleeping poll[0]
    seconds after the first try and twice as long after each next one, at most poll[1].
    """
    wait = poll[0]
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(wait)
            wait = min(wait * 2, poll[1])


class WriterTurn:
    """A writer's turn on one database: a lock that knows which thread holds it and, for a
    database file, takes the file's turn across processes too (`<file>.writer-lock`).

    A SoloStatement runs on a connection of its own, so one started by a thread whose session
    already holds the turn (an open write transaction) would wait for that thread, that is
    for itself: SQLITE_WRITER_WAIT here, then SQLite's busy timeout, then "database is
    locked". SoloStatement.run asks held_here() first and fails at once instead.
    """

    POLL = (0.0001, 0.001)  # first and longest sleep between tries of the file's lock

    def __init__(self, database: str | None = None):
        """A free turn; `database` is the SQLite file (None: this process only)."""
        self._lock = threading.Lock()
        self.holder: int | None = None
        self.path = f"{database}.writer-lock" if database else None
        self._fd: int | None = None
        self._pid: int | None = None  # the process that opened _fd (a fork opens its own)
        self._filed = False  # this process holds the file's lock

    def acquire(self, timeout: float = -1) -> bool:
        """Take the turn, waiting up to `timeout` seconds (-1: no limit) for this process's
        lock; True when taken. The file's lock is waited for up to what is left of
        SQLITE_WRITER_WAIT; past that the turn is taken without it (SQLite's lock decides).
        """
        started = time.monotonic()
        if not self._lock.acquire(timeout=timeout):
            return False
        self.holder = threading.get_ident()
        if self.path is not None:
            try:
                self._filed = self._take_file(started + SQLITE_WRITER_WAIT)
            except OSError as exc:  # an unwritable folder: SQLite's own lock still holds
                log.warning("no cross-process writer turn on %s: %s", self.path, exc)
                self.path = None
        return True

    def _take_file(self, deadline: float) -> bool:
        if self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return flock_until(self._fd, deadline, self.POLL)

    def release(self) -> None:
        """Give the turn back (from whichever thread ends the transaction)."""
        if self._filed:
            self._filed = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self.holder = None
        self._lock.release()

    def close_if_idle(self) -> bool:
        """Close the file of a turn no thread holds (True; False when one does), so that a
        process that met many databases (the tests: one per test) keeps no descriptor for
        each. A later acquire() opens it again.
        """
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = self._pid = None
            return True
        finally:
            self._lock.release()

    def locked(self) -> bool:
        """True while some thread of this process holds the turn."""
        return self._lock.locked()

    def held_here(self) -> bool:
        """True when the calling thread holds the turn."""
        return self.holder == threading.get_ident()


def sqlite_file(url: URL) -> str | None:
    """The file a SQLite URL names, as written; None for another backend or an in-memory
    database (no name, ":memory:", "file::memory:…"), which has no file to place or lock.
    """
    return _file_of(url.database) if url.get_backend_name() == "sqlite" else None


def _file_of(database: str | None) -> str | None:
    """sqlite_file's answer for SQLite's `database` part of a URL."""
    if database in (None, "", ":memory:") or database.startswith("file::memory:"):
        return None
    return database


_writers: dict[str, WriterTurn] = {}
_writers_guard = threading.Lock()
_MAX_WRITERS = 32  # turns kept per process; beyond, the idle ones are closed and forgotten


def sqlite_writer_lock(database: str | None) -> WriterTurn:
    """This process's writer turn for one SQLite database file."""
    with _writers_guard:
        turn = _writers.get(database or "")
        if turn is None:
            if len(_writers) >= _MAX_WRITERS:
                for key, idle in list(_writers.items()):
                    if idle.close_if_idle():
                        del _writers[key]
            turn = _writers[database or ""] = WriterTurn(_file_of(database))
        return turn


_SOLO_ENGINE = "dana_solo_engine"


def solo_engine() -> Engine:
    """The app's engine for SoloStatements, made in each process on first use (never across
    a fork): the database of db.engine, every connection autocommitted, no pre-ping.

    db.engine pings a connection that sat idle in its pool for over a second (app.py): on a
    busy webhook that is still a round trip now and then, a third of the CPU of a
    single-statement write. This engine never pings; a statement that finds its pooled
    connection dead (the server restarted) drops the pool and runs once more on a fresh
    connection (SoloStatement.run). On PostgreSQL its pool has the default size (5 + 10
    overflow), beside db.engine's; on SQLite each thread keeps its own connection instead
    (thread_connection).
    """
    def _make() -> Engine:
        # SQLite: each thread keeps its own connection (thread_connection), none is pooled.
        pooling = {"poolclass": NullPool} if db.engine.dialect.name == "sqlite" else {}
        return create_engine(
            db.engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False,
            pool_reset_on_return=None,  # autocommitted: no transaction is ever left to end
            hide_parameters=True, **pooling)

    return app_resource(_SOLO_ENGINE, _make)


class _ThreadConnection(threading.local):
    """The SQLite connection a thread keeps for its SoloStatements, and its engine's."""

    engine: Engine | None = None
    fairy = None


_held = _ThreadConnection()


def thread_connection(engine: Engine):
    """This thread's connection to `engine`'s SQLite file, opened on first use.

    A SoloStatement runs twice per webhook delivery (inline: the routing read, the INSERT): a
    checkout and check-in through the pool cost about as much CPU as the statement itself,
    and with more threads than the pool keeps (a gunicorn worker's request threads plus the
    dispatcher's), the extra connections were opened (with their PRAGMAs) and closed again
    for single statements. A SQLite connection is a file handle: each thread keeps one (closed
    when the thread ends, or when the thread first runs a statement for another engine, e.g.
    a new app in tests).
    """
    held = _held
    if held.engine is not engine or held.fairy is None:
        held.fairy, held.engine = None, None
        held.fairy, held.engine = engine.raw_connection(), engine
    return held.fairy


def _forget_thread_connection() -> None:
    held = _held
    held.fairy, held.engine = None, None


# The main thread's connection is given back while the interpreter is whole: left to the
# garbage collector at exit, its check-in would run the pool's listeners after their modules
# were torn down ("Exception ignored ... 'NoneType' object is not callable").
atexit.register(_forget_thread_connection)


class SoloStatement:
    """One SQL statement, compiled once, run on its own as a whole transaction.

    For the hottest statements (a webhook's event INSERT, the inline intake's routing read),
    where the ORM session and the Core execution machinery cost more than the database does.
    The statement runs autocommitted on a raw connection of solo_engine(): a single statement is
    atomic, so it is committed when run() returns and never half-written. On SQLite a write
    takes the write lock before it reads (as BEGIN IMMEDIATE does, app.py), waiting up to the
    busy timeout (a SELECT takes none); on PostgreSQL it is one round trip instead of three
    (BEGIN, it, COMMIT).

    run(**params) binds the statement's parameters (its literal values are defaults), applies
    the columns' type conversions (e.g. TZDateTime's) and returns (rowcount, rows). A driver
    error comes back as SQLAlchemy's wrapper (OperationalError, IntegrityError...), so
    is_locked() and retry_locked() treat it as any other; a statement whose pooled connection
    turns out dead runs once more on a fresh one (autocommitted, it did not happen, or, in
    the rare case of a connection lost after the server committed, an INSERT is stored twice:
    an event stored twice is still answered once, its messages being unique).
    """

    def __init__(self, statement, params: list[str], *, rowid: bool = False):
        """Keep `statement`; `params`: the names run() is given (an INSERT's columns, or the
        statement's bindparam() names). It is compiled once per kind of database, on first use.

        `rowid`: an INSERT ... RETURNING its integer primary key. On SQLite it then runs
        without RETURNING and the id comes from the cursor's lastrowid (same result shape):
        with RETURNING, SQLite writes at the driver's first step and commits only at the next
        one, so the write lock stays held while the thread waits for the interpreter in
        between (measured, gunicorn 2x4 ingest: 12-14% more deliveries/s, 5-8% less CPU).
        """
        self.statement, self.params, self.rowid = statement, params, rowid
        self._compiled: dict[tuple, tuple] = {}  # by (dialect, driver)

    def _compile(self, dialect) -> tuple:
        key = (dialect.name, dialect.driver)
        compiled = self._compiled.get(key)
        if compiled is None:
            statement = self.statement
            lastrowid = self.rowid and dialect.name == "sqlite"
            if lastrowid:  # the same INSERT, its id from the cursor
                statement = insert(statement.table)
            # An INSERT's columns are the params; an UPDATE's SET is its own (a param named like
            # a column would otherwise be SET too).
            keys = self.params if statement.is_insert else None
            sql = statement.compile(dialect=dialect, column_keys=keys)
            converters = {}
            for bind, name in sql.bind_names.items():
                convert = bind.type.bind_processor(dialect)
                if convert is not None:
                    converters[name] = convert
            compiled = self._compiled[key] = (
                str(sql), sql.construct_params({name: None for name in self.params}),
                sql.positiontup, converters,  # positiontup: qmark drivers' (SQLite) order
                lastrowid, not statement.is_select,
                bool(statement.exported_columns))  # RETURNING or SELECT: rows to fetch
        return compiled

    def run(self, **params) -> tuple[int, list]:
        """Run the statement alone, committed; (rowcount, rows it returned)."""
        engine = solo_engine()
        dialect = engine.dialect
        sql, defaults, positions, converters, lastrowid, writes, returns = \
            self._compile(dialect)
        values = {**defaults, **params}
        for name, convert in converters.items():
            values[name] = convert(values[name])
        bound = tuple(values[name] for name in positions) if positions else values
        sqlite = dialect.name == "sqlite"
        # A read takes no writer's turn: in WAL mode it runs beside the writers.
        turn = sqlite_writer_lock(engine.url.database) if sqlite and writes else None
        if turn is not None and turn.held_here():
            raise RuntimeError("a SoloStatement inside this thread's own open SQLite write "
                               "transaction would wait for itself: commit first")
        for attempt in (1, 2):
            fairy = thread_connection(engine) if sqlite else engine.raw_connection()
            try:
                cursor = fairy.cursor()
                held = turn is not None and turn.acquire(timeout=SQLITE_WRITER_WAIT)
                try:
                    cursor.execute(sql, bound)
                    if lastrowid:
                        return cursor.rowcount, [(cursor.lastrowid,)]
                    # (known when compiled: psycopg builds `description` anew when asked)
                    rows = cursor.fetchall() if returns else []
                    return cursor.rowcount, rows
                finally:
                    if held:
                        turn.release()
                    cursor.close()
            except dialect.loaded_dbapi.Error as exc:
                dead = dialect.is_disconnect(exc, fairy.dbapi_connection, None)
                if dead:  # as SQLAlchemy does: its pool-mates are likely dead too (a restart)
                    fairy.invalidate(exc)
                    engine.dispose(close=False)
                    if sqlite:
                        _forget_thread_connection()
                if not dead or attempt == 2:
                    raise DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error,
                                              hide_parameters=True, connection_invalidated=dead,
                                              dialect=dialect) from exc
                log.warning("database connection lost (%s); running the statement again on "
                            "a new one", exc)
            finally:
                if not sqlite:
                    fairy.close()  # back to the pool (a SQLite one stays with its thread)
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
    info = session.info
    connection = info.get(_SESSION_CONNECTION)
    if connection is None:
        connection = info[_SESSION_CONNECTION] = session.connection()
    return connection.execute(statement, params)


# The session's connection, as execute() last had it from session.connection(), kept in
# session.info while the session's transaction stays the same: asking the session again
# costs more than a simple statement's own execution (its transaction's state machine).
_SESSION_CONNECTION = "dana_connection"


@event.listens_for(Session, "after_transaction_create")
@event.listens_for(Session, "after_transaction_end")
def _forget_session_connection(session, transaction) -> None:
    """A transaction began or ended (a savepoint too, whose SAVEPOINT the session emits when
    asked for its connection): the next execute() asks the session for it again.
    """
    session.info.pop(_SESSION_CONNECTION, None)


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
