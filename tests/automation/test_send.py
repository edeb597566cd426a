"""Send API: real connectors + httpx against the loopback fake Graph (tests/fakes/graph.py).

Paths are asserted by suffix (`/me/messages`, `/{phone_number_id}/messages`), never by
version. Error classification is proven by code: several cases deliberately answer with an
HTTP status that disagrees with the Graph error code.
"""
from __future__ import annotations

import pytest

from automation.platforms.base import AccountCredentials, GraphConfig, OutboundMessage, SendError
from automation.platforms.common import utf16_len
from automation.platforms.facebook import FacebookConnector
from automation.platforms.instagram import InstagramConnector
from automation.platforms.whatsapp import WhatsAppConnector
from tests.automation.payloads import IG_ID, IGSID, PAGE_ID, PHONE_NUMBER_ID, PSID, WA_ID
from tests.fakes.graph import Reply, graph_error, sample

FB_PATH = "/me/messages"
WA_PATH = f"/{PHONE_NUMBER_ID}/messages"
PAGE = AccountCredentials(PAGE_ID, "page-token-abc")
IG = AccountCredentials(IG_ID, "ig-token-def")
PHONE = AccountCredentials(PHONE_NUMBER_ID, "wa-token-ghi")


@pytest.fixture
def fb(graph):
    with FacebookConnector(graph) as connector:
        yield connector


@pytest.fixture
def ig(graph):
    with InstagramConnector(graph) as connector:
        yield connector


@pytest.fixture
def wa(graph):
    with WhatsAppConnector(graph) as connector:
        yield connector


def send_fb(fb, message: OutboundMessage):
    return fb.send(PAGE, PSID, message)


def send_wa(wa, message: OutboundMessage):
    return wa.send(PHONE, WA_ID, message)


def long_text(
    paragraphs: int, sentence: str = "This sentence is exactly fifty characters long ok. "
) -> str:
    return "\n\n".join((sentence * 12).strip() for _ in range(paragraphs))  # 611-char paragraphs


# ============================================================================ Messenger / Instagram


def test_messenger_text_request_shape(fb, fake_graph):
    result = send_fb(fb, OutboundMessage(text="Hello 👋"))
    [req] = fake_graph.requests
    assert req.method == "POST" and req.path.endswith(FB_PATH)
    assert req.headers["authorization"] == "Bearer page-token-abc"
    assert req.headers["content-type"].startswith("application/json")
    assert req.json == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Hello 👋"},
    }
    assert result.platform_message_id.startswith("m_fake")
    assert result.raw == {"recipient_id": PSID, "message_id": result.platform_message_id}


def test_messenger_success_sample_shape_is_read(fb, fake_graph):
    fake_graph.queue(FB_PATH, Reply(body=sample("sendapi_messenger_success.json")))
    result = send_fb(fb, OutboundMessage(text="hi"))
    assert result.platform_message_id == sample("sendapi_messenger_success.json")["message_id"]


def test_messenger_tag_and_metadata(fb, fake_graph):
    send_fb(fb, OutboundMessage(text="Back to you", tag="HUMAN_AGENT", metadata="dana:42"))
    body = fake_graph.requests[0].json
    assert body["messaging_type"] == "MESSAGE_TAG" and body["tag"] == "HUMAN_AGENT"
    assert body["message"] == {"text": "Back to you", "metadata": "dana:42"}


def test_messenger_quick_replies(fb, fake_graph):
    send_fb(
        fb,
        OutboundMessage(
            text="Which size?",
            quick_replies=[{"title": "Small", "payload": "SIZE_S"}, {"title": "Large"}],
        ),
    )
    assert fake_graph.requests[0].json["message"] == {
        "text": "Which size?",
        "quick_replies": [
            {"content_type": "text", "title": "Small", "payload": "SIZE_S"},
            {"content_type": "text", "title": "Large", "payload": "Large"},
        ],
    }


def test_messenger_buttons_render_a_button_template(fb, fake_graph):
    send_fb(
        fb,
        OutboundMessage(
            text="Your order",
            buttons=[
                {"title": "Track", "payload": "TRACK:1"},
                {"title": "Website", "url": "https://shop.example"},
            ],
        ),
    )
    assert fake_graph.requests[0].json["message"] == {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "button",
                "text": "Your order",
                "buttons": [
                    {"type": "postback", "title": "Track", "payload": "TRACK:1"},
                    {"type": "web_url", "url": "https://shop.example", "title": "Website"},
                ],
            },
        }
    }


