"""The webhook answers 503 only when the delivery could not be stored; a locked write is
retried; events are claimed once; a committed event whose hand-off was lost is swept."""
from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError, OperationalError

from automation.core import event_runner
from models_db import WebhookEvent, db, utcnow
from services import automation_queue, intake
from tests.channels.conftest import PAGE_ID, connect, fb_text, post_webhook


def _events() -> list[WebhookEvent]:
    db.session.rollback()
    return list(db.session.scalars(db.select(WebhookEvent).order_by(WebhookEvent.id)))


class _FailingInsert:
    """Stands in for the event INSERT: raises `errors` one after the other, then inserts."""

    def __init__(self, *errors):
        self.errors, self.calls = list(errors), 0

    def install(self, monkeypatch):
        real_run = intake.INSERT_EVENT.run

        def run(**params):
            self.calls += 1
            if self.errors:
                raise self.errors.pop(0)
            return real_run(**params)

        monkeypatch.setattr(intake.INSERT_EVENT, "run", run)


def _locked() -> OperationalError:
    return OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))


def test_a_locked_insert_is_retried_and_the_delivery_answered_200(client, user, fake_graph,
                                                                   monkeypatch):
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    failing = _FailingInsert(_locked(), _locked())
    failing.install(monkeypatch)
    resp = post_webhook(client, "facebook", fb_text("hello"))
    assert resp.status_code == 200, resp.get_json()
    assert failing.calls == 3
    [event] = _events()
    assert event.status == "processed"


def test_a_delivery_that_cannot_be_stored_is_503_so_meta_redelivers(client, user, fake_graph,
                                                                    monkeypatch):
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    failing = _FailingInsert(*[_locked() for _ in range(10)])
    failing.install(monkeypatch)
    resp = post_webhook(client, "facebook", fb_text("hello"))
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "not_stored"
    assert _events() == []


def test_an_integrity_error_is_not_retried(client, user, fake_graph, monkeypatch):
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    failing = _FailingInsert(IntegrityError("INSERT", {}, Exception("NOT NULL failed")))
    failing.install(monkeypatch)
    resp = post_webhook(client, "facebook", fb_text("hello"))
    assert resp.status_code == 500
    assert failing.calls == 1


def test_an_event_is_claimed_once(app, client, user, fake_graph):
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    event = WebhookEvent(platform="facebook", raw_body="{}", status="received")
    db.session.add(event)
    db.session.commit()
    assert event_runner.claim_event(event.id) == "received"
    assert event_runner.claim_event(event.id) is None  # a live lease: nobody else
    # The lease runs out (the process running it died): the event can be taken again.
    db.session.execute(update(WebhookEvent).where(WebhookEvent.id == event.id)
                       .values(claimed_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert event_runner.claim_event(event.id) == "processing"
    assert event_runner.claim_event(event.id) is None


def _stored_never_handed_on(client, user, fake_graph, monkeypatch) -> WebhookEvent:
    """A delivery for a connected Page, stored and answered, whose hand-off is lost."""
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    monkeypatch.setattr(automation_queue, "dispatch", lambda *handed: None)
    assert post_webhook(client, "facebook", fb_text("hello")).status_code == 200
    [event] = _events()
    return event


@pytest.mark.parametrize("settings_overrides", [{"EVENT_STALE_SECONDS": 2}], indirect=True)
def test_a_committed_event_never_handed_on_is_run_by_the_sweep(app, client, user, fake_graph,
                                                               monkeypatch):
    """Inline, the INSERT claimed the event for this process's run: when that run never
    comes (the process died), the sweep runs it once its lease is out, and once only."""
    event = _stored_never_handed_on(client, user, fake_graph, monkeypatch)
    assert (event.status, event.attempts) == ("processing", 1)
    assert event_runner.due_events() == []  # leased: its run may still be on its way
    db.session.execute(update(WebhookEvent).values(claimed_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert automation_queue.sweep() == 1
    [event] = _events()
    assert (event.status, event.attempts) == ("processed", 2)
    assert len(fake_graph.requests_to("/me/messages")) == 1
    assert automation_queue.sweep() == 0
    assert len(fake_graph.requests_to("/me/messages")) == 1


def test_a_received_event_never_handed_on_is_run_by_the_sweep(app, client, user, fake_graph,
                                                              monkeypatch):
    """Stored `received` (rq, or inline when the routing read failed) and never handed on:
    the sweep runs it once it is EVENT_STALE_SECONDS old."""
    monkeypatch.setattr(automation_queue, "first_step", lambda *delivery: None)
    event = _stored_never_handed_on(client, user, fake_graph, monkeypatch)
    assert event.status == "received"
    assert event_runner.due_events() == []  # fresh: its hand-off may still be on its way
    db.session.execute(update(WebhookEvent).values(received_at=utcnow() - timedelta(days=1)))
    db.session.commit()
    assert automation_queue.sweep() == 1
    [event] = _events()
    assert (event.status, event.attempts) == ("processed", 1)
    assert len(fake_graph.requests_to("/me/messages")) == 1
