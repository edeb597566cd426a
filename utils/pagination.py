"""Opaque keyset cursors for the list shape {items, next_cursor}."""
from __future__ import annotations

import base64
import json

from utils.errors import ApiError


def encode_cursor(values: list) -> str:
    """Pack the sort key of the last row of a page into an opaque cursor."""
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list:
    """Unpack a cursor made by encode_cursor; 400 invalid_cursor when it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except Exception:
        values = None
    if not isinstance(values, list) or len(values) != size:
        raise ApiError("The cursor is not valid for this list.", code="invalid_cursor")
    return values
