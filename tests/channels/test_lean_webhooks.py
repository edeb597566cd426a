"""The webhooks' lean path (routes/webhooks.LeanWebhooks) answers exactly as the full app
does, and an event run with its parsed delivery (the inline hand-off) ends as the full run
would, an unrouted one with the claim alone."""
from __future__ import annotations

import json
import logging
import re
import sqlite3

import pytest
from sqlalchemy.exc import OperationalError
from werkzeug.test import Client
from werkzeug.wrappers import Response

from automation.connectors import connector_for
from automation.core import event_runner
from models_db import PlatformAccount, WebhookEvent, db, utcnow
from routes.webhooks import LeanWebhooks
from services import automation_queue, intake
from tests.channels.conftest import IG_ID, PAGE_ID, connect, fb_text, sign
from utils.config import current_settings
from utils.db import solo_engine, thread_connection
from utils.logging import RequestIdFilter


def _events() -> list[WebhookEvent]:
    db.session.rollback()
    return list(db.session.scalars(db.select(WebhookEvent).order_by(WebhookEvent.id)))


@pytest.fixture
def flask_requests(app):
    """How many requests reached Flask's request machinery (its before_request hooks)."""
    seen = []
    app.before_request(lambda: seen.append(1))
    return seen


def _full_app(app) -> Client:
    """A client of the app without the lean path in front (the WSGI stack it wraps)."""
    assert isinstance(app.wsgi_app, LeanWebhooks)
    return Client(app.wsgi_app.wsgi_app, Response)


def _post(client, path: str, raw: bytes, headers: dict):
    resp = client.post(path, data=raw, headers=headers)
    resp.close()
    return resp


def _deliver(client, payload: dict, channel: str = "facebook"):
    """POST `payload` signed to the channel's webhook; the (closed) response."""
    raw = json.dumps(payload).encode()
    return _post(client, f"/webhooks/{channel}", raw, {"X-Hub-Signature-256": sign(raw)})


def _comparable(resp) -> tuple:
    """Status, JSON body and headers, without what differs by design from one request to
    the next (the request id, the event id and so the body's length)."""
    headers = {k: v for k, v in resp.headers.items() if k not in ("X-Request-ID",
                                                                 "Content-Length")}
    body = json.loads(resp.get_data())
    if isinstance(body, dict):
        body.pop("event_id", None)
    return resp.status_code, body, headers


def test_a_delivery_is_answered_by_the_lean_path_as_the_app_would(app, client, flask_requests):
    raw = json.dumps(fb_text("hello", page="555")).encode()
    headers = {"X-Hub-Signature-256": sign(raw), "Content-Type": "application/json"}
    lean = _post(client, "/webhooks/facebook", raw, headers)
    assert flask_requests == []  # served in front of Flask's request machinery
    full = _post(_full_app(app), "/webhooks/facebook", raw, headers)
    automation_queue.drain(app)
    assert flask_requests == [1]
    assert lean.status_code == 200
    assert _comparable(lean) == _comparable(full)
    assert lean.get_json()["status"] == "received"
    assert re.fullmatch(r"[0-9a-f]{32}", lean.headers["X-Request-ID"])
    for name in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
                 "Content-Security-Policy", "Cross-Origin-Opener-Policy"):
        assert lean.headers[name] == full.headers[name]
    # Both were stored, with their request ids, and went through the same processing.
    events = _events()
    assert [e.id for e in events] == [lean.get_json()["event_id"], full.get_json()["event_id"]]
    assert events[0].request_id == lean.headers["X-Request-ID"]
    assert [e.status for e in events] == ["ignored", "ignored"]


