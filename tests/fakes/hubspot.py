"""A minimal loopback fake of HubSpot's CRM API v3 (test infrastructure).

hubspot-api-client talks to it through `host=fake.base_url` (the app's HUBSPOT_API_URL).
It keeps contacts and notes of one portal, answers only its private-app token (else 401
INVALID_AUTHENTICATION, HubSpot's body), and implements what Dana calls:
`GET /crm/v3/objects/contacts` (a page), `POST .../contacts/search` (EQ filters, filter
groups ORed), `POST .../contacts` (409 CONFLICT with "Existing ID: n" on a taken e-mail),
`PATCH .../contacts/{id}` (404 when unknown), `POST /crm/v3/objects/notes` (with
associations). Scripted failures (429 + Retry-After, 500, ...) come from FakeRest.fail().
"""
from __future__ import annotations

import itertools
from datetime import datetime, timezone

from tests.fakes.rest import FakeRest, Request

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
CONTACTS = "/crm/v3/objects/contacts"
NOTES = "/crm/v3/objects/notes"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class FakeHubSpot(FakeRest):
    """One portal: `contacts` {id: properties}, `notes` [{id, properties, associations}]."""

    def __init__(self) -> None:
        """An empty portal that accepts TOKEN."""
        super().__init__()
        self.tokens = {TOKEN}
        self.contacts: dict[str, dict] = {}
        self.notes: list[dict] = []
        self._ids = itertools.count(501)

    def add_contact(self, **properties) -> str:
        """A contact created in HubSpot by someone else; its id."""
        with self._lock:
            contact_id = str(next(self._ids))
            self.contacts[contact_id] = {k: str(v) for k, v in properties.items()}
            return contact_id

    def error_body(self, status: int) -> dict:
        """HubSpot's error shape."""
        category = {401: "INVALID_AUTHENTICATION", 429: "RATE_LIMITS"}.get(status, "ERROR")
        return {"status": "error", "message": f"scripted {status}", "category": category,
                "correlationId": "00000000-0000-0000-0000-000000000000"}

    # ------------------------------------------------------------------ the API

    def _object(self, object_id: str, properties: dict) -> dict:
        now = _now()
        return {"id": object_id, "properties": {**properties, "hs_object_id": object_id},
                "createdAt": now, "updatedAt": now, "archived": False}

    def answer(self, request: Request) -> tuple:
        """Route a request (token checked first)."""
        if request.token not in self.tokens:
            return 401, {"status": "error", "category": "INVALID_AUTHENTICATION",
                         "message": "Authentication credentials not found. This API supports "
                                    "OAuth 2.0 authentication.",
                         "correlationId": "00000000-0000-0000-0000-000000000001"}
        method, path = request.method, request.path.rstrip("/")
        if method == "GET" and path == CONTACTS:
            items = [self._object(i, p) for i, p in list(self.contacts.items())[:1]]
            return 200, {"results": items}
        if method == "POST" and path == CONTACTS + "/search":
            return 200, self._search(request.body or {})
        if method == "POST" and path == CONTACTS:
            return self._create(request.body or {})
        if method == "PATCH" and path.startswith(CONTACTS + "/"):
            contact_id = path.rsplit("/", 1)[-1]
            if contact_id not in self.contacts:
                return 404, {"status": "error", "category": "OBJECT_NOT_FOUND",
                             "message": "resource not found"}
            self.contacts[contact_id].update((request.body or {}).get("properties") or {})
            return 200, self._object(contact_id, self.contacts[contact_id])
        if method == "POST" and path == NOTES:
            note_id = str(next(self._ids))
            body = request.body or {}
            self.notes.append({"id": note_id, "properties": body.get("properties") or {},
                               "associations": body.get("associations") or []})
            return 201, self._object(note_id, body.get("properties") or {})
        return 404, {"status": "error", "message": f"no route {method} {path}"}

    def _search(self, body: dict) -> dict:
        groups = body.get("filterGroups") or []
        found = []
        for contact_id, props in self.contacts.items():
            for group in groups:
                if all(f.get("operator") == "EQ"
                       and str(props.get(f["propertyName"], "")).lower()
                       == str(f.get("value", "")).lower() for f in group.get("filters") or []):
                    found.append(self._object(contact_id, props))
                    break
        return {"total": len(found), "results": found[: int(body.get("limit") or 10)]}

    def _create(self, body: dict) -> tuple:
        props = {k: str(v) for k, v in (body.get("properties") or {}).items()}
        email = props.get("email", "").lower()
        for contact_id, existing in self.contacts.items():
            if email and existing.get("email", "").lower() == email:
                return 409, {"status": "error", "category": "CONFLICT",
                             "message": f"Contact already exists. Existing ID: {contact_id}"}
        contact_id = str(next(self._ids))
        self.contacts[contact_id] = props
        return 201, self._object(contact_id, props)
