"""Google Analytics 4: a workflow's `track_event` for one conversation's customer.

The event goes through the owner's GA4 integration (its retries, its failure recorded on
the integration) with the customer's pseudonymous client id and the conversation's platform;
the connector drops any parameter that would say who the customer is or what they wrote.
"""
from __future__ import annotations

from sqlalchemy import select

from models_db import Integration, db
from services import integrations


def track_event(owner_id: str, conversation: dict, name: str, params: dict | None = None
                ) -> dict:
    """Send one named event about this conversation; {"status": "ok", "event": name}.

    Raises LookupError when GA4 is not configured and enabled, IntegrationError on failure.
    """
    row = db.session.scalar(select(Integration).where(
        Integration.user_id == owner_id, Integration.type == "google_analytics"))
    if row is None or not row.enabled:
        raise LookupError("no enabled 'google_analytics' integration is configured")
    contact_id = (conversation.get("contact") or {}).get("id") or conversation["id"]

    def send(connector):
        return connector.track(connector.client_id(owner_id, contact_id), name,
                               connector.event_params(conversation, params))
    return integrations.run_operation(row, send)
