"""Turning uploaded files into knowledge documents (.md/.markdown, .txt, .csv).

* Markdown: one document per top-level section — per `#` heading when the file has two or
  more, else per `##` heading when it has two or more (setext headings, a title underlined
  with `===` or `---`, count as `#` and `##`) (text before the first such heading
  becomes a document of its own); otherwise the whole file is one document.
* Text: the whole file is one document, titled after the file name.
* CSV with a `question,answer` header (`;` or tab also accepted as the separator): the whole
  file is ONE document of format "faq" and each row one passage. One document per file
  (not per row) keeps an FAQ of any length within small plans' document limits and lets
  the FAQ be edited as one "Q: …/A: …" text.

Files are parsed completely before anything is stored, so a malformed file stores nothing;
errors are 400s whose message names the file and, for CSV, the line.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from automation.knowledge.chunking import atx_headings, faq_content
from utils.errors import BadRequest

FORMATS_BY_SUFFIX = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".csv": "faq"}
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


class InvalidImport(BadRequest):
    """A file that cannot be imported (empty, malformed CSV, headings without text): 400."""

    code = "invalid_import"
    message = "The file could not be imported."


def humanize(filename: str) -> str:
    """A title from a file name: "opening-hours_2024.md" → "Opening hours 2024"."""
    stem = re.sub(r"[-_\s]+", " ", Path(filename).stem).strip()
    return (stem[:1].upper() + stem[1:]) if stem else "Untitled"


def _decode(filename: str, data: bytes) -> str:
    if b"\x00" in data:
        raise InvalidImport(f"{filename} looks like a binary file, not text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InvalidImport(f"{filename} is not UTF-8 text (line {line}); save it as UTF-8.") \
            from None


def _headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """(line index, level, title) of each heading outside code fences."""
    out, fenced = [], False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        m = None if fenced else _HEADING.match(line)
        if m:
            out.append((i, len(m.group(1)), m.group(2).strip()))
    return out


def split_markdown(text: str, fallback_title: str) -> list[tuple[str, str]]:
    """(title, content) per document (see the module docstring)."""
    lines = atx_headings(text.splitlines())  # setext headings count like `#`/`##` ones
    heads = _headings(lines)
    h1 = [h for h in heads if h[1] == 1]
    h2 = [h for h in heads if h[1] == 2]
    level = 1 if len(h1) >= 2 else 2 if len(h2) >= 2 else None
    if level is None:
        title = h1[0][2] if len(h1) == 1 else fallback_title
        body = lines
        first = next((i for i, line in enumerate(lines) if line.strip()), None)
        if h1 and first == h1[0][0]:
            body = lines[first + 1:]  # the title heading is the title, not content
        content = "\n".join(body).strip()
        return [(title, content)] if content else []

    splits = [h for h in heads if h[1] == level]
    docs: list[tuple[str, str]] = []
    preamble = [line for line in lines[:splits[0][0]]
                if not (_HEADING.match(line) and line.lstrip().startswith("# "))]
    if "\n".join(preamble).strip():
        title = h1[0][2] if (level == 2 and h1 and h1[0][0] < splits[0][0]) else fallback_title
        docs.append((title, "\n".join(preamble).strip()))
    for n, (start, _lvl, title) in enumerate(splits):
        end = splits[n + 1][0] if n + 1 < len(splits) else len(lines)
        content = "\n".join(lines[start + 1:end]).strip()
        if content:
            docs.append((title, content))
    return docs


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: (counts[d], d == ","))


def parse_csv(text: str, filename: str) -> list[tuple[str, str]]:
    """(question, answer) per row of a CSV with a question,answer header; 400 naming the
    line on anything malformed.
    """
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(first_line),
                        strict=True)
    pairs: list[tuple[str, str]] = []
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidImport(f"{filename} is empty.")
        names = [h.strip().lower() for h in header]
        if "question" not in names or "answer" not in names:
            raise InvalidImport(f"{filename}, line 1: the header must name the columns "
                                f"question,answer (found: {', '.join(header) or 'nothing'}).")
        iq, ia = names.index("question"), names.index("answer")
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = reader.line_num
            if len(row) != len(names):
                raise InvalidImport(f"{filename}, line {line}: {len(row)} field(s) where the "
                                    f"header has {len(names)}.")
            q, a = row[iq].strip(), row[ia].strip()
            if not q or not a:
                raise InvalidImport(f"{filename}, line {line}: the "
                                    f"{'question' if not q else 'answer'} is empty.")
            pairs.append((q, a))
    except csv.Error as exc:
        raise InvalidImport(f"{filename}, line {reader.line_num}: malformed CSV ({exc}).") \
            from None
    if not pairs:
        raise InvalidImport(f"{filename} has no question/answer rows.")
    return pairs


def parse_file(filename: str, data: bytes) -> list[dict]:
    """The documents a file holds, as create_documents items (nothing is stored here)."""
    name = Path(filename or "").name or "upload"
    fmt = FORMATS_BY_SUFFIX.get(Path(name).suffix.lower())
    if fmt is None:
        raise BadRequest(f"{name}: unsupported file type; upload .md, .markdown, .txt or .csv.",
                         code="unsupported_file_type")
    text = _decode(name, data)
    if not text.strip():
        raise InvalidImport(f"{name} is empty.")
    title, source = humanize(name), f"import:{name}"[:300]
    if fmt == "faq":
        return [{"title": title, "content": faq_content(parse_csv(text, name)), "format": "faq",
                 "source": source}]
    if fmt == "text":
        return [{"title": title, "content": text.strip(), "format": "text", "source": source}]
    docs = split_markdown(text, title)
    if not docs:
        raise InvalidImport(f"{name} has headings but no text.")
    return [{"title": t, "content": c, "format": "markdown", "source": source} for t, c in docs]
