"""Messenger (object `page`) webhook parsing: every sample, every event kind, and odd shapes."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from automation.platforms import base
from automation.platforms.base import GraphConfig
from automation.platforms.facebook import FacebookConnector
from tests.automation.payloads import PAGE_ID, PSID, T_MS, item, messaging, sample, samples

T = datetime(2026, 9, 1, 11, 33, 31, 503000, tzinfo=timezone.utc)


@pytest.fixture
def fb():
    return FacebookConnector(GraphConfig("http://127.0.0.1:9", "v21.0"))


def page(*items, **kwargs):
    return messaging("page", PAGE_ID, *items, **kwargs)


def from_user(**event):
    return item(PSID, PAGE_ID, **event)


def one(events):
    assert len(events) == 1, events
    return events[0]


# ---------------------------------------------------------------------------- samples

def test_every_messenger_sample_yields_exactly_one_event(fb):
    names = samples("messenger")
    assert len(names) >= 4
    for name in names:
        event = one(fb.parse(sample(name)))
        assert event.platform == "facebook"
        assert event.account_id == PAGE_ID
        assert event.contact_id == PSID
        assert event.timestamp.tzinfo is not None


def test_sample_text(fb):
    event = one(fb.parse(sample("messenger_text.json")))
    assert event.kind == base.MESSAGE and event.opens_window
    assert event.message_type == "text"
    assert event.text == "Hi, is my order #4471 shipped yet?"
    assert event.message_id.startswith("m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM")
    assert event.timestamp == T
    assert event.attachments == [] and event.payload is None


def test_sample_image_attachment(fb):
    event = one(fb.parse(sample("messenger_attachment_image.json")))
    assert event.kind == base.MESSAGE and event.message_type == "image"
    assert event.text is None
    assert event.attachments == [{"type": "image", "url": sample("messenger_attachment_image.json")
                                  ["entry"][0]["messaging"][0]["message"]["attachments"][0]["payload"]["url"]}]


def test_sample_postback(fb):
    event = one(fb.parse(sample("messenger_postback.json")))
    assert event.kind == base.POSTBACK and event.opens_window
    assert (event.payload, event.title) == ("TRACK_ORDER:4471", "Track my order")
    assert event.message_id.startswith("m_Cq7YtR2p")


def test_sample_echo_contact_is_the_recipient(fb):
    event = one(fb.parse(sample("messenger_echo.json")))
    assert event.kind == base.ECHO and not event.opens_window
    assert event.contact_id == PSID          # recipient.id: the customer
    assert event.account_id == PAGE_ID       # entry.id
    assert event.text == "Yes! It shipped this morning."
    assert event.metadata == {"app_id": "1517776481860111",
                              "metadata": "reply-to:m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM"}


# ---------------------------------------------------------------------------- messages

def test_quick_reply_routes_on_payload(fb):
    event = one(fb.parse(page(from_user(message={
        "mid": "m_qr", "text": "Red", "quick_reply": {"payload": "COLOR_RED"}}))))
    assert event.kind == base.MESSAGE and event.opens_window
    assert (event.message_type, event.text, event.payload) == ("quick_reply", "Red", "COLOR_RED")


def test_reply_to_mid(fb):
    event = one(fb.parse(page(from_user(message={
        "mid": "m_2", "text": "this one", "reply_to": {"mid": "m_1", "is_self_reply": False}}))))
    assert event.reply_to == "m_1"


@pytest.mark.parametrize("kind", ["audio", "file", "image", "video", "fallback", "reel", "ig_reel",
                                  "post", "ig_post", "appointment_booking"])
def test_every_attachment_type(fb, kind):
    url = f"https://cdn.example/{kind}"
    event = one(
        fb.parse(
            page(
                from_user(
                    message={
                        "mid": f"m_{kind}",
                        "attachments": [{"type": kind, "payload": {"url": url, "title": "T"}}],
                    }
                )
            )
        )
    )
    assert event.message_type == kind
    assert event.attachments == [{"type": kind, "url": url, "title": "T"}]


def test_sticker_and_image_pair_is_one_message_with_one_sticker(fb):
    event = one(
        fb.parse(
            page(
                from_user(
                    message={
                        "mid": "m_st",
                        "attachments": [
                            {"type": "sticker", "payload": {"sticker_id": 369239263222822}},
                            {
                                "type": "image",
                                "payload": {
                                    "url": "https://cdn.example/sticker.png",
                                    "sticker_id": 369239263222822,
                                },
                            },
                        ],
                    }
                )
            )
        )
    )
    assert event.message_type == "sticker"
    assert event.attachments == [
        {"type": "sticker", "sticker_id": 369239263222822, "url": "https://cdn.example/sticker.png"}
    ]


def test_sticker_and_image_pair_with_unrelated_urls_still_collapses(fb):
    event = one(
        fb.parse(
            page(
                from_user(
                    message={
                        "mid": "m_st2",
                        "attachments": [
                            {"type": "image", "payload": {"url": "https://cdn.example/a.png"}},
                            {
                                "type": "sticker",
                                "payload": {"url": "https://cdn.example/b.webp", "sticker_id": 1},
                            },
                        ],
                    }
                )
            )
        )
    )
    assert event.message_type == "sticker"
    assert [a["type"] for a in event.attachments] == ["sticker"]


def test_sticker_only_after_transition_and_legacy_image_sticker(fb):
    after = one(
        fb.parse(
            page(
                from_user(
                    message={
                        "mid": "m_s3",
                        "attachments": [{"type": "sticker", "payload": {"sticker_id": 42}}],
                    }
                )
            )
        )
    )
    legacy = one(
        fb.parse(
            page(
                from_user(
                    message={
                        "mid": "m_s4",
                        "sticker_id": 42,
                        "attachments": [
                            {
                                "type": "image",
                                "payload": {"url": "https://cdn.example/s.png", "sticker_id": 42},
                            }
                        ],
                    }
                )
            )
        )
    )
    assert after.message_type == legacy.message_type == "sticker"
    assert legacy.attachments == [
        {"type": "sticker", "url": "https://cdn.example/s.png", "sticker_id": 42}
    ]


def test_two_real_images_are_both_kept(fb):
    event = one(
        fb.parse(
            page(
                from_user(
                    message={
                        "mid": "m_2img",
                        "attachments": [
                            {"type": "image", "payload": {"url": "https://cdn.example/1.jpg"}},
                            {"type": "image", "payload": {"url": "https://cdn.example/2.jpg"}},
                        ],
                    }
                )
            )
        )
    )
    assert [a["url"] for a in event.attachments] == [
        "https://cdn.example/1.jpg",
        "https://cdn.example/2.jpg",
    ]


def test_legacy_location_attachment(fb):
    event = one(
        fb.parse(
            page(
                from_user(
                    message={
                        "mid": "m_loc",
                        "attachments": [
                            {
                                "type": "location",
                                "title": "Pin",
                                "payload": {"coordinates": {"lat": 52.52, "long": 13.40}},
                            }
                        ],
                    }
                )
            )
        )
    )
    assert event.attachments == [
        {"type": "location", "title": "Pin", "latitude": 52.52, "longitude": 13.40}
    ]


def test_message_with_referral_and_no_text(fb):
    event = one(
        fb.parse(
            page(
                from_user(
                    message={
                        "mid": "m_ref",
                        "text": "Hi",
                        "referral": {"ref": "ad-7", "source": "ADS", "type": "OPEN_THREAD"},
                    }
                )
            )
        )
    )
    assert event.metadata["referral"]["ref"] == "ad-7"


def test_unicode_emoji_rtl_and_large_text_round_trip(fb):
    text = ("שלום עולם 👋🏽 مرحبا 👨‍👩‍👧‍👦 äöå \U0001f600 " * 200).strip()
    event = one(fb.parse(page(from_user(message={"mid": "m_u", "text": text}))))
    assert event.text == text


# ---------------------------------------------------------------------------- other kinds


def test_postback_via_standby_is_ignored(fb):
    standby = page(from_user(postback={"title": "Get Started"}), key="standby")
    assert fb.parse(standby) == []
    standby_msg = page(from_user(message={"mid": "m_sb", "text": "hi"}), key="standby")
    assert fb.parse(standby_msg) == []


def test_postback_with_referral(fb):
    event = one(
        fb.parse(
            page(
                from_user(
                    postback={
                        "mid": "m_pb",
                        "title": "Get Started",
                        "payload": "GET_STARTED",
                        "referral": {
                            "ref": "qr-code",
                            "source": "SHORTLINK",
                            "type": "OPEN_THREAD",
                        },
                    }
                )
            )
        )
    )
    assert event.kind == base.POSTBACK and event.payload == "GET_STARTED"
    assert event.metadata == {
        "referral": {"ref": "qr-code", "source": "SHORTLINK", "type": "OPEN_THREAD"}
    }


def test_echo_from_page_inbox_app(fb):
    event = one(
        fb.parse(
            page(
                item(
                    PAGE_ID,
                    PSID,
                    message={
                        "is_echo": True,
                        "app_id": 263902037430900,
                        "mid": "m_inbox",
                        "text": "from the inbox",
                    },
                )
            )
        )
    )
    assert event.kind == base.ECHO and event.contact_id == PSID
    assert event.metadata == {"app_id": "263902037430900"}


@pytest.mark.parametrize(
    "action,emoji,expected",
    [
        ("react", "\u2764\ufe0f", {"action": "react", "emoji": "\u2764\ufe0f", "reaction": "love"}),
        ("unreact", None, {"action": "unreact", "emoji": None}),
    ],
)
def test_reactions(fb, action, emoji, expected):
    reaction = {"mid": "m_target", "action": action}
    if emoji:
        reaction.update(emoji=emoji, reaction="love")
    event = one(fb.parse(page(from_user(reaction=reaction))))
    assert event.kind == base.REACTION and not event.opens_window
    assert event.reaction == expected
    assert event.target_ids == ["m_target"]
    # the reacted-to mid must not collide with the message's dedupe key
    assert event.message_id is None


def test_delivery_with_mids(fb):
    event = one(
        fb.parse(page(from_user(delivery={"mids": ["m_a", "m_b"], "watermark": 1788262411000})))
    )
    assert event.kind == base.DELIVERY and not event.opens_window
    assert event.target_ids == ["m_a", "m_b"]
    assert event.watermark == datetime(2026, 9, 1, 11, 33, 31, tzinfo=timezone.utc)


def test_delivery_without_mids(fb):
    event = one(fb.parse(page(from_user(delivery={"watermark": 1788262411000}))))
    assert event.target_ids == [] and event.watermark is not None


def test_read_watermark(fb):
    event = one(fb.parse(page(from_user(read={"watermark": 1788262411000}))))
    assert event.kind == base.READ
    assert event.watermark == datetime(2026, 9, 1, 11, 33, 31, tzinfo=timezone.utc)
    assert event.target_ids == []


def test_message_edit(fb):
    event = one(
        fb.parse(
            page(from_user(message_edit={"mid": "m_orig", "text": "fixed typo", "num_edit": 1}))
        )
    )
    assert event.kind == base.EDIT and not event.opens_window
    assert (event.text, event.target_ids, event.metadata) == (
        "fixed typo",
        ["m_orig"],
        {"num_edit": 1},
    )


@pytest.mark.parametrize(
    "event",
    [
        {"optin": {"ref": "x", "user_ref": "u"}},
        {"referral": {"ref": "r", "source": "SHORTLINK", "type": "OPEN_THREAD"}},
        {"policy_enforcement": {"action": "block", "reason": "spam"}},
        {"account_linking": {"status": "linked"}},
        {"pass_thread_control": {"new_owner_app_id": "1"}},
        {"response_feedback": {"mid": "m", "feedback": "Good response"}},
        {"some_future_key": {"anything": True}},
        {},
    ],
)
def test_unknown_messaging_keys_yield_nothing(fb, event):
    assert fb.parse(page(from_user(**event))) == []


@pytest.mark.parametrize(
    "payload",
    [
        {"object": "user", "entry": [{"id": "1", "time": T_MS, "changes": [{"field": "email"}]}]},
        {"object": "permissions", "entry": []},
        {
            "object": "instagram",
            "entry": [
                {"id": "1", "messaging": [item("a", "b", message={"mid": "x", "text": "y"})]}
            ],
        },
        {"object": "page", "entry": []},
        {"object": "page"},
        {"object": "page", "entry": "nope"},
        {"object": "page", "entry": [None, 3, "x", {"id": PAGE_ID, "messaging": "nope"}]},
        {"entry": []},
        {},
        [],
        None,
        "page",
    ],
)
def test_unknown_objects_and_odd_top_levels_yield_nothing(fb, payload):
    assert fb.parse(payload) == []


# ---------------------------------------------------------------------------- batches and leniency


def test_batch_of_entries_and_items_with_malformed_ones(fb):
    payload = {
        "object": "page",
        "entry": [
            {
                "id": PAGE_ID,
                "time": T_MS,
                "messaging": [
                    from_user(message={"mid": "m_1", "text": "one"}),
                    "not an item",
                    {
                        "sender": "oops",
                        "recipient": None,
                        "timestamp": [],
                        "message": {"mid": "m_2", "text": "two"},
                    },
                    from_user(message=["not", "a", "dict"]),
                    from_user(message={"mid": "m_3", "text": 12345}),  # text of the wrong type
                    from_user(message={"mid": "m_4", "attachments": "oops"}),
                    from_user(delivery={"mids": "m_x", "watermark": "soon"}),  # nothing usable
                    from_user(read={"watermark": T_MS}),
                ],
            },
            {
                "id": "999",
                "time": T_MS,
                "messaging": [item("555", "999", message={"mid": "m_5", "text": "five"})],
            },
            {"id": PAGE_ID, "standby": [from_user(message={"mid": "m_sb", "text": "not ours"})]},
        ],
    }
    events = fb.parse(payload)
    assert [(e.kind, e.message_id) for e in events] == [
        ("message", "m_1"),
        ("message", "m_2"),
        ("message", "m_3"),
        ("message", "m_4"),
        ("read", None),
        ("message", "m_5"),
    ]
    assert events[1].contact_id is None and events[1].account_id == PAGE_ID
    assert events[2].text is None and events[2].message_type == "unsupported"
    assert events[5].account_id == "999" and events[5].contact_id == "555"


def test_a_crashing_item_is_skipped_not_the_batch(fb, monkeypatch):
    original = FacebookConnector._on_message

    def boom(self, env, msg):
        if msg.get("mid") == "m_bad":
            raise RuntimeError("unexpected shape")
        return original(self, env, msg)

    monkeypatch.setattr(FacebookConnector, "_on_message", boom)
    events = fb.parse(
        page(
            from_user(message={"mid": "m_bad", "text": "x"}),
            from_user(message={"mid": "m_ok", "text": "y"}),
        )
    )
    assert [e.message_id for e in events] == ["m_ok"]


@pytest.mark.parametrize(
    "timestamp,entry_time,expected",
    [
        (T_MS, T_MS, T),
        (str(T_MS), T_MS, T),  # ms as a string
        (1788262411, T_MS, datetime(2026, 9, 1, 11, 33, 31, tzinfo=timezone.utc)),  # seconds
        ("2026-09-01T11:33:31.503Z", T_MS, T),  # ISO string
        ("garbage", T_MS, T),  # falls back to entry.time
        (None, "2026-09-01T11:33:31.503+00:00", T),  # ISO entry.time (Chatwoot fixtures)
        ({"x": 1}, T_MS, T),
        (True, T_MS, T),
        (-5, T_MS, T),
        (10**30, T_MS, T),
    ],
)
def test_lenient_timestamps(fb, timestamp, entry_time, expected):
    event = one(
        fb.parse(
            page(from_user(timestamp=timestamp, message={"mid": "m", "text": "t"}), time=entry_time)
        )
    )
    assert event.timestamp == expected


def test_all_timestamps_garbage_falls_back_to_now(fb):
    before = datetime.now(timezone.utc)
    event = one(
        fb.parse(page(from_user(timestamp="x", message={"mid": "m", "text": "t"}), time="y"))
    )
    assert before <= event.timestamp <= datetime.now(timezone.utc)


def test_object_is_matched_case_insensitively(fb):
    payload = sample("messenger_text.json")
    payload["object"] = "Page"
    assert len(fb.parse(payload)) == 1


def test_connector_class_attributes():
    assert FacebookConnector.platform == "facebook"
    assert FacebookConnector.webhook_objects == ("page",)
    assert FacebookConnector.secret_setting == "META_APP_SECRET"


def test_signature_vector_bodies_parse_to_the_same_text(fb):
    """The escaped (\\u00e4) and raw UTF-8 bodies of signature_vectors.json are the same message."""
    bodies = [json.loads(v["body_utf8"]) for v in sample("signature_vectors.json")["inline"]]
    assert fb.parse(bodies[0]) == []  # the empty batch
    escaped, raw = (one(fb.parse(body)) for body in bodies[1:])
    assert escaped.text == raw.text == "äöå" and escaped.message_id == "m_esc1"
