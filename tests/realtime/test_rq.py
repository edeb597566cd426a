"""AUTOMATION_QUEUE=rq with real processes: a web instance stores the event and pushes its id
on a Redis list; separate `flask worker` processes run it. A failing event is retried after
RQ_RETRY_INTERVALS and ends `failed`, replayable; a worker killed mid-send (kill -9) has its
event taken again by another worker's sweep once the lease runs out, and the customer still
gets exactly one reply; a hand-off lost between the commit and Redis is found by the sweep."""
from __future__ import annotations

import signal
import time

import redis

from services.rq_queue import READY_KEY
from tests.fakes.graph import Reply
from tests.realtime.conftest import (
    QUESTION,
    api,
    business,
    conversations,
    fb_message,
    messages,
    post_webhook,
    wait_subscribed,
    wait_until,
)


def _ready(redis_url: str) -> list[str]:
    return [v.decode() for v in redis.Redis.from_url(redis_url).lrange(READY_KEY, 0, -1)]


def _deliver(server, owner) -> int:
    resp = post_webhook(server.base_url, fb_message(owner["page_id"], QUESTION))
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "received"
    return resp.json()["event_id"]


def _outbound(server, owner) -> list[dict]:
    [conv] = conversations(server.base_url, owner)
    return [m for m in messages(server.base_url, owner, conv["id"]) if m["direction"] == "outbound"]


def _tasks(server, owner) -> list[dict]:
    with api(server.base_url) as c:
        return c.get("/api/tasks", headers=owner["headers"]).json()["items"]


def test_webhook_is_queued_and_a_separate_worker_sends_one_reply(make_stack, listeners):
    stack = make_stack(redis=True)
    server = stack.server("web", AUTOMATION_QUEUE="rq").wait_ready()
    owner = business(server.base_url, stack.graph)
    client = listeners(server.base_url, owner["access_token"]).connect()
    wait_subscribed(stack.redis_url, client, owner["user"]["id"])

    event_id = _deliver(server, owner)
    # Answered without processing: stored, its id handed on (by the web process's hand-off
    # thread, just after the answer), nothing sent yet.
    assert stack.event(event_id)["status"] == "received"
    wait_until(lambda: _ready(stack.redis_url) == [str(event_id)], 10, "the id on the list")
    assert stack.replies() == []

    worker = stack.worker("worker", "--burst")
    assert worker.wait(60) == 0, worker.log()[-3000:]
    assert stack.event(event_id) == {"status": "processed", "attempts": 1, "error": None}
    assert _ready(stack.redis_url) == []
    assert len(stack.replies()) == 1
    [reply] = _outbound(server, owner)
    assert reply["status"] == "sent" and reply["sender_type"] == "system"
    # The worker's notifications reach the web instance's client through Redis.
    client.wait_for("new_message", lambda d: d["message"]["direction"] == "inbound")
    client.wait_for("message_status", lambda d: d.get("message_id") == reply["id"]
                    and d["status"] == "sent")


def test_a_lost_hand_off_is_found_by_the_sweep(make_stack):
    settings = {"AUTOMATION_QUEUE": "rq", "EVENT_STALE_SECONDS": "2", "EVENT_SWEEP_SECONDS": "1"}
    stack = make_stack(redis=True)
    server = stack.server("web", **settings).wait_ready()
    owner = business(server.base_url, stack.graph)
    event_id = _deliver(server, owner)
    # The id never reaches a worker (as if the web process died between commit and LPUSH).
    wait_until(lambda: _ready(stack.redis_url) == [str(event_id)], 10, "the id on the list")
    redis.Redis.from_url(stack.redis_url).delete(READY_KEY)

    worker = stack.worker("worker", **settings)
    wait_until(lambda: stack.event(event_id)["status"] == "processed", 45,
               "a worker's sweep to run the event nobody handed on")
    assert stack.event(event_id)["attempts"] == 1, worker.log()[-5000:]
    assert len(stack.replies()) == 1


