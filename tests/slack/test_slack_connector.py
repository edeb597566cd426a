"""SlackConnector through the real slack-sdk WebClient against the loopback Slack fake."""
from __future__ import annotations

import hashlib
import hmac
import time
from types import SimpleNamespace

import pytest

from automation.integrations.base import (
    IntegrationCheckFailed,
    IntegrationError,
    Notification,
)
from automation.integrations.business.slack import (
    SlackConfig,
    SlackConnector,
    verify_signature,
)
from tests.fakes.slack import BOT_TOKEN, CHANNEL_ID


def connector(fake, token=BOT_TOKEN, channel=CHANNEL_ID) -> SlackConnector:
    return SlackConnector(SlackConfig(bot_token=token, channel_id=channel),
                          SimpleNamespace(SLACK_API_URL=fake.base_url))


CONV = {"id": "conv-1", "platform": "messenger", "status": "open",
        "contact": {"name": "Ann Lee", "platform_user_id": "psid-1"}}


def test_check_proves_token_and_channel(fake_slack):
    assert "C0TEAM001" in connector(fake_slack).check()
    assert [c.path for c in fake_slack.requests] == ["/api/auth.test", "/api/conversations.history"]


@pytest.mark.parametrize("token, channel, reason", [
    ("xoxb-0000-wrong-token", CHANNEL_ID, "invalid_auth"),
    (BOT_TOKEN, "C0NOTTHERE", "channel_not_found"),
])
def test_check_reports_slacks_reason(fake_slack, token, channel, reason):
    with pytest.raises(IntegrationCheckFailed, match=reason):
        connector(fake_slack, token, channel).check()


def test_check_names_an_uninvited_bot(fake_slack):
    fake_slack.add_workspace("xoxb-9-9-other", "T9", "U9BOT", "B9", [])
    fake_slack.channels[CHANNEL_ID]["members"].discard("U9BOT")
    with pytest.raises(IntegrationCheckFailed, match="not_in_channel.*invite"):
        connector(fake_slack, "xoxb-9-9-other").check()


def test_one_thread_per_conversation_and_messages_follow(fake_slack):
    slack = connector(fake_slack)
    first = slack.notify(Notification(owner_id="u1", kind="new_conversation", text="Hello?",
                                      conversation=CONV, message={"id": "m1"}))
    conv = {**CONV, "integration_refs": {"slack": first}}
    second = slack.notify(Notification(owner_id="u1", kind="customer_message",
                                       text="Are you open today?", conversation=conv,
                                       message={"id": "m2"}))
    assert second["thread_ts"] == first["thread_ts"]
    thread = fake_slack.thread(CHANNEL_ID, first["thread_ts"])
    assert [m["text"] for m in thread[1:]] == ["*Ann Lee:* Hello?",
                                                "*Ann Lee:* Are you open today?"]
    # one top-level post for the conversation, with a reply count of 2
    top = slack.history()["items"]
    assert len(top) == 1 and top[0]["reply_count"] == 2


def test_handoff_updates_the_parent_with_buttons(fake_slack):
    slack = connector(fake_slack)
    refs = slack.notify(Notification(owner_id="u1", kind="new_conversation", text="Hi",
                                     conversation=CONV))
    slack.notify(Notification(owner_id="u1", kind="handoff", text="Wants a refund",
                              conversation={**CONV, "integration_refs": {"slack": refs}},
                              task={"id": "task-1", "status": "open"}, link="http://app/c/1"))
    parent = fake_slack.thread(CHANNEL_ID, refs["thread_ts"])[0]
    actions = [b for b in parent["blocks"] if b["type"] == "actions"][0]["elements"]
    assert [e["action_id"] for e in actions] == ["dana_take", "dana_close", "dana_open"]
    assert "needs a human" in parent["text"]
    assert len(fake_slack.api_calls("chat.update")) == 1


def test_customer_text_cannot_mention_the_channel(fake_slack):
    slack = connector(fake_slack)
    slack.notify(Notification(owner_id="u1", kind="customer_message",
                              text="<!channel> click <http://evil.example|your bank>",
                              conversation=CONV))
    posted = fake_slack.api_calls("chat.postMessage")[-1].body
    assert "<!channel>" not in posted["text"] and "<http" not in posted["text"]
    assert "&lt;!channel&gt;" in posted["blocks"][0]["text"]["text"]


def test_attachments_are_posted_as_links(fake_slack):
    slack = connector(fake_slack)
    slack.notify(Notification(owner_id="u1", kind="customer_message", text="",
                              conversation=CONV, message={"id": "m", "attachments": [
                                  {"type": "image", "url": "https://cdn.example/p.jpg"}]}))
    posted = fake_slack.api_calls("chat.postMessage")[-1].body
    assert posted["attachments"][0]["image_url"] == "https://cdn.example/p.jpg"


def test_rate_limit_carries_retry_after(fake_slack):
    fake_slack.fail("POST /api/chat.postMessage", status=429, retry_after=7)
    with pytest.raises(IntegrationError) as err:
        connector(fake_slack).post("hello")
    assert err.value.retry_after == 7 and not err.value.permanent


def test_server_error_is_temporary_and_bad_token_permanent(fake_slack):
    fake_slack.fail("POST /api/chat.postMessage", status=500)
    with pytest.raises(IntegrationError) as err:
        connector(fake_slack).post("hello")
    assert not err.value.permanent
    with pytest.raises(IntegrationError) as err:
        connector(fake_slack, "xoxb-0000-wrong-token").post("hello")
    assert err.value.permanent


def test_slack_unreachable_is_an_integration_error(fake_slack):
    slack = connector(fake_slack)
    fake_slack.stop()
    with pytest.raises(IntegrationError, match="unreachable"):
        slack.post("hello")


def _sign(secret: str, ts: str, body: bytes) -> str:
    base = b"v0:" + ts.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def test_signature_v0_window():
    body, secret = b'{"type":"event_callback"}', "8f742231b10e8888abcd99yyyzzz85a5"
    now = time.time()
    ts = str(int(now))
    assert verify_signature(secret, body, ts, _sign(secret, ts, body), now=now)
    assert not verify_signature(secret, body + b" ", ts, _sign(secret, ts, body), now=now)
    assert not verify_signature("other-secret-123", body, ts, _sign(secret, ts, body), now=now)
    stale = str(int(now) - 301)
    assert not verify_signature(secret, body, stale, _sign(secret, stale, body), now=now)
    assert not verify_signature(secret, body, "not-a-number", "v0=00", now=now)
    assert not verify_signature(secret, body, None, None, now=now)


def test_a_thread_deleted_in_slack_is_started_anew(fake_slack):
    slack = connector(fake_slack)
    refs = slack.notify(Notification(owner_id="u1", kind="new_conversation", text="Hi",
                                     conversation=CONV))
    fake_slack.channels[CHANNEL_ID]["messages"].clear()      # someone deleted the thread
    again = slack.notify(Notification(owner_id="u1", kind="handoff", text="Refund please",
                                      conversation={**CONV, "integration_refs": {"slack": refs}},
                                      task={"id": "t1", "status": "open"}))
    assert again["thread_ts"] != refs["thread_ts"]
    texts = [m["text"] for m in fake_slack.thread(CHANNEL_ID, again["thread_ts"])]
    assert "needs a human" in texts[0] and "Refund please" in texts[1]
