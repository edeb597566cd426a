"""The IntegrationConnector contract shared by every business-tool integration.

An integration is one module with a subclass and one line in automation.registry.INTEGRATIONS.
Connectors import NO services (only utils/ and lower automation pieces): services/integrations.py
stores their config (secrets encrypted), runs `check()` before storing and runs `notify()` with
retries, recording failures on the integration's row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pydantic

from utils.config import current_settings


class IntegrationCheckFailed(Exception):
    """The service refused the credentials/config; str(exc) is the service's reason."""


class IntegrationError(Exception):
    """A run-time failure talking to the service.

    `retry_after` (seconds|None) when the service said so (HTTP 429/503 Retry-After);
    `permanent=True` for auth failures (401/403) that no retry fixes.
    """

    def __init__(self, message: str, *, retry_after: float | None = None,
                 permanent: bool = False):
        """Keep the service's reason, its Retry-After and whether a retry could help."""
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


@dataclass(frozen=True)
class Notification:
    """What a `notify` action or a hand-off delivers to a team channel."""

    owner_id: str
    # "handoff" | "new_conversation" | "customer_message" | "notify" | "digest"
    kind: str
    # plain-text body (already rendered from the workflow's template)
    text: str
    title: str = ""
    # the store's conversation dict (id, platform, contact, integration_refs...)
    conversation: dict | None = None
    message: dict | None = None
    task: dict | None = None
    link: str | None = None
    # per-workflow override: Slack channel id / e-mail addresses (comma-separated)
    target: str | None = None


class IntegrationConnector:
    """One external service. Subclass per type + one line in automation.registry.INTEGRATIONS."""

    type: ClassVar[str]                    # "slack"
    name: ClassVar[str]                    # "Slack"
    # "messaging" | "email" | "crm" | "helpdesk" | "analytics" | "database"
    category: ClassVar[str]
    config_model: ClassVar[type[pydantic.BaseModel]]   # validates `config`; JSON schema for /types
    secret_fields: ClassVar[frozenset[str]]             # encrypted at rest, masked "••••"+last4
    operations: ClassVar[frozenset[str]] = frozenset()  # e.g. {"notify"}; later {"crm_sync"}, ...
    available: ClassVar[bool] = True       # False = specified but not built yet (listed in /types)

    def __init__(self, config: pydantic.BaseModel, settings) -> None:
        """Keep the validated config and the app's typed Settings (e.g. SLACK_API_URL)."""
        self.config, self.settings = config, settings

    def check(self) -> str:
        """ONE real call proving the credentials work.

        Returns a short detail; raises IntegrationCheckFailed with the service's reason.
        """
        raise NotImplementedError

    def notify(self, notification: Notification) -> dict:
        """Deliver it; raises IntegrationError.

        Returns refs to keep about the conversation (e.g. {"thread_ts": ..., "channel": ...}).
        """
        raise NotImplementedError

    def dispose(self) -> None:
        """Release what this connection holds (a pool); the config changed or was deleted."""


def conversation_link(conversation_id: str) -> str:
    """The frontend's link to a conversation (APP_URL), as notifications carry it."""
    return f"{current_settings().APP_URL.rstrip('/')}/conversations/{conversation_id}"
