"""Shared benchmark machinery: gunicorn servers on loopback, a bounded load generator, a table.

Everything here talks to 127.0.0.1 only. A benchmark builds a throw-away environment
(`dana_env`), migrates it (`migrate`), starts the real app and a baseline app under the same
gunicorn settings (`GunicornServer`), drives both with `run_load` (or alternating
`run_rounds`) and prints `print_table`.
Timings are only ever reported as a ratio against a baseline measured in the same run.
"""
from __future__ import annotations

import contextlib
import http.client
import json as _json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
LOOPBACK = "127.0.0.1"
LOOPBACK_NAMES = {"127.0.0.1"}  # not "localhost": it may resolve to ::1

# Fixed secrets: the bench must not depend on (or write) a developer's instance/ or .env.
SECRET_KEY = "bench-secret-key-" + "s" * 40
JWT_SECRET_KEY = "bench-jwt-secret-" + "j" * 40
FERNET_KEY = "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtMTI="  # base64 of 32 bytes
# What bench/floor_webhook.py sends when Dana's AI hands a message off: the pipeline bench
# counts the other texts, the answers, to check the floor decided as Dana's run did.
FLOOR_HANDOFF_REPLY = "A person will get back to you."

# Variables passed through from the caller's environment to servers; everything else
# (REDIS_URL, OPENAI_API_KEY, proxies, ...) is left out so nothing leaves the machine.
_PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


# ---------------------------------------------------------------------------- environment

def require_loopback_url(url: str, what: str) -> None:
    """Refuse any URL whose host is not the loopback address."""
    host = urlsplit(url).hostname
    if host not in LOOPBACK_NAMES:
        raise SystemExit(f"bench: {what} must point at 127.0.0.1, not {host!r}")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A minimal process environment: PATH & co. plus `extra`."""
    env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def dana_env(workdir: Path, database_url: str, **overrides: str) -> dict[str, str]:
    """Environment for a Dana process on its own database and instance folder, unthrottled."""
    values = {
        "DANA_ENV": "production",
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(workdir / "instance"),
        "SECRET_KEY": SECRET_KEY,
        "JWT_SECRET_KEY": JWT_SECRET_KEY,
        "ENCRYPTION_KEYS": FERNET_KEY,
        "RATE_LIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    values.update(overrides)
    return clean_env(values)


def migrate(env: dict[str, str], cwd: Path) -> None:
    """Bring the schema of env's DATABASE_URL up to date (Alembic, as `make migrate` does)."""
    code = "from app import create_app, upgrade_database; upgrade_database(create_app())"
    proc = subprocess.run([PYTHON, "-c", code], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"migration failed:\n{proc.stderr[-4000:]}")


@contextlib.contextmanager
def temp_workdir(prefix: str = "dana-bench-") -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def database(workdir: Path, postgres_admin_url: str | None) -> Iterator[str]:
    """A fresh database URL: a SQLite file in workdir, or a new PostgreSQL database
    (created next to `postgres_admin_url`'s database and dropped afterwards).
    """
    if not postgres_admin_url:
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    require_loopback_url(postgres_admin_url, "--database-url")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(postgres_admin_url)
    if base.drivername == "postgresql":
        base = base.set(drivername="postgresql+psycopg")
    name = f"dana_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


# ------------------------------------------------------------------------------ redis

REDIS_CLAIM_KEY = "dana-test:redis-db-claim:{}"   # the tests' protocol (tests/realtime/conftest.py)
REDIS_MARKER_KEY = "dana-test:realtime-db"


@contextlib.contextmanager
def claimed_redis(url: str, owner: str, wait: float = 120.0):
    """The Redis database of `url` for this bench alone, yielding a client on it.

    Claimed in database 0 the way the tests claim theirs (SET NX with an expiry), so a
    parallel test session never picks it while we use it; flushed before and after. Waits up
    to `wait` seconds for another holder to release it.
    """
    import redis

    require_loopback_url(url, "REDIS_URL")
    client = redis.Redis.from_url(url)
    number = client.connection_pool.connection_kwargs.get("db", 0)
    admin = redis.Redis.from_url(url, db=0)
    token = f"bench-{owner}-{os.getpid()}-{uuid.uuid4().hex}"
    deadline = time.monotonic() + wait
    while not admin.set(REDIS_CLAIM_KEY.format(number), token, nx=True, ex=3600):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: Redis database {number} is claimed by another session "
                             f"({admin.get(REDIS_CLAIM_KEY.format(number))!r}); try again later")
        time.sleep(1.0)
    try:
        foreign = client.dbsize() - client.exists(REDIS_MARKER_KEY)
        if foreign:
            print(f"  (Redis db {number}: flushing {foreign} leftover key(s) of an earlier "
                  f"session)", flush=True)
        client.flushdb()
        client.set(REDIS_MARKER_KEY, token)
        yield client
    finally:
        client.flushdb()
        if admin.get(REDIS_CLAIM_KEY.format(number)) == token.encode():
            admin.delete(REDIS_CLAIM_KEY.format(number))
        client.close()
        admin.close()