def test_messenger_media_then_text_with_quick_replies_on_the_last_part(fb, fake_graph):
    result = send_fb(
        fb,
        OutboundMessage(
            text="Here it is",
            media={"type": "image", "url": "https://x/p.jpg"},
            quick_replies=[{"title": "Thanks", "payload": "THX"}],
        ),
    )
    first, second = (r.json["message"] for r in fake_graph.requests)
    assert first == {
        "attachment": {"type": "image", "payload": {"url": "https://x/p.jpg", "is_reusable": True}}
    }
    assert second["text"] == "Here it is" and second["quick_replies"][0]["payload"] == "THX"
    assert (
        result.raw["message_ids"][-1] == result.platform_message_id
        and len(result.raw["message_ids"]) == 2
    )


def test_messenger_media_only(fb, fake_graph):
    send_fb(fb, OutboundMessage(media={"type": "file", "url": "https://x/menu.pdf"}))
    assert fake_graph.requests[0].json["message"]["attachment"] == {
        "type": "file",
        "payload": {"url": "https://x/menu.pdf", "is_reusable": True},
    }


def test_messenger_long_text_is_split_on_paragraphs_and_returns_the_last_id(fb, fake_graph):
    text = long_text(7)  # ~4300 chars
    result = send_fb(
        fb, OutboundMessage(text=text, quick_replies=[{"title": "OK", "payload": "OK"}])
    )
    parts = [r.json["message"] for r in fake_graph.requests]
    assert len(parts) == 3
    assert all(len(p["text"]) <= 2000 for p in parts)
    # cut on paragraph breaks, nothing lost
    assert "\n\n".join(p["text"] for p in parts) == text
    assert "quick_replies" not in parts[0] and "quick_replies" in parts[-1]
    assert result.platform_message_id == result.raw["message_ids"][-1]
    assert result.raw["message_id"] == result.platform_message_id


def test_messenger_split_counts_utf16_units(fb, fake_graph):
    send_fb(fb, OutboundMessage(text="😀" * 1500))  # 1500 code points, 3000 UTF-16 units
    parts = [r.json["message"]["text"] for r in fake_graph.requests]
    assert len(parts) == 2 and all(utf16_len(p) <= 2000 for p in parts)
    assert "".join(parts) == "😀" * 1500


def test_messenger_split_on_sentences_when_there_are_no_paragraphs(fb, fake_graph):
    text = "Short sentence number one. " * 100  # 2700 chars, one paragraph
    send_fb(fb, OutboundMessage(text=text.strip()))
    parts = [r.json["message"]["text"] for r in fake_graph.requests]
    assert len(parts) == 2 and parts[0].endswith(".")
    assert " ".join(parts) == text.strip()


def test_instagram_uses_me_messages_and_a_1000_char_limit(ig, fake_graph):
    text = "Una frase con acentos: ¿qué tal? " * 70  # ~2300 chars
    result = ig.send(IG, IGSID, OutboundMessage(text=text.strip()))
    assert all(r.path.endswith(FB_PATH) for r in fake_graph.requests)
    assert fake_graph.requests[0].headers["authorization"] == "Bearer ig-token-def"
    parts = [r.json["message"]["text"] for r in fake_graph.requests]
    assert len(parts) == 3 and all(len(p) <= 1000 for p in parts)
    assert fake_graph.requests[0].json["recipient"] == {"id": IGSID}
    assert result.platform_message_id == result.raw["message_ids"][-1]


@pytest.mark.parametrize(
    "message",
    [
        OutboundMessage(),
        OutboundMessage(text=""),
        OutboundMessage(buttons=[{"title": "x", "payload": "y"}]),
    ],
)
def test_messenger_nothing_sendable_is_rejected_without_a_request(fb, fake_graph, message):
    with pytest.raises(SendError) as err:
        send_fb(fb, message)
    assert err.value.code == "invalid_request" and not err.value.retryable
    assert fake_graph.requests == []


