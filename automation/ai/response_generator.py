"""The AI's entry points: answer a message, draft replies for an agent, summarise a thread,
and classify a message (intent, language).

generate_reply never raises: the configured provider (AI_PROVIDER) answers; if it fails
(error, timeout, unusable reply) the local provider answers instead; and when nothing can
answer confidently the result is a hand-off to a human.
"""
from __future__ import annotations

import logging

from automation.ai.nlu import INTENTS, detect_intent, detect_language, warm_up
from automation.ai.providers import get_provider
from automation.ai.providers.base import Answer, ProviderError, ReplyContext
from automation.ai.providers.local import LocalProvider, handoff_answer
from automation.knowledge.database import Passage, search
from models_db import db
from utils.config import current_settings

log = logging.getLogger("dana.ai")

PASSAGES = 5
SUMMARY_MESSAGES = 6
SUMMARY_TEXT_CHARS = 200

__all__ = ["Answer", "INTENTS", "ProviderError", "ReplyContext", "detect_intent",
           "detect_language", "generate_reply", "retrieve", "suggest_replies",
           "summarize_conversation", "warm_up"]


def _provider_name() -> str:
    try:
        return current_settings().AI_PROVIDER or "local"
    except (RuntimeError, KeyError):  # outside an app: offline
        return "local"


def retrieve(ctx: ReplyContext, limit: int = PASSAGES) -> list[Passage]:
    """The knowledge passages for the message, best first ([] if search fails)."""
    try:
        return search(ctx.user_id, ctx.message_text or "", limit)
    except Exception:
        log.exception("knowledge search failed for user %s", ctx.user_id)
        db.session.rollback()
        return []


def generate_reply(ctx: ReplyContext) -> Answer:
    """Answer one customer message, or hand off; never raises (see the module docstring)."""
    try:
        passages = retrieve(ctx)
        name = _provider_name()
        failed = None
        if name != "local":
            try:
                return get_provider(name).generate(ctx, passages)
            except Exception as exc:  # ProviderError, or a bug: the customer still gets served
                log.warning("AI provider %s failed, falling back to local: %s", name, exc)
                failed = name
        answer = LocalProvider().generate(ctx, passages)
        answer.fallback_from = failed
        return answer
    except Exception:
        log.exception("reply generation failed for conversation %s", ctx.conversation_id)
        try:
            return handoff_answer(ctx, "ai_error")
        except Exception:
            return Answer(text=None, handoff=True, reason="ai_error", confidence=0.0)


def suggest_replies(ctx: ReplyContext, n: int = 3) -> list[str]:
    """Up to n draft replies an agent could send (the provider's, or local ones on failure)."""
    n = max(1, min(int(n), 10))
    passages = retrieve(ctx)
    name = _provider_name()
    if name != "local":
        try:
            return get_provider(name).suggest(ctx, passages, n)
        except Exception as exc:
            log.warning("AI provider %s could not suggest replies, using local: %s", name, exc)
    return LocalProvider().suggest(ctx, passages, n)


_TOPICS = {"order_status": "order status", "pricing": "prices", "complaint": "a complaint",
           "human_request": "talking to a person", "question": None, "other": None}


def _short(text: str, limit: int = SUMMARY_TEXT_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def summarize_conversation(history: list[dict], contact_name: str | None) -> str:
    """A plain-text brief for the human taking over: who, what they asked, the last messages.

    Local and deterministic (no AI call), so a hand-off never waits on or pays for a model.
    """
    who = (contact_name or "").strip() or "The customer"
    msgs = [h for h in (history or []) if (h.get("text") or "").strip()]
    customer = [h["text"] for h in msgs if h.get("role") == "customer"]
    if not msgs:
        return f"{who} has not written anything yet."
    lines = [f"Customer: {who} ({len(customer)} message{'s' if len(customer) != 1 else ''} "
             f"from them, {len(msgs)} in total)."]
    intents = [detect_intent(t) for t in customer]
    asked = [_short(t, 140) for t, i in zip(customer, intents, strict=True)
             if i in ("question", "pricing", "order_status", "complaint", "human_request")]
    if asked:
        lines.append("Asked: " + "; ".join(f'"{a}"' for a in list(dict.fromkeys(asked))[-3:]))
    topics = [t for t in dict.fromkeys(_TOPICS.get(i) for i in intents) if t]
    if topics:
        lines.append("Topics: " + ", ".join(topics) + ".")
    if customer:
        lang = detect_language(" ".join(customer))
        if lang != "en":
            lines.append(f"Language: {lang}.")
    lines.append("Last messages:")
    first = who.split()[0] if contact_name else "Customer"
    for h in msgs[-SUMMARY_MESSAGES:]:
        speaker = first if h.get("role") == "customer" else "Business"
        lines.append(f"- {speaker}: {_short(h['text'])}")
    return "\n".join(lines)
