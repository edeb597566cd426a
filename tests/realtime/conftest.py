"""Real processes for the real-time tests: `python main.py` / gunicorn servers, `flask worker`
processes and the CLI, on 127.0.0.1 free ports, sharing one fresh database, an in-test fake
Graph API and (where needed) a Redis database of their own.

Every process runs in its own session and is killed (with its children) in a finally; every
wait is bounded and says what it waited for. The database is a copy of the session's migrated
template (a SQLite file, or a PostgreSQL database when TEST_DATABASE_URL is set), the same
schema `python main.py` would migrate to. A test that needs Redis gets it through the
`redis_url` fixture of tests/conftest.py: skipped locally without Redis, failed under CI=true.
The Socket.IO client is python-socketio's, with `requests` (long-polling) and
`websocket-client` (WebSocket) installed from requirements-dev.txt.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import socketio
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.fakes.graph import FakeGraph
from utils.config import Settings

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
LOOPBACK = "127.0.0.1"
APP_SECRET = "live-test-app-secret"
JWT_SECRET = "live-test-jwt-secret-" + "j" * 40
QUESTION = "Can I pay for my wedding cake with goats?"  # unanswerable: the AI hands off


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Poll until predicate() is truthy (and return it); fail naming `what` after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# ----------------------------------------------------------------------------- processes

class Proc:
    """A child process in its own session (so its children die with it), logging to a file."""

    def __init__(self, name: str, cmd: list[str], env: dict, workdir: Path):
        self.name, self.cmd, self.env = name, cmd, env
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self) -> "Proc":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=self.log_path.parent,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} did not exit within {timeout:.0f}s\n{self.log()[-3000:]}")

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the process and e.g. RQ's scheduler child)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        """SIGTERM, a short grace, then SIGKILL to the group; always safe to call."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.kill_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                pass
        self.kill_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        if self._log:
            self._log.close()
            self._log = None


class LiveServer(Proc):
    """`python main.py` (or gunicorn -c gunicorn.conf.py main:app) on a free port."""

    def __init__(self, name: str, env: dict, workdir: Path, gunicorn: bool = False):
        self.port = free_port()
        # (gunicorn: a short graceful timeout, or stopping waits for open long-polls)
        env = {"GUNICORN_GRACEFUL_TIMEOUT": "2", **env, "HOST": LOOPBACK, "PORT": str(self.port)}
        cmd = ([PYTHON, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "main:app"]
               if gunicorn else [PYTHON, str(ROOT / "main.py")])
        super().__init__(name, cmd, env, workdir)
        self.base_url = f"http://{LOOPBACK}:{self.port}"

    def _use_port(self, port: int) -> None:
        self.port = port
        self.env = {**self.env, "PORT": str(port)}
        self.base_url = f"http://{LOOPBACK}:{port}"

    def _answers_as_itself(self, client: httpx.Client) -> bool:
        """True when the server on the port is this one: healthy, and it completes Meta's
        subscription handshake with this process's own META_VERIFY_TOKEN. Another test's Dana
        that took the port has another token and answers 403, so its /health alone proves
        nothing (it stamps X-Request-ID too)."""
        if client.get(self.base_url + "/health").status_code != 200:
            return False
        token = self.env.get("META_VERIFY_TOKEN")
        if not token:
            return True
        challenge = str(uuid.uuid4().int % 10**12)
        resp = client.get(self.base_url + "/webhooks/facebook", params={
            "hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": challenge})
        return resp.status_code == 200 and resp.text == challenge

    def wait_ready(self, timeout: float = 45.0) -> "LiveServer":
        """Wait until this process answers on its port; if another process took the port
        between free_port() and the bind (a race under load), start again on a new free port."""
        deadline = time.monotonic() + timeout
        retries = 3
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.alive():
                    if retries and self.proc.returncode != 0 and "in use" in self.log():
                        retries -= 1
                        self.stop()
                        self._use_port(free_port())
                        self.start()
                        continue
                    pytest.fail(f"{self.name} exited with {self.proc.returncode}\n"
                                f"{self.log()[-3000:]}")
                try:
                    if self._answers_as_itself(client):
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        pytest.fail(f"{self.name} not ready after {timeout:.0f}s\n{self.log()[-3000:]}")


# ----------------------------------------------------------------------------- environment