# ============================================================================ WhatsApp


def test_whatsapp_text_request_shape(wa, fake_graph):
    result = send_wa(wa, OutboundMessage(text="Hola 👋 https://shop.example"))
    [req] = fake_graph.requests
    assert req.path.endswith(WA_PATH)
    assert req.headers["authorization"] == "Bearer wa-token-ghi"
    assert req.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": WA_ID,
        "type": "text",
        "text": {"preview_url": False, "body": "Hola 👋 https://shop.example"},
    }
    assert result.platform_message_id == result.raw["messages"][0]["id"]


def test_whatsapp_success_sample_shape_is_read(wa, fake_graph):
    fake_graph.queue(WA_PATH, Reply(body=sample("sendapi_whatsapp_success.json")))
    assert (
        send_wa(wa, OutboundMessage(text="x")).platform_message_id
        == "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
    )


def test_whatsapp_reply_to_sets_context(wa, fake_graph):
    send_wa(wa, OutboundMessage(text="Yes!", reply_to="wamid.ORIG"))
    assert fake_graph.requests[0].json["context"] == {"message_id": "wamid.ORIG"}


def test_whatsapp_reply_buttons_from_quick_replies_and_buttons(wa, fake_graph):
    send_wa(
        wa,
        OutboundMessage(
            text="Confirm your order?",
            quick_replies=[{"title": "Yes", "payload": "YES"}],
            buttons=[{"title": "No, cancel it please", "payload": "NO"}],
        ),
    )
    body = fake_graph.requests[0].json
    assert body["type"] == "interactive"
    assert body["interactive"] == {
        "type": "button",
        "body": {"text": "Confirm your order?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "YES", "title": "Yes"}},
                {"type": "reply", "reply": {"id": "NO", "title": "No, cancel it please"}},
            ]
        },
    }


def test_whatsapp_more_than_three_options_become_a_list(wa, fake_graph):
    options = [{"title": f"Size {s}", "payload": f"SIZE_{s}"} for s in "SMLX"]
    send_wa(wa, OutboundMessage(text="Pick a size", quick_replies=options))
    interactive = fake_graph.requests[0].json["interactive"]
    assert interactive["type"] == "list"
    assert interactive["action"]["sections"][0]["rows"][3] == {"id": "SIZE_X", "title": "Size X"}


def test_whatsapp_url_buttons_are_appended_as_links(wa, fake_graph):
    send_wa(
        wa, OutboundMessage(text="Docs:", buttons=[{"title": "Manual", "url": "https://x/manual"}])
    )
    body = fake_graph.requests[0].json
    assert body["type"] == "text" and body["text"]["body"] == "Docs:\n\nManual: https://x/manual"


def test_whatsapp_media_by_link_with_caption(wa, fake_graph):
    send_wa(
        wa, OutboundMessage(text="Blue one", media={"type": "image", "url": "https://x/blue.jpg"})
    )
    [req] = fake_graph.requests
    assert req.json["type"] == "image"
    assert req.json["image"] == {"link": "https://x/blue.jpg", "caption": "Blue one"}


@pytest.mark.parametrize("kind,wa_kind", [("video", "video"), ("file", "document")])
def test_whatsapp_media_types(wa, fake_graph, kind, wa_kind):
    send_wa(wa, OutboundMessage(media={"type": kind, "url": f"https://x/{kind}"}))
    assert fake_graph.requests[0].json[wa_kind] == {"link": f"https://x/{kind}"}


def test_whatsapp_audio_cannot_carry_a_caption(wa, fake_graph):
    send_wa(
        wa,
        OutboundMessage(
            text="Listen", media={"type": "audio", "url": "https://x/a.ogg"}, reply_to="wamid.Q"
        ),
    )
    first, second = (r.json for r in fake_graph.requests)
    assert first["audio"] == {"link": "https://x/a.ogg"} and first["context"] == {
        "message_id": "wamid.Q"
    }
    assert second["text"]["body"] == "Listen" and "context" not in second


def test_whatsapp_long_text_is_split_at_4096(wa, fake_graph):
    text = long_text(15)  # ~9200 chars
    result = send_wa(wa, OutboundMessage(text=text))
    bodies = [r.json["text"]["body"] for r in fake_graph.requests]
    assert len(bodies) == 3 and all(len(b) <= 4096 for b in bodies)
    assert "\n\n".join(bodies) == text
    assert result.platform_message_id == result.raw["message_ids"][-1]


