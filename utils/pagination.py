"""Opaque keyset cursors for the list shape {items, next_cursor}."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

from utils.errors import ApiError


def _invalid() -> ApiError:
    return ApiError("The cursor is not valid for this list.", code="invalid_cursor")


# The values a cursor made by encode_cursor can hold: timestamps and ids (short text without
# NUL or lone surrogates, which no database stores) and row numbers that fit a BIGINT.
_MAX_TEXT = 64
_MAX_INT = 2**63 - 1


def _plausible(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value <= _MAX_INT
    if isinstance(value, str):
        if len(value) > _MAX_TEXT or "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
            return False
        return True
    return False


def encode_cursor(values: list) -> str:
    """Pack the sort key of the last row of a page into an opaque cursor."""
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list:
    """Unpack a cursor made by encode_cursor; 400 invalid_cursor when it is not one.

    A cursor that decodes but holds values no list makes (nested data, floats, huge numbers,
    NUL or lone surrogates in text) is refused here, before any database sees it.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except Exception:  # noqa: BLE001 - binascii, UnicodeDecode, JSON, RecursionError
        values = None
    if not isinstance(values, list) or len(values) != size or \
            not all(_plausible(v) for v in values):
        raise _invalid()
    return values


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    """Unpack a (timestamp, id) cursor, the key of every newest-first list.

    The timestamp comes back timezone-aware in UTC (a naive one is taken as UTC). A cursor of
    the right shape whose values are unusable (not an ISO timestamp, an id that is not a
    string) is as invalid as a malformed one: 400 invalid_cursor, never a database error.
    """
    when, row_id = decode_cursor(cursor, 2)
    if not isinstance(when, str) or not isinstance(row_id, str) or not row_id:
        raise _invalid()
    try:
        moment = datetime.fromisoformat(when)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc), row_id
    except (ValueError, OverflowError):
        raise _invalid() from None