# ---------------------------------------------------------------------------- servers

def free_port() -> int:
    """A currently free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec (Linux only)
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort; stop() is the real clean-up
        pass


class GunicornServer:
    """One gunicorn master (+ workers) serving `app_spec` on 127.0.0.1:<free port>.

    Use as a context manager: the server is stopped on exit, also on error or Ctrl-C.
    """

    def __init__(self, name: str, app_spec: str, env: dict[str, str], cwd: Path, *,
                 workers: int = 2, threads: int = 4, ready_path: str = "/health",
                 startup_timeout: float = 30.0):
        self.name, self.app_spec, self.env, self.cwd = name, app_spec, env, cwd
        self.workers, self.threads = workers, threads
        self.ready_path, self.startup_timeout = ready_path, startup_timeout
        self.port = free_port()
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = cwd / f"gunicorn-{name}.log"

    def start(self) -> "GunicornServer":
        cmd = [PYTHON, "-m", "gunicorn", self.app_spec,
               "--bind", f"{LOOPBACK}:{self.port}",
               "--workers", str(self.workers), "--worker-class", "gthread",
               "--threads", str(self.threads), "--pythonpath", str(ROOT),
               "--log-level", "warning", "--graceful-timeout", "5", "--timeout", "60"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=self.env, cwd=self.cwd, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url = self.base_url + self.ready_path
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name}: gunicorn exited with {self.proc.returncode}"
                                       f"\n{self.log_tail()}")
                try:
                    if client.get(url).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"{self.name}: not ready after {self.startup_timeout:.0f}s"
                           f"\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the master and its live workers (Linux)."""
        if self.proc is None:
            return 0.0
        return _process_tree_cpu(self.proc.pid)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the master (it stops its workers); SIGKILL our own group if it lingers."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        # The master led its own session (start_new_session), so its pid is its group id;
        # anything left in that group (orphaned workers) is ours to kill.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        self._log.close()

    def __enter__(self) -> "GunicornServer":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from 3 (state) on; comm may hold spaces


