"""Benchmark: Dana's /api/auth/login and /api/auth/me against bare Flask endpoints of the
same shape (bench/baseline_app.py), both under gunicorn with the same worker settings.

    .venv/bin/python bench/auth.py                      # SQLite in a temp dir
    .venv/bin/python bench/auth.py --database-url postgresql://postgres@127.0.0.1:5432/test

With --database-url, a fresh database is created on that PostgreSQL server and dropped at
the end. Only 127.0.0.1 is contacted. Prints a table and the Dana/baseline throughput ratios.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and the app importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import (  # noqa: E402
    JWT_SECRET_KEY,
    GunicornServer,
    clean_env,
    dana_env,
    database,
    migrate,
    print_table,
    raise_on_sigterm,
    run_rounds,
    temp_workdir,
)

EMAIL = "bench@example.com"
PASSWORD = "correct horse battery staple"  # the baseline's in-memory user has the same


def _token(client: httpx.Client, url: str, ok: int) -> str:
    resp = client.post(url, json={"email": EMAIL, "password": PASSWORD})
    if resp.status_code != ok:
        raise RuntimeError(f"POST {url} answered {resp.status_code}: {resp.text[:300]}")
    return resp.json()["access_token"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=2000,
                   help="measured requests per server for GET /me (default 2000)")
    p.add_argument("--login-requests", type=int, default=None,
                   help="measured requests per server for POST login; each costs one scrypt "
                        "hash (~60 ms of CPU) (default: --requests / 10, at least 20)")
    p.add_argument("--concurrency", type=int, default=8,
                   help="concurrent keep-alive connections (default 8)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--threads", type=int, default=4,
                   help="gthread threads per worker (default 4)")
    p.add_argument("--rounds", type=int, default=3,
                   help="alternating dana/baseline rounds per scenario (default 3)")
    p.add_argument("--time-limit", type=float, default=15.0,
                   help="hard limit in seconds for each measured run (default 15)")
    p.add_argument("--database-url", default=None,
                   help="PostgreSQL server URL on 127.0.0.1 (a fresh database is created on it "
                        "and dropped afterwards); default: SQLite in a temp dir")
    args = p.parse_args(argv)
    if args.login_requests is None:
        args.login_requests = max(20, args.requests // 10)
    if min(args.requests, args.login_requests, args.concurrency, args.workers, args.threads,
           args.rounds) < 1:
        p.error("counts must be positive")
    return args


def measure(args) -> tuple[list[tuple[str, object, object]], list[str]]:
    """Start both servers and measure every scenario: [(name, dana, baseline)] LoadResults,
    and the failures (requests that did not answer as expected).
    """
    db_kind = "postgresql" if args.database_url else "sqlite"
    with temp_workdir() as work, database(work, args.database_url) as db_url:
        env = dana_env(work, db_url)
        migrate(env, cwd=work)
        # cwd is the temp dir, so a developer's .env (REDIS_URL, API keys) is never read.
        gun = dict(workers=args.workers, threads=args.threads)
        with GunicornServer("dana", "main:app", env, work, **gun) as dana, \
                GunicornServer("baseline", "bench.baseline_app:app",
                               clean_env({"JWT_SECRET_KEY": JWT_SECRET_KEY}), work,
                               **gun) as base:
            with httpx.Client(trust_env=False, timeout=30) as c:
                reg = c.post(dana.base_url + "/api/auth/register",
                             json={"email": EMAIL, "password": PASSWORD, "name": "Bench User"})
                if reg.status_code != 201:
                    raise RuntimeError(f"register answered {reg.status_code}: {reg.text[:300]}"
                                       f"\n--- dana server log ---\n{dana.log_tail()}")
                dana_token = _token(c, dana.base_url + "/api/auth/login", 200)
                base_token = _token(c, base.base_url + "/login", 200)

            load = dict(concurrency=args.concurrency, time_limit=args.time_limit,
                        rounds=args.rounds)
            creds = {"email": EMAIL, "password": PASSWORD}
            dana_t = dict(base_url=dana.base_url, cpu_probe=dana.cpu_seconds)
            base_t = dict(base_url=base.base_url, cpu_probe=base.cpu_seconds)
            scenarios = [
                ("POST login", args.login_requests, {
                    "dana": dict(dana_t, method="POST", path="/api/auth/login", json=creds),
                    "baseline": dict(base_t, method="POST", path="/login", json=creds)}),
                ("GET me", args.requests, {
                    "dana": dict(dana_t, method="GET", path="/api/auth/me",
                                 headers={"Authorization": f"Bearer {dana_token}"}),
                    "baseline": dict(base_t, method="GET", path="/me",
                                     headers={"Authorization": f"Bearer {base_token}"})}),
            ]
            print(f"dana auth bench: {db_kind}, gunicorn {args.workers} workers x "
                  f"{args.threads} threads (gthread), {args.concurrency} connections, "
                  f"login {args.login_requests} / me {args.requests} requests per server "
                  f"in {args.rounds} alternating rounds; load average before: "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
            measured, failures = [], []
            for name, n, targets in scenarios:
                results = run_rounds(targets, requests=n, **load)
                for label, r in results.items():
                    if r.errors or r.timed_out or r.requests == 0:
                        failures.append(f"{name} [{label}]: {r.errors} errors"
                                        f"{', time limit hit' if r.timed_out else ''}"
                                        f"{'; first: ' + r.first_error if r.first_error else ''}")
                measured.append((name, results["dana"], results["baseline"]))
    return measured, failures


def rows(database_url: str, argv: list[str] | None = None) -> list[dict]:
    """bench/run.py's rows: throughput of each scenario against the bare Flask baseline
    (empty database_url: SQLite in a temp dir). Issue 14 sets no goal for these: reported.
    """
    args = parse_args([*(["--database-url", database_url] if database_url else []),
                       *(argv or [])])
    measured, failures = measure(args)
    if failures:
        print("bench: some requests failed:\n  " + "\n  ".join(failures), file=sys.stderr)
    out = []
    for name, d, b in measured:
        ratio = d.rps / b.rps if b.rps else float("nan")
        trouble = [f for f in failures if f.startswith(name + " [")]
        note = f" ({len(trouble)} side(s) with errors or the time limit hit)" if trouble else ""
        out.append(dict(figure=f"auth {name} throughput{note}", dana=round(d.rps, 1),
                        baseline=round(b.rps, 1), unit="req/s", ratio=round(ratio, 2),
                        goal="report", passed=None))
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    raise_on_sigterm()
    started = time.perf_counter()
    db_kind = "postgresql" if args.database_url else "sqlite"
    measured, failures = measure(args)
    rows, summary = [], []
    for name, d, b in measured:
        ratio = d.rps / b.rps if b.rps else float("nan")
        cpu_ratio = d.cpu_ms_per_request / b.cpu_ms_per_request \
            if b.cpu_ms_per_request else float("nan")
        summary.append(f"{name} {ratio:.2f} (server CPU/request x{cpu_ratio:.2f})")
        rows.append([name, f"{d.rps:.1f}", f"{b.rps:.1f}", f"{ratio:.2f}",
                     f"{d.p(50):.1f}", f"{d.p(99):.1f}", f"{b.p(50):.1f}",
                     f"{b.p(99):.1f}", f"{d.cpu_ms_per_request:.2f}",
                     f"{b.cpu_ms_per_request:.2f}", f"{cpu_ratio:.2f}",
                     str(d.errors + b.errors)])
    print()
    print_table(["scenario", "dana req/s", "base req/s", "ratio", "dana p50", "dana p99",
                 "base p50", "base p99", "dana cpu/req", "base cpu/req", "cpu ratio",
                 "errors"], rows)
    print("(latencies and cpu/req in ms; ratio = dana/baseline throughput; cpu/req = "
          "CPU time of the gunicorn\n master+workers per request"
          + (", not counting PostgreSQL's own processes" if args.database_url else "")
          + "; cpu ratio = dana/baseline)")
    print()
    print(f"ratio dana/baseline throughput ({db_kind}): " + ", ".join(summary)
          + f"  [total {time.perf_counter() - started:.0f} s]")
    if failures:
        print("bench: some requests failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
