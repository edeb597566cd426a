"""A minimal loopback fake of the Graph Send API (test infrastructure).

It listens on 127.0.0.1 (a free port), records every request and answers from a small
programmable queue per path suffix; with nothing queued it answers like Meta's success
bodies (`sendapi_messenger_success.json` / `sendapi_whatsapp_success.json` shapes) with a
fresh message id per call. Scripted replies can carry any status and body (e.g. the real
error samples, or `graph_error(...)` envelopes), a delay (slowness / timeouts) or `drop=True`
(the connection is closed without an answer: a network error for the client).

    fake.queue("/me/messages", Reply.error(613, status=400), Reply.error(613), Reply())
    ...
    assert [r.path for r in fake.requests] == [...]

Reads (GET) model Graph's access control, which the connect-time ownership check relies on:
`fake.manage(token, account_id, name=...)` registers a token and the one account it manages.
`GET /me` answers that account; `GET /{id}` answers it only when `id` is that account (any
other id: Graph's code 100 "does not exist, cannot be loaded due to missing permissions");
an unregistered token gets Graph's OAuthException code 190 "Invalid OAuth access token".
The token is read from `Authorization: Bearer` or `?access_token=`, like Graph does.
"""
from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

META_SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "meta"


def graph_error(code: int, message: str = "Graph error", *, subcode: int | None = None,
                type_: str = "OAuthException", details: str | None = None) -> dict:
    """A body in Graph's error envelope (WhatsApp's `error_data.details` when details is given)."""
    error: dict = {"message": message, "type": type_, "code": code,
                   "fbtrace_id": "Fk" + uuid.uuid4().hex[:18]}
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


def invalid_token_error() -> dict:
    """What Graph answers (HTTP 400) to a token it cannot parse or that was revoked."""
    return graph_error(190, "Invalid OAuth access token - Cannot parse access token")


def unreadable_object_error(object_id: str) -> dict:
    """What Graph answers (HTTP 400) when a valid token may not read the object."""
    return graph_error(100, f"Unsupported get request. Object with ID '{object_id}' does not "
                            "exist, cannot be loaded due to missing permissions, or does not "
                            "support this operation. Please read the Graph API documentation at "
                            "https://developers.facebook.com/docs/graph-api",
                       subcode=33, type_="GraphMethodException")


def sample(name: str) -> dict:
    """One of the JSON samples in tests/fixtures/meta (e.g. the real Send API error bodies)."""
    return json.loads((META_SAMPLES / name).read_text(encoding="utf-8"))


@dataclass
class Reply:
    """One scripted answer. body None = a success body for the request; str = sent verbatim."""

    status: int = 200
    body: dict | str | None = None
    delay: float = 0.0
    drop: bool = False

    @classmethod
    def error(cls, code: int, status: int = 400, **kwargs) -> "Reply":
        return cls(status=status, body=graph_error(code, **kwargs))


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict
    json: dict | None
    raw: bytes = field(repr=False, default=b"")


def success_body(request_json: dict | None) -> dict:
    """What Meta answers to a successful send: WhatsApp's shape if the body says whatsapp."""
    request_json = request_json if isinstance(request_json, dict) else {}
    if request_json.get("messaging_product") == "whatsapp":
        to = str(request_json.get("to", ""))
        return {"messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                "messages": [{"id": "wamid.FAKE" + uuid.uuid4().hex.upper()}]}
    recipient = (
        request_json.get("recipient") if isinstance(request_json.get("recipient"), dict) else {}
    )
    return {"recipient_id": recipient.get("id"), "message_id": "m_fake" + uuid.uuid4().hex}


class FakeGraph:
    """The server: `base_url` for GraphConfig, `requests` recorded, `queue()` to script answers."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.accounts: dict[str, dict] = {}  # token -> the object it manages (all its fields)
        self._queues: dict[str, deque[Reply]] = {}
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as Graph does: a client that pools its connections (the
            # connectors' httpx.Client) reuses one instead of connecting for every call.
            # Without Nagle: the headers and the body are two writes, and on a kept
            # connection the body would wait for the client's delayed ACK (~40 ms).
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                fake._handle(self)

            do_GET = do_DELETE = do_POST  # noqa: N815

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeGraph":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def queue(self, suffix: str, *replies: Reply) -> None:
        """Answer the next requests whose path ends with `suffix` with `replies`, in order."""
        with self._lock:
            self._queues.setdefault(suffix, deque()).extend(replies)

    def manage(self, token: str, account_id: str, **fields) -> None:
        """Make `token` a valid token that manages the account `account_id` (and nothing else).

        `fields` are what Graph answers about it: `name` (Page), `username` (Instagram),
        `display_phone_number` / `verified_name` (WhatsApp).
        """
        with self._lock:
            self.accounts[token] = {"id": str(account_id), **fields}

    def revoke(self, token: str) -> None:
        """The token stops working (expired, password changed, app removed)."""
        with self._lock:
            self.accounts.pop(token, None)

    def requests_to(self, suffix: str) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(suffix)]

    def _next_reply(self, path: str) -> Reply | None:
        with self._lock:
            for suffix, replies in self._queues.items():
                if path.endswith(suffix) and replies:
                    return replies.popleft()
        return None

    def _read(self, path: str, query: str, headers: dict) -> Reply:
        """A GET of `/vX/me` or `/vX/{id}`: Graph's access control over the registered tokens."""
        params = parse_qs(query)
        auth = headers.get("authorization", "")
        token = (
            auth[7:]
            if auth.lower().startswith("bearer ")
            else (params.get("access_token") or [""])[0]
        )
        with self._lock:
            account = self.accounts.get(token)
        if account is None:
            return Reply(400, invalid_token_error())
        object_id = path.rstrip("/").rsplit("/", 1)[-1]
        if object_id != "me" and object_id != account["id"]:
            return Reply(400, unreadable_object_error(object_id))
        wanted = [f for f in (params.get("fields") or ["id,name"])[0].split(",") if f]
        return Reply(200, {f: account[f] for f in wanted if f in account} | {"id": account["id"]})

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path, _, query = handler.path.partition("?")
        with self._lock:
            self.requests.append(
                Recorded(
                    handler.command,
                    path,
                    query,
                    {k.lower(): v for k, v in handler.headers.items()},
                    body,
                    raw,
                )
            )
        reply = self._next_reply(path)
        if reply is None:
            reply = (
                self._read(path, query, {k.lower(): v for k, v in handler.headers.items()})
                if handler.command == "GET"
                else Reply()
            )
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop:
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = success_body(body) if reply.body is None else reply.body
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        try:
            handler.send_response(reply.status)
            handler.send_header(
                "Content-Type", "application/json" if not isinstance(payload, str) else "text/html"
            )
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:  # the client gave up (timeout test): nothing to answer
            pass
