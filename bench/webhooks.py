"""Benchmark: signed Messenger text deliveries POSTed to Dana's /webhooks/facebook under
gunicorn, against a bare Flask endpoint that only parses the same JSON
(bench/baseline_webhook.py), both served with the same gunicorn settings in the same run.

    .venv/bin/python bench/webhooks.py                    # SQLite and PostgreSQL, both modes
    .venv/bin/python bench/webhooks.py --database-url sqlite --modes ingest
    .venv/bin/python bench/webhooks.py --database-url postgresql://postgres@127.0.0.1:5432/test

Modes:
  ingest    verify, store, dedupe, hand off, 200 (issue 14's target: ratio >= 0.5, CPU per
            request <= 2x the baseline's). The hand-off depends on the database:
            - SQLite: AUTOMATION_QUEUE=inline (the laptop setup, no Redis). The deliveries are
              for a Page that is not connected, so each stored event is then processed in the
              same process and ends `ignored` (parsed, routed to no account): the figure
              includes that processing's CPU, so it is a conservative ingest figure, and
              nothing reaches the AI or the Send API (that is the pipeline mode).
            - PostgreSQL: AUTOMATION_QUEUE=rq, REDIS_URL=redis://127.0.0.1:6379/15 (that Redis
              db is flushed before and after). No worker runs: a request verifies the
              signature, stores the event and hands it to the queue; every event stays
              `received` for a worker.
  pipeline  the full automation inline (AUTOMATION_QUEUE=inline, the default): a connected
            Facebook Page (user registered through the API, plan raised to Enterprise by a
            direct SQL update, POST /api/platforms), the offline local AI, a small knowledge
            document, GRAPH_API_URL pointing at an in-process FakeGraph (tests/fakes/graph.py).
            Every delivery comes from a new customer (unique PSID and mid) so each must get
            exactly one Send API call: an AI answer or the hand-off notice. Two more servers
            in the same rounds, the floors (bench/floor_webhook.py, each with a FakeGraph of
            its own), show what is left once parts of Dana are taken out:
            - floor: verify, parse, one Send API call, 200; no database, no AI: the ceiling
              of any design on this machine;
            - floor + AI: the same, plus Dana's offline AI decision on the business's
              knowledge (the same database, read only) for the text it sends; nothing
              stored: the ceiling of any design that answers with Dana's offline AI.

Every delivery is unique (mid, PSID) and signed with META_APP_SECRET, which the Dana server
has in its environment. Rate limits are ON, as in production (webhooks are exempt from the
API limits; forged-delivery counting never sees an authentic delivery). Each (database,
mode) gets a fresh database (SQLite file in a temp dir, or a new PostgreSQL database dropped
at the end). Only 127.0.0.1 is contacted. Prints a table and the Dana/baseline ratios.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

if __package__ in (None, ""):  # run as a script: make `bench` and the app importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import (  # noqa: E402
    FLOOR_HANDOFF_REPLY,
    GunicornServer,
    LoadResult,
    claimed_redis,
    clean_env,
    dana_env,
    database,
    migrate,
    print_table,
    raise_on_sigterm,
    require_loopback_url,
    run_load,
    temp_workdir,
)

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/15"
APP_SECRET = "bench-meta-app-secret-0123456789abcdef"
VERIFY_TOKEN = "bench-verify-token"
PAGE_ID = "104578263458921"
PAGE_TOKEN = "EAAG-bench-page-token-123"
EMAIL, PASSWORD = "shop@bench.example", "correct horse battery staple"
TARGET_INGEST_RATIO = 0.5       # issue 14: ingest >= 0.5x bare Flask's req/s ...
TARGET_CPU_RATIO = 2.0          # ... at <= 2x its CPU per request
TARGET_PIPELINE_RATIO = 0.2     # full pipeline deliveries/s >= 0.2x bare Flask's req/s


class Floor(NamedTuple):
    """One of the pipeline's floors (bench/floor_webhook.py): a reference without a goal."""

    ai: bool    # it takes Dana's offline AI decision (FLOOR_AI=1)
    what: str   # what it does, for the table


