"""`make bench`: every benchmark on SQLite and PostgreSQL, and one table of the results.

    .venv/bin/python bench/run.py                        # all modules, both databases
    .venv/bin/python bench/run.py --only conversations --full --markdown /tmp/bench.md
    .venv/bin/python bench/run.py --no-postgres

Each bench module exposes `rows(database_url: str) -> list[dict]` (an empty database_url
means a SQLite file in a temp dir; a PostgreSQL URL on 127.0.0.1 means a fresh database next
to it, dropped afterwards) and prints its own detailed table while it runs. Every row has the
keys figure, dana, baseline, unit, ratio, goal and passed (True, False, or None when the
figure is reported without a goal). Each (module, database) runs in its own process, so a
module that crashes, or lacks rows(), shows as "not measured" instead of stopping the rest.
A module whose figures do not depend on the database sets DATABASE_NEUTRAL = True and runs
once. At the end: the machine (CPUs, CPU model, load) and the table, also as Markdown with
--markdown (the README's Performance section is that file).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and the app importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, print_table  # noqa: E402

MODULES = ("auth", "conversations", "realtime", "webhooks", "answers")
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
# bench/conversations.py at the full size (10k conversations / 1M messages) seeds for
# minutes per database on a 2-core machine; `make bench` uses a quarter unless --full.
CONVERSATIONS_QUICK = ["--messages", "250000", "--other-messages", "40000",
                       "--big-messages", "5000", "--repeat", "300", "--search-repeat", "150"]


def machine() -> str:
    """CPUs, CPU model and load average: where the figures were measured."""
    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), load average {load}"


def child(module: str, database_url: str, argv: list[str], out: str) -> int:
    """Run one module's rows() in this process and write them to `out` as JSON."""
    import importlib

    mod = importlib.import_module(f"bench.{module}")
    if not hasattr(mod, "rows"):
        Path(out).write_text(json.dumps({"error": "the module has no rows()"}))
        return 0
    result = mod.rows(database_url, argv) if argv else mod.rows(database_url)
    Path(out).write_text(json.dumps({"rows": result}, default=str))
    return 0


def run_one(module: str, database_url: str, argv: list[str], timeout: float) -> dict:
    """One (module, database) in a child process: {"rows": [...]} or {"error": "..."}."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    try:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", module,
               "--child-url", database_url, "--child-out", out, "--", *argv]
        proc = subprocess.run(cmd, cwd=ROOT, timeout=timeout, stdout=sys.stderr, check=False)
        text = Path(out).read_text() if Path(out).exists() else ""
        if proc.returncode != 0 or not text:
            return {"error": f"exit status {proc.returncode}"}
        return json.loads(text)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    finally:
        Path(out).unlink(missing_ok=True)


def fmt(value, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def table_rows(results: list[tuple[str, str, dict]]) -> list[list[str]]:
    """The printed table: one line per figure, "not measured" for a module that failed."""
    lines = []
    for module, db_label, result in results:
        if "error" in result:
            lines.append([db_label, f"{module}: not measured ({result['error']})", "-", "-",
                          "-", "-", "-"])
            continue
        for r in result["rows"]:
            passed = r.get("passed")
            verdict = "pass" if passed is True else "FAIL" if passed is False else "-"
            ratio = r.get("ratio")
            lines.append([db_label, str(r["figure"]), fmt(r.get("dana"), r.get("unit", "")),
                          fmt(r.get("baseline"), r.get("unit", "")),
                          f"{ratio:.2f}x" if isinstance(ratio, (int, float)) else "-",
                          str(r.get("goal", "")), verdict])
    return lines


HEADERS = ["database", "figure", "Dana", "baseline", "ratio", "goal", "pass/fail"]


def markdown(lines: list[list[str]], header: str) -> str:
    out = [header, "", "| " + " | ".join(HEADERS) + " |",
           "|" + "|".join("---" for _ in HEADERS) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in lines]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(MODULES)}")
    p.add_argument("--postgres-url", default=DEFAULT_PG,
                   help=f"PostgreSQL server on 127.0.0.1 (default {DEFAULT_PG})")
    p.add_argument("--no-postgres", action="store_true", help="SQLite only")
    p.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    p.add_argument("--full", action="store_true",
                   help="conversations at the full 10k conversations / 1M messages")
    p.add_argument("--timeout", type=float, default=1200.0, help="seconds per module and database")
    p.add_argument("--markdown", help="also write the table as Markdown to this file")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-url", default="", help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    p.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args.child, args.child_url, args.rest, args.child_out)

    modules = [m.strip() for m in args.only.split(",") if m.strip()] or list(MODULES)
    unknown = set(modules) - set(MODULES)
    if unknown:
        p.error(f"unknown modules: {', '.join(sorted(unknown))}")
    databases = ([] if args.no_sqlite else [("SQLite", "")]) + \
        ([] if args.no_postgres else [("PostgreSQL", args.postgres_url)])
    started = time.perf_counter()
    before = machine()
    results = []
    for module in modules:
        neutral = _neutral(module)
        for db_label, url in databases[:1] if neutral else databases:
            extra = CONVERSATIONS_QUICK if module == "conversations" and not args.full else []
            print(f"\n=== bench/{module}.py on {db_label} ===", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            result = run_one(module, url, extra, args.timeout)
            print(f"=== bench/{module}.py on {db_label}: {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr, flush=True)
            results.append((module, "any" if neutral else db_label, result))
    lines = table_rows(results)
    size = "10k conversations / 1M messages" if args.full else \
        "10k conversations / 250k messages (--full: 1M)"
    header = (f"`make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
              f"{before} at the start, {machine().split('load average ')[1]} at the end; "
              f"conversation store at {size}; {time.perf_counter() - started:.0f} s in all.")
    print("\n" + header + "\n")
    print_table(HEADERS, lines)
    if args.markdown:
        Path(args.markdown).write_text(markdown(lines, header))
    return 0


def _neutral(module: str) -> bool:
    """Whether the module says its figures do not depend on the database (read without
    importing it into this process: modules import the app).
    """
    source = (ROOT / "bench" / f"{module}.py")
    return source.exists() and "DATABASE_NEUTRAL = True" in source.read_text()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
