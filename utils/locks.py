"""Named mutual exclusion across every process on the database: one conversation is processed
at a time, by one thread of one process (web processes, gunicorn workers, `flask worker`s).

named_lock(name) is the one function; its backend follows the configuration (Redis when the
app has a client, else the database's, picked once per app by _database_lock):

- REDIS_URL set: a Redis lock shared by every process (the worker's are leased and renewed by
  its heartbeat: services/rq_queue.LeasedLock).
- PostgreSQL without Redis: a session-level advisory lock (pg_advisory_lock on a 64-bit hash
  of the name), held on a pooled connection of its own for the block; PostgreSQL releases it
  if that connection or its process dies.
- SQLite without Redis: flock(2) on one of LOCK_FILES files in `<database file>.locks/`, picked
  by a hash of the name (bounded: not a file per conversation); the kernel releases it when
  the process dies. Names that share a file wait for each other, briefly.
- anything else (an in-memory database): a lock inside this process only.

Without Redis, the name is first locked inside the process (a threading.Lock per name), so the
threads of one process queue there and only one of them at a time waits on the database or
the file. A named lock is not reentrant: never take one inside another.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from flask import current_app
from sqlalchemy import text

from models_db import db
from utils.db import flock_until, sqlite_file

log = logging.getLogger("dana.locks")

LOCK_FILES = 1024  # SQLite: lock files per database (names are spread over them)

_local_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()
_BACKEND = "dana_lock_backend"


def _local(name: str) -> threading.Lock:
    with _guard:
        lock = _local_locks.get(name)
        if lock is None:
            if len(_local_locks) > 10000:  # bounded: drop idle locks
                for key in [k for k, v in _local_locks.items() if not v.locked()]:
                    del _local_locks[key]
            lock = _local_locks[name] = threading.Lock()
        return lock


def _hash64(name: str) -> int:
    """A stable signed 64-bit number for a name (an advisory lock key, a lock file)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big",
                          signed=True)


@contextmanager
def named_lock(name: str, timeout: float = 60.0):
    """Hold the lock `name` for the duration of the block (waits up to `timeout` seconds,
    then TimeoutError), across every process that shares this database.
    """
    redis_client = current_app.extensions.get("dana_redis")
    if redis_client is not None:
        with _redis_lock(redis_client, name, timeout):
            yield
        return
    lock = _local(name)
    deadline = time.monotonic() + timeout
    if not lock.acquire(timeout=timeout):
        raise TimeoutError(f"could not lock {name} within {timeout}s")
    try:
        with _database_lock()(name, max(0.0, deadline - time.monotonic())):
            yield
    finally:
        lock.release()


@contextmanager
def _redis_lock(redis_client, name: str, timeout: float) -> Iterator[None]:
    lock = redis_client.lock(f"dana:lock:{name}", timeout=timeout * 2,
                             blocking_timeout=timeout)
    if not lock.acquire():
        raise TimeoutError(f"could not lock {name} within {timeout}s")
    try:
        yield
    finally:
        try:
            lock.release()
        except Exception:  # expired while held: nothing left to release
            pass


def _database_lock() -> Callable[[str, float], AbstractContextManager]:
    """The cross-process lock of this app's database (chosen once per app, by its URL)."""
    app = current_app._get_current_object()
    backend = app.extensions.get(_BACKEND)
    if backend is None:
        url = db.engine.url
        if url.get_backend_name() == "postgresql":
            backend = _advisory_lock
        elif sqlite_file(url):
            backend = _FileLocks(f"{os.path.abspath(sqlite_file(url))}.locks")
        else:
            backend = _no_database_lock
        app.extensions[_BACKEND] = backend
    return backend


def _no_database_lock(name: str, timeout: float) -> AbstractContextManager:
    return nullcontext()


# The hot path's two statements, sent as they are (no SQL compilation per lock).
_TRY = "SELECT pg_try_advisory_lock(%s)"
_UNLOCK = "SELECT pg_advisory_unlock(%s)"


@contextmanager
def _advisory_lock(name: str, timeout: float) -> Iterator[None]:
    """pg_advisory_lock(hash of name) on a connection of its own, for the block."""
    key = _hash64(name)
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if not conn.exec_driver_sql(_TRY, (key,)).scalar():
            # Taken: wait for it, at most `timeout` (lock_timeout covers advisory locks).
            conn.execute(text("SELECT set_config('lock_timeout', :ms, false)"),
                         {"ms": f"{max(1, int(timeout * 1000))}ms"})
            try:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            except Exception as exc:
                if "lock timeout" not in str(exc).lower():
                    raise
                raise TimeoutError(f"could not lock {name} within {timeout}s") from None
            finally:
                conn.execute(text("RESET lock_timeout"))
        try:
            yield
        finally:
            try:
                conn.exec_driver_sql(_UNLOCK, (key,))
            except Exception:  # the connection died: the server released the lock with it
                log.warning("advisory lock %s: its connection was lost while held", name)
                conn.invalidate()


class _FileLocks:
    """flock(2) on LOCK_FILES files in one folder next to a SQLite database file."""

    WAIT = (0.001, 0.02)  # first and longest sleep between tries when the file is locked

    def __init__(self, folder: str):
        """Locks in `folder` (created on first use)."""
        self.folder = folder
        self.made = False

    @contextmanager
    def __call__(self, name: str, timeout: float) -> Iterator[None]:
        """Hold the file lock of `name` for the block (TimeoutError after `timeout`)."""
        if not self.made:
            os.makedirs(self.folder, exist_ok=True)
            self.made = True
        path = os.path.join(self.folder, f"{_hash64(name) % LOCK_FILES:04d}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if not flock_until(fd, time.monotonic() + timeout, self.WAIT):
                raise TimeoutError(f"could not lock {name} within {timeout}s")
            yield  # closing the file (below) releases the lock
        finally:
            os.close(fd)
