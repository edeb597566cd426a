"""The app's database connections: a pooled PostgreSQL connection that the server dropped
(a restart, an administrator) is replaced, not handed out; SQLite writers of one process
and of several processes take turns on locks instead of SQLite's sleeping busy handler."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import app as app_module
from models_db import db
from utils.db import WriterTurn, sqlite_writer_lock


def test_a_pooled_connection_dropped_by_the_server_is_replaced(app, client, user):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("a SQLite file has no server connection to drop")
        url = db.engine.url
    # the request's connection goes back to the pool when it ends (the test's app context
    # outlives the request: end its session as a served request's own context would)
    assert client.get("/api/auth/me", headers=user["headers"]).status_code == 200
    db.session.remove()
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            killed = conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    finally:
        admin.dispose()
    assert killed >= 1
    time.sleep(app_module.PING_AFTER_IDLE + 0.2)  # idle long enough to be checked
    resp = client.get("/api/auth/me", headers=user["headers"])
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["id"] == user["user"]["id"]


def test_sqlite_writers_of_one_process_take_turns_and_all_commit(app):
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the writer's turn is SQLite's concern")
        with db.engine.begin() as conn:
            conn.execute(text("CREATE TABLE turns (n INTEGER NOT NULL)"))
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with app.app_context():
                for i in range(20):
                    # a read first (outside the transaction), then the write begins it
                    db.session.execute(text("SELECT count(*) FROM turns")).scalar()
                    db.session.execute(text("INSERT INTO turns (n) VALUES (:n)"),
                                       {"n": n * 100 + i})
                    db.session.commit()
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    with app.app_context():
        assert db.session.execute(text("SELECT count(*) FROM turns")).scalar() == 160
        # no writer's turn is left held once the transactions ended
        assert not sqlite_writer_lock(db.engine.url.database).locked()


def test_a_solo_statement_inside_the_threads_own_write_transaction_fails_at_once(app):
    """A SoloStatement runs on a connection of its own: inside the same thread's open SQLite
    write transaction it would wait for itself (the writer's turn, then SQLite's busy timeout,
    20 s in all) before "database is locked". It fails at once instead, and the transaction
    is left as it was.
    """
    from models_db import WebhookEvent, utcnow
    from services.intake import INSERT_EVENT

    row = dict(platform="facebook", raw_body="{}", status="received", attempts=0,
               received_at=utcnow(), request_id=None)
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the writer's turn is SQLite's concern")
        db.session.add(WebhookEvent(**row))
        db.session.flush()  # the session's write transaction has begun: it holds the turn
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="wait for itself"):
            INSERT_EVENT.run(**row)
        assert time.monotonic() - started < 1.0
        db.session.commit()  # the transaction is unharmed
        assert not sqlite_writer_lock(db.engine.url.database).locked()
        # once committed, the same thread's SoloStatement runs
        assert INSERT_EVENT.run(**row)[1][0][0] > 0
        assert db.session.query(WebhookEvent).count() == 2


def test_execute_runs_in_the_sessions_transaction_and_asks_for_its_connection_once(
        app, monkeypatch):
    """utils.db.execute keeps the session's connection for the rest of its transaction (one
    session.connection() per transaction), and follows the session: a rollback, a commit, a
    savepoint rolled back each end what it ran."""
    from sqlalchemy.orm import Session

    from utils.db import execute

    db.session.execute(text("CREATE TABLE exec_probe (n INTEGER)"))
    db.session.commit()
    asked = []
    connection = Session.connection
    monkeypatch.setattr(Session, "connection",
                        lambda self, *a, **kw: asked.append(1) or connection(self, *a, **kw))
    insert_n = text("INSERT INTO exec_probe (n) VALUES (:n)")
    count = text("SELECT count(*) FROM exec_probe")

    execute(insert_n, {"n": 1})
    execute(insert_n, {"n": 2})
    assert execute(count).scalar() == 2 and len(asked) == 1
    db.session.rollback()
    assert execute(count).scalar() == 0 and len(asked) == 2
    execute(insert_n, {"n": 3})
    db.session.commit()
    execute(insert_n, {"n": 4})
    savepoint = db.session.begin_nested()
    execute(insert_n, {"n": 5})
    savepoint.rollback()
    assert execute(count).scalar() == 2
    db.session.commit()
    db.session.remove()
    assert execute(count).scalar() == 2


_OTHER_PROCESS = """
import sys, time
from utils.db import WriterTurn
turn = WriterTurn(sys.argv[1])
print("ready", flush=True)
assert turn.acquire()
print(time.time(), flush=True)
turn.release()
"""


def test_sqlite_writers_of_two_processes_take_turns_on_the_file(tmp_path):
    """The turn spans processes (two gunicorn workers, a web process and the CLI): another
    process's writer waits for this one's turn to end, then takes it at once."""
    database = str(tmp_path / "dana.db")
    mine = WriterTurn(database)
    assert mine.acquire()
    other = subprocess.Popen([sys.executable, "-c", _OTHER_PROCESS, database],
                             stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parent.parent)
    try:
        assert other.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # the other process is waiting for the turn now
        released = time.time()
        mine.release()
        took = float(other.stdout.readline())
        assert other.wait(10) == 0
    finally:
        other.kill()
    assert took >= released  # it waited for this process's turn to end
    assert (tmp_path / "dana.db.writer-lock").exists()
    assert mine.acquire(timeout=1)  # and gave it back
    mine.release()


def test_a_process_that_met_many_databases_keeps_few_writer_lock_files_open(tmp_path):
    """The tests make a database per test: the turns of idle ones are closed."""
    for n in range(100):
        turn = sqlite_writer_lock(str(tmp_path / f"db{n}.sqlite"))
        assert turn.acquire(timeout=1)
        turn.release()
    assert 0 < _open_files_ending(".writer-lock") <= 32


def _open_files_ending(suffix: str) -> int:
    """How many of this process's open file descriptors name a file ending in `suffix`."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").endswith(suffix)
        except OSError:  # the listing's own descriptor, closed since
            pass
    return count
