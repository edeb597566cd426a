"""Webhook -> ingest -> workflow -> AI/hand-off -> Send API (fake Graph) -> stored outbound."""
from __future__ import annotations

import pytest

from models_db import WebhookEvent, db
from tests.channels.conftest import (
    IG_ID,
    PAGE_ID,
    PHONE_ID,
    account_token,
    add_knowledge,
    conversations,
    fb_text,
    messages,
    mid,
    now_ms,
    post_webhook,
    wa_status,
    wa_text,
)

SHIPPING = ("Shipping. We ship to every country in the European Union. Standard delivery takes "
            "3 to 5 working days and costs 4.90 euros; orders over 50 euros ship free.")


OTHER_DOCS = {
    "Returns": "Returns. You can return any item within 30 days for a full refund; use the "
               "prepaid label in the box.",
    "Opening hours": "Opening hours. Our shop in Oslo is open Monday to Friday from 9 to 17 and "
                     "on Saturdays from 10 to 14.",
    "Payment": "Payment. We accept Visa, Mastercard, PayPal and bank transfer. Invoices are "
               "sent by e-mail.",
}


def stock_knowledge(client, user):
    """A small but realistic knowledge base (retrieval scores need more than one document)."""
    add_knowledge(client, user, "Shipping", SHIPPING)
    for title, content in OTHER_DOCS.items():
        add_knowledge(client, user, title, content)


def _ig_text(text: str, igsid: str = "1122334455667788", mid_: str | None = None) -> dict:
    return fb_text(text, psid=igsid, page=IG_ID, mid_=mid_, obj="instagram")


DELIVERIES = {
    "facebook": (lambda text, m=None: fb_text(text, mid_=m), "/me/messages"),
    "instagram": (lambda text, m=None: _ig_text(text, mid_=m), "/me/messages"),
    "whatsapp": (lambda text, m=None: wa_text(text, wamid=m), f"/{PHONE_ID}/messages"),
}


@pytest.mark.parametrize("platform", ["facebook", "instagram", "whatsapp"])
def test_question_answered_from_knowledge_base(client, business, fake_graph, platform):
    stock_knowledge(client, business)
    build, suffix = DELIVERIES[platform]
    resp = post_webhook(
        client, platform, build("How long does delivery take and what does shipping cost?")
    )
    assert resp.status_code == 200
    [conv] = conversations(client, business)
    assert conv["platform"] == platform
    thread = messages(client, business, conv["id"])
    assert [m["direction"] for m in thread] == ["inbound", "outbound"]
    reply = thread[1]
    assert reply["sender_type"] == "ai" and reply["status"] == "sent"
    assert "3 to 5 working days" in reply["text"]
    [sent] = fake_graph.requests_to(suffix)
    ext = {"facebook": PAGE_ID, "instagram": IG_ID, "whatsapp": PHONE_ID}[platform]
    assert sent.headers["authorization"] == f"Bearer {account_token(platform, ext)}"
    recipient = sent.json.get("to") or sent.json["recipient"]["id"]
    assert recipient == conv["contact"]["platform_user_id"]
    assert reply["platform_message_id"]
    event = db.session.scalars(db.select(WebhookEvent)).one()
    assert event.status == "processed" and event.attempts == 1


@pytest.mark.parametrize("platform", ["facebook", "whatsapp"])
def test_unanswerable_question_is_handed_off_never_silence(client, business, fake_graph, platform):
    build, suffix = DELIVERIES[platform]
    post_webhook(client, platform, build("Can I pay for my wedding cake with goats?"))
    [conv] = conversations(client, business)
    assert conv["ai_enabled"] is False and conv["status"] == "pending"
    thread = messages(client, business, conv["id"])
    assert thread[-1]["sender_type"] == "system" and thread[-1]["status"] == "sent"
    assert "team" in thread[-1]["text"].lower()
    [task] = client.get("/api/tasks", headers=business["headers"]).get_json()["items"]
    assert task["conversation_id"] == conv["id"] and conv["id"] in task["description"]
    assert "goats" in task["description"]
    assert len(fake_graph.requests_to(suffix)) == 1
    # the AI is paused now: the next message gets no automated reply
    post_webhook(client, platform, build("Hello?"))
    assert len(fake_graph.requests_to(suffix)) == 1


