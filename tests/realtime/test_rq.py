"""AUTOMATION_QUEUE=rq with real processes: a web instance enqueues, separate `flask worker`
processes process; failing jobs end in RQ's failed registry and are replayable; a worker
killed mid-send is replaced and the customer still gets exactly one reply."""
from __future__ import annotations

import signal

import redis
from rq import Queue
from rq.registry import FailedJobRegistry

from services.rq_queue import QUEUE_NAME, job_id
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


def _queue(redis_url: str) -> Queue:
    return Queue(QUEUE_NAME, connection=redis.Redis.from_url(redis_url))


def _failed_job_ids(redis_url: str) -> list[str]:
    return FailedJobRegistry(queue=_queue(redis_url)).get_job_ids(cleanup=False)


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
    # Answered without processing: stored, queued, nothing sent yet.
    assert stack.event(event_id)["status"] == "received"
    assert _queue(stack.redis_url).job_ids == [job_id(event_id)]
    assert stack.replies() == []

    worker = stack.worker("worker", "--burst")
    assert worker.wait(60) == 0, worker.log()[-3000:]
    assert stack.event(event_id) == {"status": "processed", "attempts": 1, "error": None}
    assert len(stack.replies()) == 1
    [reply] = _outbound(server, owner)
    assert reply["status"] == "sent" and reply["sender_type"] == "system"
    # The worker's notifications reach the web instance's client through Redis.
    client.wait_for("new_message", lambda d: d["message"]["direction"] == "inbound")
    client.wait_for("message_status", lambda d: d.get("message_id") == reply["id"]
                    and d["status"] == "sent")


def test_event_that_keeps_failing_ends_in_the_failed_registry_and_replays(make_stack,
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
    worker = stack.worker("worker", **retry, **broken)  # not --burst: retries are scheduled
    wait_until(lambda: job_id(event_id) in _failed_job_ids(stack.redis_url), 45,
               "the job to land in RQ's FailedJobRegistry")
    worker.stop()
    event = stack.event(event_id)
    assert event["status"] == "failed" and event["attempts"] == 3, event
    assert "Invalid API key" in event["error"]
    assert stack.replies() == []

    # The configuration is fixed: replay from the CLI (what an operator does).
    listed = stack.flask("events", "list", "--status", "failed")
    assert f"{event_id}\tfacebook\tfailed\tattempts=3" in listed.stdout, listed.stderr
    result = stack.flask("events", "retry", "--id", str(event_id))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"event {event_id}: processed" in result.stdout
    assert stack.event(event_id)["status"] == "processed"
    assert len(stack.replies()) == 1
    assert job_id(event_id) not in _failed_job_ids(stack.redis_url)  # replayed: no longer "failed"


def _kill_mid_send(stack, server, settings: dict) -> tuple[dict, int]:
    """Deliver a message, let worker-1 start sending the reply (Graph holds the answer), then
    SIGKILL worker-1 (and its scheduler child, as when a container dies)."""
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
    settings = {"AUTOMATION_QUEUE": "rq", "RQ_HEARTBEAT_SECONDS": "1",
                "RQ_RETRY_INTERVALS": "0,0"}
    stack = make_stack(redis=True)
    server = stack.server("web", **settings).wait_ready()
    owner, event_id = _kill_mid_send(stack, server, settings)

    # A new worker notices the dead one's job within a lease (3 heartbeats) and re-runs it.
    second = stack.worker("worker-2", **settings)
    wait_until(lambda: stack.event(event_id)["status"] == "processed", 45,
               "the abandoned job to be re-run by worker-2")
    assert stack.event(event_id)["attempts"] == 2
    assert "died" in second.log() or "abandon" in second.log().lower(), second.log()[-2000:]

    # Exactly one reply reached Graph; the interrupted one is not sent again but shown as
    # failed with an unknown outcome, and the hand-off task was not duplicated.
    assert len(stack.replies()) == 1
    [reply] = _outbound(server, owner)
    assert (reply["status"], reply["error"]) == ("failed", "unknown_outcome")
    assert len(_tasks(server, owner)) == 1
    assert _failed_job_ids(stack.redis_url) == []


def test_worker_killed_with_no_retry_left_is_failed_and_replays_without_a_second_reply(
        make_stack):
    settings = {"AUTOMATION_QUEUE": "rq", "RQ_HEARTBEAT_SECONDS": "1", "RQ_RETRY_INTERVALS": ""}
    stack = make_stack(redis=True)
    server = stack.server("web", **settings).wait_ready()
    owner, event_id = _kill_mid_send(stack, server, settings)

    second = stack.worker("worker-2", **settings)
    wait_until(lambda: stack.event(event_id)["status"] == "failed", 45,
               "worker-2 to find the abandoned job and fail its event")
    assert "died" in stack.event(event_id)["error"]
    assert job_id(event_id) in _failed_job_ids(stack.redis_url)
    second.stop()

    result = stack.flask("events", "retry", "--id", str(event_id))
    assert result.returncode == 0, result.stderr[-3000:]
    assert stack.event(event_id)["status"] == "processed"
    assert len(stack.replies()) == 1
    [reply] = _outbound(server, owner)
    assert (reply["status"], reply["error"]) == ("failed", "unknown_outcome")
