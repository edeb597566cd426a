"""A minimal loopback fake of GA4's Measurement Protocol (test infrastructure).

GA_MEASUREMENT_URL points at `fake.collect_url` (…/mp/collect); the validation server is
…/debug/mp/collect, as at Google. Like Google's, /mp/collect answers 204 with no body and
records the events; /debug/mp/collect records nothing and answers 200
`{"validationMessages": [...]}`, listing a message for a bad measurement_id, a missing
client_id or an invalid event name. It records every request (query and JSON body) and can
answer scripted failures (`fail()`): 401, 429 with Retry-After, 500, any status.
"""
from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MEASUREMENT_ID = "G-DANA12345"
API_SECRET = "ga-api-secret-0123456789"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")


@dataclass
class Recorded:
    """One request as the fake received it."""

    path: str
    query: dict
    body: dict | None
    accepted: bool = False

    @property
    def events(self) -> list[dict]:
        """The events the request carried."""
        return list((self.body or {}).get("events") or [])


class FakeGoogleAnalytics:
    """The server: `collect_url`, `requests` recorded, `events` collected (not debug ones)."""

    def __init__(self) -> None:
        """Nothing collected yet; call start() to serve."""
        self.requests: list[Recorded] = []
        self._failures: dict[str, deque[tuple[int, int | None]]] = {}
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                fake._handle(self)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.01}, daemon=True)

    @property
    def collect_url(self) -> str:
        """What GA_MEASUREMENT_URL should be."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/mp/collect"

    def start(self) -> "FakeGoogleAnalytics":
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def fail(self, path: str = "/mp/collect", *, status: int, retry_after: int | None = None,
             times: int = 1) -> None:
        """Answer the next `times` requests to `path` with `status`."""
        with self._lock:
            self._failures.setdefault(path, deque()).extend(
                (status, retry_after) for _ in range(times))

    def collected(self) -> list[dict]:
        """Every event /mp/collect accepted, with its client_id: [{client_id, name, params}]."""
        return [{"client_id": (r.body or {}).get("client_id"), **event}
                for r in self.requests if r.accepted for event in r.events]

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = Recorded(parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()},
                          body)
        with self._lock:
            self.requests.append(record)
            queue = self._failures.get(parts.path)
            failure = queue.popleft() if queue else None
        if failure is not None:
            status, retry_after = failure
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return self._reply(h, status, b"", headers)
        if parts.path == "/debug/mp/collect":
            return self._reply(h, 200, json.dumps(
                {"validationMessages": self._validate(record)}).encode())
        if parts.path == "/mp/collect":
            # Google answers 2xx even to a bad secret; the fake keeps only valid requests.
            record.accepted = not self._validate(record)
            return self._reply(h, 204, b"")
        self._reply(h, 404, b"")

    @staticmethod
    def _validate(record: Recorded) -> list[dict]:
        messages = []
        if record.query.get("measurement_id") != MEASUREMENT_ID or \
                record.query.get("api_secret") != API_SECRET:
            messages.append({"fieldPath": "measurement_id", "description":
                             "Unable to find a stream for this measurement_id and api_secret.",
                             "validationCode": "VALUE_INVALID"})
        if not (record.body or {}).get("client_id"):
            messages.append({"fieldPath": "client_id", "description": "client_id is required.",
                             "validationCode": "VALUE_REQUIRED"})
        for event in record.events:
            if not _NAME.match(str(event.get("name", ""))):
                messages.append({"fieldPath": "events.name", "description":
                                 f"Event name {event.get('name')!r} is invalid.",
                                 "validationCode": "NAME_INVALID"})
        return messages

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, data: bytes,
               headers: dict | None = None) -> None:
        h.send_response(status)
        if data:
            h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        if data:
            h.wfile.write(data)
