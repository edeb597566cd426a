"""In-process profile of webhook ingest (what bench/webhooks.py --modes ingest times under
gunicorn): signed Messenger deliveries for a Page that is not connected, each passed to the
app's WSGI callable as gunicorn passes it (and its response closed, which runs the hand-off),
against the bare Flask baseline (bench/baseline_webhook.py) in the same process.

    .venv/bin/python bench/ingest_profile.py                       # SQLite, inline
    .venv/bin/python bench/ingest_profile.py --database-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/ingest_profile.py --profile /tmp/p.out  # + cProfile, top 40

Prints per request, for Dana and for the baseline: Python function calls (cProfile's count,
the figure to compare on a shared machine) and CPU microseconds of the process (all its
threads: the rq hand-off's LPUSH thread included), the best of a few alternating rounds.
The settings are bench/webhooks.py's: SQLite with AUTOMATION_QUEUE=inline (each event is then
routed in the serving thread and ends `ignored`), PostgreSQL with AUTOMATION_QUEUE=rq and a
Redis database of its own (every event stays `received`). What gunicorn itself costs per
request (the same for both apps) is not in these figures.

A tool for finding where the time goes, not a benchmark: the figures that count are
bench/webhooks.py's ratios.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import claimed_redis, dana_env, database, migrate, temp_workdir  # noqa: E402
from bench.webhooks import APP_SECRET, PAGE_ID, REDIS_URL, VERIFY_TOKEN, Deliveries  # noqa: E402

PATH = "/webhooks/facebook"


def environ_for(raw: bytes, headers: dict[str, str]) -> dict:
    """A WSGI environ like gunicorn's for one POST of `raw`."""
    env = {
        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": PATH, "RAW_URI": PATH,
        "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "5000",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(raw)),
        "HTTP_HOST": "127.0.0.1:5000", "HTTP_ACCEPT_ENCODING": "identity",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(raw),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in headers.items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def serve(app, environs: list[dict]) -> None:
    """Call the WSGI app for each environ, read and close each response as a server does."""
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    for env in environs:
        body = app(env, start_response)
        try:
            for _ in body:
                pass
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
    bad = [s for s in statuses if not s.startswith("200")]
    if bad:
        raise RuntimeError(f"{len(bad)} answers were not 200, first {bad[0]}")


def batch(bodies: Deliveries, n: int) -> list[dict]:
    """Fresh signed deliveries, n of them, as environs."""
    out = []
    for _ in range(n):
        raw, hdrs = bodies()
        out.append(environ_for(raw, hdrs))
    return out


def calls_per_request(app, bodies: Deliveries, n: int, dump: str | None = None) -> float:
    """Python function calls per request (cProfile), optionally dumping the profile."""
    environs = batch(bodies, n)
    prof = cProfile.Profile()
    prof.enable()
    serve(app, environs)
    prof.disable()
    stats = pstats.Stats(prof)
    if dump:
        prof.dump_stats(dump)
    return stats.total_calls / n


def cpu_per_request(app, bodies: Deliveries, n: int, threads: int = 1) -> float:
    """CPU microseconds of the whole process per request (after a short settle), served by
    `threads` threads at once (as gunicorn's gthread worker serves them).
    """
    environs = batch(bodies, n)
    cpu0 = time.process_time()
    if threads == 1:
        serve(app, environs)
    else:
        workers = [threading.Thread(target=serve, args=(app, environs[i::threads]))
                   for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    time.sleep(0.02)  # the rq hand-off thread's last LPUSH
    return (time.process_time() - cpu0) * 1e6 / n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default="sqlite",
                   help="'sqlite' or a PostgreSQL server URL on 127.0.0.1")
    p.add_argument("--requests", type=int, default=2000, help="requests per timed round")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (best kept)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads serving at once in the CPU rounds (gunicorn: 4)")
    p.add_argument("--profile", default=None, help="dump Dana's cProfile here, print top 40")
    args = p.parse_args(argv)
    pg = None if args.database_url == "sqlite" else args.database_url
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(temp_workdir("dana-ingest-profile-"))
        overrides = dict(META_APP_SECRET=APP_SECRET, META_VERIFY_TOKEN=VERIFY_TOKEN,
                         AI_PROVIDER="local", RATE_LIMIT_ENABLED="true")
        if pg:
            stack.enter_context(claimed_redis(REDIS_URL, "ingest-profile"))
            overrides.update(AUTOMATION_QUEUE="rq", REDIS_URL=REDIS_URL)
        else:
            overrides.update(AUTOMATION_QUEUE="inline")
        db_url = stack.enter_context(database(work, pg))
        env = dana_env(work, db_url, **overrides)
        migrate(env, cwd=work)
        os.environ.clear()
        os.environ.update(env)
        os.chdir(work)
        from app import create_app
        from bench.baseline_webhook import app as baseline

        dana = create_app()
        dana_bodies = Deliveries(APP_SECRET, PAGE_ID, 10**15)
        base_bodies = Deliveries(APP_SECRET, PAGE_ID, 2 * 10**15)
        serve(dana, batch(dana_bodies, 200))   # warm: connections, compiled statements
        serve(baseline, batch(base_bodies, 200))
        calls = {"dana": calls_per_request(dana, dana_bodies, 500, args.profile),
                 "baseline": calls_per_request(baseline, base_bodies, 500)}
        cpu: dict[str, list[float]] = {"dana": [], "baseline": []}
        for i in range(args.rounds):
            order = [("dana", dana, dana_bodies), ("baseline", baseline, base_bodies)]
            for label, app, bodies in (order if i % 2 == 0 else order[::-1]):
                cpu[label].append(cpu_per_request(app, bodies, args.requests, args.threads))
        kind = "postgresql, rq" if pg else "sqlite, inline"
        print(f"ingest in process ({kind}, {args.threads} serving thread(s)), load average "
              f"{os.getloadavg()[0]:.2f}")
        for label in ("dana", "baseline"):
            runs = sorted(cpu[label])
            print(f"  {label:<8} {calls[label]:7.0f} calls/request, CPU/request "
                  f"{runs[0]:6.0f} us best, {runs[len(runs) // 2]:6.0f} us median")
        print(f"  ratio    {calls['dana'] / calls['baseline']:.2f}x calls, "
              f"{min(cpu['dana']) / min(cpu['baseline']):.2f}x CPU (best)")
        if args.profile:
            pstats.Stats(args.profile).sort_stats("tottime").print_stats(40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
