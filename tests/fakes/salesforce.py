"""A minimal loopback fake of Salesforce's REST API (test infrastructure), over HTTPS.

simple-salesforce insists on https://, so the fake serves TLS with a throw-away CA (tests
trust it through REQUESTS_CA_BUNDLE). One org: records per sObject, one accepted access
token (else 401 INVALID_SESSION_ID), and the External ID fields that exist. It implements
what Dana calls under `/services/data/v<version>/`: `GET limits/`, `GET sobjects/<O>/<field>/
<value>` (by external id), `PATCH sobjects/<O>/<field>/<value>` (upsert: 201 created / 200
updated; REQUIRED_FIELD_MISSING without LastName, or Company for a Lead), `PATCH
sobjects/<O>/<Id>` (update, 204), `POST sobjects/<O>/` (create). Errors are Salesforce's
JSON list `[{"errorCode", "message"}]`; scripted failures come from FakeRest.fail().
"""
from __future__ import annotations

import itertools
import re

from tests.fakes.rest import FakeRest, Request

TOKEN = "00D5g000004ABCD!AQ0AQFakeAccessToken.For_Tests"
EXTERNAL_ID = "Dana_Contact_Id__c"
PREFIXES = {"Lead": "00Q", "Contact": "003", "Task": "00T", "Case": "500"}
REQUIRED = {"Lead": ("LastName", "Company"), "Contact": ("LastName",), "Task": (),
            "Case": ()}
_PATH = re.compile(r"^/services/data/v(?P<version>\d+\.\d)/(?P<rest>.*)$")


def sf_error(code: str, message: str) -> list[dict]:
    """Salesforce's error body."""
    return [{"errorCode": code, "message": message, "fields": []}]


class FakeSalesforce(FakeRest):
    """`records[sobject][Id] = fields`; `versions` seen; `external_fields` that exist."""

    def __init__(self, tls) -> None:
        """An empty org served over HTTPS with the test CA's server certificate."""
        super().__init__(tls=(tls.cert_file, tls.key_file))
        self.tokens = {TOKEN}
        self.records: dict[str, dict[str, dict]] = {name: {} for name in PREFIXES}
        self.external_fields = {EXTERNAL_ID}
        self.versions: set[str] = set()
        self._ids = itertools.count(1)

    def add(self, sobject: str, **fields) -> str:
        """A record made in Salesforce by someone else; its Id."""
        with self._lock:
            return self._insert(sobject, fields)

    def error_body(self, status: int) -> list[dict]:
        """A scripted failure in Salesforce's shape."""
        code = {401: "INVALID_SESSION_ID", 403: "REQUEST_LIMIT_EXCEEDED",
                429: "REQUEST_LIMIT_EXCEEDED"}.get(status, "UNKNOWN_EXCEPTION")
        return sf_error(code, f"scripted {status}")

    def _insert(self, sobject: str, fields: dict) -> str:
        record_id = f"{PREFIXES[sobject]}5g00000{next(self._ids):08d}AAA"
        self.records[sobject][record_id] = dict(fields)
        return record_id

    def _record(self, sobject: str, record_id: str) -> dict:
        return {"attributes": {"type": sobject,
                               "url": f"/services/data/v62.0/sobjects/{sobject}/{record_id}"},
                "Id": record_id, **self.records[sobject][record_id]}

    def answer(self, request: Request) -> tuple:
        """Route a request (token checked first)."""
        if request.token not in self.tokens:
            return 401, sf_error("INVALID_SESSION_ID", "Session expired or invalid")
        match = _PATH.match(request.path)
        if not match:
            return 404, sf_error("NOT_FOUND", "The requested resource does not exist")
        self.versions.add(match["version"])
        parts = [p for p in match["rest"].split("/") if p]
        if request.method == "GET" and parts == ["limits"]:
            return 200, {"DailyApiRequests": {"Max": 15000, "Remaining": 14990}}
        if len(parts) < 2 or parts[0] != "sobjects" or parts[1] not in PREFIXES:
            return 404, sf_error("NOT_FOUND", "The requested resource does not exist")
        sobject, rest = parts[1], parts[2:]
        body = request.body if isinstance(request.body, dict) else {}
        if request.method == "POST" and not rest:
            missing = [f for f in REQUIRED[sobject] if not body.get(f)]
            if missing:
                return 400, sf_error("REQUIRED_FIELD_MISSING",
                                     f"Required fields are missing: {missing}")
            return 201, {"id": self._insert(sobject, body), "success": True, "errors": []}
        if len(rest) == 1 and request.method == "PATCH":
            if rest[0] not in self.records[sobject]:
                return 404, sf_error("NOT_FOUND", "The requested resource does not exist")
            self.records[sobject][rest[0]].update(body)
            return 204, None
        if len(rest) == 2:
            field, value = rest
            if field not in self.external_fields:
                return 404, sf_error("NOT_FOUND", "Provided external ID field does not exist "
                                                  f"or is not accessible: {field}")
            found = [i for i, r in self.records[sobject].items() if r.get(field) == value]
            if request.method == "GET":
                if not found:
                    return 404, sf_error("NOT_FOUND", "The requested resource does not exist")
                return 200, self._record(sobject, found[0])
            if request.method == "PATCH":
                if field in body:
                    return 400, sf_error("INVALID_FIELD", f"{field} is not valid in the body")
                if found:
                    self.records[sobject][found[0]].update(body)
                    return 200, {"id": found[0], "success": True, "errors": [],
                                 "created": False}
                missing = [f for f in REQUIRED[sobject] if not body.get(f)]
                if missing:
                    return 400, sf_error("REQUIRED_FIELD_MISSING",
                                         f"Required fields are missing: {missing}")
                record_id = self._insert(sobject, {**body, field: value})
                return 201, {"id": record_id, "success": True, "errors": [], "created": True}
        return 404, sf_error("NOT_FOUND", "The requested resource does not exist")