def _process_tree_cpu(root: int) -> float:
    """Utime + stime of `root` and its direct children, in seconds (0 where /proc is absent)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        fields = _stat(pid)
        if fields and (pid == root or int(fields[1]) == root):  # fields[1] is ppid
            total += int(fields[11]) + int(fields[12])             # utime, stime
    return total / tick


def raise_on_sigterm() -> None:
    """Turn SIGTERM (and SIGINT, even when inherited as ignored, e.g. in a background job)
    into KeyboardInterrupt so `with` blocks stop the servers.
    """
    def handler(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


# ---------------------------------------------------------------------------- load

def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


@dataclass
class LoadResult:
    requests: int = 0            # completed with the expected status
    errors: int = 0              # wrong status or transport error
    elapsed: float = 0.0         # wall time of the measured phase, seconds
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    timed_out: bool = False
    first_error: str = ""
    server_cpu: float = 0.0      # CPU seconds the server used during the measured phase

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu * 1000.0 / self.requests if self.requests else float("nan")

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    def p(self, q: float) -> float:
        """Latency percentile in milliseconds."""
        return percentile(self.latencies, q) * 1000.0

    def add(self, other: "LoadResult") -> "LoadResult":
        """Fold another run (e.g. the next round of the same scenario) into this one."""
        self.requests += other.requests
        self.errors += other.errors
        self.elapsed += other.elapsed
        self.latencies.extend(other.latencies)
        self.timed_out = self.timed_out or other.timed_out
        self.first_error = self.first_error or other.first_error
        self.server_cpu += other.server_cpu
        return self


def run_rounds(targets: dict[str, dict], *, requests: int, rounds: int,
               **load) -> dict[str, LoadResult]:
    """Run several targets (label -> run_load keyword arguments incl. base_url, method, path)
    in `rounds` alternating rounds of requests/rounds each, so that a background load
    (another process on the machine) and warm-up drift hit every target alike.
    """
    labels = list(targets)
    results = {label: LoadResult() for label in labels}
    per_round = [requests // rounds + (1 if i < requests % rounds else 0) for i in range(rounds)]
    for i, n in enumerate(per_round):
        if n == 0:
            continue
        order = labels if i % 2 == 0 else labels[::-1]
        for label in order:
            kw = dict(targets[label])
            results[label].add(
                run_load(
                    kw.pop("base_url"), kw.pop("method"), kw.pop("path"), requests=n, **kw, **load
                )
            )
    return results


def run_load(
    base_url: str,
    method: str,
    path: str,
    *,
    requests: int,
    concurrency: int,
    json: dict | None = None,
    headers: dict | None = None,
    expected_status: int = 200,
    warmup: int = 2,
    time_limit: float = 60.0,
    request_timeout: float = 30.0,
    cpu_probe: Callable[[], float] | None = None,
    body_factory: Callable[[], tuple[bytes, dict]] | None = None,
) -> LoadResult:
    """Send `requests` requests over `concurrency` keep-alive connections and time each one.

    One thread per connection, each with a stdlib `http.client` connection: it costs the
    client about a quarter of the CPU of an httpx.Client per request, which matters when
    the load generator shares a small machine with the servers under test. Bounded in
    count and in time: no request starts after `time_limit` seconds. Each connection first
    sends `warmup` unmeasured requests so connection set-up and cold workers are not timed.
    `cpu_probe` (e.g. GunicornServer.cpu_seconds) is read around the measured phase: server
    CPU per request is far less disturbed by other load on the machine than req/s is.
    `body_factory`, when given, is called (from the connection threads, so it must be
    thread-safe) for every request, warm-ups included, and returns (raw body, extra headers):
    e.g. a webhook delivery with a unique id and its signature.
    """
    require_loopback_url(base_url, "load target")
    parts = urlsplit(base_url)
    host, port = parts.hostname, parts.port or 80
    body = _json.dumps(json).encode() if json is not None else None
    hdrs = (
        {"Content-Type": "application/json"} if body is not None or body_factory is not None else {}
    )
    hdrs.update(headers or {})
    result = LoadResult()
    lock = threading.Lock()
    issued = 0
    stop = threading.Event()
    barrier = threading.Barrier(concurrency + 1)
    go = threading.Event()

    def take() -> bool:
        nonlocal issued
        with lock:
            if issued >= requests:
                return False
            issued += 1
            return True

    def send(conn: http.client.HTTPConnection) -> tuple[int, bytes]:
        if body_factory is not None:
            raw, extra = body_factory()
            conn.request(method, path, body=raw, headers={**hdrs, **extra})
        else:
            conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.read()

    def worker() -> None:
        latencies: list[float] = []
        ok = errors = 0
        first_error = ""
        conn = http.client.HTTPConnection(host, port, timeout=request_timeout)
        try:
            for _ in range(warmup):
                try:
                    send(conn)
                except (OSError, http.client.HTTPException):
                    conn.close()
            warmed = time.monotonic()
            try:
                barrier.wait(timeout=request_timeout * (warmup + 1))
            except threading.BrokenBarrierError:
                return
            go.wait()
            if time.monotonic() - warmed > 1.0:
                # Idle while slower connections warmed up: the server may drop it at its
                # keep-alive timeout (gunicorn's default is 2 s) just as we send; reconnect.
                conn.close()
            while not stop.is_set() and take():
                t0 = time.perf_counter()
                try:
                    status, data = send(conn)
                    dt = time.perf_counter() - t0
                    if status == expected_status:
                        ok += 1
                        latencies.append(dt)
                    else:
                        errors += 1
                        first_error = first_error or f"HTTP {status}: {data[:200]!r}"
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()  # the next request reconnects
                    errors += 1
                    first_error = first_error or f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()
            with lock:
                result.requests += ok
                result.errors += errors
                result.latencies.extend(latencies)
                result.first_error = result.first_error or first_error

    threads = [
        threading.Thread(target=worker, daemon=True, name=f"load-{i}") for i in range(concurrency)
    ]
    for t in threads:
        t.start()
    try:
        barrier.wait(timeout=request_timeout * (warmup + 1))
        # Every connection is warmed up and waits for `go`: read the CPU probe now, as
        # reading /proc takes milliseconds during which a short run would be under way.
        cpu0 = cpu_probe() if cpu_probe else 0.0
        t0 = time.perf_counter()
        go.set()
        deadline = t0 + time_limit
        for t in threads:
            t.join(max(0.0, deadline - time.perf_counter()))
            if time.perf_counter() >= deadline:
                break
        if any(t.is_alive() for t in threads):
            result.timed_out = True
            stop.set()
        for t in threads:  # in-flight requests end within request_timeout
            t.join(request_timeout + 1)
        result.elapsed = time.perf_counter() - t0
        result.server_cpu = (cpu_probe() - cpu0) if cpu_probe else 0.0
    except BaseException:
        stop.set()
        go.set()
        barrier.abort()
        raise
    return result


# ---------------------------------------------------------------------------- output


def print_table(headers: list[str], rows: list[list[str]], out=sys.stdout) -> None:
    """A plain fixed-width table; first column left-aligned, the rest right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells):
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        )

    print(line(headers), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print(line(r), file=out)
