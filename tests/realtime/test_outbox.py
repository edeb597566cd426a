"""The event row is the outbox, with real processes on one database file (or PostgreSQL):

- 200 concurrent signed deliveries to a web process with two workers: every one answered 200,
  stored, answered once, and none left received/processing (SQLite: IMMEDIATE transactions and
  retried locked writes; nothing lost to "database is locked");
- inline mode, a web process killed (kill -9) in the middle of a send with another delivery
  waiting behind it: once a new process is started, the waiting one is run (start-up and
  periodic sweeps) and the interrupted one is settled: exactly one reply per message.
"""
from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

from tests.fakes.graph import Reply
from tests.realtime.conftest import (
    QUESTION,
    business,
    conversations,
    fb_message,
    messages,
    post_webhook,
    wait_until,
)

DELIVERIES = 200


def _statuses(stack) -> dict[str, int]:
    return dict(stack.query("SELECT status, COUNT(*) FROM webhook_events GROUP BY status"))


def test_200_concurrent_deliveries_with_two_workers_are_all_stored_and_answered_once(
        make_stack):
    settings = {"AUTOMATION_QUEUE": "rq"}
    stack = make_stack(redis=True)
    server = stack.server("web", **settings).wait_ready()
    owner = business(server.base_url, stack.graph)
    workers = [stack.worker(f"worker-{n}", **settings) for n in (1, 2)]

    deliveries = [fb_message(owner["page_id"], f"{QUESTION} ({n})") for n in range(DELIVERIES)]
    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(lambda d: post_webhook(server.base_url, d), deliveries))

    assert [r.status_code for r in answers] == [200] * DELIVERIES, \
        {r.status_code: r.text for r in answers if r.status_code != 200}
    wait_until(lambda: _statuses(stack) == {"processed": DELIVERIES}, 240,
               "every event to be processed")
    for worker in workers:
        assert worker.alive(), worker.log()[-3000:]
    assert len(stack.replies()) == DELIVERIES  # one reply each: none lost, none twice
    [(inbound,)] = stack.query("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'")
    assert inbound == DELIVERIES
    [(outbound,)] = stack.query("SELECT COUNT(*) FROM messages WHERE direction = 'outbound' "
                                "AND status = 'sent'")
    assert outbound == DELIVERIES
    logs = server.log() + "".join(w.log() for w in workers)
    assert "Traceback" not in logs, logs[-5000:]


def test_inline_process_killed_mid_send_is_recovered_by_the_next_one(make_stack):
    settings = {"AUTOMATION_QUEUE": "inline", "EVENT_STALE_SECONDS": "3",
                "EVENT_SWEEP_SECONDS": "1"}
    stack = make_stack()
    server = stack.server("web-1", **settings).wait_ready()
    owner = business(server.base_url, stack.graph)
    stack.graph.queue("/me/messages", Reply(delay=15))  # the first send hangs at Graph
    first = post_webhook(server.base_url, fb_message(owner["page_id"], QUESTION, psid="71"))
    assert first.status_code == 200
    wait_until(lambda: len(stack.replies()) == 1, 45, "the first send to reach Graph")
    # A second customer writes meanwhile; the process dies at once (wherever that one is).
    second = post_webhook(server.base_url, fb_message(owner["page_id"], QUESTION, psid="72"))
    assert second.status_code == 200
    server.kill_group(signal.SIGKILL)
    server.wait(10)
    ids = first.json()["event_id"], second.json()["event_id"]
    assert stack.event(ids[0])["status"] == "processing"

    restarted = stack.server("web-2", **settings).wait_ready()
    wait_until(lambda: [stack.event(i)["status"] for i in ids] == ["processed", "processed"],
               45, "the new process to run both events")
    assert stack.event(ids[0])["attempts"] == 2
    # One Send API call per message: the interrupted reply is not sent again (at most once),
    # it is shown failed with an unknown outcome; the other customer is answered once.
    assert len(stack.replies()) == 2
    replies = {}
    for conv in conversations(restarted.base_url, owner):
        [reply] = [m for m in messages(restarted.base_url, owner, conv["id"])
                   if m["direction"] == "outbound"]
        replies[conv["contact"]["platform_user_id"]] = (reply["status"], reply["error"])
    assert replies["71"] == ("failed", "unknown_outcome")
    assert replies["72"] in (("sent", None), ("failed", "unknown_outcome")), replies
