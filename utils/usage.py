"""Metered usage counters per user and calendar month (UTC): AI replies, AI tokens.

Infrastructure only: atomic increments of rows in `usage_counters`, with an optional ceiling
checked in the same UPDATE. What a plan allows is decided in services/entitlements.py; the
AI providers record token usage here without knowing about plans.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from models_db import UsageCounter, db

AI_REPLIES = "ai_replies"


def period(now: datetime | None = None) -> str:
    """The counting period of `now` (default: the current month), as YYYY-MM."""
    return (now or datetime.now(timezone.utc)).strftime("%Y-%m")


def count(user_id: str, metric: str, now: datetime | None = None) -> int:
    """How much of `metric` the user used in the month of `now`."""
    row = db.session.get(UsageCounter, (user_id, metric, period(now)))
    return row.count if row else 0


def _ensure_row(key: dict) -> None:
    if db.session.get(UsageCounter, tuple(key.values())) is None:
        try:
            with db.session.begin_nested():
                db.session.add(UsageCounter(count=0, **key))
        except IntegrityError:  # a concurrent writer created it first: fine
            pass


def increment(user_id: str, metric: str, amount: int = 1, limit: int | None = None) -> bool:
    """Add `amount` to this month's counter unless that would pass `limit`; True if added.

    The check and the increment are one UPDATE ... WHERE count < limit, so concurrent
    workers can never exceed the limit.
    """
    key = dict(user_id=user_id, metric=metric, period=period())
    _ensure_row(key)
    stmt = update(UsageCounter).where(*(getattr(UsageCounter, k) == v for k, v in key.items()))
    if limit is not None:
        stmt = stmt.where(UsageCounter.count < limit)
    result = db.session.execute(stmt.values(count=UsageCounter.count + amount))
    db.session.commit()
    return result.rowcount == 1


def record(user_id: str, metric: str, amount: int) -> None:
    """Add to a metered counter for this month (e.g. AI tokens); no limit applies."""
    if amount > 0:
        increment(user_id, metric, amount)
