"""Zendesk in: an agent's public comment on a conversation's ticket reaches the customer once;
signatures (wrong, stale, missing, another account's), notes, the customer's own comments
and tickets Dana did not open change nothing."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.channels.conftest import fb_text, messages, post_webhook
from tests.conftest import auth_header, register
from tests.fakes.graph import Reply
from tests.fakes.zendesk import AGENT_ID
from tests.helpdesk.conftest import comment_event, connect_zendesk, post_zendesk
from tests.helpdesk.test_zendesk import ticketed as ticketed_conversation
from tests.helpers import assert_error


def graph_texts(fake_graph) -> list[str]:
    return [r.json["message"].get("text") for r in fake_graph.requests_to("/me/messages")]


def ticketed(client, business, fake_zendesk) -> tuple[dict, int]:
    conv, _task, ticket_id = ticketed_conversation(client, business, fake_zendesk)
    return conv, ticket_id


def test_agent_public_comment_reaches_the_customer_once(client, zendesk_business, fake_graph,
                                                        fake_zendesk):
    conv, ticket_id = ticketed(client, zendesk_business, fake_zendesk)
    before = graph_texts(fake_graph)
    event = comment_event(ticket_id, "Hi! Your parcel is on its way, tracking ZX81.")
    resp = post_zendesk(client, event)
    assert resp.status_code == 200 and resp.get_json() == {"status": "sent"}
    assert graph_texts(fake_graph)[len(before):] == [
        "Hi! Your parcel is on its way, tracking ZX81."]
    # Zendesk retries (same comment): never twice
    assert post_zendesk(client, event).status_code == 200
    assert len(graph_texts(fake_graph)) == len(before) + 1
    [agent] = [m for m in messages(client, zendesk_business, conv["id"])
               if m["sender_type"] == "agent"]
    assert agent["metadata"]["source"] == "zendesk"
    assert agent["metadata"]["zendesk"]["ticket_id"] == str(ticket_id)
    # it is not copied back onto the ticket as a note (it is already there)
    assert len(fake_zendesk.tickets[ticket_id]["comments"]) == 1


def test_notes_and_the_customers_own_comments_are_not_sent(client, zendesk_business,
                                                           fake_graph, fake_zendesk):
    _conv, ticket_id = ticketed(client, zendesk_business, fake_zendesk)
    requester = fake_zendesk.tickets[ticket_id]["requester_id"]
    before = len(graph_texts(fake_graph))
    for event in (comment_event(ticket_id, "internal: refund?", public=False, comment_id=1),
                  comment_event(ticket_id, "me again", author_id=requester, comment_id=2),
                  comment_event(ticket_id, "by mail", is_staff=False, author_id=5, comment_id=3)):
        resp = post_zendesk(client, event)
        assert resp.status_code == 200 and resp.get_json() == {"status": "ignored"}
    other = dict(comment_event(ticket_id, "x"), type="zen:event-type:ticket.status_changed")
    assert post_zendesk(client, other).get_json() == {"status": "ignored"}
    assert len(graph_texts(fake_graph)) == before


def test_signatures_are_required(client, zendesk_business, fake_graph, fake_zendesk):
    _conv, ticket_id = ticketed(client, zendesk_business, fake_zendesk)
    before = len(graph_texts(fake_graph))
    event = comment_event(ticket_id, "hello")
    assert_error(post_zendesk(client, event, secret="not-the-secret"), 401, "invalid_signature")
    stale = (datetime.now(timezone.utc) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_error(post_zendesk(client, event, ts=stale), 401, "invalid_signature")
    resp = client.post("/webhooks/zendesk", json=event)   # no signature at all
    assert_error(resp, 401, "invalid_signature")
    # the signature covers the body: a changed body does not verify
    import json

    from tests.helpdesk.conftest import zendesk_headers
    raw = json.dumps(event).encode()
    forged = json.dumps(comment_event(ticket_id, "send me your password")).encode()
    resp = client.post("/webhooks/zendesk", data=forged, headers=zendesk_headers(raw))
    assert_error(resp, 401, "invalid_signature")
    # odd headers are a 401, never a 500
    for odd in ({"X-Zendesk-Webhook-Signature": "sïgnature"},
                {"X-Zendesk-Webhook-Signature-Timestamp": "9" * 400},
                {"X-Zendesk-Webhook-Signature-Timestamp": "²"}):
        assert_error(post_zendesk(client, event, headers=odd), 401, "invalid_signature")
    assert_error(client.post("/webhooks/zendesk", data=b"[1]",
                             headers={"Content-Type": "application/json"}), 400, "invalid_json")
    assert len(graph_texts(fake_graph)) == before


def test_without_any_webhook_secret_the_endpoint_is_unavailable(client, business,
                                                                fake_zendesk):
    resp = connect_zendesk(client, business, webhook_secret=None)
    assert resp.status_code == 201
    assert_error(post_zendesk(client, comment_event(1, "x")), 503, "zendesk_not_configured")


def test_another_accounts_secret_cannot_reach_this_customer(app, client, zendesk_business,
                                                            fake_graph, fake_zendesk):
    from tests.channels.conftest import set_plan

    _conv, ticket_id = ticketed(client, zendesk_business, fake_zendesk)
    attacker = register(client, name="Mallory")
    attacker["headers"] = auth_header(attacker)
    set_plan(attacker["user"]["id"], "professional")
    resp = connect_zendesk(client, attacker, subdomain="mallory",
                           webhook_secret="mallory-own-secret-123")
    assert resp.status_code == 201, resp.get_json()
    before = len(graph_texts(fake_graph))
    # signed with the attacker's own (valid) secret, about the victim's ticket number
    resp = post_zendesk(client, comment_event(ticket_id, "click evil.example"),
                        secret="mallory-own-secret-123")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ignored"}
    assert len(graph_texts(fake_graph)) == before


def test_a_ticket_dana_did_not_open_is_ignored(client, zendesk_business, fake_graph):
    before = len(graph_texts(fake_graph))
    resp = post_zendesk(client, comment_event(987654, "hello"))
    assert resp.status_code == 200 and resp.get_json() == {"status": "ignored"}
    assert len(graph_texts(fake_graph)) == before


def test_a_failed_send_is_noted_on_the_ticket(client, zendesk_business, fake_graph,
                                              fake_zendesk):
    _conv, ticket_id = ticketed(client, zendesk_business, fake_zendesk)
    fake_graph.queue("/me/messages", Reply(status=400, body={"error": {
        "message": "(#10) This message is sent outside of allowed window.", "type":
        "OAuthException", "code": 10, "error_subcode": 2018278}}))
    resp = post_zendesk(client, comment_event(ticket_id, "Sorry for the wait!"))
    assert resp.status_code == 200 and resp.get_json() == {"status": "failed"}
    note = fake_zendesk.tickets[ticket_id]["comments"][-1]
    assert note["public"] is False and "could not deliver" in note["body"]
    assert note["author_id"] == AGENT_ID


def test_agent_reply_through_zendesk_end_to_end_with_customer_text_in_ticket(
        client, zendesk_business, fake_graph, fake_zendesk):
    """Customer -> hand-off -> ticket -> customer's follow-up as a comment -> agent's answer."""
    conv, ticket_id = ticketed(client, zendesk_business, fake_zendesk)
    post_webhook(client, "facebook", fb_text("Any news?"))
    assert fake_zendesk.tickets[ticket_id]["comments"][-1]["body"] == "Any news?"
    resp = post_zendesk(client, comment_event(ticket_id, "Yes, it ships today.", comment_id=9))
    assert resp.get_json() == {"status": "sent"}
    assert graph_texts(fake_graph)[-1] == "Yes, it ships today."
    texts = [m["text"] for m in messages(client, zendesk_business, conv["id"])]
    assert texts[-2:] == ["Any news?", "Yes, it ships today."]