def test_same_delivery_three_times_one_message_one_reply(client, business, fake_graph):
    stock_knowledge(client, business)
    payload = fb_text("What does shipping cost?", mid_="m_dup_1")
    for _ in range(3):
        assert post_webhook(client, "facebook", payload).status_code == 200
    # the same message inside a different batch (different bytes) is still one message
    other = fb_text("What does shipping cost?", mid_="m_dup_1")
    other["entry"].append(fb_text("unrelated", page="999")["entry"][0])
    assert post_webhook(client, "facebook", other).status_code == 200
    [conv] = conversations(client, business)
    thread = messages(client, business, conv["id"])
    assert [m["direction"] for m in thread] == ["inbound", "outbound"]
    assert len(fake_graph.requests_to("/me/messages")) == 1


def test_echo_is_stored_and_never_answered(client, business, fake_graph):
    echo = {
        "object": "page",
        "entry": [
            {
                "id": PAGE_ID,
                "time": now_ms(),
                "messaging": [
                    {
                        "sender": {"id": PAGE_ID},
                        "recipient": {"id": "7354923876541234"},
                        "timestamp": now_ms(),
                        "message": {
                            "mid": mid(),
                            "is_echo": True,
                            "app_id": 26390203743090,
                            "text": "Hi! This is Nora from the shop.",
                        },
                    }
                ],
            }
        ],
    }
    post_webhook(client, "facebook", echo)
    [conv] = conversations(client, business)
    [m] = messages(client, business, conv["id"])
    assert (m["direction"], m["sender_type"], m["status"]) == ("outbound", "agent", "sent")
    assert fake_graph.requests == []
    # an echo is not a customer message: it does not open the 24-hour window
    resp = client.post(
        f"/api/conversations/{conv['id']}/messages",
        json={"text": "Hello again"},
        headers=business["headers"],
    )
    assert resp.get_json()["status"] == "failed" and resp.get_json()["error"] == "outside_window"
    assert fake_graph.requests == []


def test_whatsapp_statuses_never_move_backwards(client, business, fake_graph):
    post_webhook(client, "whatsapp", wa_text("hi there"))
    [conv] = conversations(client, business)
    sent = client.post(
        f"/api/conversations/{conv['id']}/messages",
        json={"text": "Hello!"},
        headers=business["headers"],
    ).get_json()
    wamid = sent["platform_message_id"]
    assert sent["status"] == "sent" and wamid

    def status():
        return [m for m in messages(client, business, conv["id"]) if m["id"] == sent["id"]][0]

    post_webhook(client, "whatsapp", wa_status(wamid, "read"))  # read without delivered
    assert status()["status"] == "read"
    post_webhook(client, "whatsapp", wa_status(wamid, "delivered"))  # late: changes nothing
    post_webhook(client, "whatsapp", wa_status(wamid, "sent"))
    assert status()["status"] == "read"
    post_webhook(client, "whatsapp", wa_status("wamid.unknown", "delivered"))  # not ours: fine
    second = client.post(
        f"/api/conversations/{conv['id']}/messages",
        json={"text": "Still there?"},
        headers=business["headers"],
    ).get_json()
    post_webhook(
        client,
        "whatsapp",
        wa_status(
            second["platform_message_id"],
            "failed",
            errors=[
                {
                    "code": 131047,
                    "title": "Re-engagement message",
                    "message": "Re-engagement message",
                    "error_data": {"details": "More than 24 hours have passed"},
                }
            ],
        ),
    )
    failed = [m for m in messages(client, business, conv["id"]) if m["id"] == second["id"]][0]
    assert failed["status"] == "failed" and failed["error"] == "outside_window"
    post_webhook(client, "whatsapp", wa_status(second["platform_message_id"], "delivered"))
    failed = [m for m in messages(client, business, conv["id"]) if m["id"] == second["id"]][0]
    assert failed["status"] == "failed"


