"""Cutting a document into searchable passages ("chunks").

Prose (format "text" or "markdown") is cut along headings first, then along paragraphs,
packing paragraphs into passages of about 400–800 characters; a passage never spans two
headings, because a passage that mixes topics matches questions about either and answers
neither. An FAQ (format "faq": "Q: …" / "A: …" blocks, what a CSV import produces) gives one
passage per question, with the question and the answer kept apart so the answer can be
quoted on its own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MAX_CHARS = 800
MIN_CHARS = 400
# A short tail is folded into the passage before it when the two together stay under this.
MERGE_LIMIT = 1000

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_QUESTION = re.compile(r"^\s*(?:q|question|frage)\s*[:.)]\s*(.*)$", re.IGNORECASE)
_ANSWER = re.compile(r"^\s*(?:a|answer|antwort|r|réponse|reponse|respuesta)\s*[:.)]\s*(.*)$",
                     re.IGNORECASE)


@dataclass
class ChunkDraft:
    """A passage before it is stored: its place, its heading path and its text."""

    position: int
    text: str
    heading: str | None = None
    question: str | None = None
    answer: str | None = None


def faq_content(pairs: list[tuple[str, str]]) -> str:
    """The canonical, human-editable text of an FAQ document: Q:/A: blocks."""
    return "\n\n".join(f"Q: {q.strip()}\nA: {a.strip()}" for q, a in pairs)


def chunk_document(content: str, fmt: str = "text") -> list[ChunkDraft]:
    """Cut a document's content into passages (see the module docstring)."""
    drafts = _chunk_faq(content) if fmt == "faq" else _chunk_prose(content)
    for i, d in enumerate(drafts):
        d.position = i
    return drafts


# ----------------------------------------------------------------------------- FAQ

def _chunk_faq(content: str) -> list[ChunkDraft]:
    """Q:/A: blocks become Q/A passages; anything outside them is chunked as prose."""
    out: list[ChunkDraft] = []
    prose: list[str] = []
    question: list[str] | None = None
    answer: list[str] | None = None

    def close_pair():
        nonlocal question, answer
        if question is not None:
            q = " ".join(x.strip() for x in question if x.strip())
            a = "\n".join(answer or []).strip()
            if q and a:
                out.append(ChunkDraft(0, f"{q}\n{a}", question=q, answer=a))
            elif q or a:
                prose.append(f"{q}\n{a}".strip())
        question, answer = None, None

    for line in content.splitlines():
        mq, ma = _QUESTION.match(line), _ANSWER.match(line)
        if mq:
            close_pair()
            question, answer = [mq.group(1)], None
        elif ma and question is not None and answer is None:
            answer = [ma.group(1)]
        elif answer is not None:
            answer.append(line)
        elif question is not None:
            question.append(line)
        else:
            prose.append(line)
    close_pair()
    rest = "\n".join(prose).strip()
    if rest:
        out.extend(_chunk_prose(rest))
    return out


# --------------------------------------------------------------------------- prose

_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)\s*$")
_NOT_A_TITLE = re.compile(r"^ {0,3}([-*+>#|]|\d+[.)]\s|```|~~~)")


def atx_headings(lines: list[str]) -> list[str]:
    """Rewrite setext headings (`Title` over `=====`, `Sub` over `-----`) as `# Title` and
    `## Sub`, so every Markdown reader here knows one heading syntax.

    As in CommonMark, the title is one line of text right after a blank line (or at the
    start); a `---` after a blank line, a list item or a quote stays what it is (a rule, or
    text), and nothing inside a code fence changes.
    """
    out: list[str] = []
    fenced = False
    for line in lines:
        if _FENCE.match(line):
            fenced = not fenced
        underline = None if fenced else _SETEXT_UNDERLINE.match(line)
        title = out[-1] if out else ""
        before = out[-2] if len(out) >= 2 else ""
        if (underline and title.strip() and not before.strip()
                and not _NOT_A_TITLE.match(title) and not _HEADING.match(title)):
            out[-1] = ("#" if underline.group(1)[0] == "=" else "##") + " " + title.strip()
            continue
        out.append(line)
    return out


def _sections(content: str) -> list[tuple[str | None, list[str]]]:
    """(heading path, body lines) per heading; headings inside code fences are text."""
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    path: list[tuple[int, str]] = []
    fenced = False
    for line in atx_headings(content.splitlines()):
        if _FENCE.match(line):
            fenced = not fenced
        m = None if fenced else _HEADING.match(line)
        if m:
            level, title = len(m.group(1)), m.group(2).strip()
            path = [(lv, t) for lv, t in path if lv < level] + [(level, title)]
            sections.append((" › ".join(t for _, t in path), []))
        else:
            sections[-1][1].append(line)
    return sections


def _paragraphs(lines: list[str]) -> list[str]:
    paras, cur = [], []
    for line in lines:
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            paras.append("\n".join(cur))
            cur = []
    if cur:
        paras.append("\n".join(cur))
    return paras


def _split_long(para: str) -> list[str]:
    """A paragraph over MAX_CHARS, cut at sentence ends (or spaces) into pieces that fit."""
    parts = re.split(r"(?<=[.!?])\s+", para)
    pieces: list[str] = []
    cur = ""
    for part in parts:
        while len(part) > MAX_CHARS:  # one enormous "sentence": cut at the last space
            cut = part.rfind(" ", 0, MAX_CHARS)
            cut = cut if cut > MAX_CHARS // 2 else MAX_CHARS
            if cur:
                pieces.append(cur)
                cur = ""
            pieces.append(part[:cut].strip())
            part = part[cut:].strip()
        if cur and len(cur) + 1 + len(part) > MAX_CHARS:
            pieces.append(cur)
            cur = part
        else:
            cur = f"{cur} {part}".strip()
    if cur:
        pieces.append(cur)
    return [p for p in pieces if p]


def _pack(paras: list[str]) -> list[str]:
    """Greedy packing of paragraphs into passages of at most MAX_CHARS."""
    out: list[str] = []
    cur = ""
    for para in paras:
        for piece in (_split_long(para) if len(para) > MAX_CHARS else [para]):
            if cur and len(cur) + 2 + len(piece) > MAX_CHARS:
                out.append(cur)
                cur = piece
            else:
                cur = f"{cur}\n\n{piece}" if cur else piece
    if cur:
        out.append(cur)
    if len(out) >= 2 and len(out[-1]) < MIN_CHARS // 2 \
            and len(out[-2]) + 2 + len(out[-1]) <= MERGE_LIMIT:
        out[-2:] = [f"{out[-2]}\n\n{out[-1]}"]
    return out


def _chunk_prose(content: str) -> list[ChunkDraft]:
    out: list[ChunkDraft] = []
    for heading, lines in _sections(content):
        for text in _pack(_paragraphs(lines)):
            out.append(ChunkDraft(0, text, heading=heading))
    if not out and content.strip():  # headings only: the headings are the content
        out.append(ChunkDraft(0, content.strip()))
    return out
