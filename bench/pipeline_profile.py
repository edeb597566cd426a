"""In-process profile of the webhook pipeline (what bench/webhooks.py --modes pipeline times
under gunicorn): the same business (connected Page, offline AI, a small knowledge document,
a loopback FakeGraph), N signed deliveries from new customers posted through Flask's test
client, then each stored event run in this thread so that cProfile sees all of it.

    .venv/bin/python bench/pipeline_profile.py                 # SQLite, 200 deliveries
    .venv/bin/python bench/pipeline_profile.py --database-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/pipeline_profile.py --profile /tmp/p.out   # + cProfile, top 40

Prints per delivery: CPU milliseconds of processing (the run, not the intake), SQL statements,
transactions begun, commits and rollbacks (on PostgreSQL each a round trip), the
SoloStatements apart (one statement autocommitted on a raw connection, which the engine's
events do not see: each reply's delivery status; the claim is the intake's INSERT), and the
Send API calls counted by the fake; then where the run's CPU went (Parts): the offline AI's
decision, the Send API call (client side), SQL (SQLAlchemy and the driver), the rest of Dana's
own code, and apart from the run the fake Graph's serving of the calls. The AI decision, the
HTTP call and its serving are the floor that no bookkeeping change can remove.

A tool for finding where the time goes, not a benchmark: the figures that count are
bench/webhooks.py's ratios.
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import pstats
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, text  # noqa: E402

from bench.common import database, temp_workdir  # noqa: E402
from bench.webhooks import (  # noqa: E402
    APP_SECRET,
    EMAIL,
    KNOWLEDGE,
    PAGE_ID,
    PAGE_TOKEN,
    PASSWORD,
    VERIFY_TOKEN,
    Deliveries,
)


class Counter:
    """SQL statements, transactions begun, commits and rollbacks on an engine: on PostgreSQL
    each is a round trip (psycopg sends BEGIN on its own).
    """

    def __init__(self):
        self.statements = self.begins = self.commits = self.rollbacks = self.solo = 0

    def install(self, engine) -> None:
        from utils.db import SoloStatement

        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)
        run, counter = SoloStatement.run, self

        def counted(statement, **params):
            counter.solo += 1
            return run(statement, **params)

        SoloStatement.run = counted  # the raw connection's statements: no engine events

    def _statement(self, *args):
        self.statements += 1

    def _begin(self, conn):
        self.begins += 1

    def _commit(self, conn):
        self.commits += 1

    def _rollback(self, conn):
        self.rollbacks += 1

    def snapshot(self) -> tuple[int, int, int, int, int]:
        """(statements, begins, commits, rollbacks, solo statements) so far."""
        return self.statements, self.begins, self.commits, self.rollbacks, self.solo


class Parts:
    """CPU time (this thread's, time.thread_time) spent inside chosen functions, each counted
    apart: a part entered inside another (SQL inside the AI's knowledge search) is charged
    to the inner one only.
    """

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._local = threading.local()

    def wrap(self, owner, attribute: str, part: str) -> None:
        """Count the CPU of owner.attribute (a function or method) as `part`."""
        original = getattr(owner, attribute)
        parts = self

        @functools.wraps(original)
        def counted(*args, **kwargs):
            stack = parts._stack()
            now = time.thread_time()
            if stack:
                outer, since = stack[-1]
                parts._charge(outer, now - since)
            stack.append((part, now))
            try:
                return original(*args, **kwargs)
            finally:
                end = time.thread_time()
                parts._charge(part, end - stack.pop()[1])
                if stack:
                    stack[-1] = (stack[-1][0], end)

        setattr(owner, attribute, counted)

    def _stack(self) -> list:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def _charge(self, part: str, seconds: float) -> None:
        self.seconds[part] = self.seconds.get(part, 0.0) + seconds  # GIL: one thread at a time

    def reset(self) -> None:
        self.seconds.clear()


def install_parts(fake) -> Parts:
    """Parts over the run's known costs and over the fake Graph's request handling."""
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

    from automation.core import actions
    from automation.platforms.graph_connector import GraphConnector

    parts = Parts()
    parts.wrap(actions, "generate_reply", "AI decision (knowledge search + local answer)")
    parts.wrap(GraphConnector, "post_message", "Send API call, client side (httpx)")
    for method in ("execute", "exec_driver_sql"):
        parts.wrap(Connection, method, "SQL (SQLAlchemy + driver)")
    for method in ("commit", "rollback", "flush"):
        parts.wrap(Session, method, "SQL (SQLAlchemy + driver)")
    # The fake's server threads: parsing the request, answering, its socket work.
    parts.wrap(fake._server.RequestHandlerClass, "handle_one_request",
               "fake Graph serving the call")
    return parts


def build(db_url: str, workdir: Path, graph_url: str):
    """A migrated app on db_url with the bench's business set up; (app, client)."""
    from app import create_app, upgrade_database
    from models_db import db
    from utils.config import load_settings

    settings = load_settings(
        _env_file=None, DANA_ENV="production", DATABASE_URL=db_url,
        INSTANCE_PATH=str(workdir / "instance"), SECRET_KEY="bench-secret-key-" + "s" * 40,
        JWT_SECRET_KEY="bench-jwt-secret-" + "j" * 40,
        ENCRYPTION_KEYS="YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtMTI=",
        META_APP_SECRET=APP_SECRET, META_VERIFY_TOKEN=VERIFY_TOKEN, AI_PROVIDER="local",
        RATE_LIMIT_ENABLED="false", LOG_LEVEL="WARNING", AUTOMATION_QUEUE="inline",
        GRAPH_API_URL=graph_url, GRAPH_RETRY_WAIT_SECONDS="0.01", GRAPH_TIMEOUT_SECONDS="5")
    app = create_app(settings)
    upgrade_database(app)
    client = app.test_client()
    reg = client.post("/api/auth/register", json={"email": EMAIL, "password": PASSWORD,
                                                  "name": "Velo Shop"})
    assert reg.status_code == 201, reg.get_data(as_text=True)
    body = reg.get_json()
    with app.app_context():
        db.session.execute(text("UPDATE user_subscriptions SET tier_id = 'enterprise' "
                                "WHERE user_id = :u"), {"u": body["user"]["id"]})
        db.session.commit()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    for path, payload in (("/api/platforms", {"platform": "facebook", "external_id": PAGE_ID,
                                              "access_token": PAGE_TOKEN, "name": "Velo Page"}),
                          ("/api/knowledge", {"title": "Shop facts", "content": KNOWLEDGE})):
        resp = client.post(path, headers=headers, json=payload)
        assert resp.status_code == 201, resp.get_data(as_text=True)
    return app, client


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default="sqlite")
    p.add_argument("-n", type=int, default=200, help="deliveries (default 200)")
    p.add_argument("--profile", help="write a cProfile of the runs here and print the top")
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--sort", default="cumulative")
    args = p.parse_args(argv)

    from services import automation_queue
    from tests.fakes.graph import FakeGraph

    fake = FakeGraph().start()
    fake.manage(PAGE_TOKEN, PAGE_ID, name="Velo Page")
    parts = install_parts(fake)
    ids: list[tuple] = []
    # collect the stored events (id, and the first step the intake took: the INSERT claimed
    # each for its run); run below
    automation_queue.dispatch = lambda event_id, new=None: ids.append((event_id, new))
    try:
        with temp_workdir("dana-pipeline-profile-") as work, \
                database(work, None if args.database_url == "sqlite" else args.database_url) \
                as db_url:
            app, client = build(db_url, work, fake.base_url)
            deliveries = Deliveries(APP_SECRET, PAGE_ID, 10**15)
            # buffered: the response is read and closed, as a server does
            post = lambda: client.post("/webhooks/facebook", data=raw,  # noqa: E731
                                       headers={"Content-Type": "application/json", **hdrs},
                                       buffered=True)
            for _ in range(5):  # warm-up: caches, first imports
                raw, hdrs = deliveries()
                assert post().status_code == 200
            with app.app_context():
                from automation.core.event_runner import run_event
                from models_db import db
                for event_id, new in ids:
                    run_event(event_id, handed=new.handed if new is not None else None)
                ids.clear()
                counter = Counter()
                counter.install(db.engine)
                sent0 = len(fake.requests_to("/me/messages"))
                t_in = time.process_time()
                for _ in range(args.n):
                    raw, hdrs = deliveries()
                    assert post().status_code == 200
                intake_cpu = time.process_time() - t_in
                intake = counter.snapshot()
                prof = cProfile.Profile() if args.profile else None
                parts.reset()
                t0, w0, th0 = time.process_time(), time.perf_counter(), time.thread_time()
                if prof:
                    prof.enable()
                for event_id, new in ids:
                    status = run_event(event_id,
                                       handed=new.handed if new is not None else None)
                    assert status == "processed", status
                if prof:
                    prof.disable()
                cpu, wall = time.process_time() - t0, time.perf_counter() - w0
                run_cpu = time.thread_time() - th0
                sent = len(fake.requests_to("/me/messages")) - sent0
                n = len(ids)
                run = [now - then for now, then in zip(counter.snapshot(), intake, strict=True)]
                print(f"{db_url.split(':')[0]}: {n} deliveries; intake {intake_cpu / n * 1000:.2f}"
                      " ms CPU each (the routing read and one autocommitted INSERT, which "
                      "claims the event for its run, on a raw connection); "
                      f"processing {cpu / n * 1000:.2f} ms CPU ({wall / n * 1000:.2f} ms wall), "
                      f"{run[0] / n:.1f} statements, {run[1] / n:.1f} transactions begun, "
                      f"{run[2] / n:.1f} commits, {run[3] / n:.1f} rollbacks each (on "
                      f"PostgreSQL each one a round trip), plus {run[4] / n:.1f} SoloStatements "
                      "(one autocommitted statement on a raw connection each: the replies' "
                      f"delivery status); Send API calls {sent}")
                served = "fake Graph serving the call"
                own = run_cpu - sum(v for k, v in parts.seconds.items() if k != served)
                print(f"where the run's CPU went ({run_cpu / n * 1000:.2f} ms per delivery in "
                      "the running thread), ms per delivery:")
                for name, seconds in sorted(parts.seconds.items(), key=lambda kv: -kv[1]):
                    if name != served:
                        print(f"  {seconds / n * 1000:6.2f}  {name}")
                print(f"  {own / n * 1000:6.2f}  Dana's own code (the rest)")
                print(f"and outside the run: {parts.seconds.get(served, 0.0) / n * 1000:.2f} ms "
                      f"per delivery {served} (its threads)")
                if prof:
                    prof.dump_stats(args.profile)
                    stats = pstats.Stats(args.profile)
                    # Deterministic, unlike CPU time on a shared machine: compare these.
                    print(f"profiled: {stats.total_calls / n:.0f} Python function calls per "
                          "delivery")
                    if args.top:
                        stats.sort_stats(args.sort).print_stats(args.top)
                db.engine.dispose()
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
