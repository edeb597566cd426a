"""HTTP answers of a JSON web API turned into the integrations' errors (httpx connectors).

Zendesk and Google Analytics are called with httpx; what their answers mean for a retry is
the same: 401/403 is permanent (the credentials must change), 429 and 503 carry Retry-After
(honoured by services/integrations.run_operation), other 5xx and network failures are worth
another try, and any other 4xx is a request the service will refuse again. Messages carry
the service's reason, never the request URL (a Measurement Protocol URL holds its secret).
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx

from automation.integrations.base import IntegrationError

MAX_REASON = 300


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), else None."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def reason_of(response: httpx.Response) -> str:
    """A short reason from the service's error body (Zendesk: error/description/details)."""
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
        reason = response.reason_phrase or f"HTTP {response.status_code}"
    return " ".join(reason.split())[:MAX_REASON]


def raise_for_answer(service: str, what: str, response: httpx.Response) -> None:
    """Raise IntegrationError for a non-2xx answer: permanent for 401/403 and other 4xx."""
    status = response.status_code
    if status < 400:
        return
    reason = reason_of(response)
    message = f"{service} {what} failed: HTTP {status} {reason}"
    if status in (429, 503):
        raise IntegrationError(message, retry_after=retry_after(response.headers))
    raise IntegrationError(message, permanent=status < 500 and status not in (408, 409, 425))


def call(service: str, what: str, send) -> httpx.Response:
    """send() (an httpx request); transport failures become retryable IntegrationErrors."""
    try:
        response = send()
    except httpx.TimeoutException:
        raise IntegrationError(f"{service} {what} failed: timed out") from None
    except httpx.HTTPError as exc:
        raise IntegrationError(f"{service} {what} failed: {type(exc).__name__}") from None
    raise_for_answer(service, what, response)
    return response