def test_messenger_delivery_and_read_watermarks(client, business, fake_graph):
    post_webhook(client, "facebook", fb_text("hi"))
    [conv] = conversations(client, business)
    out = client.post(
        f"/api/conversations/{conv['id']}/messages",
        json={"text": "Hello!"},
        headers=business["headers"],
    ).get_json()
    psid = conv["contact"]["platform_user_id"]

    def receipt(key, body):
        return {
            "object": "page",
            "entry": [
                {
                    "id": PAGE_ID,
                    "time": now_ms(),
                    "messaging": [
                        {
                            "sender": {"id": psid},
                            "recipient": {"id": PAGE_ID},
                            "timestamp": now_ms(),
                            key: body,
                        }
                    ],
                }
            ],
        }

    post_webhook(client, "facebook", receipt("delivery", {"watermark": now_ms(5)}))
    assert [m for m in messages(client, business, conv["id"]) if m["id"] == out["id"]][0][
        "status"
    ] == "delivered"
    post_webhook(client, "facebook", receipt("read", {"watermark": now_ms(5)}))
    assert [m for m in messages(client, business, conv["id"]) if m["id"] == out["id"]][0][
        "status"
    ] == "read"


def test_batch_every_entry_and_item_processed(client, business, fake_graph):
    payload = fb_text("first", psid="111")
    payload["entry"].append(_ig_text("second", igsid="222")["entry"][0])
    payload["entry"][0]["messaging"].append(
        fb_text("third", psid="333")["entry"][0]["messaging"][0]
    )
    payload["entry"][0]["messaging"].append({"sender": {}, "garbage": True})
    assert post_webhook(client, "facebook", payload).status_code == 200
    names = sorted(c["contact"]["platform_user_id"] for c in conversations(client, business))
    assert names == ["111", "333"]  # the Instagram entry arrived on the Messenger webhook: ignored


def test_processing_failure_keeps_event_and_retry_replays(
    client, business, fake_graph, app, monkeypatch
):
    from automation.core import message_processor

    original = message_processor.handle_item
    calls = {"n": 0}

    def flaky(item):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database went away")
        return original(item)

    monkeypatch.setattr(message_processor, "handle_item", flaky)
    resp = post_webhook(client, "facebook", fb_text("Do you ship to Spain?"))
    assert resp.status_code == 200  # Meta always gets its 200 once the event is stored
    event = db.session.scalars(db.select(WebhookEvent)).one()
    assert event.status == "failed" and "database went away" in event.error
    assert conversations(client, business) == []
    result = app.test_cli_runner().invoke(args=["events", "retry"])
    assert result.exit_code == 0, result.output
    assert f"event {event.id}: processed" in result.output
    db.session.expire_all()
    assert db.session.get(WebhookEvent, event.id).status == "processed"
    [conv] = conversations(client, business)
    assert len(messages(client, business, conv["id"])) == 2  # the question and one reply


def test_resolved_conversation_reopens_on_new_message(client, business, fake_graph):
    post_webhook(client, "facebook", fb_text("hi"))
    [conv] = conversations(client, business)
    client.patch(
        f"/api/conversations/{conv['id']}",
        json={"status": "resolved", "ai_enabled": True},
        headers=business["headers"],
    )
    post_webhook(client, "facebook", fb_text("one more thing"))
    [conv] = conversations(client, business)
    assert conv["status"] in ("open", "pending")
    assert conv["unread_count"] == 2


def test_out_of_order_messages_ordered_by_platform_time(client, business, fake_graph):
    post_webhook(client, "facebook", fb_text("second", ts=now_ms(-10)))
    post_webhook(client, "facebook", fb_text("first", ts=now_ms(-20)))
    [conv] = conversations(client, business)
    inbound = [
        m["text"] for m in messages(client, business, conv["id"]) if m["direction"] == "inbound"
    ]
    assert inbound == ["first", "second"]


