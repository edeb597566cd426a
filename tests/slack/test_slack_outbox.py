"""Slack's requests are stored before the 200 and run like every delivery (the event outbox):
a process that dies between the 200 and the work loses nothing, a Slack retry of a stored
event runs nothing twice, and a request that cannot be stored is answered 503 (Slack retries).
"""
from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from automation.core import event_runner
from models_db import SlackInbound, WebhookEvent, db, utcnow
from services import automation_queue
from tests.fakes.slack import CHANNEL_ID
from tests.slack.conftest import block_action, post_event, post_interaction, reply_event
from tests.slack.test_slack_inbound import graph_texts, handed_off_thread
from utils.store import NewMessage, get_store


def _slack_events() -> list[WebhookEvent]:
    db.session.rollback()
    return list(db.session.scalars(select(WebhookEvent).where(WebhookEvent.platform == "slack")
                                   .order_by(WebhookEvent.id)))


def _process_dies(app, monkeypatch) -> None:
    """From here on nothing runs the events this process stores (as if it were killed right
    after answering): no dispatcher, no hand-off.
    """
    automation_queue.stop(app)
    monkeypatch.setattr(automation_queue, "dispatch", lambda *handed: None)


def _left_behind(**values) -> None:
    """Age the Slack events (or set what a killed run left) so that a sweep finds them due."""
    values.setdefault("received_at", utcnow() - timedelta(hours=1))
    db.session.execute(update(WebhookEvent).where(WebhookEvent.platform == "slack")
                       .values(**values))
    db.session.commit()


def _killed_mid_run(attempts: int) -> None:
    """What a run killed with its process leaves: `processing`, its lease run out."""
    _left_behind(status="processing", attempts=attempts, claimed_by="dead-host:1",
                 claimed_until=utcnow() - timedelta(seconds=1))


def _stored_by_a_dying_process(app, client, fake_slack, monkeypatch, text: str,
                               event_id: str, **event_fields) -> str:
    """A person replies in a handed-off conversation's thread; the process that stores the
    event dies before running it. The thread's ts.
    """
    thread_ts = handed_off_thread(client, fake_slack)
    _process_dies(app, monkeypatch)
    resp = post_event(client, reply_event(thread_ts, text, event_id=event_id, **event_fields))
    assert resp.status_code == 200 and resp.get_json() == {"status": "received"}
    return thread_ts


def test_a_thread_reply_stored_by_a_process_that_died_reaches_the_customer_once(
        app, client, slack_business, fake_graph, fake_slack, monkeypatch):
    _stored_by_a_dying_process(app, client, fake_slack, monkeypatch, "Sam here, sorted!",
                               "Ev0DIED")
    assert "Sam here, sorted!" not in graph_texts(fake_graph)  # not handled yet...
    [event] = _slack_events()
    assert event.status == "received"                          # ...but stored
    _left_behind()
    assert automation_queue.sweep() == 1    # the next process's start-up (or periodic) sweep
    assert graph_texts(fake_graph).count("Sam here, sorted!") == 1
    [event] = _slack_events()
    assert (event.status, event.attempts) == ("processed", 1)
    assert automation_queue.sweep() == 0
    assert graph_texts(fake_graph).count("Sam here, sorted!") == 1


