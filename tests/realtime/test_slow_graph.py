"""Meta's 5-second rule on a live server: a slow Send API never delays the webhook's 200."""
from __future__ import annotations

import time

from tests.fakes.graph import Reply
from tests.realtime.conftest import QUESTION, business, fb_message, post_webhook, wait_until


def test_webhook_answers_fast_while_graph_is_slow(make_stack, graph):
    stack = make_stack()
    server = stack.server("slow-graph").wait_ready()
    user = business(server.base_url, stack.graph)
    graph.queue("/me/messages", Reply(delay=8.0))  # the reply's Send API call takes 8 s
    started = time.monotonic()
    resp = post_webhook(server.base_url, fb_message(user["page_id"], QUESTION))
    elapsed = time.monotonic() - started
    assert resp.status_code == 200
    assert elapsed < 5.0, f"the webhook waited {elapsed:.1f}s for the automation"
    # ... and the automation still completes: exactly one reply reaches Graph.
    wait_until(lambda: len(stack.replies()) == 1, 30, "the slow reply to reach the fake Graph")
    event_id = resp.json()["event_id"]
    wait_until(
        lambda: stack.event(event_id)["status"] == "processed", 30, "the event to be processed"
    )
    assert stack.event(event_id)["attempts"] == 1