def test_ai_quota_exhausted_falls_back_to_handoff(client, business, fake_graph, admin):
    stock_knowledge(client, business)
    tier = client.post(
        "/api/subscriptions/tiers",
        headers=admin["headers"],
        json={
            "name": "One reply",
            "price": 1,
            "features": ["ai_replies", "knowledge_base"],
            "platforms": ["facebook"],
            "monthly_ai_replies": 1,
            "platform_accounts": 5,
            "integrations": 0,
            "knowledge_documents": 10,
        },
    ).get_json()
    client.put(
        f"/api/subscriptions/user/{business['user']['id']}",
        json={"tier_id": tier["id"]},
        headers=admin["headers"],
    )
    post_webhook(client, "facebook", fb_text("What does shipping cost?", psid="1"))
    post_webhook(client, "facebook", fb_text("What does shipping cost?", psid="2"))
    by_contact = {c["contact"]["platform_user_id"]: c for c in conversations(client, business)}
    first = messages(client, business, by_contact["1"]["id"])
    second = messages(client, business, by_contact["2"]["id"])
    assert first[-1]["sender_type"] == "ai"
    assert second[-1]["sender_type"] == "system"  # told a person will reply: not silence
    assert by_contact["2"]["ai_enabled"] is False
    tasks = client.get("/api/tasks", headers=business["headers"]).get_json()["items"]
    assert [t["conversation_id"] for t in tasks] == [by_contact["2"]["id"]]
    assert "quota" in tasks[0]["description"]


def test_only_answers_count_against_the_ai_quota(client, business, fake_graph, monkeypatch):
    from automation.core import actions
    from services import entitlements

    uid = business["user"]["id"]
    stock_knowledge(client, business)
    post_webhook(client, "facebook", fb_text("What does shipping cost?", psid="1"))
    assert entitlements.ai_replies_used(uid) == 1        # answered by the AI: counted
    post_webhook(client, "facebook", fb_text("Can I rent a tandem for my wedding?", psid="2"))
    assert messages(client, business, conversations(client, business)[0]["id"])[-1][
        "sender_type"] == "system"                       # handed off: not counted
    assert entitlements.ai_replies_used(uid) == 1

    def broken(_context):
        raise RuntimeError("the AI is down")
    monkeypatch.setattr(actions, "generate_reply", broken)
    post_webhook(client, "facebook", fb_text("What does shipping cost?", psid="3"))
    assert entitlements.ai_replies_used(uid) == 1        # failed (retried later): not counted


def test_admin_lists_inspects_and_replays_failed_events(
    client, business, fake_graph, admin, monkeypatch
):
    from automation.core import message_processor

    original = message_processor.handle_item
    state = {"fail": True}

    def flaky(item):
        if state["fail"]:
            raise RuntimeError("store unavailable")
        return original(item)

    monkeypatch.setattr(message_processor, "handle_item", flaky)
    post_webhook(client, "facebook", fb_text("Do you ship to Spain?"))
    post_webhook(client, "facebook", b"not json")
    h = admin["headers"]
    assert client.get("/api/admin/webhook-events", headers=business["headers"]).status_code == 403
    failed = client.get("/api/admin/webhook-events?status=failed", headers=h).get_json()
    [event] = failed["items"]
    assert "store unavailable" in event["error"] and "raw_body" not in event
    detail = client.get(f"/api/admin/webhook-events/{event['id']}", headers=h).get_json()
    assert "Do you ship to Spain?" in detail["raw_body"]
    state["fail"] = False
    replayed = client.post(f"/api/admin/webhook-events/{event['id']}/retry", headers=h)
    assert replayed.status_code == 200 and replayed.get_json()["status"] == "processed"
    [conv] = conversations(client, business)
    assert len(messages(client, business, conv["id"])) == 2
    again = client.post(f"/api/admin/webhook-events/{event['id']}/retry", headers=h)
    assert again.get_json()["status"] == "processed"
    assert len(messages(client, business, conv["id"])) == 2  # nothing stored or sent twice
    assert len(fake_graph.requests_to("/me/messages")) == 1
    [rejected] = client.get("/api/admin/webhook-events?status=rejected", headers=h).get_json()[
        "items"
    ]
    resp = client.post(f"/api/admin/webhook-events/{rejected['id']}/retry", headers=h)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "event_not_replayable"
    assert client.post("/api/admin/webhook-events/999999/retry", headers=h).status_code == 404
    page = client.get("/api/admin/webhook-events?limit=1", headers=h).get_json()
    rest = client.get(
        f"/api/admin/webhook-events?limit=5&cursor={page['next_cursor']}", headers=h
    ).get_json()
    assert [e["id"] for e in page["items"] + rest["items"]] == sorted(
        [event["id"], rejected["id"]], reverse=True
    )
