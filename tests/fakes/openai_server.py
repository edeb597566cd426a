"""A minimal OpenAI-compatible chat-completions server on 127.0.0.1 (test infrastructure).

Only `POST /v1/chat/completions` exists. It runs on FakeRest: every request is recorded
(`requests`: path, headers with lower-case names, parsed JSON `body`). What it answers is
scripted, one step per request, in order; when the script is empty it answers `default` (a
JSON hand-off decision):

    server.reply_json({"decision": "answer", "reply": "…", "passage_ids": ["P1"]})
    server.reply_content("this is not JSON")         # any content (finish_reason= too)
    server.reply_with(lambda body: "…")               # content computed from the request,
                                                       # e.g. a model "obeying" an injection
    server.refuse("I can't help with that.")         # message.refusal set, content null
    server.schema_support = False                      # 400 for response_format json_schema
    server.json_mode_support = False                   # 400 for response_format json_object

FakeRest's own script comes before these steps: `server.fail(status=500, times=3)` answers
HTTP errors (429/500/…) in OpenAI's error shape with a 1 ms Retry-After (so the SDK's
retries do not slow the tests down), `server.delay(2.0)` answers the next request 2 s late.
A request refused for its response_format does not use up a reply step.
"""
from __future__ import annotations

import json
import time
from collections import deque

from tests.fakes.rest import FakeRest, Request

DEFAULT_ANSWER = {"decision": "handoff", "reply": "", "passage_ids": [], "language": "en",
                  "confidence": 0.9}


class FakeOpenAI(FakeRest):
    """The server; use as a context manager or call start()/stop()."""

    protocol_version = "HTTP/1.1"  # the SDK's httpx client keeps its connections

    def __init__(self, prompt_tokens: int = 120, completion_tokens: int = 30) -> None:
        """An empty script; every completion reports these token counts as its usage."""
        super().__init__()
        self.script: deque = deque()
        self.default = ("content", json.dumps(DEFAULT_ANSWER))
        self.prompt_tokens, self.completion_tokens = prompt_tokens, completion_tokens
        self.schema_support = True
        self.json_mode_support = True

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL should be."""
        return f"{super().base_url}/v1"

    # ------------------------------------------------------------------ scripting
    def reply_json(self, obj: dict, times: int = 1) -> "FakeOpenAI":
        """Answer with this object as the message's JSON content."""
        return self.reply_content(json.dumps(obj), times)

    def reply_content(self, content: str | None, times: int = 1,
                      finish_reason: str = "stop") -> "FakeOpenAI":
        """Answer with this content (any text, or None) and finish_reason."""
        with self._lock:
            self.script.extend(("content", content, finish_reason) for _ in range(times))
        return self

    def reply_with(self, make, times: int = 1) -> "FakeOpenAI":
        """Answer with make(request body) -> content (a scripted model reading its prompt)."""
        with self._lock:
            self.script.extend(("computed", make) for _ in range(times))
        return self

    def refuse(self, refusal: str = "I can't help with that.") -> "FakeOpenAI":
        """A safety refusal: message.refusal set, content null (as OpenAI sends it)."""
        with self._lock:
            self.script.append(("refusal", refusal))
        return self

    def fail(self, where: str = "*", *, status: int = 500, retry_after: float | None = 0.001,
             body: object = None, times: int = 1) -> "FakeOpenAI":
        """FakeRest.fail with a 1 ms Retry-After unless told otherwise (the SDK honours it)."""
        return super().fail(where, status=status, retry_after=retry_after, body=body,
                            times=times)

    def error_body(self, status: int) -> dict:
        """OpenAI's error shape."""
        return {"error": {"message": f"scripted {status}", "type": "server_error", "code": None}}

    # ------------------------------------------------------------------ answering
    def answer(self, request: Request) -> tuple[int, dict]:
        """A chat completion: the next reply step (or the default) as OpenAI shapes it."""
        body = request.body if isinstance(request.body, dict) else {}
        if request.path.rstrip("/") != "/v1/chat/completions":
            return 404, {"error": {"message": "not found", "type": "invalid_request_error"}}
        wants = (body.get("response_format") or {}).get("type")
        if (wants == "json_schema" and not self.schema_support) or (
                wants == "json_object" and not self.json_mode_support):
            return 400, {"error": {"message": f"response_format {wants} is not supported",
                                   "type": "invalid_request_error", "param": "response_format",
                                   "code": None}}
        step = self.script.popleft() if self.script else self.default
        content, refusal, finish = step[1], None, "stop"
        if step[0] == "content" and len(step) > 2:
            finish = step[2]
        elif step[0] == "computed":
            content = step[1](request.body)
        elif step[0] == "refusal":
            content, refusal = None, step[1]
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", "fake-model"),
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": content,
                                     "refusal": refusal}}],
            "usage": {"prompt_tokens": self.prompt_tokens,
                      "completion_tokens": self.completion_tokens,
                      "total_tokens": self.prompt_tokens + self.completion_tokens},
        }

    # ------------------------------------------------------------------ reading
    def last_messages(self) -> list[dict]:
        """The chat messages of the last request."""
        return (self.requests[-1].body or {}).get("messages", [])
