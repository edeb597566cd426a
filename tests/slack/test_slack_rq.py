"""AUTOMATION_QUEUE=rq: a Slack event is stored, its id handed to the workers' Redis list like
a Meta delivery's, and a `flask worker` (services/rq_queue.EventWorker) runs it: the person's
reply reaches the customer once, and nothing runs it in the web process.
"""
from __future__ import annotations

import pytest
import redis

from services.rq_queue import READY_KEY, EventWorker, LeasedLocksRedis
from tests.channels.conftest import fb_text, post_webhook
from tests.fakes.slack import CHANNEL_ID
from tests.realtime.conftest import claimed_redis_db, wait_until
from tests.slack.conftest import post_event, reply_event
from tests.slack.test_slack_inbound import PSID, graph_texts


@pytest.fixture
def private_redis(redis_url):
    """A Redis database of this test alone (the machine's Redis is shared)."""
    with claimed_redis_db(redis_url) as url:
        yield url


@pytest.fixture
def settings_overrides(settings_overrides, private_redis):  # noqa: F811 - extends the Slack one
    return {**settings_overrides, "AUTOMATION_QUEUE": "rq", "REDIS_URL": private_redis}


def _worker_runs_what_was_handed_on(app, private_redis: str, monkeypatch) -> None:
    """Wait for the web process's hand-off to push the ids, then a worker runs them all
    (with its own Redis client, as run_worker sets it up).
    """
    client = redis.Redis.from_url(private_redis)
    wait_until(lambda: client.llen(READY_KEY), 10, "an event id on the workers' list")
    leased = LeasedLocksRedis.from_url(private_redis)
    with monkeypatch.context() as patch:
        patch.setitem(app.extensions, "dana_redis", leased)
        EventWorker(app, leased).work(burst=True)
    assert client.llen(READY_KEY) == 0


def test_a_slack_event_is_run_by_a_worker(app, client, slack_business, fake_graph, fake_slack,
                                          private_redis, monkeypatch):
    post_webhook(client, "facebook", fb_text("I want to speak to a human please", psid=PSID))
    _worker_runs_what_was_handed_on(app, private_redis, monkeypatch)
    [parent] = [m for m in fake_slack.channels[CHANNEL_ID]["messages"] if "thread_ts" not in m
                or m["thread_ts"] == m["ts"]]
    resp = post_event(client, reply_event(parent["ts"], "From the worker", event_id="Ev0RQ"))
    assert resp.get_json() == {"status": "received"}
    assert "From the worker" not in graph_texts(fake_graph)  # the web process does not run it
    _worker_runs_what_was_handed_on(app, private_redis, monkeypatch)
    assert graph_texts(fake_graph).count("From the worker") == 1