# ============================================================================ error mapping


def test_messenger_outside_window_sample_is_not_retried(fb, fake_graph):
    fake_graph.queue(
        FB_PATH, Reply(status=400, body=sample("sendapi_messenger_error_outside_window.json"))
    )
    with pytest.raises(SendError) as err:
        send_fb(fb, OutboundMessage(text="late"))
    assert (err.value.code, err.value.retryable) == ("outside_window", False)
    assert (err.value.graph_code, err.value.graph_subcode, err.value.http_status) == (
        10,
        2018278,
        400,
    )
    assert len(fake_graph.requests) == 1


@pytest.mark.parametrize(
    "body", [graph_error(10, "outside window"), graph_error(200, "policy", subcode=2018278)]
)
def test_messenger_code_10_or_subcode_2018278_is_outside_window(ig, fake_graph, body):
    fake_graph.queue(FB_PATH, Reply(status=403, body=body))
    with pytest.raises(SendError) as err:
        ig.send(IG, IGSID, OutboundMessage(text="late"))
    assert err.value.code == "outside_window" and len(fake_graph.requests) == 1


def test_whatsapp_131047_sample_is_outside_window(wa, fake_graph):
    fake_graph.queue(
        WA_PATH, Reply(status=400, body=sample("sendapi_whatsapp_error_reengagement.json"))
    )
    with pytest.raises(SendError) as err:
        send_wa(wa, OutboundMessage(text="late"))
    assert (err.value.code, err.value.retryable, err.value.graph_code) == (
        "outside_window",
        False,
        131047,
    )
    assert "24 hours" in err.value.message  # error_data.details is kept
    assert len(fake_graph.requests) == 1


def test_whatsapp_code_10_is_permission_denied(wa, fake_graph):
    fake_graph.queue(WA_PATH, Reply.error(10, status=403, message="Permission denied"))
    with pytest.raises(SendError) as err:
        send_wa(wa, OutboundMessage(text="x"))
    assert err.value.code == "permission_denied" and len(fake_graph.requests) == 1


@pytest.mark.parametrize("platform", ["facebook", "whatsapp"])
@pytest.mark.parametrize("status", [400, 401, 500])
def test_token_invalid_is_never_retried(fb, wa, fake_graph, platform, status):
    connector, path = (fb, FB_PATH) if platform == "facebook" else (wa, WA_PATH)
    fake_graph.queue(
        path,
        Reply.error(190, status=status, message="Invalid OAuth access token.", subcode=463),
        Reply(),
    )
    with pytest.raises(SendError) as err:
        connector.send(
            PAGE if platform == "facebook" else PHONE, "someone", OutboundMessage(text="x")
        )
    assert (err.value.code, err.value.retryable, err.value.needs_reauth) == (
        "token_invalid",
        False,
        True,
    )
    assert len(fake_graph.requests) == 1


@pytest.mark.parametrize("code,status", [(613, 400), (4, 400), (4, 429), (80007, 400)])
def test_messenger_rate_limits_are_retried_then_succeed(fb, fake_graph, code, status):
    fake_graph.queue(
        FB_PATH, Reply.error(code, status=status), Reply.error(code, status=status), Reply()
    )
    result = send_fb(fb, OutboundMessage(text="x"))
    assert len(fake_graph.requests) == 3
    assert result.platform_message_id.startswith("m_fake")


@pytest.mark.parametrize("code", [130429, 131056, 131048, 80007, 4])
def test_whatsapp_rate_limits_are_retried_then_succeed(wa, fake_graph, code):
    fake_graph.queue(WA_PATH, Reply.error(code, status=400), Reply())
    result = send_wa(wa, OutboundMessage(text="x"))
    assert len(fake_graph.requests) == 2 and result.platform_message_id.startswith("wamid.FAKE")


def test_retries_are_bounded_by_retry_attempts(fb, fake_graph, graph):
    fake_graph.queue(FB_PATH, *[Reply.error(613, status=400)] * 10)
    with pytest.raises(SendError) as err:
        send_fb(fb, OutboundMessage(text="x"))
    assert (err.value.code, err.value.retryable, err.value.graph_code) == (
        "rate_limited",
        True,
        613,
    )
    assert len(fake_graph.requests) == graph.retry_attempts == 3


