"""The explicit registry of connectors: adding a platform is one module plus one line here."""
from __future__ import annotations

from automation.integrations.base import IntegrationConnector
from automation.integrations.business.email import EmailConnector
from automation.integrations.business.slack import SlackConnector
from automation.integrations.catalogue import PLANNED
from automation.platforms.base import GraphConfig, PlatformConnector
from automation.platforms.facebook import FacebookConnector
from automation.platforms.instagram import InstagramConnector
from automation.platforms.whatsapp import WhatsAppConnector

PLATFORMS: dict[str, type[PlatformConnector]] = {
    "facebook": FacebookConnector,
    "instagram": InstagramConnector,
    "whatsapp": WhatsAppConnector,
}

# Integrations (Slack, e-mail, CRM, databases), keyed by type: one module plus one line here.
# PLANNED lists all ten specified types (unavailable placeholders); a built one replaces its
# placeholder below, keeping the catalogue's order.
INTEGRATIONS: dict[str, type[IntegrationConnector]] = {
    **PLANNED,
    "slack": SlackConnector,
    "email": EmailConnector,
}


def get_connector(platform: str, graph: GraphConfig) -> PlatformConnector:
    """A new connector for `platform`; KeyError names the known platforms when it is not one."""
    try:
        connector_class = PLATFORMS[platform]
    except KeyError:
        raise KeyError(f"unknown platform {platform!r}; known: {', '.join(sorted(PLATFORMS))}") from None
    return connector_class(graph)