FLOORS = {
    "floor": Floor(False, "verify + one Send API call, no store, no AI"),
    "floor + AI": Floor(True, "verify + Dana's offline AI decision + one Send API call, "
                              "no store"),
}

KNOWLEDGE = (
    "Shipping. We ship to every country in the European Union. Standard delivery takes 3 to 5 "
    "working days and costs 4.90 euros; orders over 50 euros ship free.\n\n"
    "Returns. You can return any item within 30 days of delivery for a full refund. Print the "
    "return label from your order page and drop the parcel at any post office.\n\n"
    "Opening hours. Our shop in Lyon is open Monday to Saturday from 9:00 to 19:00.")
# Some are answered from the knowledge above, the others are handed off (and the customer
# is told a person will reply): one Send API call per delivery either way.
QUESTIONS = [
    "How long does delivery take and what does shipping cost?",
    "Can I return an item and get a refund?",
    "When is the shop in Lyon open?",
    "Do you sell gift cards for the holidays?",
    "I want to talk to a human, my parcel arrived broken!",
]


# ---------------------------------------------------------------------------- deliveries

class Deliveries:
    """A thread-safe factory of signed Messenger text deliveries, each from a new customer
    (unique PSID) with a unique mid; `count` is how many were built (= sent).
    """

    def __init__(self, secret: str, page_id: str, psid_base: int):
        self.secret, self.page_id, self.psid_base = secret.encode(), page_id, psid_base
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self) -> tuple[bytes, dict]:
        with self._lock:
            n = self.count
            self.count += 1
        now = int(time.time() * 1000)
        psid = str(self.psid_base + n)
        payload = {"object": "page", "entry": [{"id": self.page_id, "time": now, "messaging": [{
            "sender": {"id": psid}, "recipient": {"id": self.page_id}, "timestamp": now,
            "message": {"mid": "m_" + uuid.uuid4().hex, "text": QUESTIONS[n % len(QUESTIONS)]}}]}]}
        raw = json.dumps(payload).encode()
        sig = "sha256=" + hmac.new(self.secret, raw, hashlib.sha256).hexdigest()
        return raw, {"X-Hub-Signature-256": sig}


# ---------------------------------------------------------------------------- helpers

def _check(resp: httpx.Response, status: int, what: str, server: GunicornServer) -> dict:
    if resp.status_code != status:
        raise RuntimeError(f"{what} answered {resp.status_code}: {resp.text[:300]}"
                           f"\n--- dana server log ---\n{server.log_tail()}")
    return resp.json() if resp.content else {}


def _engine(db_url: str):
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url)


def db_stats(db_url: str) -> dict:
    """What the run left in the database: events by status, messages by kind."""
    from sqlalchemy import text

    eng = _engine(db_url)
    try:
        with eng.connect() as conn:
            events = dict(conn.execute(text(
                "SELECT status, count(*) FROM webhook_events GROUP BY status")).all())
            inbound = conn.execute(text(
                "SELECT count(*) FROM messages WHERE direction = 'inbound'")).scalar_one()
            outbound = {f"{s}/{st}": n for s, st, n in conn.execute(text(
                "SELECT sender_type, status, count(*) FROM messages WHERE direction = 'outbound' "
                "GROUP BY sender_type, status ORDER BY 1, 2")).all()}
            errors = [r[0] for r in conn.execute(text(
                "SELECT error FROM webhook_events WHERE error IS NOT NULL LIMIT 3")).all()]
    finally:
        eng.dispose()
    return {"events": events, "inbound": inbound, "outbound": outbound, "errors": errors}


