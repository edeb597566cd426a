"""The app's platform connectors: one per platform, kept for the app's life.

Sending (automation/core/sending.py), parsing stored deliveries (the processor) and the
connect-time ownership check (services/platforms.py) all go through `connector_for`, so they
share one HTTP connection pool per platform instead of rebuilding it per call.
"""
from __future__ import annotations

from flask import current_app

from automation.platforms.base import GraphConfig, PlatformConnector
from automation.registry import get_connector
from utils.config import current_settings


def graph_config(platform: str | None = None) -> GraphConfig:
    """Where a platform's Send API lives: Instagram accounts connected with Instagram Login
    are served by graph.instagram.com (INSTAGRAM_GRAPH_API_URL), everything else by Graph.
    """
    s = current_settings()
    base = s.INSTAGRAM_GRAPH_API_URL if platform == "instagram" else s.GRAPH_API_URL
    return GraphConfig(base_url=base, version=s.GRAPH_API_VERSION,
                       timeout=s.GRAPH_TIMEOUT_SECONDS, retry_attempts=s.GRAPH_RETRY_ATTEMPTS,
                       retry_wait_initial=s.GRAPH_RETRY_WAIT_SECONDS,
                       retry_wait_max=max(s.GRAPH_RETRY_WAIT_SECONDS * 16, 0.01))


def connector_for(platform: str) -> PlatformConnector:
    """This app's connector for a platform, reused so its HTTP connection pool (and TLS set-up)
    is shared by every send instead of being rebuilt per message.
    """
    cache = current_app.extensions.setdefault("dana_connectors", {})
    connector = cache.get(platform)
    if connector is None:
        connector = cache[platform] = get_connector(platform, graph_config(platform))
    return connector
