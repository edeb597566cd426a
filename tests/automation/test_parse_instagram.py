"""Instagram (object `instagram`) webhook parsing: samples, Instagram-only shapes, odd inputs."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from automation.platforms import base
from automation.platforms.base import GraphConfig
from automation.platforms.instagram import InstagramConnector
from tests.automation.payloads import IG_ID, IGSID, T_MS, item, messaging, sample, samples


@pytest.fixture
def ig():
    return InstagramConnector(GraphConfig("http://127.0.0.1:9", "v21.0"))


def insta(*items, **kwargs):
    return messaging("instagram", IG_ID, *items, **kwargs)


def from_user(**event):
    return item(IGSID, IG_ID, **event)


def one(events):
    assert len(events) == 1, events
    return events[0]


# ---------------------------------------------------------------------------- samples

def test_every_instagram_sample_yields_exactly_one_event(ig):
    names = samples("instagram")
    assert len(names) >= 2
    for name in names:
        event = one(ig.parse(sample(name)))
        assert (event.platform, event.account_id, event.contact_id) == ("instagram", IG_ID, IGSID)


def test_sample_text(ig):
    event = one(ig.parse(sample("instagram_text.json")))
    assert event.kind == base.MESSAGE and event.message_type == "text"
    assert event.text == "Do you ship to Canada?"
    assert event.timestamp == datetime(2026, 9, 1, 11, 44, 59, 871000, tzinfo=timezone.utc)
    assert event.message_id.startswith("aWdfZAG1faXRlbToxOklHTWVzc2FnZA")


def test_sample_echo(ig):
    event = one(ig.parse(sample("instagram_echo.json")))
    assert event.kind == base.ECHO and not event.opens_window
    assert event.contact_id == IGSID and event.account_id == IG_ID
    assert event.text == "Yes, we ship to Canada (5-7 business days)."


def test_messenger_payload_is_not_instagram(ig):
    assert ig.parse(sample("messenger_text.json")) == []


# ---------------------------------------------------------------------------- Instagram-only shapes

def test_story_reply(ig):
    event = one(
        ig.parse(
            insta(
                from_user(
                    message={
                        "mid": "ig_sr",
                        "text": "Love this!",
                        "reply_to": {
                            "story": {
                                "url": "https://lookaside.fbsbx.com/story/1",
                                "id": "17900000000000001",
                            }
                        },
                    }
                )
            )
        )
    )
    assert event.kind == base.MESSAGE and event.opens_window
    assert event.message_type == "story_reply"
    assert event.text == "Love this!"
    assert event.metadata["story"] == {
        "url": "https://lookaside.fbsbx.com/story/1",
        "id": "17900000000000001",
    }
    assert event.reply_to is None


def test_story_mention(ig):
    event = one(
        ig.parse(
            insta(
                from_user(
                    message={
                        "mid": "ig_sm",
                        "attachments": [
                            {
                                "type": "story_mention",
                                "payload": {"url": "https://lookaside.fbsbx.com/mention/2"},
                            }
                        ],
                    }
                )
            )
        )
    )
    assert event.message_type == "story_mention"
    assert event.attachments == [
        {"type": "story_mention", "url": "https://lookaside.fbsbx.com/mention/2"}
    ]
    assert event.metadata["story"] == {"url": "https://lookaside.fbsbx.com/mention/2"}


def test_unsend(ig):
    event = one(ig.parse(insta(from_user(message={"mid": "ig_gone", "is_deleted": True}))))
    assert event.kind == base.UNSEND and not event.opens_window
    assert event.target_ids == ["ig_gone"]
    assert event.message_id is None


def test_unsupported(ig):
    event = one(ig.parse(insta(from_user(message={"mid": "ig_unsup", "is_unsupported": True}))))
    assert event.kind == base.MESSAGE and event.message_type == "unsupported"


@pytest.mark.parametrize("kind", ["audio", "file", "image", "share", "video", "ig_reel", "reel"])
def test_attachment_types(ig, kind):
    event = one(
        ig.parse(
            insta(
                from_user(
                    message={
                        "mid": f"ig_{kind}",
                        "attachments": [{"type": kind, "payload": {"url": f"https://x/{kind}"}}],
                    }
                )
            )
        )
    )
    assert event.message_type == kind
    assert event.attachments[0] == {"type": kind, "url": f"https://x/{kind}"}


def test_reel_share_keeps_payload_details(ig):
    event = one(
        ig.parse(
            insta(
                from_user(
                    message={
                        "mid": "ig_reel2",
                        "attachments": [
                            {
                                "type": "ig_reel",
                                "payload": {
                                    "url": "https://x/r",
                                    "title": "cute",
                                    "reel_video_id": "1789",
                                },
                            }
                        ],
                    }
                )
            )
        )
    )
    assert event.attachments == [
        {"type": "ig_reel", "url": "https://x/r", "title": "cute", "reel_video_id": "1789"}
    ]


def test_quick_reply(ig):
    event = one(
        ig.parse(
            insta(
                from_user(
                    message={"mid": "ig_qr", "text": "Yes", "quick_reply": {"payload": "CONFIRM"}}
                )
            )
        )
    )
    assert (event.message_type, event.payload) == ("quick_reply", "CONFIRM")


def test_reactions_react_and_unreact(ig):
    react, unreact = ig.parse(
        insta(
            from_user(
                reaction={
                    "mid": "ig_t",
                    "action": "react",
                    "reaction": "love",
                    "emoji": "\u2764\ufe0f",
                }
            ),
            from_user(reaction={"mid": "ig_t", "action": "unreact"}),
        )
    )
    assert react.kind == unreact.kind == base.REACTION
    assert react.reaction == {"action": "react", "emoji": "\u2764\ufe0f", "reaction": "love"}
    assert unreact.reaction == {"action": "unreact", "emoji": None}
    assert react.target_ids == unreact.target_ids == ["ig_t"]


def test_read_mid(ig):
    event = one(ig.parse(insta(from_user(read={"mid": "ig_read_me"}))))
    assert event.kind == base.READ
    assert event.target_ids == ["ig_read_me"] and event.watermark is None


def test_postback_ice_breaker(ig):
    event = one(
        ig.parse(
            insta(
                from_user(postback={"mid": "ig_pb", "title": "Opening hours?", "payload": "HOURS"})
            )
        )
    )
    assert (event.kind, event.payload, event.title, event.message_id) == (
        base.POSTBACK,
        "HOURS",
        "Opening hours?",
        "ig_pb",
    )


def test_echo_with_attachment(ig):
    event = one(
        ig.parse(
            insta(
                item(
                    IG_ID,
                    IGSID,
                    message={
                        "mid": "ig_echo_img",
                        "is_echo": True,
                        "attachments": [{"type": "image", "payload": {"url": "https://x/i.jpg"}}],
                    },
                )
            )
        )
    )
    assert event.kind == base.ECHO and event.contact_id == IGSID and event.message_type == "image"


def test_standby_referral_and_changes_yield_nothing(ig):
    assert ig.parse(insta(from_user(message={"mid": "x", "text": "y"}), key="standby")) == []
    assert (
        ig.parse(insta(from_user(referral={"ref": "r", "source": "ADS", "type": "OPEN_THREAD"})))
        == []
    )
    comments = {
        "object": "instagram",
        "entry": [
            {
                "id": IG_ID,
                "time": T_MS,
                "changes": [
                    {
                        "field": "comments",
                        "value": {
                            "id": "17865799348089039",
                            "text": "nice",
                            "from": {"id": "232323232", "username": "someone"},
                            "media": {"id": "123123", "media_product_type": "FEED"},
                        },
                    },
                    {
                        "field": "mentions",
                        "value": {
                            "media_id": "17887498072083520",
                            "comment_id": "17887498072083521",
                        },
                    },
                ],
            }
        ],
    }
    assert ig.parse(comments) == []


def test_doc_style_list_wrapped_body(ig):
    assert len(ig.parse([sample("instagram_text.json")])) == 1


def test_batch_with_malformed_item(ig):
    events = ig.parse(
        {
            "object": "instagram",
            "entry": [
                {
                    "id": IG_ID,
                    "time": "2026-09-01T11:33:31Z",
                    "messaging": [
                        from_user(timestamp="??", message={"mid": "ig_1", "text": "a"}),
                        # unsend without a mid: nothing to do
                        from_user(message={"is_deleted": True}),
                        from_user(reaction="love"),  # not an object
                        from_user(message={"mid": "ig_2", "text": "b"}),
                    ],
                },
                {"id": IG_ID, "changes": [{"field": "comments", "value": {}}]},
                {
                    "id": IG_ID,
                    "time": T_MS,
                    "messaging": [from_user(message={"mid": "ig_3", "text": "c"})],
                },
            ],
        }
    )
    assert [e.message_id for e in events] == ["ig_1", "ig_2", "ig_3"]
    assert events[0].timestamp == datetime(2026, 9, 1, 11, 33, 31, tzinfo=timezone.utc)


def test_emoji_and_rtl_round_trip(ig):
    text = "مرحبا بك 🌙✨ — שלום 🇮🇱🇵🇸 👩🏾‍💻"
    assert one(ig.parse(insta(from_user(message={"mid": "ig_u", "text": text})))).text == text


def test_connector_class_attributes():
    assert InstagramConnector.platform == "instagram"
    assert InstagramConnector.webhook_objects == ("instagram",)
    assert InstagramConnector.secret_setting == "INSTAGRAM_APP_SECRET"
