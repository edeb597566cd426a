"""The IntegrationConnector contract: the extension point workflows' `notify` action uses.

An integration is one module with a subclass and one line in automation.registry.INTEGRATIONS.
None ship yet; a `notify` to a channel without an integration fails and is recorded in the
workflow run (the other actions still run).
"""
from __future__ import annotations

from typing import ClassVar


class IntegrationConnector:
    """Base class for an outbound integration (keyed by `type`, e.g. 'slack')."""

    type: ClassVar[str]

    def notify(self, user_id: str, text: str, context: dict) -> dict | None:
        """Deliver a notification for this user's workspace; raise on failure."""
        raise NotImplementedError