def test_event_that_keeps_failing_is_retried_then_failed_and_replays(make_stack,
                                                                    refusing_store):
    stack = make_stack(redis=True)
    retry = {"AUTOMATION_QUEUE": "rq", "RQ_RETRY_INTERVALS": "1,1"}  # 3 attempts, 1 s apart
    server = stack.server("web", **retry).wait_ready()
    owner = business(server.base_url, stack.graph)
    event_id = _deliver(server, owner)

    # A worker deployed with a broken store configuration: its conversation store (Supabase)
    # refuses the key, so every attempt fails while ingesting the message.
    broken = {"DATA_BACKEND": "supabase", "SUPABASE_URL": refusing_store.url,
              "SUPABASE_KEY": "revoked-service-role-key", "SUPABASE_JWT_SECRET": "s" * 40}
    worker = stack.worker("worker", **retry, **broken, EVENT_SWEEP_SECONDS="0.5")
    wait_until(lambda: stack.event(event_id)["attempts"] == 3
               and stack.event(event_id)["status"] == "failed", 45,
               "three failed attempts")
    time.sleep(2.5)  # past any further retry interval: no fourth attempt follows
    worker.stop()
    event = stack.event(event_id)
    assert event["status"] == "failed" and event["attempts"] == 3, event
    assert "Invalid API key" in event["error"]
    assert "no retry left" in worker.log()
    assert stack.replies() == []

    # The configuration is fixed: replay from the CLI (what an operator does).
    listed = stack.flask("events", "list", "--status", "failed")
    assert f"{event_id}\tfacebook\tfailed\tattempts=3" in listed.stdout, listed.stderr
    result = stack.flask("events", "retry", "--id", str(event_id))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"event {event_id}: processed" in result.stdout
    assert stack.event(event_id)["status"] == "processed"
    assert len(stack.replies()) == 1


def _kill_mid_send(stack, server, settings: dict) -> tuple[dict, int]:
    """Deliver a message, let worker-1 start sending the reply (Graph holds the answer), then
    kill -9 worker-1 (its whole process group, as when a container dies)."""
    owner = business(server.base_url, stack.graph)
    stack.graph.queue("/me/messages", Reply(delay=10))  # the first send hangs at Graph
    event_id = _deliver(server, owner)
    first = stack.worker("worker-1", **settings)
    wait_until(lambda: len(stack.replies()) == 1, 45, "worker-1's send to reach Graph")
    first.kill_group(signal.SIGKILL)
    first.wait(10)
    assert stack.event(event_id)["status"] == "processing"
    return owner, event_id


def test_worker_killed_mid_send_is_replaced_and_the_customer_gets_one_reply(make_stack):
    settings = {"AUTOMATION_QUEUE": "rq"}  # the defaults: a 12 s lease, a sweep every 4 s
    stack = make_stack(redis=True)
    server = stack.server("web", **settings).wait_ready()
    owner, event_id = _kill_mid_send(stack, server, settings)
    killed_at = time.monotonic()

    # Another worker's sweep takes the event once its lease has run out, and re-runs it.
    second = stack.worker("worker-2", **settings)
    wait_until(lambda: stack.event(event_id)["status"] == "processed", 45,
               "the interrupted event to be re-run by worker-2")
    print(f"recovered {time.monotonic() - killed_at:.1f} s after the kill")
    assert stack.event(event_id)["attempts"] == 2
    assert "interrupted" in second.log(), second.log()[-2000:]

    # Exactly one reply reached Graph; the interrupted one is not sent again but shown as
    # failed with an unknown outcome, and the hand-off task was not duplicated.
    assert len(stack.replies()) == 1
    [reply] = _outbound(server, owner)
    assert (reply["status"], reply["error"]) == ("failed", "unknown_outcome")
    assert len(_tasks(server, owner)) == 1


def test_event_interrupted_too_often_is_dead_listed_and_replays_without_a_second_reply(
        make_stack):
    settings = {"AUTOMATION_QUEUE": "rq", "EVENT_MAX_ATTEMPTS": "1",
                "EVENT_STALE_SECONDS": "2", "EVENT_SWEEP_SECONDS": "1"}
    stack = make_stack(redis=True)
    server = stack.server("web", **settings).wait_ready()
    owner, event_id = _kill_mid_send(stack, server, settings)

    second = stack.worker("worker-2", **settings)
    wait_until(lambda: stack.event(event_id)["status"] == "dead", 45,
               "worker-2 to find the interrupted event and give up on it")
    assert "interrupted" in stack.event(event_id)["error"]
    second.stop()

    # The operator sees it in the admin API...
    assert stack.flask("create-admin", "--email", "ops@example.com", "--password",
                       "correct horse battery").returncode == 0
    with api(server.base_url) as c:
        token = c.post("/api/auth/login", json={"email": "ops@example.com",
                                                "password": "correct horse battery"}
                       ).json()["access_token"]
        listed = c.get("/api/admin/webhook-events?status=dead",
                       headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200, listed.text
    assert [e["id"] for e in listed.json()["items"]] == [event_id]

    # ... and replays it: processed, still one reply (the interrupted one is not re-sent).
    result = stack.flask("events", "retry", "--id", str(event_id))
    assert result.returncode == 0, result.stderr[-3000:]
    assert stack.event(event_id)["status"] == "processed"
    assert len(stack.replies()) == 1
    [reply] = _outbound(server, owner)
    assert (reply["status"], reply["error"]) == ("failed", "unknown_outcome")
