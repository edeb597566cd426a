"""Reading a language model's reply tolerantly, and deciding whether it may be sent.

parse_reply turns whatever came back into a ModelReply: the requested JSON object, the same
inside code fences or with other field names ("answer", "sources", a "handoff" flag), a
truncated object (only its complete fields are kept: a cut-off reply is never sent), or
plain text. check_grounding then decides whether the reply rests on the knowledge passages
Dana gave the model, by rules a person can follow:

1. Cited passages must be among those given ("P1".."Pn"); citing any other id is not grounded.
2. The reply must not repeat the instructions: no run of SHINGLE words of the instruction
   text (the system prompt without its passages and records) may appear in it.
3. Every figure (prices, times, phone numbers), e-mail address and web address in the reply
   must occur in the passages, the business records, this customer's own conversation or
   the business profile: anything else is invented or someone else's data.
4. Support, the share of the reply's content words that occur in its sources (stems
   compared; the business's name, persona and instructions and the customer's name count
   as sources too): with cited passages at least CITED_MIN_SUPPORT of the cited ones (or,
   citing none, of the business records when there are some); without any citation (plain
   text, a missing field) at least UNCITED_MIN_SUPPORT of one passage, in the passage's
   language. A cited reply in another language than its passages (a translation) is judged
   by rules 1-3 only.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass

from automation.ai.nlu import detect_language
from automation.ai.providers.base import ReplyContext
from automation.knowledge.database import Passage
from automation.knowledge.text import content_terms, stem, term_matches, tokens

# A reply that repeats this many consecutive words of its instructions is leaking them.
SHINGLE = 6
# Share of a reply's content words its sources must contain (see the module docstring).
CITED_MIN_SUPPORT = 0.4
UNCITED_MIN_SUPPORT = 0.6
# Content words of a reply considered (a long reply is judged on its first ones).
MAX_TERMS = 60

_FENCE = re.compile(r"^\s*```[\w-]*[ \t]*\n?(?P<body>.*?)\n?(?:```\s*)?$", re.S)
_FIGURE = re.compile(r"\d+(?:[.,:]\d+)*")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_LINK = re.compile(r"(?:https?://|www\.)[^\s<>()\"']+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|de|"
                   r"fr|es|io|eu|co|info|shop|app)\b(?:/[^\s<>()\"']*)?", re.I)
_ID = re.compile(r"^\[?\s*(?:p(?:assage)?\s*)?#?\s*(\d+)\s*\]?$", re.I)
REPLY_KEYS = ("reply", "answer", "text", "response", "message", "content")
ID_KEYS = ("passage_ids", "sources", "passages", "citations", "source_ids")


def passage_id(number: int) -> str:
    """The id the prompt gives the passage at 1-based position `number` ("P1", "P2", …)."""
    return f"P{number}"


@dataclass
class ModelReply:
    """What a model's reply says, however it was written.

    decision: "answer", "handoff" or None (not stated); passage_ids: None when not stated;
    structured: a JSON object (whole or partial) was found; truncated: it was cut off.
    """

    decision: str | None
    reply: str
    passage_ids: list[str] | None = None
    language: str | None = None
    confidence: float | None = None
    structured: bool = False
    truncated: bool = False


def _normalise_id(item) -> str:
    if isinstance(item, bool):
        return repr(item)
    if isinstance(item, int):
        return passage_id(item)
    m = _ID.match(str(item).strip())
    return passage_id(int(m.group(1))) if m else str(item).strip()


def _decision(value, handoff_flag) -> str | None:
    if isinstance(value, str):
        v = value.strip().lower().replace("-", "_").replace(" ", "_")
        if v in ("answer", "reply", "respond"):
            return "answer"
        if v in ("handoff", "hand_off", "human", "escalate"):
            return "handoff"
    if isinstance(handoff_flag, bool):
        return "handoff" if handoff_flag else "answer"
    return None


def _confidence(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return min(1.0, max(0.0, float(value)))
    except (TypeError, ValueError):
        return None


def _from_object(data: dict, truncated: bool = False) -> ModelReply:
    reply = next((data[k] for k in REPLY_KEYS if isinstance(data.get(k), str)), "")
    ids = next((data[k] for k in ID_KEYS if isinstance(data.get(k), list)), None)
    lang = data.get("language")
    return ModelReply(
        decision=_decision(data.get("decision"), data.get("handoff")), reply=reply.strip(),
        passage_ids=[_normalise_id(x) for x in ids] if ids is not None else None,
        language=lang.strip().lower()[:8] if isinstance(lang, str) and lang.strip() else None,
        confidence=_confidence(data.get("confidence")), structured=True, truncated=truncated)


def _string_field(text: str, keys: tuple[str, ...]) -> str | None:
    """The value of the first key whose string value is complete (closing quote present)."""
    for key in keys:
        m = re.search(rf'"{key}"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
        if m:
            try:
                return json.loads(f'"{m.group(1)}"')
            except ValueError:
                continue
    return None


def _partial_object(text: str) -> dict:
    """The complete fields of a cut-off JSON object (a value cut in the middle is dropped)."""
    out: dict = {}
    for key in ("decision", "language"):
        value = _string_field(text, (key,))
        if value is not None:
            out[key] = value
    reply = _string_field(text, REPLY_KEYS)
    if reply is not None:
        out["reply"] = reply
    flag = re.search(r'"handoff"\s*:\s*(true|false)\b', text)
    if flag:
        out["handoff"] = flag.group(1) == "true"
    conf = re.search(r'"confidence"\s*:\s*([0-9.]+)\s*[,}]', text)
    if conf:
        out["confidence"] = conf.group(1)
    for key in ID_KEYS:
        m = re.search(rf'"{key}"\s*:\s*(\[[^\]]*\])', text)
        if m:
            try:
                out["passage_ids"] = json.loads(m.group(1))
            except ValueError:
                pass
            break
    return out


def unfence(content: str | None) -> str:
    """The text without the Markdown code fence a model may have put around it."""
    text = (content or "").strip()
    m = _FENCE.match(text)
    return m.group("body").strip() if m and text.startswith("```") else text


def first_json(content: str | None):
    """The first complete JSON object or array in the text (fences allowed), else None."""
    text = unfence(content)
    for i, ch in enumerate(text):
        if ch in "{[":
            try:
                return json.JSONDecoder().raw_decode(text, i)[0]
            except ValueError:
                if ch == "{":
                    return None
    return None


def parse_reply(content: str | None) -> ModelReply:
    """A model's reply read tolerantly (see the module docstring); never raises."""
    text = unfence(content)
    if not text:
        return ModelReply(decision=None, reply="")
    found = first_json(text)
    if isinstance(found, dict):
        return _from_object(found)
    start = text.find("{")
    if found is None and start != -1 and (start == 0 or text[start:start + 2] == '{"'):
        return _from_object(_partial_object(text[start:]), truncated=True)
    if found is not None:
        return ModelReply(decision=None, reply="", structured=True)  # e.g. a bare list
    try:
        other = json.loads(text)
    except ValueError:
        other = None
    return ModelReply(decision=None, reply=(other if isinstance(other, str) else text).strip())


