"""Named mutual exclusion: one conversation is processed at a time.

With REDIS_URL the lock is a Redis lock shared by every process (web and workers);
without it, a lock per name inside this process (the single-process laptop setup).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

from flask import current_app

_local_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def _local(name: str) -> threading.Lock:
    with _guard:
        lock = _local_locks.get(name)
        if lock is None:
            if len(_local_locks) > 10000:  # bounded: drop idle locks
                for key in [k for k, v in _local_locks.items() if not v.locked()]:
                    del _local_locks[key]
            lock = _local_locks[name] = threading.Lock()
        return lock


@contextmanager
def named_lock(name: str, timeout: float = 60.0):
    """Hold the lock `name` for the duration of the block (waits up to `timeout` seconds)."""
    redis_client = current_app.extensions.get("dana_redis")
    if redis_client is not None:
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
        return
    lock = _local(name)
    if not lock.acquire(timeout=timeout):
        raise TimeoutError(f"could not lock {name} within {timeout}s")
    try:
        yield
    finally:
        lock.release()
