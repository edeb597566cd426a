"""Scale-out on this machine's Redis: two web instances share one Socket.IO message queue.

A client connected to one instance hears what another instance (or any process holding the
message queue, like an RQ worker or this test) emits for its user.
"""
from __future__ import annotations

from tests.realtime.conftest import (
    QUESTION,
    business,
    emitter,
    fb_message,
    post_webhook,
    wait_subscribed,
)
from utils.realtime import user_room


def test_event_emitted_by_one_instance_reaches_a_client_of_the_other(make_stack, listeners):
    stack = make_stack(redis=True)
    one, two = stack.server("web-1"), stack.server("web-2")
    one.wait_ready(), two.wait_ready()
    owner = business(one.base_url, stack.graph)
    client = listeners(two.base_url, owner["access_token"]).connect()  # on instance 2
    wait_subscribed(stack.redis_url, client, owner["user"]["id"])

    delivery = fb_message(owner["page_id"], QUESTION)
    assert post_webhook(one.base_url, delivery).status_code == 200  # handled by instance 1

    mid = delivery["entry"][0]["messaging"][0]["message"]["mid"]
    got = client.wait_for("new_message", lambda d: d["message"]["platform_message_id"] == mid)
    assert got["message"]["direction"] == "inbound" and got["message"]["text"] == QUESTION
    # ... and the rest of what instance 1's automation did (hand-off notice sent).
    client.wait_for("message_status", lambda d: d.get("status") == "sent")


def test_any_process_with_the_queue_can_emit(make_stack, listeners):
    stack = make_stack(redis=True)
    server = stack.server("web").wait_ready()
    owner = business(server.base_url, stack.graph)
    other = business(server.base_url, stack.graph)
    mine = listeners(server.base_url, owner["access_token"]).connect()
    theirs = listeners(server.base_url, other["access_token"]).connect()

    wait_subscribed(stack.redis_url, mine, owner["user"]["id"])
    # A write-only emitter, as an external process would hold it (no Flask app, no server).
    emitter(stack.redis_url).emit("task_created", {"id": "t-1", "title": "Call back"},
                 to=user_room(owner["user"]["id"]))
    assert mine.wait_for("task_created") == {"id": "t-1", "title": "Call back"}
    assert "task_created" not in theirs.names()