@dataclass
class Verdict:
    """May the reply be sent? why: the rule it broke (for the log); passages: its sources."""

    ok: bool
    why: str = ""
    passages: list[Passage] | None = None
    support: float = 0.0


def passage_text(p: Passage) -> str:
    """The words a passage states (its title, heading, FAQ question and text)."""
    return " ".join(x for x in (p.title, p.heading, p.question, p.answer, p.text) if x)


def _facts_text(ctx: ReplyContext) -> str:
    return " ".join(f"{k} {v}" for row in (ctx.facts or {}).values()
                    for k, v in (row or {}).items())


def _shingles(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


@functools.lru_cache(maxsize=64)
def _instruction_shingles(instructions: str) -> frozenset[tuple[str, ...]]:
    return frozenset(_shingles(tokens(instructions)))  # the same for every message of a shop


def echoes_instructions(reply: str, instructions: str, data: str) -> bool:
    """Does the reply repeat SHINGLE consecutive words of the instructions (not of the data)?"""
    echoed = _instruction_shingles(instructions) & _shingles(tokens(reply))
    return bool(echoed - _shingles(tokens(data))) if echoed else False


def _figure(text: str) -> str:
    """A figure without zero minutes or cents ("10:00" and "10.00" are "10")."""
    return re.sub(r"(?:[.,:]0+)+$", "", text)


def invented_details(reply: str, known: str) -> list[str]:
    """Figures, e-mail addresses and web addresses of the reply that `known` lacks."""
    figures = {_figure(f) for f in _FIGURE.findall(known)}
    known_folded = known.lower()
    out = [f for f in _FIGURE.findall(reply) if _figure(f) not in figures]
    out += [e for e in _EMAIL.findall(reply) if e.lower() not in known_folded]
    no_mail = _EMAIL.sub(" ", reply)
    out += [u for u in _LINK.findall(no_mail)
            if u.lower().rstrip("/.").split("://")[-1] not in known_folded]
    return out


def support(reply: str, source: str) -> tuple[float, int]:
    """(share of the reply's content words found in `source`, how many content words)."""
    terms = content_terms(reply, limit=MAX_TERMS)
    terms = [t for t in terms if not t.isdigit()]  # figures are rule 3's business
    if not terms:
        return 1.0, 0
    toks = set(tokens(source))
    stems = {stem(t) for t in toks}
    found = sum(1 for t in terms if term_matches(t, toks, stems))
    return found / len(terms), len(terms)


def _same_language(reply: str, source: str, default: str) -> bool:
    return detect_language(reply, default=default) == detect_language(source, default=default)


def check_grounding(reply: ModelReply, ctx: ReplyContext, passages: list[Passage],
                    instructions: str) -> Verdict:
    """May this answer be sent to the customer? See the rules in the module docstring."""
    given = {passage_id(i): p for i, p in enumerate(passages, start=1)}
    cited_ids = list(dict.fromkeys(reply.passage_ids or []))
    unknown = [x for x in cited_ids if x not in given]
    if unknown:
        return Verdict(False, f"cites passages it was not given: {unknown[:5]}")
    cited = [given[x] for x in cited_ids]
    business = ctx.business or {}
    # words the business itself supplied count as sources too (its name, persona and
    # instructions, e.g. "always mention that cakes are baked fresh daily"), and the name
    names = " ".join(str(x) for x in (business.get("name"), business.get("persona"),
                                      business.get("instructions"), ctx.contact_name) if x)
    facts = _facts_text(ctx)
    all_passages = " ".join(passage_text(p) for p in passages)
    if echoes_instructions(reply.reply, instructions, f"{all_passages} {facts}"):
        return Verdict(False, "repeats its instructions")
    conversation = " ".join([ctx.message_text or "",
                             *(h.get("text") or "" for h in ctx.history or [])])
    profile = " ".join(str(v) for v in business.values() if v)
    invented = invented_details(reply.reply, " ".join(
        [all_passages, facts, conversation, profile]))
    if invented:
        return Verdict(False, f"states details no source has: {invented[:5]}")
    default = business.get("language") or "en"
    if cited:
        source = " ".join(passage_text(p) for p in cited)
        share, n = support(reply.reply, f"{source} {facts} {names}")
        if n and share < CITED_MIN_SUPPORT and _same_language(reply.reply, source, default):
            return Verdict(False, f"only {share:.0%} of its words are in its passages")
        return Verdict(True, passages=cited, support=share)
    if facts and reply.structured:
        share, n = support(reply.reply, f"{facts} {names} {conversation}")
        if not n or share >= CITED_MIN_SUPPORT:
            return Verdict(True, passages=[], support=share)
    best: tuple[float, Passage | None] = (0.0, None)
    for p in passages:
        share, n = support(reply.reply, f"{passage_text(p)} {names}")
        if n and share > best[0]:
            best = (share, p)
    share, chosen = best
    if chosen is None or share < UNCITED_MIN_SUPPORT:
        return Verdict(False, f"names no passage and at most {share:.0%} of its words are in "
                              "one", support=share)
    if not _same_language(reply.reply, passage_text(chosen), default):
        return Verdict(False, "names no passage and is not in its passage's language")
    return Verdict(True, passages=[chosen], support=share)