def test_slack_retry_of_a_stored_event_runs_it_once(app, client, slack_business, fake_graph,
                                                     fake_slack, monkeypatch):
    thread_ts = handed_off_thread(client, fake_slack)
    _process_dies(app, monkeypatch)
    event = reply_event(thread_ts, "Only once please", event_id="Ev0RETRIED")
    assert post_event(client, event).get_json() == {"status": "received"}
    # Slack did not get the 200 in time and retries (same event_id), before anything ran it
    retry = post_event(client, event, headers={"X-Slack-Retry-Num": "1",
                                               "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status_code == 200 and retry.get_json() == {"status": "duplicate"}
    assert len(_slack_events()) == 1
    _left_behind()
    automation_queue.sweep()
    post_event(client, event, headers={"X-Slack-Retry-Num": "2"})  # and once more, after
    automation_queue.sweep()
    assert graph_texts(fake_graph).count("Only once please") == 1


def test_a_run_killed_mid_way_is_run_again_by_the_sweep(app, client, slack_business,
                                                        fake_graph, fake_slack, monkeypatch):
    _stored_by_a_dying_process(app, client, fake_slack, monkeypatch, "After the crash",
                               "Ev0KILLED")
    _killed_mid_run(attempts=1)  # a run claimed it, then its process was killed
    assert event_runner.due_events() == [_slack_events()[0].id]
    automation_queue.sweep()
    assert graph_texts(fake_graph).count("After the crash") == 1
    [event] = _slack_events()
    assert (event.status, event.attempts) == ("processed", 2)


def test_a_reply_interrupted_mid_send_is_not_sent_twice(app, client, slack_business,
                                                        fake_graph, fake_slack, monkeypatch):
    ts = "1800000000.000200"
    _stored_by_a_dying_process(app, client, fake_slack, monkeypatch, "Maybe delivered",
                               "Ev0MIDSEND", ts=ts)
    # the killed run had stored the reply (queued) and was inside the Send API call
    owner = slack_business["user"]["id"]
    [conv] = client.get("/api/conversations", headers=slack_business["headers"]) \
        .get_json()["items"]
    get_store().add_message(owner, NewMessage(
        conversation_id=conv["id"], direction="outbound", sender_type="agent",
        text="Maybe delivered", status="queued", platform="facebook",
        idempotency_key=f"slack:{CHANNEL_ID}:{ts}"))
    _killed_mid_run(attempts=1)
    sent_before = graph_texts(fake_graph).count("Maybe delivered")
    automation_queue.sweep()
    assert graph_texts(fake_graph).count("Maybe delivered") == sent_before  # at most once
    [reply] = [m for m in client.get(f"/api/conversations/{conv['id']}/messages?limit=100",
                                     headers=slack_business["headers"]).get_json()["items"]
               if m["text"] == "Maybe delivered"]
    assert (reply["status"], reply["error"]) == ("failed", event_runner.UNKNOWN_OUTCOME)
    assert _slack_events()[0].status == "processed"


@pytest.mark.parametrize("settings_overrides", [{"EVENT_MAX_ATTEMPTS": 2}], indirect=True)
def test_an_event_whose_runs_keep_dying_ends_dead(app, client, slack_business, fake_graph,
                                                  fake_slack, admin, monkeypatch):
    _stored_by_a_dying_process(app, client, fake_slack, monkeypatch, "Poison", "Ev0POISON")
    _killed_mid_run(attempts=2)
    automation_queue.sweep()
    [event] = _slack_events()
    assert event.status == "dead" and "interrupted" in event.error
    assert "Poison" not in graph_texts(fake_graph)
    listed = client.get("/api/admin/webhook-events?status=dead&platform=slack",
                        headers=admin["headers"])
    assert [e["id"] for e in listed.get_json()["items"]] == [event.id]  # shown to operators


def test_a_click_stored_by_a_process_that_died_is_applied_by_the_sweep(
        app, client, slack_business, fake_slack, monkeypatch):
    thread_ts = handed_off_thread(client, fake_slack)
    take = fake_slack.thread(CHANNEL_ID, thread_ts)[0]["blocks"][1]["elements"][0]
    _process_dies(app, monkeypatch)
    resp = post_interaction(client, block_action("dana_take", json.loads(take["value"]),
                                                 thread_ts=thread_ts, message_ts=thread_ts))
    assert resp.get_json() == {"status": "received"}
    [task] = client.get("/api/tasks", headers=slack_business["headers"]).get_json()["items"]
    assert task["status"] == "open"
    _left_behind()
    automation_queue.sweep()
    [task] = client.get("/api/tasks", headers=slack_business["headers"]).get_json()["items"]
    assert task["status"] == "in_progress"


def test_an_event_that_cannot_be_stored_is_503_and_its_redelivery_works(
        app, client, slack_business, fake_graph, fake_slack, monkeypatch):
    thread_ts = handed_off_thread(client, fake_slack)
    event = reply_event(thread_ts, "Stored the second time", event_id="Ev0LOCKED")
    session = db.session()
    real_commit = session.commit
    locked = OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))

    def commit():
        if any(isinstance(o, SlackInbound) for o in session.new):
            raise locked
        return real_commit()

    monkeypatch.setattr(session, "commit", commit)
    resp = post_event(client, event)
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "not_stored"
    monkeypatch.undo()
    db.session.rollback()
    assert _slack_events() == []
    assert db.session.scalar(select(func.count()).select_from(SlackInbound)) == 0
    assert "Stored the second time" not in graph_texts(fake_graph)
    # Slack delivers it again (its retry after a non-200): now stored and answered, once
    retry = post_event(client, event, headers={"X-Slack-Retry-Num": "1"})
    assert retry.status_code == 200 and retry.get_json() == {"status": "received"}
    assert graph_texts(fake_graph).count("Stored the second time") == 1
