"""The offline provider: templates for small talk, quotes from the knowledge base, or hand-off.

No network and no language model. It answers only when the decision model
(automation.knowledge.decision: a logistic regression over the search's evidence, fitted with
bench/answers.py on the bench's dev questions) says that quoting the best passage is right
with a probability at or above the threshold of the business's answer-confidence level
(cautious, balanced or bold: how much a wrong answer costs it); below it, a human is better
than a guess. Q/A passages are answered with their answer; prose passages with their 1–3 sentences
that match the question best, after a short lead-in.
"""
from __future__ import annotations

import functools
import re
from typing import NamedTuple

from typing_extensions import override

from automation.ai import templates as tpl
from automation.ai.nlu import detect_intent, detect_language
from automation.ai.providers.base import Answer, Provider, ReplyContext
from automation.knowledge.database import Passage, search
from automation.knowledge.decision import answer_kind, features, load_model
from automation.knowledge.text import (
    alternatives,
    any_matches,
    content_terms,
    rewrite_phrases,
    sentences,
    stem,
    stem_index,
    stems_match,
    tokens,
)

# A passage is offered to an agent as a draft from this score on (drafts are reviewed).
SUGGEST_MIN_SCORE = 0.33
MAX_REPLY_CHARS = 700
SMALL_TALK = ("greeting", "thanks", "goodbye")


def first_name(contact_name: str | None) -> str | None:
    """The contact's first name, if a plausible one is known."""
    if not contact_name:
        return None
    first = contact_name.strip().split()[0] if contact_name.strip() else ""
    return first if first and any(ch.isalpha() for ch in first) else None


def reply_language(ctx: ReplyContext) -> str:
    """The language to reply in: the customer's, else the business's, else English."""
    business = (ctx.business or {}).get("language") or "en"
    business = business if business in tpl.LANGUAGES else "en"
    lang = detect_language(ctx.message_text, default=business)
    return lang if lang in tpl.LANGUAGES else business


def handoff_answer(ctx: ReplyContext, reason: str, confidence: float = 0.0,
                   provider: str = "local", lang: str | None = None) -> Answer:
    """Hand off to a human; text is the business's hand-off message for the customer."""
    lang = lang or reply_language(ctx)
    text = (ctx.business or {}).get("handoff_message") or tpl.HANDOFF.get(lang, tpl.HANDOFF["en"])
    return Answer(text=text, handoff=True, reason=reason, confidence=round(confidence, 4),
                  sources=[], provider=provider)


def _clean(line: str) -> str:
    """Markdown to chat text: bullets as "- ", no emphasis markers, links as "text (url)"."""
    line = re.sub(r"^\s*(?:[-*+•]|\d+[.)])\s+", "- ", line)
    line = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 (\2)", line)
    line = re.sub(r"(\*\*|__|`)", "", line)
    line = re.sub(r"(?<!\w)[*_](\S[^*_]*\S|\S)[*_](?!\w)", r"\1", line)
    return line.strip()


# A sentence that has a customer's word only through a synonym counts it this much (the word
# itself, or a form of it, counts 1): "metro" in "the nearest metro station" beats "bus".
SYNONYM_HIT = 0.75


class _Words(NamedTuple):
    """A passage sentence as _best_sentences matches it against a question."""

    text: str                  # cleaned for chat (_clean)
    order: tuple[str, ...]     # its words, folded, in order
    toks: frozenset[str]       # the same, as a set
    stems: frozenset[str]      # their light stems (stem)
    snowball: frozenset[str]   # their Snowball stems (stem_index)


@functools.lru_cache(maxsize=4096)
def _sentence_words(text: str) -> tuple[_Words, ...]:
    """A passage's non-empty sentences and their words, cached by the passage's text.

    The same passages answer many messages, and what a sentence's words are does not depend
    on the question; keyed by the text itself, an edited passage is simply a new entry.
    """
    out = []
    for sentence in (_clean(x) for x in sentences(text)):
        if sentence:
            order = tuple(tokens(sentence))
            toks = frozenset(order)
            out.append(_Words(sentence, order, toks, frozenset(stem(t) for t in toks),
                              stem_index(" ".join(sorted(toks)))))
    return tuple(out)


