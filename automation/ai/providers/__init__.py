"""AI providers behind one interface (providers.base.Provider), chosen by AI_PROVIDER."""
from __future__ import annotations

from automation.ai.providers.base import Answer, Provider, ProviderError, ReplyContext
from automation.ai.providers.local import LocalProvider
from automation.ai.providers.openai_provider import OpenAIProvider

PROVIDERS: dict[str, type[Provider]] = {
    "local": LocalProvider,
    "openai": OpenAIProvider,
}


def get_provider(name: str) -> Provider:
    """A provider by its AI_PROVIDER name (unknown names get the local provider)."""
    return PROVIDERS.get(name, LocalProvider)()


__all__ = ["Answer", "PROVIDERS", "Provider", "ProviderError", "ReplyContext", "get_provider"]
