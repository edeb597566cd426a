"""Analytics of one owner over a period of days (UTC), from the store's raw facts.

- messages in/out per platform per day (internal notes left out);
- conversations: new ones, active ones (with a message in the period), resolved ones;
- first-response time: per active conversation, from its first customer message in the period
  to the first AI or agent reply after it (system notices such as the hand-off message do
  not count as an answer); median and p90 (nearest rank);
- AI-answered share: of the conversations answered in the period, those answered only by the
  AI (no human agent reply);
- hand-offs: tasks opened on a conversation in the period;
- resolution time: conversations resolved in the period, from their start to resolution.
"""
from __future__ import annotations

import math
import statistics
from datetime import date, datetime, time, timedelta, timezone

from utils.errors import ValidationFailed
from utils.store import get_store

MAX_DAYS = 366
DEFAULT_DAYS = 30
ANSWERS = {"ai", "agent"}


def _spread(values: list[float]) -> dict:
    """Median and p90 (nearest rank) in seconds, and how many values there were."""
    if not values:
        return {"median": None, "p90": None, "count": 0}
    ordered = sorted(values)
    p90 = ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]
    return {"median": round(statistics.median(ordered), 1), "p90": round(p90, 1),
            "count": len(ordered)}


def period(start: date | None, end: date | None, today: date | None = None) -> tuple[date, date]:
    """The inclusive [start, end] days asked for: the last 30 days by default, at most 366."""
    end = end or today or datetime.now(timezone.utc).date()
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ValidationFailed("'from' must not be after 'to'.",
                               details=[{"field": "from", "message": "after 'to'",
                                         "type": "value_error"}])
    if (end - start).days + 1 > MAX_DAYS:
        raise ValidationFailed(f"The period is at most {MAX_DAYS} days.",
                               details=[{"field": "from", "message": "period too long",
                                         "type": "value_error"}])
    return start, end


def summary(owner_id: str, start: date | None = None, end: date | None = None) -> dict:
    """The analytics summary of the owner's inbox for the days start..end (inclusive, UTC)."""
    start, end = period(start, end)
    since = datetime.combine(start, time.min, tzinfo=timezone.utc)
    until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=timezone.utc)
    facts = get_store().analytics_facts(owner_id, since, until)

    per_day: dict[tuple[str, str], dict] = {}
    first_inbound: dict[str, datetime] = {}
    first_answer: dict[str, datetime] = {}
    answered_by: dict[str, set] = {}
    totals = {"inbound": 0, "outbound": 0}
    for m in facts["messages"]:
        day = m["created_at"].astimezone(timezone.utc).date().isoformat()
        platform = m["platform"] or "unknown"
        row = per_day.setdefault((day, platform), {"date": day, "platform": platform,
                                                   "inbound": 0, "outbound": 0})
        row[m["direction"]] += 1
        totals[m["direction"]] += 1
        conv = m["conversation_id"]
        if m["direction"] == "inbound":
            first_inbound.setdefault(conv, m["created_at"])
        elif m["sender_type"] in ANSWERS and conv in first_inbound:
            first_answer.setdefault(conv, m["created_at"])
            answered_by.setdefault(conv, set()).add(m["sender_type"])

    response_times = [(first_answer[c] - first_inbound[c]).total_seconds() for c in first_answer]
    ai_only = sum(1 for kinds in answered_by.values() if kinds == {"ai"})
    resolution = [(c["resolved_at"] - c["created_at"]).total_seconds() for c in facts["resolved"]]
    active = {m["conversation_id"] for m in facts["messages"]}
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "messages": sorted(per_day.values(), key=lambda r: (r["date"], r["platform"])),
        "totals": totals,
        "conversations": {"new": facts["new_conversations"], "active": len(active),
                          "resolved": len(facts["resolved"])},
        "first_response_seconds": _spread(response_times),
        "ai_answered_share": round(ai_only / len(answered_by), 4) if answered_by else None,
        "handoffs": facts["handoffs"],
        "resolution_seconds": _spread(resolution),
    }
