"""What every resource's models share: StrictModel (re-exported), list queries, plain answers."""
from __future__ import annotations

from typing import Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, Field

from utils.validation import StrictModel

__all__ = ["ListQuery", "OkOut", "Platform", "StrictModel", "check_timezone"]


def check_timezone(value: str | None) -> str | None:
    """Pydantic validator: an IANA time zone name (or None)."""
    if value is not None and value not in available_timezones():
        raise ValueError("unknown IANA time zone")
    return value


class ListQuery(StrictModel):
    """Keyset paging of every list: at most `limit` items after `cursor`."""

    limit: int = Field(default=50, ge=1, le=100)
    cursor: str | None = None


class OkOut(BaseModel):
    """A plain acknowledgement."""

    status: str


Platform = Literal["facebook", "instagram", "whatsapp"]