def _best_sentences(passage: Passage, question: str, limit: int = 3) -> list[str]:
    """The passage's sentences that answer the question (1–3, in their original order).

    First the sentence holding the kind of fact asked for (a time, a price, a place) that
    matches most of the question's words (a synonym counts SYNONYM_HIT); then, greedily,
    sentences that match words not covered yet, or not covered by the word itself (a repeat
    of the same words adds nothing).
    """
    words = _sentence_words(passage.text)
    if not words:
        return []
    sents = [w.text for w in words]
    # The customer's words and their synonyms, as search matched them ("open on saturday"
    # is answered by "closed at weekends").
    alts = {t: alternatives(t) for t in content_terms(rewrite_phrases(question))}
    terms = list(alts)

    def matched(w: _Words) -> tuple[set[str], set[str]]:
        """(the terms it has through any synonym, the terms it has themselves), by search's
        rule: a word it begins, or the same Snowball stem ("Patienten" finds "patient").
        """
        def has(words: list[str]) -> bool:
            return any_matches(words, w.toks, w.stems) or stems_match(words, w.snowball)

        return {t for t in terms if has(alts[t])}, {t for t in terms if has([t])}

    hits, literal = zip(*(matched(w) for w in words), strict=True)
    if not any(hits):
        return sents[:min(2, limit)]
    weight = [len(lit) + SYNONYM_HIT * len(h - lit) for h, lit in zip(hits, literal, strict=True)]
    kind = answer_kind(question)
    fits = [bool(kind and hits[i] and kind.search(s)) for i, s in enumerate(sents)]

    def first_hit(w: _Words) -> int:
        """Where the first matching word sits: a sentence *about* it names it early."""
        for pos, tok in enumerate(w.order):
            if any(any_matches(alts[t], {tok}, {stem(tok)}) for t in terms):
                return pos
        return 10_000

    best = max(range(len(sents)), key=lambda i: (fits[i], weight[i], -first_hit(words[i]), -i))
    chosen, covered, said = {best}, set(hits[best]), set(literal[best])
    # A line that introduces a list ("We deliver to:") needs the items that follow it.
    if sents[best].endswith(":"):
        chosen.update(range(best + 1, min(best + limit, len(sents))))
    while len(chosen) < limit:
        gain = max(range(len(sents)), key=lambda i: (len(hits[i] - covered),
                                                     len(literal[i] - said), -abs(i - best)))
        if gain in chosen or not (hits[gain] - covered or literal[gain] - said):
            break
        chosen.add(gain)
        covered |= hits[gain]
        said |= literal[gain]
    return [sents[i] for i in sorted(chosen)]


# How far below the best passage's score a passage may stand and still be preferred for being
# in the customer's language or holding the kind of fact asked for (a time, a price, a place).
PREFER_WINDOW = 0.1


def passage_language(text: str) -> str:
    """The language a passage is written in ("?" when it cannot tell), cached per text.

    Its first 300 characters tell as well as the whole and cost a fraction of the time.
    """
    return _language_of(text[:300])


@functools.lru_cache(maxsize=8192)
def _language_of(text: str) -> str:
    return detect_language(text, default="?")


def prefer(question: str, passages: list[Passage], lang: str) -> list[Passage]:
    """The passages reordered for answering: among those scoring within PREFER_WINDOW of the
    best, one in the customer's language and holding the kind of fact asked for comes first
    (an English question is answered from the English FAQ, not its Spanish twin); then the
    others in that passage's language, then the rest (each group in search order).
    """
    if len(passages) < 2:
        return passages
    kind = answer_kind(question)
    top = passages[0].score
    close = [p for p in passages if p.score >= top - PREFER_WINDOW]
    if len(close) < 2:
        return passages       # nothing to choose between (and no rival near enough to skip)

    def merit(item: tuple[int, Passage]) -> tuple:
        pos, p = item
        text = p.answer or p.text
        return (passage_language(text) in (lang, "?"), bool(kind and kind.search(text)), -pos)

    best = max(enumerate(close), key=merit)[1]
    # The runner-up (whose score the decision's margin is taken against) is the best rival in
    # the same language: the same FAQ translated is no competing answer.
    mine = passage_language(best.answer or best.text)
    rest = [p for p in passages if p is not best]
    return [best] + sorted(rest, key=lambda p: passage_language(p.answer or p.text)
                           not in (mine, "?"))


def _fit(text: str) -> str:
    if len(text) <= MAX_REPLY_CHARS:
        return text
    cut = text.rfind(" ", 0, MAX_REPLY_CHARS - 1)
    return text[:cut if cut > 0 else MAX_REPLY_CHARS - 1].rstrip(" ,;:") + "…"


def compose_answer(passage: Passage, question: str, lang: str) -> str:
    """Quote a passage naturally: a Q/A passage's answer, or a lead-in and the best sentences."""
    if passage.answer:
        return _fit(passage.answer.strip())
    picked = _best_sentences(passage, question)
    joiner = "\n" if any(s.startswith("- ") for s in picked) else " "
    topic = (passage.heading or "").split(" › ")[-1] or passage.title
    if len(topic) > 1 and topic[1:2].islower():  # "Opening hours" → "opening hours", not "FAQ"
        topic = topic[0].lower() + topic[1:]
    lead = tpl.LEAD_IN.get(lang, tpl.LEAD_IN["en"]).format(topic=topic)
    return _fit(f"{lead}\n{joiner.join(picked)}" if picked else passage.text.strip())


