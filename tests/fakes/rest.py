"""A minimal loopback JSON server for fakes of REST APIs (test infrastructure).

A fake subclasses FakeRest and implements `answer(request) -> (status, body[, headers])`;
this base records every request (`requests`), checks nothing, and plays scripted failures
first: `fail("POST /crm/v3/objects/contacts", status=429, retry_after=2)` answers the next
matching request (method and path prefix; "*" = any) with that status, a JSON error body and
a Retry-After header. `tls=(certfile, keyfile)` serves HTTPS (for clients that insist on it).

    fake = FakeHubSpot().start()
    fake.fail("*", status=401)
"""
from __future__ import annotations

import json
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class Request:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict
    body: object
    headers: dict = field(repr=False, default_factory=dict)

    @property
    def token(self) -> str | None:
        """The bearer token, without "Bearer "."""
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None


@dataclass
class Failure:
    """One scripted failure: where it applies, the status, Retry-After and the body."""

    where: str
    status: int
    retry_after: str | None = None
    body: object = None


class FakeRest:
    """The server machinery; subclasses answer (see the module's docstring)."""

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        """Bind a loopback port (HTTPS with `tls`); call start() to serve."""
        self.requests: list[Request] = []
        self._failures: deque[Failure] = deque()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
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
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def fail(self, where: str = "*", *, status: int = 500, retry_after: float | None = None,
             body: object = None, times: int = 1) -> None:
        """Answer the next `times` requests matching "METHOD /path-prefix" (or "*") so."""
        with self._lock:
            self._failures.extend(Failure(where, status, None if retry_after is None
                                          else str(retry_after), body) for _ in range(times))

    def calls(self, method: str, path_prefix: str = "") -> list[Request]:
        """The recorded requests with this method and path prefix, in order."""
        return [r for r in self.requests if r.method == method
                and r.path.startswith(path_prefix)]

    # ------------------------------------------------------------------ for subclasses

    def answer(self, request: Request) -> tuple:
        """(status, body) or (status, body, headers) for a request; body None = no content."""
        raise NotImplementedError

    def error_body(self, status: int) -> object:
        """The JSON body of a scripted failure (subclasses speak their API's dialect)."""
        return {"status": "error", "message": f"scripted failure {status}"}

    # ------------------------------------------------------------------ internals

    def _pop_failure(self, method: str, path: str) -> Failure | None:
        for failure in list(self._failures):
            verb, _, prefix = failure.where.partition(" ")
            if failure.where == "*" or (verb == method and path.startswith(prefix)):
                self._failures.remove(failure)
                return failure
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        path, _, query = handler.path.partition("?")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        request = Request(handler.command, path, {k: v[0] if len(v) == 1 else v
                                                  for k, v in parse_qs(query).items()},
                          body, {k.lower(): v for k, v in handler.headers.items()})
        with self._lock:
            self.requests.append(request)
            failure = self._pop_failure(request.method, path)
            if failure is not None:
                status = failure.status
                out = failure.body if failure.body is not None else self.error_body(status)
                headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
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