def test_a_safe_request_id_is_kept_on_the_lean_path(client):
    raw = json.dumps(fb_text("hello", page="555")).encode()
    resp = _post(client, "/webhooks/facebook", raw, {"X-Hub-Signature-256": sign(raw),
                                                     "X-Request-ID": "meta-abc_1.2"})
    assert resp.status_code == 200 and resp.headers["X-Request-ID"] == "meta-abc_1.2"
    assert _events()[0].request_id == "meta-abc_1.2"
    unsafe = _post(client, "/webhooks/facebook", raw, {"X-Hub-Signature-256": sign(raw),
                                                       "X-Request-ID": "<script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["X-Request-ID"])


_BODY = json.dumps(fb_text("hello")).encode()
REFUSED = {
    "signature missing": ("/webhooks/facebook", _BODY, {}, 401),
    "signature wrong": ("/webhooks/facebook", _BODY, {"X-Hub-Signature-256": sign(b"x")}, 403),
    "another app's secret": ("/webhooks/instagram", _BODY,
                             {"X-Hub-Signature-256": sign(_BODY, "other")}, 403),
    "no such channel": ("/webhooks/telegram", _BODY, {"X-Hub-Signature-256": sign(_BODY)}, 404),
    "not a JSON object": ("/webhooks/facebook", b"[1, 2]",
                          {"X-Hub-Signature-256": sign(b"[1, 2]")}, 400),
    "not JSON": ("/webhooks/facebook", b"{nope", {"X-Hub-Signature-256": sign(b"{nope")}, 400),
    "a query string": ("/webhooks/facebook?x=1", b"{nope",
                       {"X-Hub-Signature-256": sign(b"{nope")}, 400),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_delivery_gets_the_apps_own_answer(app, client, flask_requests, case):
    path, raw, headers, status = REFUSED[case]
    lean = _post(client, path, raw, headers)
    assert flask_requests == [1]  # handed on to the app, which answered
    full = _post(_full_app(app), path, raw, headers)
    assert lean.status_code == status
    assert _comparable(lean) == _comparable(full)
    assert "error" in lean.get_json()
    rejected = [e.status for e in _events()]
    assert rejected == (["rejected", "rejected"] if status == 400 else [])


def test_an_unstorable_delivery_is_503_with_the_request_id_in_answer_and_log(client,
                                                                           monkeypatch):
    def locked(**_params):
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(intake.INSERT_EVENT, "run", locked)
    records = []
    handler = logging.Handler()
    handler.addFilter(RequestIdFilter())
    handler.emit = records.append
    logging.getLogger("dana.intake").addHandler(handler)
    try:
        raw = json.dumps(fb_text("hello")).encode()
        resp = _post(client, "/webhooks/facebook", raw,
                     {"X-Hub-Signature-256": sign(raw), "X-Request-ID": "req-503"})
    finally:
        logging.getLogger("dana.intake").removeHandler(handler)
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "not_stored"
    assert resp.headers["X-Request-ID"] == "req-503"
    assert resp.headers["X-Frame-Options"] == "DENY"
    [record] = [r for r in records if "not stored" in r.getMessage()]
    assert record.request_id == "req-503"
    assert _events() == []


def test_pooled_connections_found_dead_are_replaced_and_the_delivery_stored(app, client):
    """As after a database restart: the hot path's pooled connections are gone; the next
    delivery still gets its 200 once stored."""
    assert _deliver(client, fb_text("hello", page="555")).status_code == 200
    engine = solo_engine()
    if engine.dialect.name == "sqlite":  # the connection this thread keeps (no pool)
        drivers = [thread_connection(engine).driver_connection]
    else:
        held = [engine.raw_connection() for _ in range(3)]
        drivers = [fairy.driver_connection for fairy in held]
        for fairy in held:
            fairy.close()  # back in the pool, alive
    for driver in drivers:
        driver.close()  # then lost, behind the pool's back
    for n in range(3):
        raw = json.dumps(fb_text(f"again {n}", page="555")).encode()
        resp = _post(client, "/webhooks/facebook", raw, {"X-Hub-Signature-256": sign(raw)})
        assert resp.status_code == 200, resp.get_json()
    assert [e.status for e in _events()] == ["ignored"] * 4


# --- run_event with the parsed delivery: the claim routes ---------------------------------

def test_an_unrouted_delivery_ends_ignored_without_a_full_run(app, client, monkeypatch):
    def no_full_run(event_id, items=None):
        raise AssertionError("the full run was not needed")

    monkeypatch.setattr(event_runner, "process_webhook_event", no_full_run)
    assert _deliver(client, fb_text("hello", page="555")).status_code == 200
    [event] = _events()
    assert (event.status, event.attempts, event.error) == ("ignored", 1, None)
    assert event.processed_at is not None and event.claimed_until is None


def test_a_routed_delivery_gets_the_full_run_and_is_parsed_once(app, client, user, fake_graph,
                                                                 monkeypatch):
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    parse = connector_for("facebook").parse
    parsed = []
    monkeypatch.setattr(connector_for("facebook"), "parse",
                        lambda payload: parsed.append(1) or parse(payload))
    assert _deliver(client, fb_text("hello")).status_code == 200
    [event] = _events()
    assert (event.status, event.attempts) == ("processed", 1)
    assert len(fake_graph.requests_to("/me/messages")) == 1
    assert len(parsed) == 1


def test_routing_takes_the_platform_and_any_account_status(app, user):
    """The first step routes by (platform, account id): the same id on another platform is
    not this account's, and an account whose token was refused still owns its deliveries."""
    db.session.add(PlatformAccount(user_id=user["user"]["id"], platform="instagram",
                                   external_id=IG_ID, access_token_encrypted="x"))
    db.session.commit()
    assert event_runner.new_event("facebook", fb_text("hi", page=IG_ID),
                                  "{}").columns["status"] == "ignored"
    db.session.execute(db.update(PlatformAccount).values(status="needs_reauth"))
    db.session.commit()
    ig = {"object": "instagram", "entry": [{"id": IG_ID, "time": 1, "messaging": [{
        "sender": {"id": "1"}, "recipient": {"id": IG_ID}, "timestamp": 1,
        "message": {"mid": "m_1", "text": "hi"}}]}]}
    new = event_runner.new_event("instagram", ig, "{}")
    assert new.columns["status"] == "processing" and new.handed.row is not None


def test_a_delivery_for_two_pages_takes_the_full_run_and_ends_as_before(app, client):
    payload = fb_text("hello", page="555")
    payload["entry"] += fb_text("hi", page="556")["entry"]
    raw = json.dumps(payload).encode()
    assert _post(client, "/webhooks/facebook", raw,
                 {"X-Hub-Signature-256": sign(raw)}).status_code == 200
    [event] = _events()
    assert (event.status, event.attempts) == ("ignored", 1)


# --- the first step, before the INSERT: one write per delivery ----------------------------

def _handed(monkeypatch) -> list:
    """What the dispatcher is handed (it still runs it)."""
    handed = []
    submit = automation_queue.Dispatcher.submit

    def recorded(self, event_id, given=None):
        handed.append((event_id, given))
        submit(self, event_id, given)

    monkeypatch.setattr(automation_queue.Dispatcher, "submit", recorded)
    return handed


def _no_claims(monkeypatch) -> None:
    """Any claim of a stored event fails the test: the INSERT was the claim."""
    def claimed(**_params):
        raise AssertionError("the event was claimed after it was stored")

    monkeypatch.setattr(event_runner._CLAIM, "run", claimed)


def test_an_unrouted_delivery_is_stored_ignored_by_its_insert_without_the_dispatcher(
        app, monkeypatch):
    handed = _handed(monkeypatch)
    _no_claims(monkeypatch)
    raw = json.dumps(fb_text("hello", page="555")).encode()
    server = Client(app.wsgi_app, Response)  # the response is closed when the test says
    resp = server.post("/webhooks/facebook", data=raw, headers={"X-Hub-Signature-256": sign(raw)})
    assert resp.status_code == 200
    # Stored finished before the answer: nothing is left to do once it is sent.
    [event] = _events()
    assert (event.status, event.attempts, event.error) == ("ignored", 1, None)
    assert event.processed_at is not None and event.claimed_until is None
    assert event.id == resp.get_json()["event_id"]
    resp.close()
    assert handed == []


def test_a_routed_delivery_is_stored_claimed_and_run_from_that_claim(
        app, client, user, fake_graph, monkeypatch):
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    handed = _handed(monkeypatch)
    _no_claims(monkeypatch)
    assert _deliver(client, fb_text("hello")).status_code == 200
    [event] = _events()
    assert (event.status, event.attempts) == ("processed", 1)  # claimed once, run once
    assert event.claimed_until is None
    assert len(fake_graph.requests_to("/me/messages")) == 1
    [(event_id, delivery)] = handed
    assert event_id == event.id and isinstance(delivery, event_runner.Handed)
    assert delivery.row.status == "processing" and delivery.items


def test_a_routed_delivery_is_stored_leased_to_this_process_before_its_answer(
        app, client, user, fake_graph, monkeypatch):
    """If the process dies between the INSERT and the run, the lease runs out and a sweep
    runs the event (tests/channels/test_outbox.py)."""
    connect(client, user, fake_graph, "facebook", PAGE_ID)
    monkeypatch.setattr(automation_queue.Dispatcher, "submit", lambda *args: None)
    before = utcnow()
    assert _deliver(client, fb_text("hello")).status_code == 200
    [event] = _events()
    assert (event.status, event.attempts) == ("processing", 1)
    assert event.claimed_by.startswith(event_runner.runner_name().rsplit(":", 1)[0] + ":")
    lease = (event.claimed_until - before).total_seconds()
    assert current_settings(app).EVENT_STALE_SECONDS <= lease < \
        current_settings(app).EVENT_STALE_SECONDS + 5
    assert event_runner.due_events() == []  # its lease is live


def test_a_routing_read_that_fails_stores_the_delivery_received_for_the_run_to_route(
        app, client, monkeypatch):
    """The intake never waits on retries for the routing: the delivery is stored
    `received`, and the dispatcher's run claims and routes it."""
    tried = []

    def locked(**params):
        tried.append(params)
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(event_runner._ROUTED_READ, "run", locked)
    handed = _handed(monkeypatch)
    assert _deliver(client, fb_text("hello", page="555")).status_code == 200
    assert tried == [{"platform": "facebook", "account": "555"}]
    [event] = _events()
    assert (event.status, event.attempts) == ("ignored", 1)
    [(event_id, delivery)] = handed
    assert delivery.row is None and delivery.items


def test_a_first_step_that_crashes_still_stores_the_delivery(app, client, monkeypatch):
    def crash(*_args):
        raise KeyError("a bug")

    monkeypatch.setattr(automation_queue, "new_event", crash)
    assert _deliver(client, fb_text("hello", page="555")).status_code == 200
    [event] = _events()
    assert (event.status, event.attempts) == ("ignored", 1)  # the dispatcher's run
