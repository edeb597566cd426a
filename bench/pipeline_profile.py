"""In-process profile of the webhook pipeline (what bench/webhooks.py --modes pipeline times
under gunicorn): the same business (connected Page, offline AI, a small knowledge document,
a loopback FakeGraph), N signed deliveries from new customers posted through Flask's test
client, then each stored event run in this thread so that cProfile sees all of it.

    .venv/bin/python bench/pipeline_profile.py                 # SQLite, 200 deliveries
    .venv/bin/python bench/pipeline_profile.py --database-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/pipeline_profile.py --profile /tmp/p.out   # + cProfile, top 40

Prints per delivery: CPU milliseconds of processing (the run, not the intake), SQL
statements, commits (transactions that wrote), and the Send API calls counted by the fake.
A tool for finding where the time goes, not a benchmark: the figures that count are
bench/webhooks.py's ratios.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
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
    """SQL statements and write transactions on every engine of this process."""

    def __init__(self):
        self.statements = self.commits = 0

    def install(self, engine) -> None:
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, *args):
        self.statements += 1

    def _commit(self, conn):
        self.commits += 1


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
    ids: list[int] = []
    # collect the stored events' ids (the intake also passes channel and payload); run below
    automation_queue.dispatch = lambda event_id, *delivery: ids.append(event_id)
    try:
        with temp_workdir("dana-pipeline-profile-") as work, \
                database(work, None if args.database_url == "sqlite" else args.database_url) \
                as db_url:
            app, client = build(db_url, work, fake.base_url)
            deliveries = Deliveries(APP_SECRET, PAGE_ID, 10**15)
            post = lambda: client.post("/webhooks/facebook", data=raw,  # noqa: E731
                                       headers={"Content-Type": "application/json", **hdrs})
            for _ in range(5):  # warm-up: caches, first imports
                raw, hdrs = deliveries()
                assert post().status_code == 200
            with app.app_context():
                from automation.core.event_runner import run_event
                from models_db import db
                for event_id in ids:
                    run_event(event_id)
                ids.clear()
                counter = Counter()
                counter.install(db.engine)
                sent0 = len(fake.requests_to("/me/messages"))
                t_in = time.process_time()
                for _ in range(args.n):
                    raw, hdrs = deliveries()
                    assert post().status_code == 200
                intake_cpu = time.process_time() - t_in
                intake_stmts, intake_commits = counter.statements, counter.commits
                prof = cProfile.Profile() if args.profile else None
                t0, w0 = time.process_time(), time.perf_counter()
                if prof:
                    prof.enable()
                for event_id in ids:
                    status = run_event(event_id)
                    assert status == "processed", status
                if prof:
                    prof.disable()
                cpu, wall = time.process_time() - t0, time.perf_counter() - w0
                sent = len(fake.requests_to("/me/messages")) - sent0
                n = len(ids)
                stmts = counter.statements - intake_stmts
                commits = counter.commits - intake_commits
                print(f"{db_url.split(':')[0]}: {n} deliveries; intake {intake_cpu / n * 1000:.2f}"
                      f" ms CPU, {intake_stmts / n:.1f} statements, {intake_commits / n:.1f} "
                      f"commits each; processing {cpu / n * 1000:.2f} ms CPU "
                      f"({wall / n * 1000:.2f} ms wall), {stmts / n:.1f} statements, "
                      f"{commits / n:.1f} commits each; Send API calls {sent}")
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
