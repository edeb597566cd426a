"""A minimal OpenAI-compatible chat-completions server on 127.0.0.1 (test infrastructure).

Only `POST /v1/chat/completions` exists. Every request is recorded (`requests`: path,
headers with lower-case names, parsed JSON body). What it answers is scripted, one step
per request, in order; when the script is empty it answers `default` (a JSON hand-off
decision):

    server.reply_json({"decision": "answer", "reply": "…", "passage_ids": ["P1"]})
    server.reply_content("this is not JSON")         # any content (finish_reason= too)
    server.reply_with(lambda body: "…")               # content computed from the request,
                                                       # e.g. a model "obeying" an injection
    server.refuse("I can't help with that.")         # message.refusal set, content null
    server.fail(500, times=3)                          # HTTP errors (429/500/…)
    server.delay(2.0)                                  # answer after 2 s (then the default)
    server.schema_support = False                      # 400 for response_format json_schema
    server.json_mode_support = False                   # 400 for response_format json_object

Error answers carry `retry-after-ms: 1` so the SDK's retries do not slow the tests down.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_ANSWER = {"decision": "handoff", "reply": "", "passage_ids": [], "language": "en",
                  "confidence": 0.9}


class FakeOpenAI:
    """The server; use as a context manager or call start()/stop()."""

    def __init__(self, prompt_tokens: int = 120, completion_tokens: int = 30):
        self.requests: list[dict] = []
        self.script: deque = deque()
        self.default = ("content", json.dumps(DEFAULT_ANSWER))
        self.prompt_tokens, self.completion_tokens = prompt_tokens, completion_tokens
        self.schema_support = True
        self.json_mode_support = True
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ scripting
    def reply_json(self, obj: dict, times: int = 1) -> "FakeOpenAI":
        return self.reply_content(json.dumps(obj), times)

    def reply_content(self, content: str | None, times: int = 1,
                      finish_reason: str = "stop") -> "FakeOpenAI":
        for _ in range(times):
            self.script.append(("content", content, finish_reason))
        return self

    def reply_with(self, make, times: int = 1) -> "FakeOpenAI":
        """Answer with make(request body) -> content (a scripted model reading its prompt)."""
        for _ in range(times):
            self.script.append(("computed", make))
        return self

    def refuse(self, refusal: str = "I can't help with that.") -> "FakeOpenAI":
        """A safety refusal: message.refusal set, content null (as OpenAI sends it)."""
        self.script.append(("refusal", refusal))
        return self

    def fail(self, status: int = 500, times: int = 1) -> "FakeOpenAI":
        for _ in range(times):
            self.script.append(("status", status))
        return self

    def delay(self, seconds: float, times: int = 1) -> "FakeOpenAI":
        for _ in range(times):
            self.script.append(("delay", seconds))
        return self

    # ------------------------------------------------------------------ running
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> "FakeOpenAI":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, body: dict, headers: dict | None = None):
                raw = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (e.g. its timeout)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = None
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake._lock:
                    fake.requests.append({"path": self.path, "headers": headers, "json": body})
                    step = fake.script.popleft() if fake.script else fake.default
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found",
                                                      "type": "invalid_request_error"}})
                wants = ((body or {}).get("response_format") or {}).get("type")
                if (wants == "json_schema" and not fake.schema_support) or (
                        wants == "json_object" and not fake.json_mode_support):
                    with fake._lock:
                        fake.script.appendleft(step)  # not consumed by a refused request
                    return self._send(400, {"error": {
                        "message": f"response_format {wants} is not supported",
                        "type": "invalid_request_error", "param": "response_format",
                        "code": None}})
                if step[0] == "delay":
                    fake._stopping.wait(step[1])
                    step = fake.default
                if step[0] == "status":
                    return self._send(step[1], {"error": {"message": f"scripted {step[1]}",
                                                          "type": "server_error", "code": None}},
                                      {"retry-after-ms": "1"})
                content, refusal, finish = step[1], None, "stop"
                if step[0] == "content" and len(step) > 2:
                    finish = step[2]
                elif step[0] == "computed":
                    content = step[1](body)
                elif step[0] == "refusal":
                    content, refusal = None, step[1]
                model = (body or {}).get("model", "fake-model")
                self._send(200, {
                    "id": f"chatcmpl-{len(fake.requests)}", "object": "chat.completion",
                    "created": int(time.time()), "model": model,
                    "choices": [{"index": 0, "finish_reason": finish,
                                 "message": {"role": "assistant", "content": content,
                                             "refusal": refusal}}],
                    "usage": {"prompt_tokens": fake.prompt_tokens,
                              "completion_tokens": fake.completion_tokens,
                              "total_tokens": fake.prompt_tokens + fake.completion_tokens},
                })

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name="fake-openai")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ reading
    def last_messages(self) -> list[dict]:
        """The chat messages of the last request."""
        return (self.requests[-1]["json"] or {}).get("messages", [])
