"""Slack in: the round trip customer -> hand-off -> Slack thread -> a person's reply -> customer,
signatures (bad, stale, replayed), Slack's retries, bot messages, Slack down, buttons."""
from __future__ import annotations

import json
import time

import pytest

from tests.channels.conftest import conversations, fb_text, messages, post_webhook
from tests.fakes.slack import BOT_ID, BOT_USER_ID, CHANNEL_ID
from tests.helpers import assert_error
from tests.slack.conftest import (
    SERVER_SECRET,
    block_action,
    connect_slack,
    post_event,
    post_interaction,
    reply_event,
    slack_headers,
)

PSID = "7354923876541234"


def graph_texts(fake_graph) -> list[str]:
    return [r.json["message"].get("text") for r in fake_graph.requests_to("/me/messages")]


def handed_off_thread(client, fake_slack, text="I want to speak to a human please") -> str:
    """A customer asks for a human on Messenger; returns the conversation's Slack thread ts."""
    post_webhook(client, "facebook", fb_text(text, psid=PSID))
    parents = [m for m in fake_slack.channels[CHANNEL_ID]["messages"] if "thread_ts" not in m
               or m["thread_ts"] == m["ts"]]
    assert len(parents) == 1, parents
    return parents[0]["ts"]


def test_url_verification(client, slack_business):
    payload = {"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
               "type": "url_verification"}
    resp = post_event(client, payload)
    assert resp.status_code == 200
    assert resp.get_json() == {"challenge": payload["challenge"]}
    # also with the server's secret (an app configured through SLACK_SIGNING_SECRET)
    assert post_event(client, payload, secret=SERVER_SECRET).get_json()["challenge"]
    assert_error(post_event(client, payload, secret="wrong0secret0000"), 401, "invalid_signature")


def test_full_round_trip_handoff_to_slack_and_back(client, slack_business, fake_graph,
                                                   fake_slack):
    thread_ts = handed_off_thread(client, fake_slack)
    thread = fake_slack.thread(CHANNEL_ID, thread_ts)
    parent = thread[0]
    assert "needs a human" in parent["text"]
    assert [e["action_id"] for e in parent["blocks"][1]["elements"]][:2] == ["dana_take",
                                                                              "dana_close"]
    assert any("I want to speak to a human please" in m["text"] for m in thread[1:])
    assert any("A human is needed" in m["text"] for m in thread[1:])
    sent_before = graph_texts(fake_graph)   # the hand-off notice to the customer
    assert len(sent_before) == 1

    resp = post_event(client, reply_event(thread_ts, "Hi, Sam here &amp; happy to help <@U0BOSS>!",
                                          event_id="Ev0ROUNDTRIP"))
    assert resp.status_code == 200 and resp.get_json() == {"status": "received"}
    texts = graph_texts(fake_graph)
    assert texts[len(sent_before):] == ["Hi, Sam here & happy to help @U0BOSS!"]
    assert fake_graph.requests_to("/me/messages")[-1].json["recipient"] == {"id": PSID}
    [conv] = conversations(client, slack_business)
    [agent] = [m for m in messages(client, slack_business, conv["id"])
               if m["sender_type"] == "agent" and not m["is_note"]]
    assert agent["status"] == "sent" and agent["metadata"]["source"] == "slack"
    assert agent["metadata"]["slack"]["user"] == "U0AGENT1"
    assert conv["ai_enabled"] is False
    posted = [m["text"] for m in fake_slack.thread(CHANNEL_ID, thread_ts)]
    assert any(t.startswith("_Dana replied:_") for t in posted)   # the hand-off notice
    assert not any("Sam here" in t for t in posted)   # the person's own reply: not echoed


def test_replies_from_the_inbox_follow_in_the_thread(client, slack_business, fake_graph,
                                                     fake_slack):
    thread_ts = handed_off_thread(client, fake_slack)
    [conv] = conversations(client, slack_business)
    resp = client.post(f"/api/conversations/{conv['id']}/messages", json={"text": "On my way"},
                       headers=slack_business["headers"])
    resp.close()
    assert resp.status_code == 201
    last = fake_slack.thread(CHANNEL_ID, thread_ts)[-1]
    assert last["text"] == "_Agent (in Dana) replied:_ On my way"