def test_retry_attempts_one_means_no_retry(fake_graph):
    graph = GraphConfig(
        fake_graph.base_url,
        "v21.0",
        timeout=2,
        retry_attempts=1,
        retry_wait_initial=0.001,
        retry_wait_max=0.001,
    )
    fake_graph.queue(FB_PATH, Reply.error(2, status=500), Reply())
    with FacebookConnector(graph) as fb, pytest.raises(SendError):
        send_fb(fb, OutboundMessage(text="x"))
    assert len(fake_graph.requests) == 1


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=502, body="<html>Bad Gateway</html>"),  # no JSON at all
        Reply(status=503, body={"message": "unavailable"}),  # JSON but no Graph envelope
        Reply.error(2, status=500, message="An unexpected error has occurred. Please retry"),
        # code 2 is retryable whatever the status
        Reply.error(2, status=400),
        Reply.error(987654, status=500),  # 5xx with an unknown code
        Reply.error(1, status=500),
    ],
)
def test_platform_errors_are_retried(wa, fake_graph, reply):
    fake_graph.queue(WA_PATH, reply, Reply())
    send_wa(wa, OutboundMessage(text="x"))
    assert len(fake_graph.requests) == 2


def test_non_json_4xx_is_invalid_request(fb, fake_graph):
    fake_graph.queue(FB_PATH, Reply(status=404, body="Not Found"))
    with pytest.raises(SendError) as err:
        send_fb(fb, OutboundMessage(text="x"))
    assert (err.value.code, err.value.retryable, err.value.http_status) == (
        "invalid_request",
        False,
        404,
    )
    assert len(fake_graph.requests) == 1


def test_dropped_connection_is_a_retried_network_error(fb, fake_graph):
    fake_graph.queue(FB_PATH, Reply(drop=True), Reply())
    assert send_fb(fb, OutboundMessage(text="x")).platform_message_id
    assert len(fake_graph.requests) == 2


def test_network_errors_exhaust_the_retries(wa, fake_graph):
    fake_graph.queue(WA_PATH, *[Reply(drop=True)] * 3)
    with pytest.raises(SendError) as err:
        send_wa(wa, OutboundMessage(text="x"))
    assert (err.value.code, err.value.retryable) == ("network_error", True)
    assert len(fake_graph.requests) == 3


def test_timeout_is_a_network_error(fake_graph):
    graph = GraphConfig(
        fake_graph.base_url,
        "v21.0",
        timeout=0.2,
        retry_attempts=2,
        retry_wait_initial=0.001,
        retry_wait_max=0.001,
    )
    fake_graph.queue(FB_PATH, Reply(delay=1.0), Reply())
    with FacebookConnector(graph) as fb:
        assert send_fb(fb, OutboundMessage(text="slow")).platform_message_id
    assert len(fake_graph.requests) == 2


def test_retry_waits_double_from_the_initial_wait_up_to_the_max(fake_graph, monkeypatch):
    """initial, 2x, 4x ... capped at retry_wait_max, between tries: the first retry is not
    tenacity's, the next ones are; the sequence is the one policy."""
    import threading
    import time as time_module

    waits: list[float] = []
    sleep, here = time_module.sleep, threading.get_ident()

    def recorded(seconds: float) -> None:  # this thread's waits (others may sleep meanwhile)
        if threading.get_ident() == here:
            waits.append(seconds)
        else:
            sleep(seconds)

    monkeypatch.setattr(time_module, "sleep", recorded)
    graph = GraphConfig(fake_graph.base_url, "v21.0", timeout=2, retry_attempts=5,
                        retry_wait_initial=0.25, retry_wait_max=0.75)
    fake_graph.queue(FB_PATH, *[Reply.error(2, status=500)] * 4, Reply())
    with FacebookConnector(graph) as fb:
        assert send_fb(fb, OutboundMessage(text="x")).platform_message_id
    assert len(fake_graph.requests) == 5
    assert waits == [0.25, 0.5, 0.75, 0.75]


