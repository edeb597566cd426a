"""slack_demo.py against the loopback Slack fake: health, a test message, the history."""
from __future__ import annotations

import io

import slack_demo
from tests.fakes.slack import BOT_TOKEN, CHANNEL_ID
from utils.config import Settings


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
    assert [c.body["text"] for c in fake_slack.api_calls("chat.postMessage")] == ["demo ping"]


def test_demo_reports_a_refused_token(fake_slack):
    code, out = run([], SLACK_BOT_TOKEN="xoxb-0000-wrong-token", SLACK_CHANNEL_ID=CHANNEL_ID,
                    SLACK_API_URL=fake_slack.base_url)
    assert code == 1 and "invalid_auth" in out
    assert fake_slack.api_calls("chat.postMessage") == []


def test_demo_without_settings_says_not_configured():
    code, out = run([], SLACK_BOT_TOKEN=None, SLACK_CHANNEL_ID=None)
    assert code == 2 and "not_configured" in out


def test_demo_with_a_users_stored_integration(app, client, fake_slack, settings_overrides):
    from tests.channels.conftest import set_plan
    from tests.conftest import auth_header, register
    from tests.slack.conftest import connect_slack
    user = register(client)
    user["headers"] = auth_header(user)
    set_plan(user["user"]["id"], "professional")
    assert connect_slack(client, user).status_code == 201
    out = io.StringIO()
    settings = app.config["DANA_SETTINGS"]
    code = slack_demo.main(["--user", user["user"]["email"], "--text", "from the demo"],
                           settings, out)
    assert code == 0, out.getvalue()
    assert fake_slack.api_calls("chat.postMessage")[-1].body["text"] == "from the demo"
    assert "from the demo" in out.getvalue()
    code = slack_demo.main(["--user", "nobody@example.com"], settings, io.StringIO())
    assert code == 2