def setup_business(dana: GunicornServer, db_url: str) -> str:
    """A user on Enterprise with a connected Page and a knowledge document (pipeline mode);
    the user's id.
    """
    from sqlalchemy import text

    with httpx.Client(base_url=dana.base_url, trust_env=False, timeout=30) as c:
        reg = _check(c.post("/api/auth/register", json={"email": EMAIL, "password": PASSWORD,
                                                       "name": "Velo Shop"}),
                     201, "register", dana)
        user_id = reg["user"]["id"]
        eng = _engine(db_url)
        try:
            with eng.begin() as conn:
                n = conn.execute(text("UPDATE user_subscriptions SET tier_id = 'enterprise' "
                                      "WHERE user_id = :u"), {"u": user_id}).rowcount
        finally:
            eng.dispose()
        if n != 1:
            raise RuntimeError("no subscription row to upgrade after registration")
        headers = {"Authorization": f"Bearer {reg['access_token']}"}
        sub = _check(c.get("/api/subscriptions/user", headers=headers), 200, "subscription", dana)
        if (sub.get("effective_tier") or {}).get("id") != "enterprise":
            raise RuntimeError(f"plan upgrade did not take: {sub}")
        _check(c.post("/api/platforms", headers=headers, json={
            "platform": "facebook", "external_id": PAGE_ID, "access_token": PAGE_TOKEN,
            "name": "Velo Page"}), 201, "POST /api/platforms", dana)
        _check(c.post("/api/knowledge", headers=headers, json={
            "title": "Shop facts", "content": KNOWLEDGE}), 201, "POST /api/knowledge", dana)
    return user_id


def alternate(targets: dict[str, dict], counts: dict[str, int], *, rounds: int,
              **load) -> dict[str, LoadResult]:
    """Like common.run_rounds, with a request count per target: `rounds` alternating rounds
    (the order flips each round) so background load and drift hit every target alike.
    """
    results = {label: LoadResult() for label in targets}
    labels = list(targets)
    for i in range(rounds):
        for label in (labels if i % 2 == 0 else labels[::-1]):
            total = counts[label]
            n = total // rounds + (1 if i < total % rounds else 0)
            if n:
                kw = dict(targets[label])
                settle = kw.pop("settle", None)
                cpu0 = kw["cpu_probe"]() if settle is not None else 0.0
                result = run_load(kw.pop("base_url"), kw.pop("method"), kw.pop("path"),
                                  requests=n, **kw, **load)
                if settle is not None:  # the round ends when its work is done, not accepted
                    result.elapsed += settle()
                    result.server_cpu = kw["cpu_probe"]() - cpu0
                results[label].add(result)
    return results




def settled(db_url: str) -> bool:
    """No event left `received` or `processing` (inline mode processes after the answer)."""
    return not set(db_stats(db_url)["events"]) & {"received", "processing"}


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@dataclass
class Outcome:
    db: str
    mode: str
    dana: LoadResult
    base: LoadResult
    deliveries: int = 0           # sent to dana, warm-ups included
    # pipeline: the floors (FLOORS) in the same rounds, by label
    floors: dict[str, LoadResult] = field(default_factory=dict)
    replies: int | None = None    # Send API calls the fake Graph received (pipeline)
    drain_s: float = 0.0          # after the last response, until the last reply arrived
    queue: str = ""               # AUTOMATION_QUEUE of the Dana server
    stats: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def rate_vs_base(self, r: LoadResult | None) -> float:
        """A server's rate in these rounds against the bare baseline's."""
        return r.rps / self.base.rps if r is not None and self.base.rps else float("nan")

    def cpu_vs_base(self, r: LoadResult) -> float:
        """A server's CPU per request in these rounds against the bare baseline's."""
        base = self.base.cpu_ms_per_request
        return r.cpu_ms_per_request / base if base else float("nan")

    @property
    def ratio(self) -> float:
        return self.rate_vs_base(self.dana)

    @property
    def cpu_ratio(self) -> float:
        return self.cpu_vs_base(self.dana)


