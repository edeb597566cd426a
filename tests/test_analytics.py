"""GET /api/analytics/summary on known data, and the console's analytics page."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest

from tests.helpers import assert_error, seed_conversation
from utils.store import NewMessage, get_store

TODAY = datetime.now(timezone.utc).date()
DAY1, DAY2 = TODAY - timedelta(days=1), TODAY


def at(day, hh, mm=0, ss=0):
    return datetime.combine(day, time(hh, mm, ss), tzinfo=timezone.utc)


def _msg(owner, conv, direction, sender, when, text="hi", note=False):
    get_store().add_message(owner, NewMessage(
        conversation_id=conv["id"], direction=direction, sender_type=sender, text=text,
        platform=conv["platform"], is_note=note,
        status="received" if direction == "inbound" else "sent", created_at=when))


def _set_times(conversation_id, **values):
    from models_db import db
    from utils.store.sql_models import Conversation
    row = db.session.get(Conversation, conversation_id)
    for key, value in values.items():
        setattr(row, key, value)
    db.session.commit()


@pytest.fixture
def seeded(user, other_user):
    """Three conversations of `user` over two days (and noise of another user)."""
    from models_db import db
    from services import conversations, tasks
    from utils.store.sql_models import Task

    owner = user["user"]["id"]
    a = seed_conversation(owner, "facebook", "page-1", "Ann")
    b = seed_conversation(owner, "whatsapp", "wa-1", "Bob")
    c = seed_conversation(owner, "instagram", "ig-1", "Cat")
    _msg(owner, a, "inbound", "contact", at(DAY1, 10))
    _msg(owner, a, "outbound", "ai", at(DAY1, 10, 0, 30))
    _msg(owner, b, "inbound", "contact", at(DAY1, 12))
    _msg(owner, b, "outbound", "agent", at(DAY1, 12, 0, 40), note=True)  # notes never count
    _msg(owner, b, "outbound", "ai", at(DAY1, 12, 1))
    _msg(owner, b, "outbound", "agent", at(DAY1, 12, 10))
    _msg(owner, c, "inbound", "contact", at(DAY2, 9))
    _msg(owner, c, "outbound", "system", at(DAY2, 9, 0, 5))  # the hand-off notice: no answer
    _msg(owner, a, "inbound", "contact", at(DAY1 - timedelta(days=3), 8))  # before the period
    conversations.update_conversation(owner, a["id"], {"status": "resolved"})
    _set_times(a["id"], created_at=at(DAY1, 9), updated_at=at(DAY2, 11))
    _set_times(b["id"], created_at=at(DAY1, 11))
    _set_times(c["id"], created_at=at(DAY2, 8))
    handoff = tasks.create_task(owner, {"title": "Reply to Cat", "conversation_id": c["id"]})
    tasks.create_task(owner, {"title": "Call the supplier"})  # not on a conversation
    db.session.get(Task, handoff["id"]).created_at = at(DAY2, 9, 1)
    db.session.commit()
    noise = seed_conversation(other_user["user"]["id"], "facebook", "page-9", "Zed")
    _msg(other_user["user"]["id"], noise, "inbound", "contact", at(DAY1, 10))
    return {"a": a, "b": b, "c": c}


def test_summary_on_known_data(client, user, seeded):
    resp = client.get(f"/api/analytics/summary?from={DAY1}&to={DAY2}", headers=user["headers"])
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["from"] == DAY1.isoformat() and body["to"] == DAY2.isoformat()
    assert body["messages"] == [
        {"date": DAY1.isoformat(), "platform": "facebook", "inbound": 1, "outbound": 1},
        {"date": DAY1.isoformat(), "platform": "whatsapp", "inbound": 1, "outbound": 2},
        {"date": DAY2.isoformat(), "platform": "instagram", "inbound": 1, "outbound": 1},
    ]
    assert body["totals"] == {"inbound": 3, "outbound": 4}
    assert body["conversations"] == {"new": 3, "active": 3, "resolved": 1}
    assert body["first_response_seconds"] == {"median": 45.0, "p90": 60.0, "count": 2}
    assert body["ai_answered_share"] == 0.5
    assert body["handoffs"] == 1
    assert body["resolution_seconds"] == {"median": 26 * 3600.0, "p90": 26 * 3600.0, "count": 1}


def test_a_shorter_period_counts_only_its_days(client, user, seeded):
    body = client.get(f"/api/analytics/summary?from={DAY2}&to={DAY2}",
                      headers=user["headers"]).get_json()
    assert body["totals"] == {"inbound": 1, "outbound": 1}
    assert body["first_response_seconds"] == {"median": None, "p90": None, "count": 0}
    assert body["ai_answered_share"] is None
    assert body["conversations"]["active"] == 1


def test_another_users_data_is_not_counted(client, other_user, seeded):
    body = client.get(f"/api/analytics/summary?from={DAY1}&to={DAY2}",
                      headers=other_user["headers"]).get_json()
    assert body["totals"] == {"inbound": 1, "outbound": 0}
    assert body["handoffs"] == 0


def test_default_period_is_the_last_30_days(client, user):
    body = client.get("/api/analytics/summary", headers=user["headers"]).get_json()
    assert body["to"] == TODAY.isoformat()
    assert body["from"] == (TODAY - timedelta(days=29)).isoformat()
    assert body["messages"] == [] and body["totals"] == {"inbound": 0, "outbound": 0}


@pytest.mark.parametrize("query", [f"from={DAY2}&to={DAY1}", "from=2020-01-01&to=2021-06-01",
                                   "from=yesterday", "to=2026-13-01", "since=2026-01-01"])
def test_bad_periods_are_refused(client, user, query):
    resp = client.get(f"/api/analytics/summary?{query}", headers=user["headers"])
    assert_error(resp, 400, "validation_error")


def test_summary_needs_a_token(client):
    assert_error(client.get("/api/analytics/summary"), 401, "unauthorized")


def test_summary_is_in_the_openapi_spec(client):
    spec = client.get("/api/openapi.json").get_json()
    op = spec["paths"]["/api/analytics/summary"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"from", "to"}
    assert "401" in op["responses"] and "200" in op["responses"]
