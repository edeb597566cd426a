"""The inline dispatcher (services/automation_queue.Dispatcher): one wake-up serves the events
handed on together, yet a long run never holds up the events handed on after it."""
from __future__ import annotations

import threading

from automation.core.event_runner import Handed
from services import automation_queue


def _record_runs(monkeypatch, slow: int | None = None, release=None) -> list[tuple]:
    """Replace the run by a recorder (event `slow` waits for `release`); who ran what."""
    ran = []

    def run(event_id, heartbeat=None, handed=None):
        if event_id == slow:
            assert release.wait(10), "the slow run was never released"
        ran.append((event_id, handed, threading.current_thread().name))
        return "processed"

    monkeypatch.setattr(automation_queue, "run_event", run)
    return ran


def test_events_handed_on_together_run_in_order_on_one_wake_up(app, monkeypatch):
    ran = _record_runs(monkeypatch)
    # A gather window that holds all five submits, even on a busy test machine.
    monkeypatch.setattr(automation_queue.Dispatcher, "GATHER_SECONDS", 0.3)
    dispatcher = automation_queue.start(app)
    for event_id in range(1, 6):
        dispatcher.submit(event_id, Handed([], owner=f"run {event_id}"))
    dispatcher.drain(10)
    assert [(event_id, handed.owner) for event_id, handed, _ in ran] == [
        (n, f"run {n}") for n in range(1, 6)]
    assert len({thread for *_, thread in ran}) == 1


def test_a_long_run_leaves_the_next_events_to_another_thread(app, monkeypatch):
    release = threading.Event()
    ran = _record_runs(monkeypatch, slow=1, release=release)
    dispatcher = automation_queue.start(app)
    dispatcher.submit(1)
    for event_id in (2, 3):
        dispatcher.submit(event_id)
    try:
        pause = threading.Event()
        for _ in range(100):  # 2 and 3 finish while 1 is still running
            if [event_id for event_id, *_ in ran] == [2, 3]:
                break
            pause.wait(0.05)
        assert [event_id for event_id, *_ in ran] == [2, 3]
    finally:
        release.set()
    dispatcher.drain(10)
    assert sorted(event_id for event_id, *_ in ran) == [1, 2, 3]