def test_slack_retry_and_replay_send_once(client, slack_business, fake_graph, fake_slack):
    thread_ts = handed_off_thread(client, fake_slack)
    event = reply_event(thread_ts, "Once only", event_id="Ev0RETRY")
    post_event(client, event)
    # Slack's retry: same event_id, new timestamp and signature
    retry = post_event(client, event, headers={"X-Slack-Retry-Num": "1",
                                               "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status_code == 200 and retry.get_json() == {"status": "duplicate"}
    # an attacker replaying the exact signed request within the window
    raw = json.dumps(event).encode()
    headers = {"Content-Type": "application/json", **slack_headers(raw)}
    for _ in range(2):
        client.post("/webhooks/slack/events", data=raw, headers=headers).close()
    assert graph_texts(fake_graph).count("Once only") == 1


@pytest.mark.parametrize("case", ["missing", "wrong_secret", "tampered", "stale", "future"])
def test_bad_signatures_are_refused(client, slack_business, fake_graph, fake_slack, case):
    thread_ts = handed_off_thread(client, fake_slack)
    event = reply_event(thread_ts, "forged", event_id=f"Ev0BAD{case}")
    raw = json.dumps(event).encode()
    headers = {"Content-Type": "application/json"}
    if case == "wrong_secret":
        headers.update(slack_headers(raw, secret="attacker0secret0"))
    elif case == "tampered":
        headers.update(slack_headers(raw))
        raw = raw.replace(b"forged", b"FORGED")
    elif case == "stale":
        headers.update(slack_headers(raw, ts=int(time.time()) - 310))
    elif case == "future":
        # 310 s, not 301: the stamp is in whole seconds and the server's clock has moved on
        # when it checks, so a stamp 301 s ahead can already be inside the 300 s window
        headers.update(slack_headers(raw, ts=int(time.time()) + 310))
    resp = client.post("/webhooks/slack/events", data=raw, headers=headers)
    resp.close()
    assert_error(resp, 401, "invalid_signature")
    assert "forged" not in [t.lower() for t in graph_texts(fake_graph)]
    # the refused request did not burn the event id: the genuine delivery still works
    assert post_event(client, event).get_json() == {"status": "received"}


def test_server_secret_cannot_act_for_a_workspace_with_its_own(client, slack_business,
                                                                fake_graph, fake_slack):
    thread_ts = handed_off_thread(client, fake_slack)
    resp = post_event(client, reply_event(thread_ts, "via the wrong app", event_id="Ev0SRV"),
                      secret=SERVER_SECRET)
    assert resp.status_code == 200
    assert "via the wrong app" not in graph_texts(fake_graph)


def test_bots_and_dana_itself_are_ignored(client, slack_business, fake_graph, fake_slack):
    thread_ts = handed_off_thread(client, fake_slack)
    before = len(graph_texts(fake_graph))
    post_event(client, reply_event(thread_ts, "our own post", user=BOT_USER_ID, bot_id=BOT_ID,
                                   event_id="Ev0BOT1"))
    post_event(client, reply_event(thread_ts, "edited", subtype="message_changed",
                                   event_id="Ev0BOT2"))
    post_event(client, reply_event(None, "top-level chatter", event_id="Ev0BOT3"))
    assert len(graph_texts(fake_graph)) == before


def test_reply_in_a_thread_of_no_conversation_is_ignored(client, slack_business, fake_graph):
    resp = post_event(client, reply_event("1700000000.000100", "hello?", event_id="Ev0NONE"))
    assert resp.status_code == 200 and fake_graph.requests == []


def test_slack_down_the_customer_still_gets_the_reply(app, client, slack_business, fake_graph,
                                                      fake_slack):
    from utils.realtime import socketio
    sock = socketio.test_client(app, auth={"token": slack_business["access_token"]})
    fake_slack.fail("*", status=500, times=50)
    post_webhook(client, "facebook", fb_text("I want to speak to a human please", psid=PSID))
    assert len(graph_texts(fake_graph)) == 1           # the customer was answered
    integration = client.get("/api/integrations/slack",
                             headers=slack_business["headers"]).get_json()
    assert integration["status"] == "error" and "internal_error" in integration["last_error"]
    errors = [e["args"][0] for e in sock.get_received() if e["name"] == "integration_error"]
    assert errors and errors[0]["type"] == "slack"
    sock.disconnect()


def test_rate_limited_slack_is_retried_after_retry_after(client, slack_business, fake_graph,
                                                         fake_slack):
    fake_slack.fail("POST /api/chat.postMessage", status=429, retry_after=0)
    thread_ts = handed_off_thread(client, fake_slack)
    assert thread_ts
    assert client.get("/api/integrations/slack",
                      headers=slack_business["headers"]).get_json()["status"] == "active"


def test_take_and_close_buttons(client, slack_business, fake_slack):
    thread_ts = handed_off_thread(client, fake_slack)
    parent = fake_slack.thread(CHANNEL_ID, thread_ts)[0]
    take = parent["blocks"][1]["elements"][0]
    close = parent["blocks"][1]["elements"][1]
    resp = post_interaction(client, block_action("dana_take", json.loads(take["value"]),
                                                 thread_ts=thread_ts, message_ts=thread_ts))
    assert resp.status_code == 200
    [task] = client.get("/api/tasks", headers=slack_business["headers"]).get_json()["items"]
    assert task["status"] == "in_progress"
    assert "<@U0AGENT1>" in fake_slack.thread(CHANNEL_ID, thread_ts)[0]["blocks"][0]["text"]["text"]
    post_interaction(client, block_action("dana_close", json.loads(close["value"]),
                                          thread_ts=thread_ts, message_ts=thread_ts,
                                          trigger_id="trig-2"))
    [task] = client.get("/api/tasks", headers=slack_business["headers"]).get_json()["items"]
    assert task["status"] == "done"
    [conv] = conversations(client, slack_business)
    assert conv["status"] == "resolved"


def test_interaction_signed_badly_or_for_another_conversation_does_nothing(
        client, slack_business, fake_slack):
    thread_ts = handed_off_thread(client, fake_slack)
    take = fake_slack.thread(CHANNEL_ID, thread_ts)[0]["blocks"][1]["elements"][0]
    value = json.loads(take["value"])
    assert_error(post_interaction(client, block_action("dana_take", value, thread_ts=thread_ts,
                                                       message_ts=thread_ts),
                                  secret="attacker0secret0"), 401, "invalid_signature")
    # a forged value pointing at another conversation's task, on this thread
    post_interaction(client, block_action("dana_take", {**value, "conversation_id": "other"},
                                          thread_ts=thread_ts, message_ts=thread_ts,
                                          trigger_id="trig-9"))
    [task] = client.get("/api/tasks", headers=slack_business["headers"]).get_json()["items"]
    assert task["status"] == "open"


def _draft_workflow(client, user):
    resp = client.post("/api/workflows", headers=user["headers"], json={
        "name": "Drafts", "position": 1, "definition": {
            "trigger": {"type": "message_received"}, "conditions": [],
            "actions": [{"type": "ai_reply", "draft_for_approval": True}]}})
    assert resp.status_code == 201, resp.get_json()


def _knowledge(client, user):
    resp = client.post("/api/knowledge", headers=user["headers"], json={
        "title": "Opening hours",
        "content": "Opening hours. We are open Monday to Friday from 9 am to 6 pm."})
    assert resp.status_code == 201


@pytest.mark.parametrize("edited", [None, "We open at 9, see you soon!"])
def test_ai_draft_is_approved_in_slack_then_sent_once(client, slack_business, fake_graph,
                                                      fake_slack, edited):
    _knowledge(client, slack_business)
    _draft_workflow(client, slack_business)
    post_webhook(client, "facebook", fb_text("What are your opening hours?", psid=PSID))
    assert graph_texts(fake_graph) == []                 # nothing sent before approval
    drafts = [m for m in fake_slack.channels[CHANNEL_ID]["messages"]
              if any(b.get("block_id") == "dana_draft" for b in m.get("blocks", []))]
    assert len(drafts) == 1, [m["text"] for m in fake_slack.channels[CHANNEL_ID]["messages"]]
    draft = drafts[0]
    initial = next(b for b in draft["blocks"] if b["type"] == "input")["element"]["initial_value"]
    approve = [b for b in draft["blocks"] if b["type"] == "actions"][0]["elements"]
    action_id = "dana_send_edited" if edited else "dana_approve"
    button = next(e for e in approve if e["action_id"] == action_id)
    state = {"dana_draft": {"dana_draft_text": {"type": "plain_text_input", "value": edited}}}
    for trigger in ("t-1", "t-2"):                        # a double click
        post_interaction(client, block_action(action_id, json.loads(button["value"]),
                                              thread_ts=draft["thread_ts"],
                                              message_ts=draft["ts"], trigger_id=trigger,
                                              state=state if edited else None))
    texts = graph_texts(fake_graph)
    assert len(texts) == 1
    if edited:
        assert texts == [edited]
    else:
        assert texts == [initial]
    updated = next(m for m in fake_slack.channels[CHANNEL_ID]["messages"] if m["ts"] == draft["ts"])
    assert updated["text"].startswith("Sent by <@U0AGENT1>")


def test_draft_without_slack_hands_off(client, business, fake_graph):
    _knowledge(client, business)
    _draft_workflow(client, business)
    post_webhook(client, "facebook", fb_text("What are your opening hours?", psid=PSID))
    [task] = client.get("/api/tasks", headers=business["headers"]).get_json()["items"]
    assert "draft needs approval" in task["description"]


def test_deleted_integration_stops_thread_replies(client, slack_business, fake_graph, fake_slack):
    thread_ts = handed_off_thread(client, fake_slack)
    assert client.delete("/api/integrations/slack",
                         headers=slack_business["headers"]).status_code == 204
    post_event(client, reply_event(thread_ts, "after removal", event_id="Ev0DEL"),
               secret=SERVER_SECRET)
    assert "after removal" not in graph_texts(fake_graph)


def test_workspace_without_own_secret_uses_the_server_secret(client, business, fake_graph,
                                                              fake_slack):
    assert connect_slack(client, business, signing_secret=None).status_code == 201
    thread_ts = handed_off_thread(client, fake_slack)
    post_event(client, reply_event(thread_ts, "server app", event_id="Ev0SRV2"),
               secret=SERVER_SECRET)
    assert "server app" in graph_texts(fake_graph)


def test_undeliverable_reply_is_reported_in_the_thread(client, slack_business, fake_graph,
                                                       fake_slack):
    from tests.fakes.graph import Reply
    thread_ts = handed_off_thread(client, fake_slack)
    fake_graph.queue("/me/messages", Reply.error(551, status=400))
    post_event(client, reply_event(thread_ts, "Are you there?", event_id="Ev0UNAV"))
    last = fake_slack.thread(CHANNEL_ID, thread_ts)[-1]
    assert last["text"].startswith(":warning: Not delivered to the customer")
    [conv] = conversations(client, slack_business)
    [agent] = [m for m in messages(client, slack_business, conv["id"])
               if m["sender_type"] == "agent" and not m["is_note"]]
    assert agent["status"] == "failed"


def test_only_handoffs_when_new_conversations_are_not_posted(client, business, fake_graph,
                                                            fake_slack):
    assert connect_slack(client, business, post_new_conversations=False).status_code == 201
    post_webhook(client, "facebook", fb_text("Hello there", psid="111"))
    assert fake_slack.api_calls("chat.postMessage") == []
    thread_ts = handed_off_thread(client, fake_slack)
    texts = [m["text"] for m in fake_slack.thread(CHANNEL_ID, thread_ts)]
    assert "needs a human" in texts[0] and any("A human is needed" in t for t in texts)
    # the customer's next message follows in that thread
    post_webhook(client, "facebook", fb_text("Still waiting", psid=PSID))
    assert "Still waiting" in fake_slack.thread(CHANNEL_ID, thread_ts)[-1]["text"]
