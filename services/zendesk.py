"""Zendesk: what Zendesk sends back (an agent's comment on a conversation's ticket).

The ticket itself is opened by the `create_ticket` workflow action
(services/integration_actions.py runs the connector's `create_ticket`), which keeps the
ticket's id on the hand-off task and on the conversation (integration_refs, type zendesk:
ticket_id, requester_id, task_id, url); that is how the conversation's later messages become
the ticket's comments (the connector's `notify`) and how a webhook finds the conversation.

POST /webhooks/zendesk (routes/zendesk_webhooks.py) receives Zendesk's "Ticket comment added"
webhook events. Each is verified first (base64 HMAC-SHA256 of timestamp + body, 5-minute
window by default) against the webhook signing secret of the Zendesk integrations it may
concern: those whose conversations have this ticket, else every one with a secret (so an
authentic event about another ticket is answered 200 and ignored, and Zendesk does not
disable the webhook). The secret that verifies names the owner, and the ticket is looked up
among that owner's conversations only: another account's secret can never reach them.

A public comment by staff (not the requester, not private) is sent to the customer as an
agent reply through services.messaging, keyed by the Zendesk comment, so Zendesk's retries
never message the customer twice. When the send fails (e.g. the messaging window closed),
a private note on the ticket says so.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from automation.integrations.base import IntegrationError
from automation.integrations.business import zendesk as zendesk_core
from models_db import Integration, IntegrationRef, db
from services import integrations, messaging
from utils.config import current_settings
from utils.crypto import decrypt
from utils.errors import ApiError, Unauthorized

log = logging.getLogger("dana.zendesk")

COMMENT_ADDED = "zen:event-type:ticket.comment_added"


@dataclass
class Verified:
    """An event whose signature matched the owner's Zendesk webhook secret."""

    payload: dict
    owner_id: str
    row: Integration


def _json_object(raw: bytes) -> dict:
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        payload = None
    if not isinstance(payload, dict):
        raise ApiError("The body is not a JSON object.", code="invalid_json")
    return payload


def ticket_id_of(payload: dict) -> str | None:
    """The ticket an event is about: its subject "zen:ticket:<id>" or detail.id."""
    subject = payload.get("subject")
    if isinstance(subject, str) and subject.startswith("zen:ticket:"):
        ticket = subject.rsplit(":", 1)[-1]
    else:
        detail = payload.get("detail") if isinstance(payload.get("detail"), dict) else {}
        ticket = str(detail.get("id") or "")
    return ticket if ticket.isdigit() else None


def _secret_of(row: Integration) -> str | None:
    secret = (row.config or {}).get("webhook_secret")
    try:
        return decrypt(secret) if secret else None
    except Exception:  # an undecryptable secret (rotated keys) verifies nothing
        log.warning("the Zendesk webhook secret of user %s cannot be decrypted", row.user_id)
        return None


def _candidates(ticket_id: str | None) -> list[Integration]:
    """Zendesk integrations that may have signed an event about this ticket, likeliest first."""
    rows = db.session.scalars(select(Integration).where(
        Integration.type == "zendesk", Integration.enabled.is_(True))
        .order_by(Integration.created_at)).all()
    if ticket_id is None:
        return rows
    owners = set(db.session.scalars(select(IntegrationRef.user_id).where(
        IntegrationRef.type == "zendesk", IntegrationRef.external_id == ticket_id)))
    return sorted(rows, key=lambda r: r.user_id not in owners)


def verify(raw: bytes, headers: Mapping[str, str], payload: dict) -> Verified:
    """Check the signature; 401 invalid_signature, 503 when no webhook secret is set at all."""
    timestamp = headers.get(zendesk_core.TIMESTAMP_HEADER)
    signature = headers.get(zendesk_core.SIGNATURE_HEADER)
    tolerance = current_settings().ZENDESK_WEBHOOK_TOLERANCE_SECONDS
    with_secret = [(row, secret) for row in _candidates(ticket_id_of(payload))
                   if (secret := _secret_of(row))]
    if not with_secret:
        raise ApiError("No Zendesk webhook secret is configured.", status=503,
                       code="zendesk_not_configured")
    if timestamp and signature:
        for row, secret in with_secret:
            if zendesk_core.verify_signature(secret, raw, timestamp, signature, tolerance):
                return Verified(payload, row.user_id, row)
    raise Unauthorized("The Zendesk signature is missing, wrong or too old.",
                       code="invalid_signature")


def receive_webhook(raw: bytes, headers: Mapping[str, str]) -> dict:
    """Verify one Zendesk webhook event and act on it; {"status": ...}."""
    payload = _json_object(raw)
    verified = verify(raw, headers, payload)
    if payload.get("type") != COMMENT_ADDED:
        return {"status": "ignored"}
    return {"status": _handle_comment(verified)}


def _comment_of(payload: dict) -> dict:
    event = payload.get("event") if isinstance(payload.get("event"), dict) else {}
    comment = event.get("comment") if isinstance(event.get("comment"), dict) else {}
    return comment


def _handle_comment(verified: Verified) -> str:
    """An agent's public comment on a conversation's ticket goes to the customer."""
    payload = verified.payload
    ticket_id = ticket_id_of(payload)
    comment = _comment_of(payload)
    author = comment.get("author") if isinstance(comment.get("author"), dict) else {}
    if ticket_id is None or not comment.get("id"):
        return "ignored"
    found = integrations.find_conversation_by_ref("zendesk", ticket_id,
                                                  owner_id=verified.owner_id)
    if found is None:
        return "ignored"   # not a ticket Dana opened (for this account)
    owner_id, conversation_id, refs = found
    public = comment.get("is_public", comment.get("public"))
    if public is not True:
        return "ignored"   # an internal note stays in Zendesk
    if str(author.get("id") or "") == str(refs.get("requester_id") or "-") or \
            author.get("is_staff") is False:
        return "ignored"   # the customer's own words (Dana put them there)
    text = str(comment.get("body") or "").strip()
    if not text:
        return "ignored"
    subdomain = integrations.build_connector(verified.row).config.subdomain
    message = messaging.send_agent_reply(
        owner_id, owner_id, conversation_id, text,
        idempotency_key=f"zendesk:{subdomain}:{comment['id']}",
        metadata={"source": "zendesk", "zendesk": {
            "ticket_id": ticket_id, "comment_id": str(comment["id"]),
            "author": str(author.get("name") or author.get("id") or "")}})
    if message["status"] == "failed":
        _note_on_ticket(verified.row, ticket_id,
                        f"Dana could not deliver this reply to the customer "
                        f"({message.get('error')}).")
        return "failed"
    return "sent"


def _note_on_ticket(row: Integration, ticket_id: str, text: str) -> None:
    """A private note from Dana on the ticket (best effort: a failure shows on the row)."""
    try:
        integrations.run_operation(row, lambda c: c.add_comment(ticket_id, text, public=False))
    except (IntegrationError, Exception):  # recorded on the integration (status error)
        log.warning("could not add a note to Zendesk ticket %s", ticket_id)