def small_talk(intent: str, ctx: ReplyContext, lang: str) -> str:
    """The template reply to a greeting, thanks or goodbye, with the contact's first name."""
    name = first_name(ctx.contact_name)
    business = (ctx.business or {}).get("name") or tpl.US.get(lang, "us")
    table = {"greeting": tpl.GREETING, "thanks": tpl.THANKS, "goodbye": tpl.GOODBYE}[intent]
    sep = " " if intent == "greeting" else ", "
    return table.get(lang, table["en"]).format(name=f"{sep}{name}" if name else "",
                                               business=business)


class LocalProvider(Provider):
    """Offline answers (see the module docstring)."""

    name = "local"

    @override
    def generate(self, ctx: ReplyContext, passages: list[Passage]) -> Answer:
        lang = reply_language(ctx)
        intent = detect_intent(ctx.message_text)
        if intent in SMALL_TALK:
            return Answer(text=small_talk(intent, ctx, lang), handoff=False, reason=None,
                          confidence=1.0, sources=[], provider=self.name)
        if intent == "human_request":
            return handoff_answer(ctx, "customer_asked_for_human", 1.0, lang=lang)
        parts = split_questions(ctx.message_text)
        if len(parts) > 1:
            # Several questions in one message: answer all of them, or hand the whole
            # message to a person (half an answer reads as if the rest were ignored).
            found = [(part, search(ctx.user_id, part, 5)) for part in parts]
        else:
            found = [(ctx.message_text, passages)]
        model = load_model()
        threshold = model.threshold_for((ctx.business or {}).get("answer_confidence"))
        texts, sources, confidence = [], [], 1.0
        for part, hits in found:
            if not hits:
                return handoff_answer(ctx, "low_confidence", 0.0, lang=lang)
            hits = prefer(part, hits, lang)
            confidence = min(confidence, model.probability(features(part, hits)))
            if confidence < threshold:
                return handoff_answer(ctx, "low_confidence", confidence, lang=lang)
            if hits[0].document_id not in sources or hits[0].answer:
                texts.append(compose_answer(hits[0], part, lang))
            sources.append(hits[0].document_id)
        text = _fit("\n\n".join(dict.fromkeys(texts)))
        if detect_intent_opening(ctx.message_text):
            name = first_name(ctx.contact_name)
            text = tpl.HELLO.get(lang, tpl.HELLO["en"]).format(name=f" {name}" if name else "") \
                + text
        return Answer(text=text, handoff=False, reason=None, confidence=round(confidence, 4),
                      sources=list(dict.fromkeys(sources)),
                      provider=self.name)

    @override
    def suggest(self, ctx: ReplyContext, passages: list[Passage], n: int) -> list[str]:
        lang = reply_language(ctx)
        intent = detect_intent(ctx.message_text)
        out: list[str] = []
        if intent in SMALL_TALK:
            out.append(small_talk(intent, ctx, lang))
        for p in passages:
            if p.score >= SUGGEST_MIN_SCORE:
                out.append(compose_answer(p, ctx.message_text, lang))
        out.extend(tpl.SUGGESTIONS.get(lang, tpl.SUGGESTIONS["en"]))
        return list(dict.fromkeys(s for s in out if s))[:n]


_ASKS = (r"(?:do|does|is|are|can|could|how|what|when|where|which|will|would|should|"
         r"wann|wo|wie|was|kann|gibt|habt|haben|ist|sind|"
         r"est|peut|pouvez|avez|quand|comment|combien|"
         r"cuando|donde|como|cuanto|puedo|tienen|hay)")
_SPLIT = re.compile(rf"\?+\s*|\s+(?:and|und|et|y)\s+(?={_ASKS}\b)|[.!;]\s+(?={_ASKS}\b)",
                    re.IGNORECASE)


def split_questions(text: str) -> list[str]:
    """The separate questions of one message ("How much is X and do you do Y?" → two).

    A part counts only when it has a content word of its own; a message with one question
    comes back as a one-item list.
    """
    parts = [p.strip(" ,") for p in _SPLIT.split(text or "") if p and p.strip(" ,")]
    parts = [p for p in parts if content_terms(p)]
    return parts if len(parts) > 1 else [text]


def detect_intent_opening(text: str) -> bool:
    """Does the message open with a greeting ("Hi! Do you …?")? Then the answer greets back."""
    first = " ".join(tokens(text)[:2])
    return bool(first) and detect_intent(first) == "greeting"
