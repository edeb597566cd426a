"""Lenient readers and text helpers shared by the platform connectors.

Meta's payloads drift (ISO `time` strings in fixtures, numbers where strings are documented,
missing optional objects), and one odd item must never cost the rest of a batch. These
helpers read a value if it has the expected shape and otherwise return a neutral default,
so the parsers can be written as straight-line code without a try/except per field.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from .base import InboundEvent

# Epoch values above this are milliseconds, below it seconds (10**11 s is the year 5138;
# 10**11 ms is March 1973). Used when a payload sends the other unit than documented.
_MS_THRESHOLD = 10**11


def as_dict(value) -> dict:
    """Value if it is a dict, else {}."""
    return value if isinstance(value, dict) else {}


def as_list(value) -> list:
    """Value if it is a list, else [] (a lone dict is not promoted: Meta always sends arrays)."""
    return value if isinstance(value, list) else []


def as_str(value) -> str | None:
    """A non-empty id or text as str; numbers become their decimal string; anything else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int):
        return str(value)
    return None


def as_int(value) -> int | None:
    """An int from an int or a digit string (Graph codes arrive both ways); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def scalars(obj: dict, *, skip: tuple[str, ...] = ()) -> dict:
    """The str/number/bool members of obj (minus skip): extra attachment details, copied
    verbatim.
    """
    return {k: v for k, v in obj.items()
            if k not in skip and isinstance(v, (str, int, float, bool)) and v != ""}


def to_datetime(value) -> datetime | None:
    """An epoch (seconds or ms, number or numeric string) or an ISO-8601 string as aware UTC;
    else None.

    The unit is inferred from magnitude rather than trusted from the platform, because
    Messenger documents ms, WhatsApp documents seconds, and fixtures in the wild mix them.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
            return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None \
                else parsed.astimezone(timezone.utc)
    if not isinstance(value, (int, float)) or value != value or value <= 0:  # NaN, negative
        return None
    seconds = value / 1000 if value >= _MS_THRESHOLD else value
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def first_datetime(*values) -> datetime:
    """The first value that parses as a timestamp, else now: an event always has a time."""
    for value in values:
        parsed = value if isinstance(value, datetime) else to_datetime(value)
        if parsed is not None:
            return parsed
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------------------- text splitting

def utf16_len(text: str) -> int:
    """Length as Meta counts it (UTF-16 code units): an emoji outside the BMP counts twice."""
    return len(text.encode("utf-16-le")) // 2


_SENTENCE_END = re.compile(r"[.!?…。！？؟][\"'”’)\]]*\s+")
_SPACE = re.compile(r"\s+")


def _fit(text: str, limit: int) -> int:
    """The longest prefix length (in code points) whose UTF-16 length is <= limit."""
    if utf16_len(text) <= limit:
        return len(text)
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return i
    return len(text)


def _last_boundary(window: str, pattern: re.Pattern | str, floor: int) -> int | None:
    """End index of the last separator match in window that leaves at least `floor` chars."""
    if isinstance(pattern, str):
        idx = window.rfind(pattern)
        return idx + len(pattern) if idx >= floor else None
    best = None
    for match in pattern.finditer(window):
        if match.start() >= floor:
            best = match.end()
    return best


def split_text(text: str, limit: int) -> list[str]:
    """Split text into chunks of at most `limit` UTF-16 units, on the nicest boundary available.

    Preference: paragraph break, then line break, then sentence end, each only if it keeps
    the chunk at least half full (no confetti of tiny messages); then any whitespace; then a
    hard cut. Whitespace at a cut is dropped; everything else round-trips unchanged.
    """
    if utf16_len(text) <= limit:
        return [text]
    chunks: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        window = rest[:_fit(rest, limit)]
        half = len(window) // 2
        cut = (_last_boundary(window, "\n\n", half)
               or _last_boundary(window, "\n", half)
               or _last_boundary(window, _SENTENCE_END, half)
               or _last_boundary(window, _SPACE, 1)
               or max(len(window), 1))
        chunk = rest[:cut].rstrip()
        if chunk:
            chunks.append(chunk)
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    return chunks


def flag(value) -> bool:
    """True for JSON true (and the string "true", which some relays produce)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def clip(text: str, limit: int) -> str:
    """Text cut to `limit` code points with an ellipsis: for labels Meta rejects when too long."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


@dataclass
class Envelope:
    """Who/where/when of one delivered item, so every event of it is built the same way."""

    platform: str
    account_id: str
    contact_id: str | None
    timestamp: datetime

    def event(self, kind: str, **fields) -> InboundEvent:
        """A normalized event of this envelope's account, contact and time."""
        return InboundEvent(kind=kind, platform=self.platform, account_id=self.account_id,
                            contact_id=self.contact_id, timestamp=self.timestamp, **fields)
