"""A minimal loopback fake of the Zendesk Support API (test infrastructure).

The app's ZENDESK_API_URL points at `fake.base_url`. It keeps one account: agents (e-mail +
API token, basic auth "email/token:api_token"), end users found by external_id, tickets with
their comments. It records every request and implements what Dana calls:
GET /api/v2/users/me, POST /api/v2/users/create_or_update, GET /api/v2/tickets?external_id=,
POST /api/v2/tickets, PUT /api/v2/tickets/<id> (a comment). Errors are Zendesk's: 401
`{"error": "Couldn't authenticate you"}` for bad credentials, 404 for an unknown ticket, and
scripted failures (FakeRest.fail()): 429 with Retry-After, 500, or any status.

    fake = FakeZendesk().start()
    fake.fail("POST /api/v2/tickets", status=429, retry_after=1)
"""
from __future__ import annotations

import base64

from tests.fakes.rest import FakeRest, Request

AGENT_EMAIL = "agent@shop.example.com"
API_TOKEN = "zd-token-1234567890abcdef"
AGENT_ID = 9001


class FakeZendesk(FakeRest):
    """One account: `users` and their `tokens`, `tickets` with their comments."""

    def __init__(self) -> None:
        """One account with one agent; call start() to serve."""
        super().__init__()
        self.users: dict[int, dict] = {
            AGENT_ID: {"id": AGENT_ID, "name": "Alex Agent", "email": AGENT_EMAIL,
                       "role": "agent"}}
        self.tokens: dict[str, int] = {f"{AGENT_EMAIL}/token:{API_TOKEN}": AGENT_ID}
        self.tickets: dict[int, dict] = {}
        self._next_id = 100

    def add_user(self, user_id: int, name: str, email: str, role: str, token: str) -> None:
        """Another user who can authenticate (e.g. an end user, to test the agent check)."""
        with self._lock:
            self.users[user_id] = {"id": user_id, "name": name, "email": email, "role": role}
            self.tokens[f"{email}/token:{token}"] = user_id

    def end_users(self) -> list[dict]:
        """The end users (customers) the account has."""
        return [u for u in self.users.values() if u["role"] == "end-user"]

    def error_body(self, status: int) -> dict:
        """Zendesk's error shape."""
        return {"error": {429: "TooManyRequests", 500: "InternalError"}.get(status, "Error")}

    # ------------------------------------------------------------------ the API

    def answer(self, request: Request) -> tuple[int, dict]:
        """Authenticate (basic auth "email/token:api_token"), then route."""
        user = self._authenticate(request.headers.get("authorization"))
        if user is None:
            return 401, {"error": "Couldn't authenticate you"}
        return self._route(request, user)

    def _authenticate(self, header: str | None) -> dict | None:
        if not header or not header.startswith("Basic "):
            return None
        try:
            pair = base64.b64decode(header[6:]).decode()
        except ValueError:
            return None
        user_id = self.tokens.get(pair)
        return self.users.get(user_id) if user_id else None

    def _route(self, r: Request, user: dict) -> tuple[int, dict]:
        if r.route == "GET /api/v2/users/me":
            return 200, {"user": user}
        if user["role"] not in ("agent", "admin"):
            return 403, {"error": "Forbidden", "description": "You do not have access"}
        if r.route == "POST /api/v2/users/create_or_update":
            return self._upsert_user((r.body or {}).get("user") or {})
        if r.route == "GET /api/v2/tickets":
            external = r.query.get("external_id")
            found = [t for t in self.tickets.values() if t["external_id"] == external]
            return 200, {"tickets": found, "count": len(found)}
        if r.route == "POST /api/v2/tickets":
            return self._create_ticket((r.body or {}).get("ticket") or {}, user)
        if r.method == "PUT" and r.path.startswith("/api/v2/tickets/"):
            ticket = self.tickets.get(int(r.path.rsplit("/", 1)[-1] or 0))
            if ticket is None:
                return 404, {"error": "RecordNotFound", "description": "Not found"}
            comment = ((r.body or {}).get("ticket") or {}).get("comment") or {}
            self._add_comment(ticket, comment, user)
            return 200, {"ticket": ticket, "audit": {"id": self._new_id()}}
        return 404, {"error": "InvalidEndpoint"}

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _upsert_user(self, data: dict) -> tuple[int, dict]:
        if not data.get("name"):
            return 422, {"error": "RecordInvalid", "description": "Name: cannot be blank"}
        existing = next((u for u in self.users.values() if data.get("external_id")
                         and u.get("external_id") == data["external_id"]), None)
        if existing is not None:
            existing.update({k: v for k, v in data.items() if k != "role"})
            return 200, {"user": existing}
        user = {"role": "end-user", **data, "id": self._new_id()}
        self.users[user["id"]] = user
        return 201, {"user": user}

    def _create_ticket(self, data: dict, submitter: dict) -> tuple[int, dict]:
        comment = data.get("comment") or {}
        if not comment.get("body") or data.get("requester_id") not in self.users:
            return 422, {"error": "RecordInvalid", "description": "Requester or comment missing"}
        ticket = {"id": self._new_id(), "subject": data.get("subject"), "status": "new",
                  "requester_id": data["requester_id"], "external_id": data.get("external_id"),
                  "tags": data.get("tags") or [], "priority": data.get("priority"),
                  "comments": []}
        self._add_comment(ticket, comment, submitter)
        self.tickets[ticket["id"]] = ticket
        return 201, {"ticket": ticket}

    def _add_comment(self, ticket: dict, comment: dict, user: dict) -> None:
        ticket["comments"].append({"id": self._new_id(), "body": comment.get("body"),
                                   "public": comment.get("public", True),
                                   "author_id": comment.get("author_id") or user["id"]})
