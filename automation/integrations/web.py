"""httpx calls of the JSON web API connectors (Zendesk, Google Analytics) and their failures.

What an HTTP answer means for a retry is base.http_error's (401/403 permanent, 429/503 with
Retry-After, 5xx retried); this module adds what an httpx connector needs around it: the
service's reason read from its error body, and transport failures (timeouts, refused
connections) as retryable errors. Messages carry the service's reason, never the request URL
(a Measurement Protocol URL holds its secret).
"""
from __future__ import annotations

import httpx

from automation.integrations.base import http_error

MAX_REASON = 300


def reason_of(response: httpx.Response) -> str:
    """A short reason from the service's error body (Zendesk: error/description)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    reason = ""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            reason = str(error.get("message") or error.get("title") or "")
        elif error:
            reason = str(error)
        description = body.get("description")
        if description:
            reason = f"{reason}: {description}" if reason else str(description)
    if not reason:
        reason = response.reason_phrase or ""
    return " ".join(reason.split())[:MAX_REASON]


def raise_for_answer(service: str, what: str, response: httpx.Response) -> None:
    """Raise base.http_error's IntegrationError for a non-2xx answer."""
    if response.status_code >= 400:
        raise http_error(f"{service} {what}", response.status_code, reason_of(response),
                         response.headers)


def call(service: str, what: str, send) -> httpx.Response:
    """send() (an httpx request); transport failures become retryable IntegrationErrors."""
    try:
        response = send()
    except httpx.TimeoutException:
        raise http_error(f"{service} {what}", None, "timed out") from None
    except httpx.HTTPError as exc:
        raise http_error(f"{service} {what}", None, type(exc).__name__) from None
    raise_for_answer(service, what, response)
    return response

