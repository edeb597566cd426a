"""The explicit registries: adding a platform, an integration or an inbound channel is one
module plus one line here.
"""
from __future__ import annotations

from automation.inbound import InboundHook
from automation.integrations.base import IntegrationConnector
from automation.integrations.business.email import EmailConnector
from automation.integrations.business.google_analytics import GoogleAnalyticsConnector
from automation.integrations.business.hubspot import HubSpotConnector
from automation.integrations.business.salesforce import SalesforceConnector
from automation.integrations.business.slack import SlackConnector
from automation.integrations.business.zendesk import ZendeskConnector
from automation.integrations.catalogue import PLANNED
from automation.integrations.database.mongodb import MongoDbConnector
from automation.integrations.database.mysql import MySqlConnector
from automation.integrations.database.postgresql import PostgreSqlConnector
from automation.integrations.database.sqlserver import SqlServerConnector
from automation.platforms.base import GraphConfig, PlatformConnector
from automation.platforms.facebook import FacebookConnector
from automation.platforms.instagram import InstagramConnector
from automation.platforms.meta_webhook import MetaWebhook
from automation.platforms.whatsapp import WhatsAppConnector

PLATFORMS: dict[str, type[PlatformConnector]] = {
    "facebook": FacebookConnector,
    "instagram": InstagramConnector,
    "whatsapp": WhatsAppConnector,
}

# Inbound channels, keyed by the <channel> of /webhooks/<channel>: each verifies its requests
# and answers its handshake; services/intake.py stores and dispatches what they let in.
INBOUND_HOOKS: dict[str, InboundHook] = {
    "facebook": MetaWebhook("facebook", FacebookConnector.secret_setting),
    "instagram": MetaWebhook("instagram", InstagramConnector.secret_setting),
    "whatsapp": MetaWebhook("whatsapp", WhatsAppConnector.secret_setting),
}

# Integrations (Slack, e-mail, CRM, databases), keyed by type: one module plus one line here.
# PLANNED lists all ten specified types (unavailable placeholders); a built one replaces its
# placeholder below, keeping the catalogue's order.
INTEGRATIONS: dict[str, type[IntegrationConnector]] = {
    **PLANNED,
    "slack": SlackConnector,
    "email": EmailConnector,
    "mysql": MySqlConnector,
    "postgresql": PostgreSqlConnector,
    "mongodb": MongoDbConnector,
    "sqlserver": SqlServerConnector,
    "hubspot": HubSpotConnector,
    "salesforce": SalesforceConnector,
    "zendesk": ZendeskConnector,
    "google_analytics": GoogleAnalyticsConnector,
}


def get_connector(platform: str, graph: GraphConfig) -> PlatformConnector:
    """A new connector for `platform`; KeyError names the known platforms when it is not one."""
    try:
        connector_class = PLATFORMS[platform]
    except KeyError:
        known = ", ".join(sorted(PLATFORMS))
        raise KeyError(f"unknown platform {platform!r}; known: {known}") from None
    return connector_class(graph)
