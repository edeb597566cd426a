"""Metered usage counters per user and calendar month (UTC): AI replies, AI tokens.

Infrastructure only: atomic increments of rows in `usage_counters`, with an optional ceiling
checked in the same UPDATE. What a plan allows is decided in services/entitlements.py; the
AI providers record token usage here without knowing about plans.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from models_db import UsageCounter, db
from utils.db import execute

AI_REPLIES = "ai_replies"


def period(now: datetime | None = None) -> str:
    """The counting period of `now` (default: the current month), as YYYY-MM."""
    return (now or datetime.now(timezone.utc)).strftime("%Y-%m")


def count(user_id: str, metric: str, now: datetime | None = None) -> int:
    """How much of `metric` the user used in the month of `now`."""
    row = db.session.get(UsageCounter, (user_id, metric, period(now)))
    return row.count if row else 0


_C = UsageCounter.__table__.c
_KEY = (_C.user_id == bindparam("k_user"), _C.metric == bindparam("k_metric"),
        _C.period == bindparam("k_period"))
# Built once (Core statements keep their compiled form): every AI reply increments.
_ADD = update(UsageCounter.__table__).where(*_KEY).values(count=_C.count + bindparam("amount"))
_ADD_WITHIN = _ADD.where(_C.count < bindparam("limit"))
_EXISTS = select(_C.count).where(*_KEY)
_GIVE_BACK = (update(UsageCounter.__table__)
              .where(*_KEY, _C.count >= bindparam("amount"))
              .values(count=_C.count - bindparam("amount")))


def _create_row(key: dict) -> None:
    """This month's counter at 0 (a concurrent writer may have created it: fine)."""
    try:
        with db.session.begin_nested():
            db.session.add(UsageCounter(count=0, **key))
    except IntegrityError:
        pass


def increment(user_id: str, metric: str, amount: int = 1, limit: int | None = None) -> bool:
    """Add `amount` to this month's counter unless that would pass `limit`; True if added.

    The check and the increment are one UPDATE ... WHERE count < limit, so
    concurrent workers can never exceed the limit. The month's row is created by the first
    increment that finds none (one statement per increment otherwise).
    """
    key = dict(user_id=user_id, metric=metric, period=period())
    params = {"k_user": user_id, "k_metric": metric, "k_period": key["period"],
              "amount": amount, "limit": limit}
    stmt = _ADD if limit is None else _ADD_WITHIN
    added = execute(stmt, params).rowcount == 1
    if not added and execute(_EXISTS, params).first() is None:
        _create_row(key)
        added = execute(stmt, params).rowcount == 1
    db.session.commit()
    return added


def give_back(user_id: str, metric: str, amount: int = 1) -> None:
    """Take back `amount` that an increment counted for work that then did not happen (one
    UPDATE, never below zero).
    """
    execute(_GIVE_BACK, {
        "k_user": user_id, "k_metric": metric, "k_period": period(), "amount": amount})
    db.session.commit()


def record(user_id: str, metric: str, amount: int) -> None:
    """Add to a metered counter for this month (e.g. AI tokens); no limit applies."""
    if amount > 0:
        increment(user_id, metric, amount)
