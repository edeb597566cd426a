"""The one interface every AI provider implements, and the data it works on."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from automation.knowledge.database import Passage


@dataclass
class ReplyContext:
    """Everything a provider may use to answer one customer message.

    business: {name, persona, instructions, handoff_message, language, answer_confidence}.
    history: the recent thread, oldest first, as [{role: "customer"|"business", text}]; it may
    end with the message being answered (it is then not repeated to the model).
    """

    user_id: str
    business: dict
    conversation_id: str | None
    message_text: str
    history: list[dict] = field(default_factory=list)
    contact_name: str | None = None
    platform: str | None = None
    # rows read by the workflow's `lookup` actions ({variable: {column: value}}), given to
    # the AI as facts when the workflow's ai_reply says use_lookup
    facts: dict = field(default_factory=dict)


@dataclass
class Answer:
    """A reply to send (text), or a hand-off to a human (handoff=True, with a reason).

    confidence is 0..1; sources are the knowledge document ids the answer rests on; usage
    holds token counts for metered providers; fallback_from names the provider that failed
    when another one answered instead.
    """

    text: str | None
    handoff: bool
    reason: str | None
    confidence: float
    sources: list[str] = field(default_factory=list)
    provider: str = "local"
    usage: dict = field(default_factory=dict)
    fallback_from: str | None = None


class ProviderError(Exception):
    """The provider could not produce a usable answer (network, timeout, HTTP error, bad JSON).

    The response generator catches it and falls back to the local provider.
    """


class Provider(ABC):
    """An answer engine: turns a message and the knowledge passages found for it into an
    Answer. Adding one is a new module plus a line in providers.PROVIDERS.
    """

    name: str = "base"

    @abstractmethod
    def generate(self, ctx: ReplyContext, passages: list[Passage]) -> Answer:
        """Answer the message from the passages, or hand off; ProviderError when it can't."""

    @abstractmethod
    def suggest(self, ctx: ReplyContext, passages: list[Passage], n: int) -> list[str]:
        """Up to n replies an agent could send; ProviderError when it can't."""
