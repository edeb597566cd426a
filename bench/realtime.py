"""Benchmark: real-time notifications and webhook-to-reply throughput on the production
topology (gunicorn -c gunicorn.conf.py instances, Redis, RQ workers), all on 127.0.0.1.

    .venv/bin/python bench/realtime.py                        # SQLite, both parts
    .venv/bin/python bench/realtime.py --database-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/realtime.py --part latency --clients 200

Part 1, latency: two web instances sharing REDIS_URL; `--clients` real python-socketio
clients (WebSocket transport, in 4 client processes) are connected, `--users` users with
clients/users sockets each, every user's sockets split across both instances.
  baseline   raw Redis pub/sub: this process PUBLISHes a timestamp, one subscriber process
             receives it (the floor of any cross-process notification through Redis)
  emit       this process (a separate process, as an RQ worker would be) emits an event to
             one user's room through the Socket.IO Redis queue; measured send -> receive on
             every one of that user's sockets (both instances)
  webhook    a signed Messenger delivery POSTed to an instance (inline automation): measured
             from the POST to the `new_message` on each of the page owner's sockets
Percentiles are over all (event, socket) receipts; ratios are p50 / baseline p50.

Part 2, throughput: deliveries from new customers to a connected Page (Enterprise plan,
offline local AI, a knowledge document; GRAPH_API_URL -> an in-process FakeGraph), each of
which gets exactly one Send API call (an AI answer or the hand-off notice). Measured from the
first POST until the fake Graph has every reply. Modes, each on a fresh database:
  inline     AUTOMATION_QUEUE=inline, processed in the web instance after its 200 (baseline)
  rq x1      AUTOMATION_QUEUE=rq with one `flask worker`
  rq x2      the same with two workers
Every run uses one Redis database claimed like the tests claim theirs (flushed before and
after). Prints two tables and the ratios.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and the app importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import (  # noqa: E402
    LOOPBACK,
    PYTHON,
    ROOT,
    GunicornServer,
    claimed_redis,
    dana_env,
    database,
    migrate,
    percentile,
    print_table,
    raise_on_sigterm,
    temp_workdir,
)

REDIS_URL = "redis://127.0.0.1:6379/14"
APP_SECRET = "bench-realtime-app-secret-0123456789"
CLIENT_PROCESSES = 4
KNOWLEDGE = (
    "Shipping. We ship to every country in the European Union. Standard delivery takes 3 to 5 "
    "working days and costs 4.90 euros; orders over 50 euros ship free.\n\n"
    "Returns. You can return any item within 30 days of delivery for a full refund.\n\n"
    "Opening hours. Our shop in Lyon is open Monday to Saturday from 9:00 to 19:00.")
QUESTIONS = ["How long does delivery take and what does shipping cost?",
             "Can I return an item and get a refund?",
             "Do you sell gift cards for the holidays?",
             "I want to talk to a human, my parcel arrived broken!"]


# ---------------------------------------------------------------------------- infrastructure

class Instance(GunicornServer):
    """One web instance as production runs it: gunicorn -c gunicorn.conf.py main:app."""

    def start(self) -> "Instance":
        from bench.common import _die_with_parent

        self.env = {**self.env, "HOST": LOOPBACK, "PORT": str(self.port),
                    "GUNICORN_THREADS": str(self.threads), "GUNICORN_ACCESSLOG": "",
                    "GUNICORN_LOGLEVEL": "warning", "GUNICORN_GRACEFUL_TIMEOUT": "2"}
        cmd = [PYTHON, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "main:app"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=self.env, cwd=self.cwd, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        self._wait_ready()
        return self


class Worker:
    """One `flask --app main worker` process (own session: stop() kills its scheduler too)."""

    def __init__(self, name: str, env: dict, cwd: Path):
        from bench.common import _die_with_parent

        self.log_path = cwd / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([PYTHON, "-m", "flask", "--app", "main", "worker"],
                                     env=env, cwd=cwd, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=_die_with_parent)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._log.close()


def wait_workers(redis_url: str, running: list[Worker], timeout: float = 60.0) -> None:
    """Until every worker has said it is alive (services/rq_queue.WORKERS_KEY)."""
    import redis

    from services.rq_queue import WORKERS_KEY

    connection = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while connection.hlen(WORKERS_KEY) < len(running):
        dead = [w for w in running if not w.alive()]
        if dead:
            raise RuntimeError(f"a worker exited: {dead[0].log_path.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers not registered after {timeout:.0f}s")
        time.sleep(0.1)
    connection.close()


def _sql(db_url: str, statement: str, **params) -> int:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    eng = create_engine(url)
    try:
        with eng.begin() as conn:
            return conn.execute(text(statement), params).rowcount
    finally:
        eng.dispose()


def business(base_url: str, db_url: str, graph, page_id: str, knowledge: bool = False) -> dict:
    """A user (Enterprise plan by direct SQL, as bench/webhooks.py does) with a connected Page
    (its token registered in the fake Graph, which Dana asks who the token is).
    """
    token = f"EAAG-bench-{page_id}-token"
    graph.manage(token, page_id, name="Bench Page")
    with httpx.Client(base_url=base_url, trust_env=False, timeout=30) as c:
        resp = c.post("/api/auth/register", json={
            "email": f"bench-{uuid.uuid4().hex[:10]}@example.com",
            "password": "correct horse battery staple", "name": "Bench Shop"})
        if resp.status_code != 201:
            raise RuntimeError(f"register answered {resp.status_code}: {resp.text[:300]}")
        user = resp.json()
        if _sql(db_url, "UPDATE user_subscriptions SET tier_id = 'enterprise' WHERE user_id = :u",
                u=user["user"]["id"]) != 1:
            raise RuntimeError("no subscription row to upgrade after registration")
        headers = {"Authorization": f"Bearer {user['access_token']}"}
        resp = c.post("/api/platforms", headers=headers, json={
            "platform": "facebook", "external_id": page_id,
            "access_token": token, "name": "Bench Page"})
        if resp.status_code != 201:
            raise RuntimeError(f"POST /api/platforms answered {resp.status_code}: "
                               f"{resp.text[:300]}")
        if knowledge:
            resp = c.post(
                "/api/knowledge",
                headers=headers,
                json={"title": "Shop facts", "content": KNOWLEDGE},
            )
            if resp.status_code != 201:
                raise RuntimeError(f"POST /api/knowledge answered {resp.status_code}")
    user["page_id"] = page_id
    return user


def delivery(page_id: str, text: str, psid: str) -> tuple[bytes, dict]:
    now = int(time.time() * 1000)
    raw = json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": page_id,
                    "time": now,
                    "messaging": [
                        {
                            "sender": {"id": psid},
                            "recipient": {"id": page_id},
                            "timestamp": now,
                            "message": {"mid": "m_" + uuid.uuid4().hex, "text": text},
                        }
                    ],
                }
            ],
        }
    ).encode()
    sig = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Hub-Signature-256": sig, "Content-Type": "application/json"}


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def summary(samples: list[float]) -> tuple[str, str]:
    return (f"{percentile(samples, 50) * 1000:.1f}", f"{percentile(samples, 99) * 1000:.1f}")


# ---------------------------------------------------------------------------- client processes


def _client_process(assignments, ready, results, stop) -> None:
    """Connect python-socketio clients; record send -> receive delays of bench events."""
    import socketio

    samples: dict[str, list[float]] = {"emit": [], "webhook": []}
    lock = threading.Lock()

    def on_ping(data):
        delay = time.time() - data["t"]
        with lock:
            samples["emit"].append(delay)

    def on_message(data):
        now = time.time()
        text = (data.get("message") or {}).get("text") or ""
        if data["message"]["direction"] == "inbound" and text.startswith("bench "):
            with lock:
                samples["webhook"].append(now - float(text.split()[2]))

    clients = []
    try:
        for base_url, token in assignments:
            sio = socketio.Client(reconnection=False)
            sio.on("bench_ping", on_ping)
            sio.on("new_message", on_message)
            sio.connect(base_url, auth={"token": token}, transports=["websocket"], wait_timeout=30)
            clients.append(sio)
        ready.put(("ok", len(clients)))
    except Exception as exc:  # noqa: BLE001
        ready.put(("error", f"{type(exc).__name__}: {exc}"))
        os._exit(1)
    stop.wait()
    with lock:
        results.put(samples)
    results.close()
    results.join_thread()
    os._exit(0)  # the OS closes the sockets (a polite close waits 3 s per WebSocket)


def _raw_subscriber(redis_url, channel, ready, results, stop) -> None:
    """The baseline: one plain Redis pub/sub subscriber recording publish -> receive."""
    import redis

    pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    ready.put(("ok", 1))
    samples = []
    while not stop.is_set():
        message = pubsub.get_message(timeout=0.2)
        if message and message["type"] == "message":
            samples.append(time.time() - float(message["data"]))
    results.put({"raw": samples})
    results.close()
    results.join_thread()
    os._exit(0)


def run_latency(args, work: Path, db_url: str, redis_url: str) -> list[list[str]]:
    """Part 1: the three latency scenarios with args.clients sockets connected."""
    from flask_socketio import SocketIO

    from tests.fakes.graph import FakeGraph
    from utils.realtime import channel_for, user_room

    ctx = mp.get_context("spawn")
    fake = FakeGraph().start()
    threads = args.clients // 2 + 30  # each WebSocket holds a thread (gunicorn.conf.py)
    env = dana_env(
        work,
        db_url,
        META_APP_SECRET=APP_SECRET,
        REDIS_URL=redis_url,
        AI_PROVIDER="local",
        GRAPH_API_URL=fake.base_url,
        AUTOMATION_QUEUE="inline",
        GRAPH_RETRY_WAIT_SECONDS="0.01",
    )
    migrate(env, work)
    procs: list = []
    ready, results, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    with (
        Instance("web-1", "main:app", env, work, threads=threads) as one,
        Instance("web-2", "main:app", env, work, threads=threads) as two,
    ):
        instances = [one, two]
        try:
            print(f"  registering {args.users} users ...", flush=True)
            users = [
                business(one.base_url, db_url, fake, str(10**14 + i)) for i in range(args.users)
            ]
            per_user = args.clients // args.users
            sockets = [
                (instances[j % 2].base_url, u["access_token"])
                for u in users
                for j in range(per_user)
            ]
            chunks = [sockets[i::CLIENT_PROCESSES] for i in range(CLIENT_PROCESSES)]
            for chunk in chunks:
                p = ctx.Process(target=_client_process, args=(chunk, ready, results, stop))
                p.start()
                procs.append(p)
            raw_channel = f"bench-raw-{uuid.uuid4().hex}"
            p = ctx.Process(
                target=_raw_subscriber, args=(redis_url, raw_channel, ready, results, stop)
            )
            p.start()
            procs.append(p)
            connected = 0
            for _ in procs:
                status, value = ready.get(timeout=180)
                if status != "ok":
                    raise RuntimeError(f"a client process failed: {value}")
                connected += value
            print(f"  {connected - 1} Socket.IO clients connected on 2 instances", flush=True)
            time.sleep(1.0)

            import redis

            publisher = redis.Redis.from_url(redis_url)
            interval = 1.0 / args.rate
            print(f"  baseline: {args.events} raw Redis publishes ...", flush=True)
            for _ in range(args.events):
                publisher.publish(raw_channel, repr(time.time()))
                time.sleep(interval)

            print(f"  emit: {args.events} Socket.IO events through Redis ...", flush=True)
            emitter = SocketIO(message_queue=redis_url, channel=channel_for(redis_url))
            for n in range(args.events):
                user = users[n % len(users)]
                emitter.emit(
                    "bench_ping", {"n": n, "t": time.time()}, to=user_room(user["user"]["id"])
                )
                time.sleep(interval)

            print(f"  webhook: {args.webhooks} deliveries ...", flush=True)
            statuses = []
            with httpx.Client(trust_env=False, timeout=30) as c:
                # Warm-up, not measured: each instance's first delivery loads the local AI's
                # models and fills caches.
                for n, instance in enumerate(instances):
                    raw, headers = delivery(users[n]["page_id"], "warm-up", str(6 * 10**15 + n))
                    c.post(instance.base_url + "/webhooks/facebook", content=raw, headers=headers)
                wait_for(lambda: len(fake.requests_to("/me/messages")) >= len(instances), 60)
                fake.requests.clear()
                for n in range(args.webhooks):
                    user = users[n % len(users)]
                    raw, headers = delivery(
                        user["page_id"], f"bench {n} {time.time():.6f}", str(7 * 10**15 + n)
                    )
                    statuses.append(
                        c.post(
                            instances[n % 2].base_url + "/webhooks/facebook",
                            content=raw,
                            headers=headers,
                        ).status_code
                    )
                    time.sleep(1.0 / args.webhook_rate)
            wait_for(lambda: len(fake.requests_to("/me/messages")) >= args.webhooks, 60)
            time.sleep(1.0)
            stop.set()
            merged: dict[str, list[float]] = {"raw": [], "emit": [], "webhook": []}
            for _ in procs:
                for key, values in results.get(timeout=60).items():
                    merged[key].extend(values)
        finally:
            stop.set()
            for p in procs:
                p.join(timeout=10)
                if p.is_alive():
                    p.kill()
            fake.stop()
    if any(s != 200 for s in statuses):
        print(f"  warning: webhook answers {sorted(set(statuses))}", flush=True)
    base_p50 = percentile(merged["raw"], 50)
    rows = []
    for label, key, expected in (
        ("baseline: raw Redis pub/sub", "raw", args.events),
        ("emit via Redis -> room", "emit", args.events * per_user),
        ("webhook -> new_message", "webhook", args.webhooks * per_user),
    ):
        p50, p99 = summary(merged[key])
        ratio = percentile(merged[key], 50) / base_p50 if base_p50 else float("nan")
        rows.append([label, f"{len(merged[key])}/{expected}", p50, p99, f"{ratio:.1f}"])
    return rows


# ---------------------------------------------------------------------------- throughput


def run_throughput(
    args, work: Path, db_url: str, redis_url: str | None, mode: str, workers: int
) -> dict:
    """Part 2, one mode: post args.deliveries deliveries, time until every reply is sent."""
    from tests.fakes.graph import FakeGraph

    fake = FakeGraph().start()
    overrides = dict(
        META_APP_SECRET=APP_SECRET,
        AI_PROVIDER="local",
        GRAPH_API_URL=fake.base_url,
        GRAPH_RETRY_WAIT_SECONDS="0.01",
        AUTOMATION_QUEUE=mode,
    )
    if mode == "rq":
        overrides["REDIS_URL"] = redis_url
    env = dana_env(work, db_url, **overrides)
    migrate(env, work)
    running: list[Worker] = []
    try:
        with Instance("web", "main:app", env, work, threads=50) as web:
            owner = business(web.base_url, db_url, fake, "104578263458921", knowledge=True)
            for i in range(workers):
                running.append(Worker(f"worker-{i + 1}", env, work))
            if running:
                wait_workers(redis_url, running)

            def post(n: int) -> int:
                raw, headers = delivery(
                    owner["page_id"], QUESTIONS[n % len(QUESTIONS)], str(8 * 10**15 + n)
                )
                with httpx.Client(trust_env=False, timeout=60) as c:
                    return c.post(
                        web.base_url + "/webhooks/facebook", content=raw, headers=headers
                    ).status_code

            # Warm-up, end to end, not measured: a few deliveries so that every process that
            # will answer has loaded the local AI's models.
            warm = 4
            for n in range(-warm, 0):
                post(n)
            if not wait_for(lambda: len(fake.requests_to("/me/messages")) >= warm, 60):
                raise RuntimeError(f"{mode} x{workers}: the warm-up deliveries got no reply")
            total = args.deliveries + warm
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                statuses = list(pool.map(post, range(args.deliveries)))
            posted = time.perf_counter() - t0
            done = wait_for(
                lambda: len(fake.requests_to("/me/messages")) >= total, args.drain_timeout
            )
            elapsed = time.perf_counter() - t0
            time.sleep(0.5)  # a second reply to any delivery would show up now
            replies = len(fake.requests_to("/me/messages")) - warm
    finally:
        for w in running:
            w.stop()
        fake.stop()
    return {
        "label": f"{mode}" + (f" x{workers}" if mode == "rq" else ""),
        "ok": sum(s == 200 for s in statuses),
        "replies": replies,
        "posted_s": posted,
        "elapsed_s": elapsed,
        "complete": done,
        "rate": replies / elapsed if elapsed else 0.0,
    }


# ---------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (also what rows() passes)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["latency", "throughput", "both"], default="both")
    parser.add_argument(
        "--database-url",
        default="sqlite",
        help="'sqlite' (a temp file) or a PostgreSQL URL on 127.0.0.1 "
        "(a fresh database is created next to it and dropped)",
    )
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--events", type=int, default=300, help="events per latency scenario")
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--webhooks", type=int, default=60)
    parser.add_argument("--webhook-rate", type=float, default=10.0)
    parser.add_argument("--deliveries", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--drain-timeout", type=float, default=240.0)
    args = parser.parse_args(argv)
    if args.clients % args.users:
        parser.error("--clients must be a multiple of --users")
    return args


def rows(database_url: str, argv: list[str] | None = None) -> list[dict]:
    """bench/run.py's rows: part 1 (notification latency) against raw Redis pub/sub; empty
    database_url means SQLite. Issue 14 sets no goal for these: reported.
    """
    args = parse_args(["--database-url", database_url or "sqlite", "--part", "latency",
                       *(argv or [])])
    pg = None if args.database_url == "sqlite" else args.database_url
    with temp_workdir("dana-bench-realtime-") as work, claimed_redis(args.redis_url, "realtime"):
        with database(work, pg) as db_url:
            table = run_latency(args, work, db_url, args.redis_url)
    print_table(["scenario", "receipts", "p50 ms", "p99 ms", "p50 / baseline"], table)
    base = float(table[0][2])
    return [dict(figure=f"realtime {label} p50", dana=float(p50), baseline=base, unit="ms",
                 ratio=round(float(p50) / base, 2) if base else None, goal="report",
                 passed=None) for label, _n, p50, _p99, _r in table[1:]]


def main() -> int:
    args = parse_args()
    pg = None if args.database_url == "sqlite" else args.database_url
    raise_on_sigterm()

    with temp_workdir("dana-bench-realtime-") as work, claimed_redis(args.redis_url, "realtime"):
        redis_url = args.redis_url
        print(
            f"bench/realtime.py: database {'PostgreSQL' if pg else 'SQLite'}, "
            f"Redis {redis_url}, {os.cpu_count()} CPUs",
            flush=True,
        )
        if args.part in ("latency", "both"):
            print(
                f"\nPart 1: notification latency, {args.clients} clients, 2 instances", flush=True
            )
            (work / "latency").mkdir()
            with database(work / "latency", pg) as db_url:
                rows = run_latency(args, work / "latency", db_url, redis_url)
            print()
            print_table(["scenario", "receipts", "p50 ms", "p99 ms", "p50 / baseline"], rows)
        if args.part in ("throughput", "both"):
            print(
                f"\nPart 2: webhook -> reply, {args.deliveries} deliveries "
                f"(concurrency {args.concurrency})",
                flush=True,
            )
            outcomes = []
            for mode, workers in (("inline", 0), ("rq", 1), ("rq", 2)):
                sub = work / f"throughput-{mode}-{workers}"
                sub.mkdir()
                print(f"  {mode} x{workers} ...", flush=True)
                with database(sub, pg) as db_url:
                    outcomes.append(run_throughput(args, sub, db_url, redis_url, mode, workers))
                import redis

                redis.Redis.from_url(redis_url).flushdb()
            base = outcomes[0]["rate"]
            print()
            print_table(
                [
                    "mode",
                    "replies",
                    "POSTs done s",
                    "all replied s",
                    "replies/s",
                    "ratio vs inline",
                ],
                [
                    [
                        o["label"],
                        f"{o['replies']}/{args.deliveries}"
                        + ("" if o["complete"] else " (timeout)"),
                        f"{o['posted_s']:.1f}",
                        f"{o['elapsed_s']:.1f}",
                        f"{o['rate']:.1f}",
                        f"{o['rate'] / base:.2f}" if base else "nan",
                    ]
                    for o in outcomes
                ],
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
