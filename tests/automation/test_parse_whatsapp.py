"""WhatsApp Cloud API (object `whatsapp_business_account`) webhook parsing."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from automation.platforms import base
from automation.platforms.base import GraphConfig
from automation.platforms.whatsapp import WhatsAppConnector
from tests.automation.payloads import (
    PHONE_NUMBER_ID,
    WA_ID,
    WABA_ID,
    sample,
    samples,
    wa,
    wa_contact,
    wa_message,
)

T = datetime(2026, 9, 1, 11, 50, 11, tzinfo=timezone.utc)
BSUID = "US.13491208655302741918"


@pytest.fixture
def whatsapp():
    return WhatsAppConnector(GraphConfig("http://127.0.0.1:9", "v21.0"))


def one(events):
    assert len(events) == 1, events
    return events[0]


def parse_one(connector, msg, contacts=None):
    return one(
        connector.parse(
            wa(messages=[msg], contacts=[wa_contact()] if contacts is None else contacts)
        )
    )


# ---------------------------------------------------------------------------- samples


def test_every_whatsapp_sample_yields_exactly_one_event(whatsapp):
    names = samples("whatsapp")
    assert len(names) >= 4
    for name in names:
        event = one(whatsapp.parse(sample(name)))
        assert (event.platform, event.account_id, event.contact_id) == (
            "whatsapp",
            PHONE_NUMBER_ID,
            WA_ID,
        )


def test_sample_text(whatsapp):
    event = one(whatsapp.parse(sample("whatsapp_text.json")))
    assert event.kind == base.MESSAGE and event.opens_window
    assert (event.message_type, event.text) == ("text", "Does it come in another color?")
    assert event.message_id == "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    assert event.profile == {"name": "Sheena Nelson"}
    assert event.timestamp == T


def test_sample_image(whatsapp):
    event = one(whatsapp.parse(sample("whatsapp_image.json")))
    assert event.message_type == "image" and event.text == "This one, in blue?"
    [attachment] = event.attachments
    assert attachment["type"] == "image" and attachment["media_id"] == "1003383421387256"
    assert attachment["mime_type"] == "image/jpeg" and attachment["caption"] == "This one, in blue?"
    assert attachment["url"].startswith("https://lookaside.fbsbx.com/")


def test_sample_interactive_button_reply(whatsapp):
    event = one(whatsapp.parse(sample("whatsapp_interactive_button_reply.json")))
    assert event.message_type == "interactive"
    assert (event.payload, event.title) == ("cancel-button", "Cancel")
    assert event.reply_to == "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI3MEM2RUJFNkI0RENGQTVDRjUA"


def test_sample_status_delivered(whatsapp):
    event = one(whatsapp.parse(sample("whatsapp_status_delivered.json")))
    assert event.kind == base.STATUS and not event.opens_window
    assert event.status == "delivered"
    assert event.target_ids == ["wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"]
    assert event.contact_id == WA_ID and event.message_id is None


# ---------------------------------------------------------------------------- message types


def test_list_reply(whatsapp):
    event = parse_one(
        whatsapp,
        wa_message(
            "interactive",
            context={"from": "15550783881", "id": "wamid.LIST"},
            interactive={
                "type": "list_reply",
                "list_reply": {"id": "size-m", "title": "Medium", "description": "38-40"},
            },
        ),
    )
    assert (event.payload, event.title, event.reply_to) == ("size-m", "Medium", "wamid.LIST")
    assert event.metadata == {"interactive_type": "list_reply", "description": "38-40"}


def test_template_quick_reply_button(whatsapp):
    event = parse_one(
        whatsapp,
        wa_message(
            "button",
            context={"from": "15550783881", "id": "wamid.TPL"},
            button={"payload": "STOP_PROMOS", "text": "Stop promotions"},
        ),
    )
    assert event.kind == base.MESSAGE and event.message_type == "button"
    assert (event.payload, event.text) == ("STOP_PROMOS", "Stop promotions")


@pytest.mark.parametrize(
    "reaction,expected",
    [
        (
            {"message_id": "wamid.T", "emoji": "\U0001f62e"},
            {"action": "react", "emoji": "\U0001f62e"},
        ),
        ({"message_id": "wamid.T", "emoji": ""}, {"action": "unreact", "emoji": None}),
        ({"message_id": "wamid.T"}, {"action": "unreact", "emoji": None}),
    ],
)
def test_reactions(whatsapp, reaction, expected):
    event = parse_one(whatsapp, wa_message("reaction", wamid="wamid.R", reaction=reaction))
    assert event.kind == base.REACTION and not event.opens_window
    assert event.reaction == expected
    assert event.target_ids == ["wamid.T"] and event.message_id == "wamid.R"


def test_location(whatsapp):
    location = {
        "latitude": 37.4611978,
        "longitude": -122.2164385,
        "name": "Facebook HQ",
        "address": "1 Hacker Way, Menlo Park, CA 94025",
        "url": "https://maps.google.com/?cid=2",
    }
    event = parse_one(whatsapp, wa_message("location", location=location))
    assert event.message_type == "location" and event.metadata["location"] == location


def test_contacts_message(whatsapp):
    shared = [
        {
            "name": {"formatted_name": "Ada Lovelace", "first_name": "Ada"},
            "phones": [{"phone": "+44 20 7946 0000", "wa_id": "442079460000", "type": "WORK"}],
        }
    ]
    event = parse_one(whatsapp, wa_message("contacts", contacts=shared))
    assert event.message_type == "contacts" and event.metadata["contacts"] == shared
    assert event.profile == {"name": "Sheena Nelson"}  # the sender, not the shared card


def test_unsupported_with_error(whatsapp):
    event = parse_one(
        whatsapp,
        wa_message(
            "unsupported",
            errors=[
                {
                    "code": 131051,
                    "title": "Message type unknown",
                    "message": "Message type unknown",
                    "error_data": {"details": "Message type is currently not supported."},
                }
            ],
        ),
    )
    assert event.kind == base.MESSAGE and event.message_type == "unsupported"
    assert event.error == {
        "code": 131051,
        "title": "Message type unknown",
        "message": "Message type unknown",
    }


def test_unsupported_error_message_falls_back_to_details(whatsapp):
    event = parse_one(
        whatsapp,
        wa_message(
            "unsupported",
            errors=[
                {
                    "code": "131051",
                    "title": "Unsupported",
                    "error_data": {"details": "Not supported yet"},
                }
            ],
        ),
    )
    assert event.error == {"code": 131051, "title": "Unsupported", "message": "Not supported yet"}


@pytest.mark.parametrize(
    "mtype,obj,expected_type",
    [
        # no caption, no url
        ("image", {"mime_type": "image/jpeg", "sha256": "abc=", "id": "111"}, "image"),
        ("video", {"mime_type": "video/mp4", "id": "222", "caption": "clip"}, "video"),
        ("audio", {"mime_type": "audio/ogg; codecs=opus", "id": "333", "voice": True}, "audio"),
        (
            "document",
            {"mime_type": "application/pdf", "id": "444", "filename": "invoice.pdf"},
            "file",
        ),
        ("sticker", {"mime_type": "image/webp", "id": "555", "animated": False}, "sticker"),
    ],
)
def test_media_types(whatsapp, mtype, obj, expected_type):
    event = parse_one(whatsapp, wa_message(mtype, **{mtype: obj}))
    assert event.message_type == expected_type
    [attachment] = event.attachments
    assert attachment["type"] == expected_type and attachment["media_id"] == obj["id"]
    assert "url" not in attachment
    assert event.text == obj.get("caption")
    for key in ("filename", "voice", "animated", "mime_type"):
        if key in obj:
            assert attachment[key] == obj[key]


def test_forwarded_and_referral_go_to_metadata(whatsapp):
    referral = {
        "source_url": "https://fb.me/ad",
        "source_id": "120",
        "source_type": "ad",
        "headline": "Sale",
        "ctwa_clid": "ARA",
    }
    event = parse_one(
        whatsapp,
        wa_message(
            "text",
            text={"body": "about the ad"},
            context={"forwarded": True, "frequently_forwarded": True},
            referral=referral,
        ),
    )
    assert event.metadata == {"forwarded": True, "frequently_forwarded": True, "referral": referral}
    assert event.reply_to is None


def test_unknown_types_are_kept_and_system_is_dropped(whatsapp):
    order = parse_one(whatsapp, wa_message("order", order={"catalog_id": "9", "product_items": []}))
    assert order.message_type == "order" and order.metadata["order"]["catalog_id"] == "9"
    assert (
        whatsapp.parse(wa(messages=[wa_message("system", system={"body": "changed number"})])) == []
    )


# ---------------------------------------------------------------------------- contacts / ids


def test_bsuid_without_wa_id(whatsapp):
    contact = {"profile": {"name": "Pablo", "username": "@pablo"}, "user_id": BSUID}
    msg = wa_message("text", sender=None, text={"body": "hola"})
    msg["from_user_id"] = BSUID
    event = parse_one(whatsapp, msg, contacts=[contact])
    assert event.contact_id == BSUID
    assert event.profile == {"name": "Pablo", "username": "@pablo", "user_id": BSUID}


def test_no_from_at_all_uses_contacts_user_id(whatsapp):
    event = parse_one(
        whatsapp,
        wa_message("text", sender=None, text={"body": "hi"}),
        contacts=[{"profile": {"name": "Pablo"}, "user_id": BSUID}],
    )
    assert event.contact_id == BSUID and event.profile["name"] == "Pablo"


def test_missing_contacts(whatsapp):
    event = one(whatsapp.parse(wa(messages=[wa_message("text", text={"body": "hi"})])))
    assert event.contact_id == WA_ID and event.profile == {}


def test_profiles_matched_by_wa_id_in_a_batch(whatsapp):
    events = whatsapp.parse(
        wa(
            contacts=[wa_contact("Bob", "222"), wa_contact("Ann", "111")],
            messages=[
                wa_message("text", "wamid.A", sender="111", text={"body": "a"}),
                wa_message("text", "wamid.B", sender="222", text={"body": "b"}),
            ],
        )
    )
    assert [(e.contact_id, e.profile.get("name")) for e in events] == [
        ("111", "Ann"),
        ("222", "Bob"),
    ]


def test_nothing_identifies_the_sender(whatsapp):
    event = parse_one(whatsapp, wa_message("text", sender=None, text={"body": "?"}), contacts=[])
    assert event.contact_id is None and event.text == "?"


# ---------------------------------------------------------------------------- statuses


def test_statuses_sent_read_played_failed(whatsapp):
    errors = [
        {
            "code": 131047,
            "title": "Re-engagement message",
            "message": "Re-engagement message",
            "error_data": {
                "details": "Message failed to send because more than 24 hours have passed"
            },
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
        }
    ]
    pricing = {"billable": True, "pricing_model": "PMP", "category": "utility"}
    events = whatsapp.parse(
        wa(
            statuses=[
                {
                    "id": "wamid.1",
                    "status": "sent",
                    "timestamp": "1788263400",
                    "recipient_id": WA_ID,
                    "pricing": pricing,
                },
                {
                    "id": "wamid.1",
                    "status": "read",
                    "timestamp": "1788263405",
                    "recipient_id": WA_ID,
                },
                {
                    "id": "wamid.2",
                    "status": "played",
                    "timestamp": "1788263406",
                    "recipient_id": WA_ID,
                },
                {
                    "id": "wamid.3",
                    "status": "failed",
                    "timestamp": "1788263407",
                    "recipient_id": WA_ID,
                    "errors": errors,
                },
            ]
        )
    )
    assert [(e.kind, e.status, e.target_ids) for e in events] == [
        ("status", "sent", ["wamid.1"]),
        ("status", "read", ["wamid.1"]),
        ("status", "read", ["wamid.2"]),
        ("status", "failed", ["wamid.3"]),
    ]
    assert events[0].metadata == {"pricing": pricing}
    assert events[2].metadata == {"platform_status": "played"}
    assert events[3].error == {
        "code": 131047,
        "title": "Re-engagement message",
        "message": "Re-engagement message",
    }
    assert all(e.contact_id == WA_ID and not e.opens_window for e in events)


def test_unknown_or_idless_statuses_yield_nothing(whatsapp):
    assert (
        whatsapp.parse(
            wa(
                statuses=[
                    {"id": "wamid.1", "status": "deleted", "timestamp": "1"},
                    {"status": "sent", "timestamp": "1"},
                    "sent",
                    None,
                ]
            )
        )
        == []
    )


# ---------------------------------------------------------------------------- ignored content


@pytest.mark.parametrize(
    "field",
    [
        "message_template_status_update",
        "account_update",
        "security",
        "phone_number_quality_update",
        "user_preferences",
        "smb_message_echoes",
        "history",
        "some_future_field",
    ],
)
def test_other_fields_yield_nothing(whatsapp, field):
    assert whatsapp.parse(wa(messages=[wa_message("text", text={"body": "x"})], field=field)) == []


def test_system_level_errors_are_ignored_safely(whatsapp):
    payload = wa(extra={"errors": [{"code": 131000, "title": "Something went wrong"}]})
    assert whatsapp.parse(payload) == []
    payload = wa(
        messages=[wa_message("text", text={"body": "still here"})], extra={"errors": "garbage"}
    )
    assert one(whatsapp.parse(payload)).text == "still here"


@pytest.mark.parametrize(
    "payload",
    [
        {"object": "page", "entry": [{"id": "1", "messaging": []}]},
        {"object": "whatsapp_business_account"},
        {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": "x"}]},
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": WABA_ID,
                    "changes": [None, {"field": "messages"}, {"field": "messages", "value": []}],
                }
            ],
        },
        None,
        [],
        7,
    ],
)
def test_odd_shapes_yield_nothing(whatsapp, payload):
    assert whatsapp.parse(payload) == []


# ---------------------------------------------------------------------------- batches, leniency


def test_batch_with_several_entries_messages_statuses_and_malformed_items(whatsapp):
    first = wa(
        contacts=[wa_contact()],
        messages=[
            wa_message("text", "wamid.1", text={"body": "one"}),
            "garbage",
            {"type": "text"},  # no id, no from: still a message
            wa_message("text", "wamid.3", text="not-an-object"),
            {},
            wa_message("image", "wamid.4", image=None),
        ],
        statuses=[
            {"id": "wamid.out", "status": "delivered", "timestamp": "x", "recipient_id": WA_ID},
            {"id": 5, "status": ["read"]},
        ],
    )
    second = wa(
        messages=[wa_message("text", "wamid.5", text={"body": "five"})], phone_number_id="999"
    )
    payload = {
        "object": "whatsapp_business_account",
        "entry": first["entry"] + [None] + second["entry"],
    }
    events = whatsapp.parse(payload)
    assert [(e.kind, e.message_id, e.target_ids) for e in events] == [
        ("message", "wamid.1", []),
        ("message", None, []),
        ("message", "wamid.3", []),
        ("message", "wamid.4", []),
        ("status", None, ["wamid.out"]),
        ("message", "wamid.5", []),
    ]
    assert events[1].contact_id == WA_ID  # the only contact of that change
    assert events[2].text is None
    assert events[3].attachments == [{"type": "image"}]
    assert events[5].account_id == "999"


@pytest.mark.parametrize(
    "timestamp,expected",
    [
        ("1788263411", T),
        (1788263411, T),
        ("1788263411000", T),  # milliseconds by mistake
        ("2026-09-01T11:50:11Z", T),
    ],
)
def test_lenient_timestamps(whatsapp, timestamp, expected):
    assert (
        parse_one(whatsapp, wa_message("text", timestamp=timestamp, text={"body": "t"})).timestamp
        == expected
    )


@pytest.mark.parametrize("timestamp", ["soon", None, [], {"s": 1}, "", -1])
def test_garbage_timestamps_fall_back_to_now(whatsapp, timestamp):
    before = datetime.now(timezone.utc)
    event = parse_one(whatsapp, wa_message("text", timestamp=timestamp, text={"body": "t"}))
    assert before <= event.timestamp <= datetime.now(timezone.utc)


def test_large_unicode_rtl_round_trip(whatsapp):
    text = ("مرحبا 👋 שלום 🧑🏿‍🚀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 äöå\n" * 300).strip()
    assert parse_one(whatsapp, wa_message("text", text={"body": text})).text == text


def test_connector_class_attributes():
    assert WhatsAppConnector.platform == "whatsapp"
    assert WhatsAppConnector.webhook_objects == ("whatsapp_business_account",)