# ---------------------------------------------------------------------------- one run

def _check_floor(out: Outcome, label: str, calls: list, deliveries: int) -> None:
    """A floor's Send API calls (its FakeGraph's): one per delivery; and the AI floor's
    answers in the same share as Dana's AI replies (out.stats), within 5 points, or it did
    not decide as Dana's runs did (say, a failing knowledge search that hands everything
    off, which would flatter its rate).
    """
    if len(calls) != deliveries:
        out.problems.append(f"{out.db} pipeline {label}: {len(calls)} Send API calls for "
                            f"{deliveries} deliveries (expected one each)")
    if FLOORS[label].ai and calls:
        answered = sum((r.json or {}).get("message", {}).get("text") != FLOOR_HANDOFF_REPLY
                       for r in calls) / len(calls)
        dana = out.stats["outbound"].get("ai/sent", 0) / max(1, out.deliveries)
        if abs(answered - dana) > 0.05:
            out.problems.append(f"{out.db} pipeline {label}: {answered:.0%} answered by the "
                                f"AI, Dana's runs {dana:.0%}")


def run_one(args, work: Path, db_kind: str, pg_url: str | None, mode: str) -> Outcome:
    """Fresh database + Dana and baseline servers for one (database, mode); measure."""
    fake = None
    floor_fakes: dict[str, object] = {}
    modedir = work / f"{db_kind}-{mode}"
    modedir.mkdir()
    with contextlib.ExitStack() as stack:
        overrides = dict(META_APP_SECRET=APP_SECRET, META_VERIFY_TOKEN=VERIFY_TOKEN,
                         AI_PROVIDER="local", RATE_LIMIT_ENABLED="true")
        if mode == "ingest" and pg_url:
            stack.enter_context(claimed_redis(REDIS_URL, "webhooks"))
            overrides.update(AUTOMATION_QUEUE="rq", REDIS_URL=REDIS_URL)
        elif mode == "ingest":
            overrides.update(AUTOMATION_QUEUE="inline")
        else:
            from tests.fakes.graph import FakeGraph
            fake = FakeGraph().start()
            fake.manage(PAGE_TOKEN, PAGE_ID, name="Velo Page")   # the connect-time check
            stack.callback(fake.stop)
            overrides.update(AUTOMATION_QUEUE="inline", GRAPH_API_URL=fake.base_url,
                             GRAPH_RETRY_WAIT_SECONDS="0.01", GRAPH_TIMEOUT_SECONDS="5")
            for label in FLOORS:  # their own: Dana's replies are counted apart
                floor_fakes[label] = FakeGraph().start()
                stack.callback(floor_fakes[label].stop)
        with database(modedir, pg_url) as db_url:
            env = dana_env(modedir, db_url, **overrides)
            migrate(env, cwd=modedir)
            gun = dict(workers=args.workers, threads=args.threads)
            with GunicornServer("dana", "main:app", env, modedir, **gun) as dana, \
                    GunicornServer("baseline", "bench.baseline_webhook:app", clean_env(),
                                   modedir, **gun) as base:
                dana_bodies = Deliveries(APP_SECRET, PAGE_ID, 10**15)
                base_bodies = Deliveries(APP_SECRET, PAGE_ID, 2 * 10**15)
                floor_bodies = {label: Deliveries(APP_SECRET, PAGE_ID, (3 + n) * 10**15)
                                for n, label in enumerate(FLOORS)}
                floors: dict[str, GunicornServer] = {}
                if mode == "pipeline":
                    owner = setup_business(dana, db_url)
                    for label, floor in FLOORS.items():
                        extra = {"META_APP_SECRET": APP_SECRET,
                                 "GRAPH_API_URL": floor_fakes[label].base_url}
                        # floor + AI: Dana's settings on the same database, for its AI
                        floor_env = (dana_env(modedir, db_url, **(overrides | extra),
                                              FLOOR_AI="1", FLOOR_AI_OWNER=owner)
                                     if floor.ai else clean_env(extra))
                        floors[label] = stack.enter_context(GunicornServer(
                            label.replace(" + ", "-"), "bench.floor_webhook:app", floor_env,
                            modedir, **gun))
                    # one delivery end to end before measuring (the set-up works), and one
                    # to each floor (warm: the AI's first read)
                    with httpx.Client(trust_env=False, timeout=30) as c:
                        for what, server, bodies in (("first delivery", dana, dana_bodies), *(
                                (f"{label}'s first", floors[label], floor_bodies[label])
                                for label in floors)):
                            raw, hdrs = bodies()
                            _check(c.post(server.base_url + "/webhooks/facebook", content=raw,
                                          headers={"Content-Type": "application/json",
                                                   **hdrs}), 200, what, server)
                    if not wait_for(lambda: len(fake.requests_to("/me/messages")) >= 1, 30):
                        raise RuntimeError("the first delivery got no reply within 30 s"
                                           f"\n--- dana server log ---\n{dana.log_tail()}")
                n = args.requests if mode == "ingest" else args.pipeline_requests
                path = "/webhooks/facebook"
                targets = {
                    "dana": dict(base_url=dana.base_url, method="POST", path=path,
                                 body_factory=dana_bodies, cpu_probe=dana.cpu_seconds),
                }
                if mode == "pipeline":
                    # The 200 comes before the automation (the outbox's dispatcher answers
                    # later): a pipeline round lasts until every delivery sent so far got
                    # its Send API call, so deliveries/s is the end-to-end answered rate.
                    def _answered() -> float:
                        t0 = time.monotonic()
                        wait_for(lambda: len(fake.requests_to("/me/messages"))
                                 >= dana_bodies.count, args.drain_timeout)
                        return time.monotonic() - t0
                    targets["dana"]["settle"] = _answered
                    # A floor answers after its Send API call: its rounds end with it.
                    for label, floor in floors.items():
                        targets[label] = dict(base_url=floor.base_url, method="POST",
                                              path=path, body_factory=floor_bodies[label],
                                              cpu_probe=floor.cpu_seconds)
                targets |= {
                    "baseline": dict(base_url=base.base_url, method="POST", path=path,
                                     body_factory=base_bodies, cpu_probe=base.cpu_seconds),
                }
                # The baseline (and the floors) get the ingest count in both modes, so their
                # rounds are long enough to time even when Dana's pipeline rounds are short.
                counts = {"dana": n, "baseline": args.requests} | dict.fromkeys(
                    floors, args.requests)
                results = alternate(targets, counts, rounds=args.rounds,
                                    concurrency=args.concurrency, time_limit=args.time_limit)
                out = Outcome(db_kind, mode, results["dana"], results["baseline"],
                              deliveries=dana_bodies.count,
                              floors={label: results[label] for label in floors})
                for label, r in results.items():
                    if r.errors or r.timed_out or r.requests == 0:
                        out.problems.append(
                            f"{db_kind} {mode} [{label}]: {r.errors} errors"
                            f"{', time limit hit' if r.timed_out else ''}"
                            f"{'; first: ' + r.first_error if r.first_error else ''}")
                if mode == "pipeline":
                    t0 = time.monotonic()
                    expected = out.deliveries - out.dana.errors
                    wait_for(lambda: len(fake.requests_to("/me/messages")) >= expected,
                             args.drain_timeout)
                    out.drain_s = time.monotonic() - t0
                    time.sleep(0.5)  # anything beyond one reply per delivery shows up too
                    out.replies = len([r for r in fake.requests_to("/me/messages")
                                       if r.method == "POST"])
                    if out.replies != out.deliveries:
                        out.problems.append(
                            f"{db_kind} pipeline: {out.replies} Send API calls for "
                            f"{out.deliveries} deliveries (expected one each)")
                out.queue = overrides["AUTOMATION_QUEUE"]
                if out.queue == "inline":   # every event processed (here: ignored)
                    wait_for(lambda: settled(db_url), args.drain_timeout, interval=0.25)
                out.stats = db_stats(db_url)
                unsent = {k: n for k, n in out.stats["outbound"].items()
                          if not k.endswith("/sent")}
                if mode == "pipeline" and unsent:  # the fake answers every call: all are sent
                    out.problems.append(f"{db_kind} pipeline: replies not marked sent: {unsent}")
                for label, floor_fake in floor_fakes.items():
                    _check_floor(out, label, floor_fake.requests_to("/me/messages"),
                                 floor_bodies[label].count)
                stored = sum(out.stats["events"].values())
                if stored != out.deliveries:
                    out.problems.append(f"{db_kind} {mode}: {stored} events stored for "
                                        f"{out.deliveries} deliveries")
                if mode == "ingest":
                    expected = "ignored" if out.queue == "inline" else "received"
                    if out.stats["events"].get(expected, 0) != out.deliveries:
                        out.problems.append(f"{db_kind} ingest: events {out.stats['events']}, "
                                            f"expected {out.deliveries} {expected}")
                if out.problems:
                    tail = dana.log_tail(2000)
                    if tail.strip():
                        out.problems.append("dana log tail:\n" + tail)
                return out