def process_env(**settings) -> dict:
    """The runner's environment without any Dana/Flask setting, plus `settings`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in Settings.model_fields
        and not k.startswith("FLASK_")
        and k not in ("REDIS_URL", "TEST_DATABASE_URL")
    }
    env.update(
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        FLASK_SKIP_DOTENV="1",
    )
    env.update({k: str(v) for k, v in settings.items() if v is not None})
    return env


class Stack:
    """One test's world: a database, a fake Graph API, maybe a Redis db, and its processes."""

    def __init__(
        self, workdir: Path, database_url: str, graph: FakeGraph, redis_url: str | None = None
    ):
        self.workdir, self.database_url, self.graph, self.redis_url = (
            workdir,
            database_url,
            graph,
            redis_url,
        )
        self.procs: list[Proc] = []
        self._engine = None
        self.env = process_env(
            DANA_ENV="production",
            DATABASE_URL=database_url,
            INSTANCE_PATH=str(workdir / "instance"),
            SECRET_KEY="live-test-secret-key-" + "s" * 40,
            JWT_SECRET_KEY=JWT_SECRET,
            ENCRYPTION_KEYS="aGVsbG8taGVsbG8taGVsbG8taGVsbG8taGVsbG8tMTI=",
            META_APP_SECRET=APP_SECRET,
            # One token per stack: wait_ready tells this stack's server from another's by it.
            META_VERIFY_TOKEN=f"live-verify-{uuid.uuid4().hex}",
            GRAPH_API_URL=graph.base_url,
            GRAPH_RETRY_WAIT_SECONDS="0.01",
            GRAPH_RETRY_ATTEMPTS="1",
            GRAPH_TIMEOUT_SECONDS="20",
            AI_PROVIDER="local",
            RATE_LIMIT_ENABLED="false",
            LOG_LEVEL="INFO",
            REDIS_URL=redis_url,
        )

    # processes
    def server(self, name: str = "server", gunicorn: bool = False, **settings) -> LiveServer:
        srv = LiveServer(
            name,
            {**self.env, **{k: str(v) for k, v in settings.items()}},
            self.workdir,
            gunicorn=gunicorn,
        )
        self.procs.append(srv)
        return srv.start()

    def worker(self, name: str = "worker", *args: str, **settings) -> Proc:
        """`flask --app app:create_app worker ...` with this stack's environment."""
        proc = Proc(
            name,
            [PYTHON, "-m", "flask", "--app", "app:create_app", "worker", *args],
            {**self.env, **{k: str(v) for k, v in settings.items()}},
            self.workdir,
        )
        self.procs.append(proc)
        return proc.start()

    def flask(self, *args: str, timeout: float = 60.0, **settings) -> subprocess.CompletedProcess:
        """Run one `flask --app app:create_app ...` command to completion."""
        env = {**self.env, **{k: str(v) for k, v in settings.items()}}
        return subprocess.run(
            [PYTHON, "-m", "flask", "--app", "app:create_app", *args],
            env=env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def close(self) -> None:
        for proc in self.procs:
            proc.stop()
        if self._engine is not None:
            self._engine.dispose()

    # the database, read directly (what the operator would see)
    def query(self, sql: str, **params) -> list:
        if self._engine is None:
            url = make_url(self.database_url)
            if url.drivername == "postgresql":
                url = url.set(drivername="postgresql+psycopg")
            self._engine = create_engine(url)
        with self._engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def event(self, event_id: int) -> dict:
        [row] = self.query(
            "SELECT status, attempts, error FROM webhook_events WHERE id = :id", id=event_id
        )
        return {"status": row[0], "attempts": row[1], "error": row[2]}

    def replies(self) -> list:
        """Send API calls the fake Graph received (Messenger's path)."""
        return self.graph.requests_to("/me/messages")


@pytest.fixture
def graph():
    server = FakeGraph().start()
    yield server
    server.stop()


@pytest.fixture
def live_db(databases, tmp_path):
    """A fresh migrated database for this test's processes (dropped afterwards)."""
    url = databases.new(tmp_path)
    yield url
    databases.drop(url)


CLAIM_KEY = "dana-test:redis-db-claim:{}"  # in database 0, with an expiry
MARKER_KEY = "dana-test:realtime-db"  # in the claimed database itself


@contextlib.contextmanager
def claimed_redis_db(base_url: str):
    """A Redis database of this test alone, flushed afterwards.

    Parallel sessions (xdist workers, a SQLite and a PostgreSQL run, benchmarks) share the
    machine's Redis, so a database is claimed in database 0 (`SET NX` with an expiry) and
    used only if it is empty or holds nothing but a leftover of an earlier claim of ours (its
    marker key): a database with anyone else's keys is never touched. Its own database also
    gives the test its own Socket.IO channel (utils.realtime.channel_for).
    """
    import redis

    admin = redis.Redis.from_url(base_url, db=0)
    token = f"{os.getpid()}-{uuid.uuid4().hex}"
    parts = urlsplit(base_url)
    for number in range(1, 16):
        if not admin.set(CLAIM_KEY.format(number), token, nx=True, ex=900):
            continue
        url = urlunsplit((parts.scheme, parts.netloc, f"/{number}", parts.query, ""))
        client = redis.Redis.from_url(url)
        if client.dbsize() == 0 or client.exists(MARKER_KEY):
            break
        client.close()  # someone else's data: leave it alone
        admin.delete(CLAIM_KEY.format(number))
    else:
        pytest.fail("no free Redis database to claim in 1..15")
    client.flushdb()
    client.set(MARKER_KEY, token)
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
        if admin.get(CLAIM_KEY.format(number)) == token.encode():
            admin.delete(CLAIM_KEY.format(number))
        admin.close()


@pytest.fixture
def make_stack(request, tmp_path, live_db, graph):
    """Build this test's Stack, with a Redis database of its own when asked (redis=True).

    At the end its processes are killed first, then its Redis database is flushed (so no
    dying process writes into it afterwards).
    """
    stacks: list[Stack] = []
    claims = contextlib.ExitStack()

    def _make(redis: bool = False) -> Stack:
        redis_db = None
        if redis:
            redis_db = claims.enter_context(claimed_redis_db(request.getfixturevalue("redis_url")))
        stack = Stack(tmp_path, live_db, graph, redis_db)
        stacks.append(stack)
        return stack

    try:
        yield _make
    finally:
        try:
            for stack in stacks:
                stack.close()
        finally:
            claims.close()


class RefusingStore:
    """A loopback server that answers every request like Supabase does to a revoked key (401).

    Fault injection for a worker whose conversation store refuses it: each attempt at an
    event fails fast while ingesting.
    """

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def _refuse(self):
                body = json.dumps({"message": "Invalid API key", "code": None}).encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = do_HEAD = _refuse  # noqa: N815

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def refusing_store():
    server = RefusingStore()
    yield server
    server.stop()


# ----------------------------------------------------------------------------- API helpers


def api(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, trust_env=False, timeout=15.0)


def register(base_url: str, name: str = "Live User") -> dict:
    """Register through the live API; the body plus 'headers'."""
    with api(base_url) as c:
        resp = c.post(
            "/api/auth/register",
            json={
                "email": f"live-{uuid.uuid4().hex[:10]}@example.com",
                "password": "correct horse battery",
                "name": name,
            },
        )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    body["headers"] = {"Authorization": f"Bearer {body['access_token']}"}
    return body


def connect_page(base_url: str, user: dict, graph: FakeGraph, page_id: str | None = None) -> str:
    """Connect a Facebook Page (the free plan allows one) and return its id; the Page's token
    is registered in the fake Graph first, which the server asks who the token is."""
    page_id = page_id or str(10**14 + uuid.uuid4().int % 10**14)
    token = f"EAAG-live-{page_id}-token"
    graph.manage(token, page_id, name="Live Page")
    with api(base_url) as c:
        resp = c.post(
            "/api/platforms",
            headers=user["headers"],
            json={
                "platform": "facebook",
                "external_id": page_id,
                "access_token": token,
                "name": "Live Page",
            },
        )
    assert resp.status_code == 201, resp.text
    return page_id


def business(base_url: str, graph: FakeGraph, name: str = "Live Shop") -> dict:
    """A registered user with a connected Page (user['page_id'])."""
    user = register(base_url, name)
    user["page_id"] = connect_page(base_url, user, graph)
    return user


def fb_message(page_id: str, text: str, psid: str | None = None) -> dict:
    now = int(time.time() * 1000)
    return {
        "object": "page",
        "entry": [
            {
                "id": page_id,
                "time": now,
                "messaging": [
                    {
                        "sender": {"id": psid or str(7 * 10**15 + uuid.uuid4().int % 10**15)},
                        "recipient": {"id": page_id},
                        "timestamp": now,
                        "message": {"mid": "m_" + uuid.uuid4().hex, "text": text},
                    }
                ],
            }
        ],
    }


def post_webhook(base_url: str, payload: dict) -> httpx.Response:
    """POST a delivery signed like Meta does."""
    raw = json.dumps(payload).encode()
    sig = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    with api(base_url) as c:
        return c.post(
            "/webhooks/facebook",
            content=raw,
            headers={"X-Hub-Signature-256": sig, "Content-Type": "application/json"},
        )


def messages(base_url: str, user: dict, conversation_id: str) -> list[dict]:
    with api(base_url) as c:
        resp = c.get(
            f"/api/conversations/{conversation_id}/messages?limit=100", headers=user["headers"]
        )
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


def conversations(base_url: str, user: dict) -> list[dict]:
    with api(base_url) as c:
        resp = c.get("/api/conversations", headers=user["headers"])
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


# ----------------------------------------------------------------------------- Socket.IO client


class Listener:
    """A real python-socketio client that records every event it receives."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        transports=("websocket",),
        headers: dict | None = None,
    ):
        self.base_url, self.token, self.transports = base_url, token, list(transports)
        self.headers = headers or {}
        self.sio = socketio.Client(reconnection=False)
        self.received: list[tuple[str, object]] = []
        self.connect_error = None
        self._cond = threading.Condition()
        self.sio.on("*", self._on_any)
        self.sio.on("connect_error", self._on_connect_error)

    def _on_any(self, event, data=None):
        with self._cond:
            self.received.append((event, data))
            self._cond.notify_all()

    def _on_connect_error(self, data=None):
        self.connect_error = data

    def connect(self, wait: bool = True) -> "Listener":
        auth = {"token": self.token} if self.token is not None else None
        self.sio.connect(
            self.base_url,
            auth=auth,
            transports=self.transports,
            headers=self.headers,
            wait=wait,
            wait_timeout=10,
        )
        return self

    def refused(self, timeout: float = 10.0) -> dict:
        """Connect; assert the server refuses it and return the connect_error data.

        (The client is not left to wait for the refusal itself: on a refusal it disconnects
        politely, which can wait for a long-poll or a WebSocket close frame for seconds.)
        """
        self.connect(wait=False)
        deadline = time.monotonic() + timeout
        while self.connect_error is None and "/" not in self.sio.namespaces:
            if time.monotonic() > deadline:
                pytest.fail(f"neither connected nor refused within {timeout:.0f}s")
            time.sleep(0.02)
        accepted = "/" in self.sio.namespaces  # the server confirmed the namespace
        self.close(force=True)
        assert not accepted, "the connection was accepted"
        assert isinstance(self.connect_error, dict), self.connect_error
        return self.connect_error

    def wait_for(
        self,
        event: str,
        predicate: Callable[[object], bool] = lambda d: True,
        timeout: float = 15.0,
    ):
        """The first `event` whose data satisfies predicate; fails after timeout seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for name, data in self.received:
                    if name == event and predicate(data):
                        return data
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(
                        f"no {event!r} event within {timeout:.0f}s; received: "
                        f"{[n for n, _ in self.received]}"
                    )
                self._cond.wait(left)

    def names(self) -> list[str]:
        """Names of the events received so far (wait_subscribed's probes left out)."""
        with self._cond:
            return [n for n, _ in self.received if n != "queue_probe"]

    def close(self, force: bool = False) -> None:
        """Drop the connection without the client's waits (a pending long-poll, or up to 3 s
        for a WebSocket close frame): the server sees the connection go, as when a tab dies."""
        with contextlib.suppress(Exception):
            if self.sio.connected or force:
                ws = getattr(self.sio.eio, "ws", None)
                if ws is not None:
                    ws.shutdown()
                self.sio.eio.disconnect(abort=True)


@pytest.fixture
def listeners():
    """Open Listener clients; all are disconnected at the end of the test."""
    opened: list[Listener] = []

    def _open(base_url: str, token: str | None, **kw) -> Listener:
        listener = Listener(base_url, token, **kw)
        opened.append(listener)
        return listener

    yield _open
    for listener in opened:
        listener.close()


def emitter(redis_url: str):
    """A write-only Socket.IO emitter on the deployment's Redis queue (no app, no server)."""
    from flask_socketio import SocketIO

    from utils.realtime import channel_for

    return SocketIO(message_queue=redis_url, channel=channel_for(redis_url))


def wait_subscribed(redis_url: str, listener: Listener, user_id: str, timeout: float = 10.0):
    """Make sure the listener's server has subscribed to the Redis queue.

    A server subscribes when its first client connects, in a background thread: until then
    an event published by another process would not reach it. A round trip proves it.
    """
    from utils.realtime import user_room

    out = emitter(redis_url)
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        n += 1
        out.emit("queue_probe", {"n": n}, to=user_room(user_id))
        with listener._cond:
            if listener._cond.wait_for(
                lambda: any(name == "queue_probe" for name, _ in listener.received), timeout=0.5
            ):
                return
    pytest.fail(f"the server never delivered a message from the Redis queue within {timeout:.0f}s")
