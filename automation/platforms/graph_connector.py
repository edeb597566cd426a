"""What every Graph-based connector shares: the webhook envelope walk, and the Send API transport.

Parsing: `parse` checks `object`, walks `entry[]` and isolates each item, so one malformed
item is logged and skipped while the rest of the batch still yields events; subclasses only
parse one entry. Sending: one lazily created httpx.Client, bounded retries with exponential
backoff (tenacity), and the mapping of failures to SendError.

Meta tells integrators to branch on `error.code` (and the optional `error_subcode`), never on
the HTTP status or the message text — the same code is documented with different statuses in
different copies of its own tables. So classification here reads only the Graph error
envelope; the HTTP status is consulted only when there is no envelope at all.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import ClassVar
from urllib.request import getproxies

import httpx
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from .base import (
    AccountCredentials,
    AccountProfile,
    GraphConfig,
    InboundEvent,
    OutboundMessage,
    PlatformConnector,
    SendError,
    SendResult,
)
from .common import as_dict, as_int, as_list

log = logging.getLogger("dana.platforms")

RATE_LIMITED = ("rate_limited", True)
PLATFORM_ERROR = ("platform_error", True)
RECIPIENT_UNAVAILABLE = ("recipient_unavailable", False)
PERMISSION_DENIED = ("permission_denied", False)
OUTSIDE_WINDOW = ("outside_window", False)

# Graph error code -> (SendError.code, retryable), common to Messenger, Instagram and WhatsApp.
# A connector overrides the few codes whose meaning differs per product (see error_overrides).
GRAPH_ERRORS: dict[int, tuple[str, bool]] = {
    1: PLATFORM_ERROR,                 # "An unknown error occurred" — Graph says retry
    2: PLATFORM_ERROR,                 # "An unexpected error has occurred. Please retry"
    4: RATE_LIMITED,                   # application request limit
    613: RATE_LIMITED,                 # calls exceeded the rate limit
    80007: RATE_LIMITED,               # WABA rate limit
    130429: RATE_LIMITED,              # Cloud API throughput
    131048: RATE_LIMITED,              # spam rate limit
    131056: RATE_LIMITED,              # (business, consumer) pair rate limit
    190: ("token_invalid", False),     # expired / revoked token: re-auth, never a retry storm
    100: ("invalid_request", False),   # invalid parameter / no matching user
    230: PERMISSION_DENIED,            # permissions disallow message to user
    368: PERMISSION_DENIED,            # temporarily blocked for policy violations
    551: RECIPIENT_UNAVAILABLE,        # "This person isn't available right now"
    131026: RECIPIENT_UNAVAILABLE,     # undeliverable
    131049: RECIPIENT_UNAVAILABLE,     # not delivered to maintain ecosystem health
    131050: RECIPIENT_UNAVAILABLE,     # user stopped marketing messages
    130472: RECIPIENT_UNAVAILABLE,     # user is part of an experiment
    131047: OUTSIDE_WINDOW,            # WhatsApp re-engagement: send a template instead
}


class GraphConnector(PlatformConnector):
    """Base of the Meta connectors: subclasses implement parse_entry, send_path, build_bodies,
    message_id_of.

    This class owns the envelope walk, the transport, the retry policy (tenacity, bounded by
    GraphConfig) and the mapping of failures to SendError.
    """

    # Per-product meaning of a code or subcode, consulted before GRAPH_ERRORS.
    error_overrides: ClassVar[dict[int, tuple[str, bool]]] = {}
    subcode_errors: ClassVar[dict[int, tuple[str, bool]]] = {}

    def __init__(self, graph: GraphConfig):
        """A connector with a lazily built, shared HTTP client."""
        super().__init__(graph)
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        # The client's own transport and what a POST adds to it (see _post_once); the
        # transport is None when the environment names a proxy (the client then picks one).
        self._transport: httpx.HTTPTransport | None = None
        self._post_headers: list[tuple[bytes, bytes]] = []
        self._post_extensions: dict = {}

    # ------------------------------------------------------------------ parsing

    def parse(self, payload: dict) -> list[InboundEvent]:
        """Normalize a delivery; other `object`s, odd shapes and unknown items yield nothing."""
        if isinstance(payload, list):  # Meta's Instagram doc examples wrap the body in [ ]
            return [event for item in payload for event in self.parse(item)]
        if not isinstance(payload, dict):
            return []
        obj = payload.get("object")
        if not isinstance(obj, str) or obj.lower() not in self.webhook_objects:
            return []
        events: list[InboundEvent] = []
        for entry in as_list(payload.get("entry")):
            if isinstance(entry, dict):
                events.extend(self.guarded("entry", self.parse_entry, entry))
        return events

    def parse_entry(self, entry: dict) -> list[InboundEvent]:
        """The events of one `entry[]` object."""
        raise NotImplementedError

    def guarded(self, what: str, parse_one, *args) -> list[InboundEvent]:
        """parse_one(*args) as a list; an exception drops only this item (logged), never the
        batch.
        """
        try:
            result = parse_one(*args)
        except Exception:  # noqa: BLE001 - the contract is "skip the odd item, keep the rest"
            log.warning("%s: skipped a malformed %s", self.platform, what, exc_info=True)
            return []
        if result is None:
            return []
        return [e for e in result if e is not None] if isinstance(result, list) else [result]

    # ------------------------------------------------------------------ client lifecycle

    @property
    def http(self) -> httpx.Client:
        """The connector's client, created on first use so parsing-only callers open no sockets."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._new_client()
        return self._client

    def _new_client(self) -> httpx.Client:
        """The pooled client, and the parts of it a Send API POST is sent through.

        Without proxies in the environment the client is given its transport explicitly (the
        same pool it would build itself) so that _post_once can hand it a request directly.
        """
        proxied = any(getproxies().get(scheme) for scheme in ("http", "https", "all"))
        transport = None if proxied else httpx.HTTPTransport()
        client = httpx.Client(timeout=self.graph.timeout, transport=transport)
        self._post_headers = list(client.headers.raw)  # the client's defaults (User-Agent...)
        self._post_extensions = {"timeout": client.timeout.as_dict()}
        self._transport = transport
        return client

    def close(self) -> None:
        """Release pooled connections; the connector can still be used (a new client is made)."""
        with self._client_lock:
            client, self._client, self._transport = self._client, None, None
        if client is not None:
            client.close()

    def __enter__(self):
        """Use the connector as a context manager that closes its pool."""
        return self

    def __exit__(self, *exc_info) -> None:
        """Close the pooled connections."""
        self.close()

    # ------------------------------------------------------------------ sending

    def send_path(self, account: AccountCredentials) -> str:
        """The Graph path (without version) messages for this account are POSTed to."""
        raise NotImplementedError

    def build_bodies(self, recipient_id: str, message: OutboundMessage) -> list[dict]:
        """The request bodies for one OutboundMessage (several when the text is split)."""
        raise NotImplementedError

    def message_id_of(self, body: dict) -> str | None:
        """The platform message id in a success body."""
        raise NotImplementedError

    def send(self, account: AccountCredentials, recipient_id: str,
             message: OutboundMessage) -> SendResult:
        """Send the message's parts in order; the result carries the LAST part's message id.

        Text longer than the platform limit is split (see common.split_text) and sent as
        several messages; when that happens raw also lists every id under "message_ids".
        A failure on a later part raises SendError after earlier parts were delivered.
        """
        bodies = self.build_bodies(recipient_id, message)
        if not bodies:
            raise SendError("invalid_request", f"{self.platform}: nothing to send")
        path = self.send_path(account)
        ids: list[str] = []
        raw: dict = {}
        for body in bodies:
            raw = self.post_message(path, account.access_token, body)
            message_id = self.message_id_of(raw)
            if not message_id:
                raise SendError("platform_error",
                                f"{self.platform}: success body without a message id",
                                retryable=False, http_status=200)
            ids.append(message_id)
        if len(ids) > 1:
            raw = {**raw, "message_ids": ids}
        return SendResult(platform_message_id=ids[-1], raw=raw)

    def post_message(self, path: str, access_token: str, body: dict) -> dict:
        """POST one message body to `path`, retrying retryable failures; the success JSON or
        SendError.

        Up to graph.retry_attempts tries, waiting retry_wait_initial seconds after the first
        failure and twice as long after each next one (at most retry_wait_max). The first
        try runs without building the retry loop (tenacity's Retrying), as most succeed.
        """
        attempts = max(1, self.graph.retry_attempts)
        try:
            return self._post_once(path, access_token, body)
        except SendError as exc:
            if not exc.retryable or attempts == 1:
                raise
            wait = min(self.graph.retry_wait_initial, self.graph.retry_wait_max)
            log.warning("%s: Send API call failed (%s); retrying in %.2f s", self.platform,
                        exc, wait)
            time.sleep(wait)
        # The tries after the first: their waits continue the first one's (2x, 4x ... it).
        retrying = Retrying(
            stop=stop_after_attempt(attempts - 1),
            wait=wait_exponential(multiplier=2 * self.graph.retry_wait_initial,
                                  max=self.graph.retry_wait_max),
            retry=retry_if_exception(lambda exc: isinstance(exc, SendError) and exc.retryable),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )
        return retrying(self._post_once, path, access_token, body)

    def _post(self, url: str, access_token: str, body: dict) -> httpx.Response:
        """POST `body` as JSON through the pooled client; the read response.

        Without a proxy the request goes straight to the client's transport (its pool), with
        the client's default headers and timeouts: what client.post does, less its per-call
        work that a Send API call never needs (merging URL, cookies, auth and redirect
        handling), about a quarter of the call's CPU on loopback.
        """
        client = self.http
        transport = self._transport
        if transport is None:
            return client.post(url, json=body, headers={"Authorization": f"Bearer {access_token}"})
        request = httpx.Request(
            "POST", url, json=body, extensions=self._post_extensions,
            headers=[*self._post_headers,
                     (b"Authorization", f"Bearer {access_token}".encode("ascii"))])
        response = transport.handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        return response

    def _post_once(self, path: str, access_token: str, body: dict) -> dict:
        try:
            response = self._post(self.graph.url(path), access_token, body)
        except httpx.TransportError as exc:  # connect/read errors and timeouts
            raise SendError("network_error", f"{self.platform}: {type(exc).__name__}: {exc}",
                            retryable=True) from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.is_success and isinstance(data, dict) and "error" not in data:
            return data
        raise self.classify_error(response.status_code, data)

    # ------------------------------------------------------------------ ownership check

    def account_check(self, account: AccountCredentials) -> tuple[str, str]:
        """The Graph path and `fields` that tell which account a token manages."""
        raise NotImplementedError

    def profile_of(self, body: dict) -> AccountProfile:
        """The AccountProfile in the check's success body."""
        return AccountProfile(id=str(body.get("id") or ""), name=str(body.get("name") or ""),
                              raw=body)

    def fetch_account(self, account: AccountCredentials) -> AccountProfile:
        """One GET through the shared client, no retry; the profile Graph answers or SendError."""
        path, fields = self.account_check(account)
        try:
            response = self.http.get(self.graph.url(path), params={"fields": fields},
                                     headers={"Authorization": f"Bearer {account.access_token}"})
        except httpx.TransportError as exc:
            raise SendError("network_error", f"{self.platform}: {type(exc).__name__}: {exc}",
                            retryable=True) from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.is_success and isinstance(data, dict) and "error" not in data:
            return self.profile_of(data)
        if response.is_success:  # 2xx without a readable body: nothing was proven
            raise SendError("platform_error", f"{self.platform}: unreadable account check answer",
                            retryable=True, http_status=response.status_code)
        raise self.classify_error(response.status_code, data)

    def classify_error(self, http_status: int, body) -> SendError:
        """Map a failed response to SendError by the Graph error code (the HTTP status alone
        when there is no error envelope).
        """
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            if 200 <= http_status < 300:
                # Meta answered 2xx but we cannot read a message id: the message may have gone
                # out, so retrying risks a duplicate.
                return SendError("platform_error", f"{self.platform}: unreadable success body",
                                 retryable=False, http_status=http_status)
            retryable = http_status >= 500
            return SendError("platform_error" if retryable else "invalid_request",
                             f"{self.platform}: HTTP {http_status} without a Graph error body",
                             retryable=retryable, http_status=http_status)
        code = as_int(error.get("code"))
        subcode = as_int(error.get("error_subcode"))
        kind, retryable = self._lookup(code, subcode, http_status,
                                       error.get("is_transient") is True)
        message = str(error.get("message") or error.get("error_user_msg") or "Graph API error")
        details = as_dict(error.get("error_data")).get("details")
        if details:
            message = f"{message}: {details}"
        return SendError(kind, message, retryable=retryable, graph_code=code,
                         graph_subcode=subcode, http_status=http_status)

    def _lookup(self, code: int | None, subcode: int | None, http_status: int,
                transient: bool) -> tuple[str, bool]:
        if subcode in self.subcode_errors:
            return self.subcode_errors[subcode]
        if code in self.error_overrides:
            return self.error_overrides[code]
        if code in GRAPH_ERRORS:
            return GRAPH_ERRORS[code]
        if code is not None and 200 <= code <= 299:
            return PERMISSION_DENIED
        if http_status >= 500 or transient:
            return PLATFORM_ERROR
        return ("invalid_request", False)