# ---------------------------------------------------------------------------- main

def _fmt_ratio(r: float) -> str:
    return f"{r:.2f}" if r >= 0.01 else f"{r:.4f}"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", action="append", default=None,
                   help="'sqlite' or a PostgreSQL server URL on 127.0.0.1 (a fresh database is "
                        "created on it and dropped afterwards); repeatable; default: sqlite and "
                        f"{DEFAULT_PG}")
    p.add_argument("--modes", default="ingest,pipeline",
                   help="comma-separated: ingest, pipeline (default both)")
    p.add_argument("--requests", type=int, default=3000,
                   help="measured deliveries per server in ingest mode (default 3000)")
    p.add_argument("--pipeline-requests", type=int, default=600,
                   help="measured deliveries per server in pipeline mode (default 600)")
    p.add_argument("--concurrency", type=int, default=8,
                   help="concurrent keep-alive connections (default 8)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--threads", type=int, default=4,
                   help="gthread threads per worker (default 4)")
    p.add_argument("--rounds", type=int, default=3,
                   help="alternating dana/baseline rounds per scenario (default 3)")
    p.add_argument("--time-limit", type=float, default=30.0,
                   help="hard limit in seconds for each measured round (default 30)")
    p.add_argument("--drain-timeout", type=float, default=60.0,
                   help="pipeline: seconds to wait for the last replies (default 60)")
    args = p.parse_args(argv)
    args.database_url = args.database_url or ["sqlite", DEFAULT_PG]
    for url in args.database_url:
        if url != "sqlite":
            require_loopback_url(url, "--database-url")
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.modes or set(args.modes) - {"ingest", "pipeline"}:
        p.error("--modes takes ingest and/or pipeline")
    if min(args.requests, args.pipeline_requests, args.concurrency, args.workers, args.threads,
           args.rounds) < 1:
        p.error("counts must be positive")
    return args


