"""A minimal loopback fake of the Slack Web API (test infrastructure).

slack-sdk's WebClient talks to it through `base_url=fake.base_url` (the app's SLACK_API_URL).
It keeps a tiny workspace: bot tokens (`xoxb-…`) with their team and bot user, channels the
bot is in, and the messages posted there (top-level and thread replies, with `reply_count`).
It records every request (`api_calls(method)`) and implements the methods Dana calls: `auth.test`,
`chat.postMessage`, `chat.update`, `conversations.history`, `conversations.replies`.
Errors are Slack's: HTTP 200 with `{"ok": false, "error": "invalid_auth"}` for a bad token,
`channel_not_found` / `not_in_channel`, and scripted failures (FakeRest.fail()): HTTP 429
`ratelimited` with a Retry-After header, HTTP 500 `internal_error`, or any status.

    fake = FakeSlack().start()
    fake.fail("POST /api/chat.postMessage", status=429, retry_after=3)
    fake.add_message("C0TEAM", "U0HUMAN", "On it!", thread_ts=parent_ts)   # a person replied
"""
from __future__ import annotations

import json
import time

from tests.fakes.rest import FakeRest, Request

BOT_TOKEN = "xoxb-1111-2222-fakebottoken"
TEAM_ID = "T0DANA1"
BOT_USER_ID = "U0DANABOT"
BOT_ID = "B0DANABOT"
CHANNEL_ID = "C0TEAM001"


class FakeSlack(FakeRest):
    """The server: `base_url` for WebClient, `requests` recorded, `channels` with messages."""

    def __init__(self) -> None:
        """An empty workspace with one bot token and channel; call start() to serve."""
        super().__init__()
        # token -> identity; channel -> members (bot user ids) and messages (oldest first)
        self.tokens: dict[str, dict] = {}
        self.channels: dict[str, dict] = {}
        self._clock = time.time()
        self.add_workspace(BOT_TOKEN, TEAM_ID, BOT_USER_ID, BOT_ID, [CHANNEL_ID])

    # ------------------------------------------------------------------ test controls

    @property
    def base_url(self) -> str:
        """What SLACK_API_URL / WebClient(base_url=...) should be (with the trailing slash)."""
        return f"{super().base_url}/api/"

    def add_workspace(self, token: str, team_id: str, user_id: str, bot_id: str,
                      channels: list[str]) -> None:
        """A bot token of a workspace and the channels its bot user is a member of."""
        with self._lock:
            self.tokens[token] = {"team_id": team_id, "user_id": user_id, "bot_id": bot_id}
            for channel in channels:
                entry = self.channels.setdefault(channel, {"members": set(), "messages": []})
                entry["members"].add(user_id)

    def add_message(self, channel: str, user: str, text: str, *, thread_ts: str | None = None,
                    bot_id: str | None = None) -> dict:
        """A message somebody else wrote in the channel (e.g. a person's reply in a thread)."""
        with self._lock:
            return self._store(channel, {"user": user, "text": text,
                                         **({"bot_id": bot_id} if bot_id else {})}, thread_ts)

    def api_calls(self, api_method: str) -> list[Request]:
        """The recorded calls of one Web API method (e.g. "chat.postMessage"), in order."""
        return [r for r in self.requests if r.path == f"/api/{api_method}"]

    def thread(self, channel: str, thread_ts: str) -> list[dict]:
        """The parent and replies of a thread, oldest first."""
        return [m for m in self.channels.get(channel, {}).get("messages", [])
                if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts]

    # ------------------------------------------------------------------ internals

    def _next_ts(self) -> str:
        self._clock = max(self._clock + 0.000100, time.time())
        return f"{self._clock:.6f}"

    def _store(self, channel: str, message: dict, thread_ts: str | None) -> dict:
        entry = self.channels.setdefault(channel, {"members": set(), "messages": []})
        ts = self._next_ts()
        msg = {"type": "message", "ts": ts, **message}
        if thread_ts:
            parent = next((m for m in entry["messages"] if m["ts"] == thread_ts), None)
            if parent is not None:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = ts
            msg["thread_ts"] = thread_ts
        entry["messages"].append(msg)
        return msg

    def error_body(self, status: int) -> dict:
        """Slack's error shape, with the code Slack gives that HTTP status."""
        error = {429: "ratelimited", 500: "internal_error"}.get(status, "fatal_error")
        return {"ok": False, "error": error}

    def answer(self, request: Request) -> tuple[int, dict]:
        """Call the Web API method the path names with the query and body fields merged (as
        Slack takes them), authenticated by the bearer token or a `token` field."""
        params = {**request.query, **(request.body if isinstance(request.body, dict) else {})}
        token = request.token or params.get("token")
        return 200, self._answer(request.path.rsplit("/", 1)[-1], token, params)

    def _answer(self, method: str, token: str | None, params: dict) -> dict:
        identity = self.tokens.get(token or "")
        if identity is None:
            return {"ok": False, "error": "not_authed" if not token else "invalid_auth"}
        if method == "auth.test":
            return {"ok": True, "url": "https://dana-test.slack.com/", "team": "Dana Test",
                    "user": "dana", "team_id": identity["team_id"],
                    "user_id": identity["user_id"], "bot_id": identity["bot_id"]}
        channel = params.get("channel")
        entry = self.channels.get(channel or "")
        if entry is None:
            return {"ok": False, "error": "channel_not_found"}
        if identity["user_id"] not in entry["members"]:
            return {"ok": False, "error": "not_in_channel"}
        if method == "chat.postMessage":
            if not params.get("text") and not params.get("blocks"):
                return {"ok": False, "error": "no_text"}
            msg = {"user": identity["user_id"], "bot_id": identity["bot_id"],
                   "text": params.get("text", ""), "team": identity["team_id"]}
            for key in ("blocks", "attachments"):
                if params.get(key):
                    value = params[key]
                    msg[key] = json.loads(value) if isinstance(value, str) else value
            thread_ts = params.get("thread_ts")
            if thread_ts and not any(m["ts"] == thread_ts for m in entry["messages"]):
                return {"ok": False, "error": "thread_not_found"}
            stored = self._store(channel, msg, thread_ts)
            return {"ok": True, "channel": channel, "ts": stored["ts"], "message": stored}
        if method == "chat.update":
            target = next((m for m in entry["messages"] if m["ts"] == params.get("ts")), None)
            if target is None:
                return {"ok": False, "error": "message_not_found"}
            if target.get("user") != identity["user_id"]:
                return {"ok": False, "error": "cant_update_message"}
            target["text"] = params.get("text", target.get("text", ""))
            if params.get("blocks"):
                value = params["blocks"]
                target["blocks"] = json.loads(value) if isinstance(value, str) else value
            return {"ok": True, "channel": channel, "ts": target["ts"], "text": target["text"],
                    "message": target}
        if method == "conversations.history":
            top = [m for m in entry["messages"] if m.get("thread_ts") in (None, m["ts"])]
            return self._page(list(reversed(top)), params)
        if method == "conversations.replies":
            ts = params.get("ts")
            thread = [m for m in entry["messages"] if m["ts"] == ts or m.get("thread_ts") == ts]
            if not thread:
                return {"ok": False, "error": "thread_not_found"}
            return self._page(thread, params)
        return {"ok": False, "error": "unknown_method"}

    @staticmethod
    def _page(messages: list[dict], params: dict) -> dict:
        limit = int(params.get("limit") or 100)
        start = int(params.get("cursor") or 0)
        chunk = messages[start:start + limit]
        more = start + limit < len(messages)
        return {"ok": True, "messages": chunk, "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}
