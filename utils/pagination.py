"""Keyset pagination for the list shape {items, next_cursor}: one cursor format and the SQL
paginate(); the Supabase backend's paginate (utils/store/supabase_backend.py) builds the same
pages through PostgREST with page_of() and the same cursors.

Every paginated list is ordered by (a timestamp, the row id), newest first unless said
otherwise; its cursor is the opaque encoding of [ISO timestamp, id] of the last row of a
page (time_cursor). A cursor that is not one answers 400 invalid_cursor, never a database
error. (The operators' webhook-event list, ordered by integer id, uses encode_cursor and
decode_cursor directly.)
"""
from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, true, tuple_

from models_db import db
from utils.errors import ApiError


@dataclass
class Page:
    """One page of a list: its items and the cursor of the next page (None on the last)."""

    items: list[dict]
    next_cursor: str | None

    def to_dict(self) -> dict:
        """The list shape of the API."""
        return {"items": self.items, "next_cursor": self.next_cursor}


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


def time_cursor(when: datetime, row_id: str) -> str:
    """The cursor of a row in a (timestamp, id) ordering."""
    return encode_cursor([when.isoformat(), row_id])


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


def page_of(rows: list, limit: int, to_dict: Callable[[Any], dict],
            key: Callable[[Any], tuple[datetime, str]]) -> Page:
    """A page from up to limit + 1 rows: the extra row only says that a next page exists, and
    the last row kept gives the cursor (its (timestamp, id) sort key).
    """
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = time_cursor(*key(rows[-1]))
    return Page([to_dict(r) for r in rows], next_cursor)


# ------------------------------------------------------------------------------- SQL

# The bind parameters of keyset_bound: the cursor's sort key (cursor_params gives them).
AFTER_TIME, AFTER_ID = "after_time", "after_id"


def keyset_bound(col_time, col_id, descending: bool = True):
    """WHERE clause continuing a (time, id) ordering after the row named by the bind
    parameters :after_time and :after_id (cursor_params): for a statement built once and run
    for any cursor.

    Written as a row-value comparison, (time, id) < (:t, :id): PostgreSQL and SQLite both turn
    it into one range of the (…, time, id) index, so a deep page costs what the first costs.
    """
    key = tuple_(col_time, col_id)
    bound = tuple_(bindparam(AFTER_TIME, type_=col_time.type),
                   bindparam(AFTER_ID, type_=col_id.type))
    return key < bound if descending else key > bound


def cursor_params(cursor: str) -> dict:
    """The bind parameters of keyset_bound for a cursor (400 invalid_cursor if it is not one)."""
    when, row_id = decode_time_cursor(cursor)
    return {AFTER_TIME: when, AFTER_ID: row_id}


def keyset_after(col_time, col_id, cursor: str | None, descending: bool = True):
    """keyset_bound with the cursor's values bound (no condition without a cursor)."""
    if not cursor:
        return true()
    return keyset_bound(col_time, col_id, descending).params(cursor_params(cursor))


def page_of_items(items: list[dict], limit: int, time_key: str) -> Page:
    """A page from up to limit + 1 items already in the API's shape: the cursor is made of
    the last kept item's `time_key` (ISO text, as time_cursor writes it) and its id.
    """
    if len(items) <= limit:
        return Page(items, None)
    del items[limit:]
    return Page(items, encode_cursor([items[-1][time_key], items[-1]["id"]]))


def paginate(stmt, col_time, col_id, cursor: str | None, limit: int,
             to_dict: Callable[[Any], dict], *, descending: bool = True,
             entities: bool = True) -> Page:
    """Run a SELECT one page at a time in (col_time, col_id) order, continuing after `cursor`.

    `entities`: the statement selects one ORM entity (rows are objects); otherwise rows are
    Row tuples of columns that include the sort columns under their attribute names (the
    cheap way to read a list: no ORM objects are built).
    """
    order = (col_time.desc(), col_id.desc()) if descending else (col_time, col_id)
    stmt = stmt.where(keyset_after(col_time, col_id, cursor, descending)) \
        .order_by(*order).limit(limit + 1)
    rows = list(db.session.scalars(stmt) if entities else db.session.execute(stmt))
    time_attr, id_attr = col_time.key, col_id.key

    def key(row) -> tuple[datetime, str]:
        return getattr(row, time_attr), getattr(row, id_attr)

    return page_of(rows, limit, to_dict, key)