def measure(args: argparse.Namespace) -> list[Outcome]:
    """Run every (database, mode) of `args`, printing one progress line each."""
    outcomes: list[Outcome] = []
    with temp_workdir("dana-bench-webhooks-") as work:
        for url in args.database_url:
            db_kind = "sqlite" if url == "sqlite" else "postgresql"
            for mode in args.modes:
                t0 = time.perf_counter()
                out = run_one(args, work, db_kind, None if url == "sqlite" else url, mode)
                outcomes.append(out)
                d, b = out.dana, out.base
                extra = (f"; {out.replies} replies for {out.deliveries} deliveries"
                         if mode == "pipeline"
                         else f" ({out.queue}); events {out.stats['events']}")
                print(f"  {db_kind:<10} {mode:<8} dana {d.rps:7.1f} req/s, baseline "
                      f"{b.rps:7.1f} req/s, ratio {_fmt_ratio(out.ratio)}{extra} "
                      f"[{time.perf_counter() - t0:.0f} s]", flush=True)
    return outcomes


def figure_rows(outcomes: list[Outcome]) -> list[dict]:
    """The issue-14 figures of some outcomes as rows for `make bench`'s table (see `rows`)."""
    out = []
    for o in outcomes:
        d, b = o.dana, o.base
        ok = not o.problems
        if o.mode == "ingest":
            where = f"{o.db}, {o.queue}"
            out.append(dict(figure=f"webhook ingest ({where})", dana=round(d.rps, 1),
                            baseline=round(b.rps, 1), unit="req/s", ratio=round(o.ratio, 2),
                            goal=f">= {TARGET_INGEST_RATIO}x",
                            passed=ok and o.ratio >= TARGET_INGEST_RATIO))
            out.append(dict(figure=f"webhook ingest CPU/request ({where})",
                            dana=round(d.cpu_ms_per_request, 2),
                            baseline=round(b.cpu_ms_per_request, 2), unit="ms CPU",
                            ratio=round(o.cpu_ratio, 2), goal=f"<= {TARGET_CPU_RATIO}x",
                            passed=ok and o.cpu_ratio <= TARGET_CPU_RATIO))
        else:
            out.append(dict(figure=f"webhook full pipeline ({o.db}, inline, offline AI)",
                            dana=round(d.rps, 1), baseline=round(b.rps, 1),
                            unit="deliveries/s", ratio=round(o.ratio, 2),
                            goal=f">= {TARGET_PIPELINE_RATIO}x",
                            passed=ok and o.ratio >= TARGET_PIPELINE_RATIO))
            for label, r in o.floors.items():  # references, not goals: the same rounds
                out.append(dict(figure=f"webhook pipeline {label}: {FLOORS[label].what} "
                                       f"(beside {o.db})",
                                dana=round(r.rps, 1), baseline=round(b.rps, 1),
                                unit="deliveries/s", ratio=round(o.rate_vs_base(r), 2),
                                goal="-", passed=None))
    return out