def test_a_proxy_in_the_environment_is_used_for_sends(fake_graph, monkeypatch):
    """The Send API's direct path to the pool is taken only when no proxy applies: with
    HTTP_PROXY set the call goes to the proxy (here nobody listens there: a network error)."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    graph = GraphConfig(fake_graph.base_url, "v21.0", timeout=0.5, retry_attempts=1)
    with FacebookConnector(graph) as fb, pytest.raises(SendError) as err:
        send_fb(fb, OutboundMessage(text="x"))
    assert err.value.code == "network_error" and fake_graph.requests == []


def test_connection_refused_is_a_network_error():
    graph = GraphConfig(
        "http://127.0.0.1:9",
        "v21.0",
        timeout=0.5,
        retry_attempts=2,
        retry_wait_initial=0.001,
        retry_wait_max=0.001,
    )
    with FacebookConnector(graph) as fb, pytest.raises(SendError) as err:
        send_fb(fb, OutboundMessage(text="x"))
    assert err.value.code == "network_error"


@pytest.mark.parametrize(
    "platform,code,status,expected",
    [
        ("facebook", 551, 400, "recipient_unavailable"),
        ("facebook", 551, 500, "recipient_unavailable"),  # status says retry, code says no
        ("whatsapp", 131026, 400, "recipient_unavailable"),
        ("whatsapp", 131049, 400, "recipient_unavailable"),
        ("whatsapp", 131050, 400, "recipient_unavailable"),
        ("whatsapp", 130472, 400, "recipient_unavailable"),
        ("facebook", 200, 403, "permission_denied"),
        ("facebook", 230, 400, "permission_denied"),
        ("whatsapp", 299, 403, "permission_denied"),
        # 5xx status, but a known non-retryable code
        ("facebook", 100, 500, "invalid_request"),
        ("whatsapp", 100, 400, "invalid_request"),
        ("facebook", 987654, 400, "invalid_request"),  # unknown code, 4xx
    ],
)
def test_non_retryable_codes_are_sent_once(fb, wa, fake_graph, platform, code, status, expected):
    connector, path, account = (
        (fb, FB_PATH, PAGE) if platform == "facebook" else (wa, WA_PATH, PHONE)
    )
    fake_graph.queue(
        path, Reply.error(code, status=status, subcode=1545041 if code == 551 else None), Reply()
    )
    with pytest.raises(SendError) as err:
        connector.send(account, "someone", OutboundMessage(text="x"))
    assert (err.value.code, err.value.retryable, err.value.graph_code) == (expected, False, code)
    assert len(fake_graph.requests) == 1


def test_rate_limit_code_wins_over_a_success_looking_status(fb, fake_graph):
    fake_graph.queue(FB_PATH, Reply(status=200, body=graph_error(613)), Reply())
    send_fb(fb, OutboundMessage(text="x"))
    assert len(fake_graph.requests) == 2


def test_success_without_message_id_is_not_retried(fb, fake_graph):
    fake_graph.queue(FB_PATH, Reply(status=200, body={"recipient_id": PSID}))
    with pytest.raises(SendError) as err:
        send_fb(fb, OutboundMessage(text="x"))
    assert (err.value.code, err.value.retryable) == ("platform_error", False)
    assert len(fake_graph.requests) == 1


def test_failure_on_a_later_part_raises(fb, fake_graph):
    fake_graph.queue(FB_PATH, Reply(), Reply.error(551))
    with pytest.raises(SendError) as err:
        send_fb(fb, OutboundMessage(text=long_text(4)))
    assert err.value.code == "recipient_unavailable" and len(fake_graph.requests) == 2


# ============================================================================ client lifecycle


def test_one_lazy_client_per_connector_and_close(graph, fake_graph):
    connector = WhatsAppConnector(graph)
    assert connector._client is None  # parsing-only use opens nothing
    send_wa(connector, OutboundMessage(text="a"))
    client = connector.http
    send_wa(connector, OutboundMessage(text="b"))
    assert connector.http is client
    assert client.timeout.read == graph.timeout
    connector.close()
    assert client.is_closed and connector._client is None
    send_wa(connector, OutboundMessage(text="c"))  # usable again after close
    connector.close()
    assert len(fake_graph.requests) == 3
