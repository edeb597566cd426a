"""slack_demo.py against the loopback Slack fake: health, a test message, the history."""
from __future__ import annotations

import io

import pytest

import slack_demo
from tests.fakes.slack import BOT_TOKEN, CHANNEL_ID, FakeSlack
from utils.config import Settings


@pytest.fixture
def fake_slack():
    server = FakeSlack().start()
    yield server
    server.stop()


def run(argv, **settings):
    out = io.StringIO()
    code = slack_demo.main(argv, Settings(_env_file=None, **settings), out)
    return code, out.getvalue()


def test_demo_checks_posts_and_prints_history(fake_slack):
    fake_slack.add_message(CHANNEL_ID, "U0HUMAN", "earlier message")
    code, out = run(["--text", "demo ping"], SLACK_BOT_TOKEN=BOT_TOKEN,
                    SLACK_CHANNEL_ID=CHANNEL_ID, SLACK_API_URL=fake_slack.base_url)
    assert code == 0, out
    assert "health: ok" in out and "posted: ts=" in out
    assert out.index("demo ping") < out.index("earlier message")   # newest first
    assert [c.params["text"] for c in fake_slack.calls("chat.postMessage")] == ["demo ping"]


def test_demo_reports_a_refused_token(fake_slack):
    code, out = run([], SLACK_BOT_TOKEN="xoxb-0000-wrong-token", SLACK_CHANNEL_ID=CHANNEL_ID,
                    SLACK_API_URL=fake_slack.base_url)
    assert code == 1 and "invalid_auth" in out
    assert fake_slack.calls("chat.postMessage") == []


def test_demo_without_settings_says_not_configured():
    code, out = run([], SLACK_BOT_TOKEN=None, SLACK_CHANNEL_ID=None)
    assert code == 2 and "not_configured" in out