def rows(database_url: str) -> list[dict]:
    """The webhook figures for one database, for bench/run.py (`make bench`).

    `database_url` is "sqlite" (or any sqlite:// URL: a fresh file in a temp dir is used) or
    a PostgreSQL server URL on 127.0.0.1 (a fresh database is created on it and dropped).
    Runs both modes with the default counts (about 1-2 minutes per database) and returns
    dicts with the keys figure, dana, baseline, unit, ratio, goal, passed:
      - "webhook ingest (<db>, <queue>)": req/s, ratio = dana/baseline, goal >= 0.5x
      - "webhook ingest CPU/request (<db>, <queue>)": ms CPU, ratio = dana/baseline, <= 2x
      - "webhook full pipeline (<db>, inline, offline AI)": deliveries/s, goal >= 0.2x
      - "webhook pipeline <floor>: ... (beside <db>)", one per FLOORS: that floor's
        deliveries/s in the same rounds, ratio to the baseline; no goal (passed None): the
        ceiling of any design (floor), of any design answering with Dana's AI (floor + AI)
    A row fails (passed False) also when the run had problems (errors, lost or unprocessed
    events, a missing or extra reply); those are printed to stderr.
    """
    url = "sqlite" if not database_url or database_url.startswith("sqlite") else database_url
    args = parse_args(["--database-url", url])
    outcomes = measure(args)
    for p in (p for o in outcomes for p in o.problems):
        print(f"bench webhooks: problem: {p}", file=sys.stderr)
    return figure_rows(outcomes)


