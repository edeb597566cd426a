"""The webhook answers 503 only when the delivery could not be stored; a locked write is
retried; events are claimed once; a committed event whose hand-off was lost is swept."""
from __future__ import annotations

import sqlite3
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from automation.core import event_runner
from models_db import WebhookEvent, db, utcnow
from services import automation_queue, intake
from tests.channels.conftest import PAGE_ID, connect, fb_text, post_webhook
from utils.store.sql_models import Message


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


def _outbound() -> list[str]:
    """The statuses of the replies stored so far."""
    db.session.rollback()
    return list(db.session.scalars(select(Message.status).where(Message.direction == "outbound")))


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


@pytest.mark.parametrize("settings_overrides", [{"EVENT_STALE_SECONDS": 2}], indirect=True)
def test_a_claimed_event_that_waits_longer_than_its_lease_is_run_once(app, client, user,
                                                                      fake_graph, monkeypatch):
    """A burst can queue more runs in a process than a lease lasts: the events its INSERT
    claimed keep their leases while they wait, so a sweep (any process's) does not take
    them, and each is answered once, by its own run (not marked failed by a second run that
    finds its send unfinished)."""
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    release, real_run = threading.Event(), automation_queue.run_event

    def busy_runner(event_id, heartbeat=None, handed=None):  # every runner busy elsewhere
        assert release.wait(20), "the runs were never released"
        return real_run(event_id, heartbeat, handed)

    monkeypatch.setattr(automation_queue, "run_event", busy_runner)
    monkeypatch.setattr(automation_queue, "drain", lambda *args, **kwargs: None)
    for n in range(3):
        assert post_webhook(client, "facebook", fb_text(f"hello {n}", psid=f"70{n}")
                            ).status_code == 200
    time.sleep(3.5)  # the INSERT's lease (2 s) is long past
    assert [e.status for e in _events()] == ["processing"] * 3
    assert all(e.claimed_until > utcnow() for e in _events())
    assert event_runner.due_events() == []
    assert automation_queue.sweep() == 0
    release.set()
    automation_queue.start(app).drain(20)
    assert [(e.status, e.attempts) for e in _events()] == [("processed", 1)] * 3
    assert len(fake_graph.requests_to("/me/messages")) == 3
    assert _outbound() == ["sent"] * 3


def test_a_claim_taken_over_while_it_waited_is_not_run_again(app, client, user, fake_graph,
                                                             monkeypatch):
    """Should a lease run out all the same (the process was stopped longer than the lease):
    the renewal finds the claim gone, and the waiting run does not start."""
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    monkeypatch.setattr(automation_queue.Dispatcher, "submit", lambda *args: None)
    handed = []
    real_first_step = automation_queue.first_step
    monkeypatch.setattr(automation_queue, "first_step",
                        lambda *delivery: handed.append(real_first_step(*delivery))
                        or handed[-1])
    assert post_webhook(client, "facebook", fb_text("hello")).status_code == 200
    [event] = _events()
    owner = handed[0].handed.owner
    event_runner.keep_claim(app, event.id, handed[0].handed)
    try:
        db.session.execute(update(WebhookEvent).values(claimed_by="another-host:1:1"))
        db.session.commit()
        deadline = time.monotonic() + 10
        while not event_runner._leases.lost(event.id, owner) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert event_runner._leases.lost(event.id, owner)
        assert event_runner.run_event(event.id, handed=handed[0].handed) == "processing"
    finally:
        event_runner.release_claim(event.id, handed[0].handed)
    assert fake_graph.requests_to("/me/messages") == []
