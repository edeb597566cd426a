"""One conversation is handled by one process at a time, whatever runs the events: two
processes (gunicorn workers, or a web process and a worker) on one database, without Redis.

Meta delivers the same customer message twice (a redelivery: two stored events, one message
id) and two processes run the two events at the same moment. The message is stored once (its
platform id is unique), but the automation decision ("answered yet?") and the reply's send
are only safe if the second run waits for the first: otherwise it finds the first run's reply
still `queued` (the Send API call takes a while) and sends it again: the customer gets the
same answer twice.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from models_db import WebhookEvent, db
from tests.channels.conftest import fb_text
from tests.fakes.graph import Reply
from utils import locks
from utils.config import current_settings

ROOT = Path(__file__).resolve().parents[2]
PSID = "7354923876541234"


def _store(payload: dict, copies: int) -> list[int]:
    """The same delivery stored `copies` times, as Meta's redeliveries would be."""
    rows = [WebhookEvent(platform="facebook", raw_body=json.dumps(payload), status="received")
            for _ in range(copies)]
    db.session.add_all(rows)
    db.session.commit()
    return [row.id for row in rows]


def _run_in_processes(app, tmp_path, overrides: dict, groups: list[list[int]]) -> list:
    """Run each group of event ids in a process of its own, all started together."""
    spec = {"tmp_path": str(tmp_path), "database_url": current_settings(app).DATABASE_URL,
            "overrides": overrides}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.channels._event_process",
                               json.dumps({**spec, "event_ids": ids})], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
             for ids in groups]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outs = [proc.communicate(timeout=120)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert all(proc.returncode == 0 for proc in procs), outs
    return [json.loads(out.strip().splitlines()[-1]) for out in outs]


def test_a_redelivered_message_run_by_two_processes_at_once_is_answered_once(
        app, business, fake_graph, settings_overrides, tmp_path):
    db.session.commit()
    # Each answer takes the Send API a second: long enough for the runs to overlap.
    fake_graph.queue("/me/messages", *[Reply(delay=1.0) for _ in range(4)])
    ids = _store(fb_text("Do you deliver on Sundays?", psid=PSID, mid_="m_redelivered"), 2)
    statuses = _run_in_processes(app, tmp_path, settings_overrides, [[ids[0]], [ids[1]]])
    assert statuses == [["processed"], ["processed"]]
    to_customer = [r for r in fake_graph.requests_to("/me/messages")
                   if r.json.get("recipient") == {"id": PSID} and "message" in r.json]
    assert len(to_customer) == 1, [r.json["message"] for r in to_customer]


@contextmanager
def _held_by_another_process(name: str):
    """Hold `name`'s database lock the way another process's named_lock does: the advisory
    lock on a connection of its own (PostgreSQL), flock on its own open file (SQLite).
    """
    key = locks._hash64(name)
    if db.engine.url.get_backend_name() == "postgresql":
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            assert conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        return
    folder = f"{db.engine.url.database}.locks"
    os.makedirs(folder, exist_ok=True)
    fd = os.open(os.path.join(folder, f"{key % locks.LOCK_FILES:04d}.lock"),
                 os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(fd)


def test_a_conversation_locked_by_another_process_waits_for_it(app):
    name = "conversation:facebook:page:customer"
    with _held_by_another_process(name):
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            with locks.named_lock(name, timeout=0.3):
                pass
        assert time.monotonic() - started >= 0.3
        with locks.named_lock("conversation:facebook:page:someone-else", timeout=0.3):
            pass  # another conversation is not held up
    with locks.named_lock(name, timeout=0.3):  # released by the other process: free
        pass