def main(argv=None) -> int:
    args = parse_args(argv)
    raise_on_sigterm()
    started = time.perf_counter()
    print(f"dana webhook bench: gunicorn {args.workers} workers x {args.threads} threads "
          f"(gthread), {args.concurrency} connections, {args.rounds} alternating rounds; "
          f"ingest {args.requests} / pipeline {args.pipeline_requests} deliveries per server; "
          f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    outcomes = measure(args)

    def line(o: Outcome, label: str, r: LoadResult, errors: int) -> list[str]:
        b = o.base
        return [label, f"{r.rps:.1f}", f"{b.rps:.1f}", _fmt_ratio(o.rate_vs_base(r)),
                f"{r.p(50):.1f}", f"{r.p(99):.1f}", f"{b.p(50):.1f}", f"{b.p(99):.1f}",
                f"{r.cpu_ms_per_request:.2f}", f"{b.cpu_ms_per_request:.2f}",
                f"{o.cpu_vs_base(r):.1f}", str(errors)]

    table = []
    for o in outcomes:
        table.append(line(o, f"{o.mode} ({o.db})", o.dana, o.dana.errors + o.base.errors))
        for label, r in o.floors.items():
            table.append(line(o, f"  {label} ({o.db} run)", r, r.errors))
    print()
    print_table(["mode (database)", "dana req/s", "base req/s", "ratio", "dana p50", "dana p99",
                 "base p50", "base p99", "dana cpu/req", "base cpu/req", "cpu ratio", "errors"],
                table)
    print("(latencies and cpu/req in ms; ratio = dana/baseline throughput; cpu/req = CPU time "
          "of the gunicorn master+workers\n per request, not counting PostgreSQL's or Redis's "
          "own processes. Pipeline: the 200 is sent before the automation runs (the\n "
          "outbox's dispatcher threads), so each pipeline round lasts until every delivery "
          "sent so far got its\n Send API call: req/s is the end-to-end answered rate, "
          "latencies are the 200's; the floors are bench/floor_webhook.py: no store, and no AI or\n"
          " Dana's offline AI decision only)")
    print()
    for o in outcomes:
        st = o.stats
        if o.mode == "ingest":
            verdict = "met" if o.ratio >= TARGET_INGEST_RATIO else "NOT met"
            print(f"ingest ({o.db}, {o.queue}): ratio {o.ratio:.2f} — target >= "
                  f"{TARGET_INGEST_RATIO} {verdict}; CPU/request {o.cpu_ratio:.1f}x the "
                  f"baseline's (target <= {TARGET_CPU_RATIO}); {o.deliveries} deliveries, "
                  f"events {st['events']}")
        else:
            print(f"pipeline ({o.db}): {o.dana.rps:.1f} deliveries/s answered end to end "
                  f"(ratio {_fmt_ratio(o.ratio)}); Send API calls received by the fake Graph: "
                  f"{o.replies} for {o.deliveries} deliveries "
                  f"({'one each' if o.replies == o.deliveries else 'MISMATCH'}; last one "
                  f"{o.drain_s:.1f} s after the last response); events {st['events']}; "
                  f"inbound messages {st['inbound']}; outbound {st['outbound']}")
            for label, r in o.floors.items():
                if r.rps:
                    print(f"  the {label} in the same rounds: {r.rps:.1f} deliveries/s "
                          f"({_fmt_ratio(o.rate_vs_base(r))} of the baseline); Dana's pipeline "
                          f"runs at {o.dana.rps / r.rps:.2f}x it")
        if st.get("errors"):
            print(f"  event errors (first {len(st['errors'])}): {st['errors']}")
    summary = ", ".join(f"{o.mode}/{o.db} {_fmt_ratio(o.ratio)}" for o in outcomes)
    print(f"\nratio dana/baseline throughput: {summary}  "
          f"[total {time.perf_counter() - started:.0f} s]")
    problems = [p for o in outcomes for p in o.problems]
    if problems:
        print("bench: problems:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
