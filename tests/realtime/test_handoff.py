"""The rq hand-off (services/rq_queue.HandOff): ids stored together reach Redis together,
in the order they were stored, and a failed push loses nothing but that push."""
from __future__ import annotations

import threading
import time

import redis

from services.rq_queue import READY_KEY, HandOff


class FakeRedis:
    """Records each LPUSH; fails the ones asked to."""

    def __init__(self, fail: int = 0):
        self.pushes: list[tuple] = []
        self.fail = fail
        self.pushed = threading.Event()

    def lpush(self, key: str, *ids: int) -> int:
        try:
            if self.fail:
                self.fail -= 1
                raise redis.ConnectionError("Redis went away")
            self.pushes.append((key, ids))
            return len(ids)
        finally:
            self.pushed.set()


def _settle(client: FakeRedis) -> None:
    assert client.pushed.wait(5), "nothing was pushed"
    client.pushed.clear()


def test_ids_stored_within_the_gather_window_go_in_one_push_in_their_order(monkeypatch):
    monkeypatch.setattr(HandOff, "GATHER_SECONDS", 0.5)  # roomy, for a busy test machine
    client = FakeRedis()
    handoff = HandOff(client)
    handoff.push(6)
    _settle(client)  # the thread is up and idle
    handoff.push(7)
    time.sleep(0.05)  # the thread is awake by now: 8 and 9 still join 7's push
    handoff.push(8)
    handoff.push(9)
    _settle(client)
    assert client.pushes == [(READY_KEY, (6,)), (READY_KEY, (7, 8, 9))]


def test_a_failed_push_is_logged_and_the_next_ids_still_go(caplog):
    client = FakeRedis(fail=1)
    handoff = HandOff(client)
    handoff.push(1)
    _settle(client)
    deadline = time.monotonic() + 5
    while "events [1] stored but not handed on" not in caplog.text:
        assert time.monotonic() < deadline, "the failed push was not logged"
        time.sleep(0.01)
    handoff.push(2)
    _settle(client)
    assert client.pushes == [(READY_KEY, (2,))]
