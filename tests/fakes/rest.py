"""The one loopback HTTP server machinery behind the fakes of REST APIs (test infrastructure).

A fake subclasses FakeRest and implements `answer(request) -> (status, body[, headers])`
(body: JSON-able, or None for no content); answer() runs under the fake's lock, so the fake's
state needs no locking of its own. This base records every request (`requests`, `calls()`),
checks nothing, and plays a script first, in the order it was written:

    fake.fail("POST /crm/v3/objects/contacts", status=429, retry_after=2)   # 429 + Retry-After
    fake.fail("*", status=500, times=3)                                      # "*" = any request
    fake.delay(2.0)                                     # the next request is answered 2 s late

A step applies to the next request matching "METHOD /path-prefix" (or "*"); a failure answers
with its status, a JSON error body (`error_body(status)`, the API's dialect) and Retry-After.
Request bodies are parsed by their Content-Type: JSON, form fields (Stripe and Slack post
application/x-www-form-urlencoded), else text.
`tls=(certfile, keyfile)` serves HTTPS (for clients that insist on it); a subclass sets
`protocol_version = "HTTP/1.1"` to keep connections alive when its client pools them.

    with FakeHubSpot() as fake:          # or fake = FakeHubSpot().start() ... fake.stop()
        ...
"""
from __future__ import annotations

import json
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl


@dataclass
class Request:
    """One request as the fake received it (header names in lower case)."""

    method: str
    path: str
    query: dict
    body: object
    headers: dict = field(repr=False, default_factory=dict)

    @property
    def route(self) -> str:
        """"METHOD /path", without the query."""
        return f"{self.method} {self.path}"

    @property
    def token(self) -> str | None:
        """The bearer token, without "Bearer "."""
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None


@dataclass
class Step:
    """One scripted step: where it applies, how long to wait first, and a failure status
    (None = after the wait, answer as usual) with its Retry-After and body."""

    where: str
    status: int | None = None
    retry_after: str | None = None
    body: object = None
    delay: float = 0.0


def _parse_body(raw: bytes, content_type: str) -> object:
    """JSON, form fields as a dict, or text for anything else; None when empty."""
    if not raw:
        return None
    if "x-www-form-urlencoded" in content_type:
        return dict(parse_qsl(raw.decode()))
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


class FakeRest:
    """The server machinery; subclasses answer (see the module's docstring)."""

    protocol_version = "HTTP/1.0"

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        """Bind a loopback port (HTTPS with `tls`); call start() to serve."""
        self.requests: list[Request] = []
        self._script: deque[Step] = deque()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = fake.protocol_version
            disable_nagle_algorithm = True  # headers and body are two writes: no ACK stall

            def _any(self) -> None:
                fake._handle(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any  # noqa: N815

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.01}, daemon=True)

    @property
    def base_url(self) -> str:
        """scheme://127.0.0.1:port (no trailing slash)."""
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def start(self):
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, free the port and cut short any scripted delay."""
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def fail(self, where: str = "*", *, status: int = 500, retry_after: float | None = None,
             body: object = None, times: int = 1):
        """Answer the next `times` requests matching "METHOD /path-prefix" (or "*") so."""
        return self._add(times, Step(where, status, None if retry_after is None
                                     else str(retry_after), body))

    def delay(self, seconds: float, where: str = "*", *, times: int = 1):
        """Answer the next `times` matching requests as usual, but `seconds` late."""
        return self._add(times, Step(where, delay=seconds))

    def calls(self, method: str, path_prefix: str = "", *, exact: bool = False) -> list[Request]:
        """The recorded requests with this method and path prefix (whole path if `exact`)."""
        return [r for r in self.requests if r.method == method
                and (r.path == path_prefix if exact else r.path.startswith(path_prefix))]

    # ------------------------------------------------------------------ for subclasses

    def answer(self, request: Request) -> tuple:
        """(status, body) or (status, body, headers) for a request; body None = no content."""
        raise NotImplementedError

    def error_body(self, status: int) -> object:
        """The JSON body of a scripted failure (subclasses speak their API's dialect)."""
        return {"status": "error", "message": f"scripted failure {status}"}

    # ------------------------------------------------------------------ internals

    def _add(self, times: int, step: Step):
        with self._lock:
            self._script.extend(step for _ in range(times))
        return self

    def _next_step(self, method: str, path: str) -> Step | None:
        for step in list(self._script):
            verb, _, prefix = step.where.partition(" ")
            if step.where == "*" or (verb == method and path.startswith(prefix)):
                self._script.remove(step)
                return step
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        path, _, query = handler.path.partition("?")
        request = Request(handler.command, path, {k: v[0] if len(v) == 1 else v
                                                  for k, v in parse_qs(query).items()},
                          _parse_body(raw, handler.headers.get("Content-Type", "")),
                          {k.lower(): v for k, v in handler.headers.items()})
        with self._lock:
            self.requests.append(request)
            step = self._next_step(request.method, path)
        if step is not None and step.delay:
            self._stopped.wait(step.delay)
        with self._lock:
            if step is not None and step.status is not None:
                status = step.status
                out = step.body if step.body is not None else self.error_body(status)
                headers = {"Retry-After": step.retry_after} if step.retry_after else {}
            else:
                status, out, *rest = self.answer(request)
                headers = rest[0] if rest else {}
        data = b"" if out is None else json.dumps(out).encode()
        try:
            handler.send_response(status)
            if out is not None:
                handler.send_header("Content-Type", "application/json;charset=UTF-8")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:  # the client gave up
            pass
