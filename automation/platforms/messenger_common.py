"""What Messenger and Instagram share: the `entry[].messaging[]` envelope and the
/me/messages Send API.

Both products deliver the same item shapes (message, postback, reaction, delivery, read,
message_edit) and accept the same send body; they differ in the `object` value, the text
limit and a few keys only one of them uses (Instagram's is_deleted / read.mid / story
replies), which this parser simply handles wherever they appear.

`entry[].standby[]` (handover protocol: another app owns the thread) and Instagram
`entry[].changes[]` (comments, mentions) are deliberately not read: they must produce nothing.
"""
from __future__ import annotations

from typing import ClassVar

from typing_extensions import override

from .base import (
    DELIVERY,
    ECHO,
    EDIT,
    MESSAGE,
    POSTBACK,
    REACTION,
    READ,
    UNSEND,
    AccountCredentials,
    InboundEvent,
    OutboundMessage,
    SendError,
)
from .common import (
    Envelope,
    as_dict,
    as_list,
    as_str,
    first_datetime,
    flag,
    scalars,
    split_text,
    to_datetime,
    utf16_len,
)
from .graph_connector import OUTSIDE_WINDOW, GraphConnector

# The messaging[] item keys we normalize, in the order they are looked for. Anything else
# (optin, referral, account_linking, policy_enforcement, handover, future keys) yields nothing.
ITEM_KEYS = ("message", "postback", "reaction", "delivery", "read", "message_edit")

BUTTON_TEXT_LIMIT = 640      # button template text
MAX_BUTTONS = 3              # button template
MAX_QUICK_REPLIES = 13
MEDIA_TYPES = {"image": "image", "video": "video", "audio": "audio", "file": "file",
               "document": "file"}


class MessengerStyleConnector(GraphConnector):
    """Base for Messenger and Instagram: a subclass sets platform, webhook_objects and
    text_limit.
    """

    text_limit: ClassVar[int]
    # Messenger/IG use code 10 (subcode 2018278) for "outside the allowed window".
    error_overrides: ClassVar[dict[int, tuple[str, bool]]] = {10: OUTSIDE_WINDOW}
    subcode_errors: ClassVar[dict[int, tuple[str, bool]]] = {2018278: OUTSIDE_WINDOW}

    # ------------------------------------------------------------------ parsing

    @override
    def parse_entry(self, entry: dict) -> list[InboundEvent]:
        account_id = as_str(entry.get("id"))
        entry_time = entry.get("time")
        return [event for item in as_list(entry.get("messaging"))
                for event in self.guarded("messaging item", self._parse_item, account_id,
                                          entry_time, item)]

    def _parse_item(self, account_id: str | None, entry_time, item) -> InboundEvent | None:
        item = as_dict(item)
        key = next((k for k in ITEM_KEYS if isinstance(item.get(k), dict)), None)
        if key is None:
            return None
        body = item[key]
        sender = as_str(as_dict(item.get("sender")).get("id"))
        recipient = as_str(as_dict(item.get("recipient")).get("id"))
        # An echo is sent by the business: the customer is its recipient.
        echo = key == "message" and flag(body.get("is_echo"))
        business, customer = (sender, recipient) if echo else (recipient, sender)
        env = Envelope(self.platform, account_id or business or "", customer,
                       first_datetime(item.get("timestamp"), entry_time))
        return getattr(self, f"_on_{key}")(env, body)

    def _on_message(self, env: Envelope, msg: dict) -> InboundEvent | None:
        mid = as_str(msg.get("mid"))
        if flag(msg.get("is_deleted")):
            return env.event(UNSEND, target_ids=[mid]) if mid else None
        text = msg.get("text") if isinstance(msg.get("text"), str) else None
        attachments = self._attachments(msg.get("attachments"))
        payload = as_str(as_dict(msg.get("quick_reply")).get("payload"))
        reply_to = as_dict(msg.get("reply_to"))
        story = scalars(as_dict(reply_to.get("story")))
        metadata: dict = {}
        if story:
            metadata["story"] = story
        if isinstance(msg.get("referral"), dict):
            metadata["referral"] = msg["referral"]
        if isinstance(msg.get("commands"), list):
            metadata["commands"] = msg["commands"]

        if flag(msg.get("is_unsupported")):
            message_type = "unsupported"
        elif story:
            message_type = "story_reply"
        elif payload:
            message_type = "quick_reply"
        elif attachments:
            message_type = attachments[0]["type"]
        elif text is not None:
            message_type = "text"
        elif mid:
            message_type = "unsupported"   # a message we cannot read is still a message
        else:
            return None
        if message_type == "story_mention":
            metadata["story"] = {k: v for k, v in attachments[0].items() if k != "type"}

        kind = MESSAGE
        if flag(msg.get("is_echo")):
            kind = ECHO
            if msg.get("app_id") is not None:
                metadata["app_id"] = as_str(msg.get("app_id"))
            if isinstance(msg.get("metadata"), str):
                metadata["metadata"] = msg["metadata"]
        return env.event(kind, message_id=mid, message_type=message_type, text=text,
                         attachments=attachments, payload=payload,
                         reply_to=None if story else as_str(reply_to.get("mid")), metadata=metadata)

    @staticmethod
    def _attachments(raw) -> list[dict]:
        """[{type, url?, ...payload scalars}], with the sticker-transition sticker+image pair
        collapsed.
        """
        out: list[dict] = []
        for att in as_list(raw):
            att = as_dict(att)
            kind = as_str(att.get("type"))
            if not kind:
                continue
            payload = as_dict(att.get("payload"))
            item: dict = {"type": kind.lower()}
            url = as_str(payload.get("url")) or as_str(att.get("url"))
            if url:
                item["url"] = url
            for key, value in {**scalars(att, skip=("type", "url")),
                               **scalars(payload, skip=("type", "url"))}.items():
                item.setdefault(key, value)
            coordinates = as_dict(payload.get("coordinates"))
            if coordinates:
                item["latitude"] = coordinates.get("lat")
                item["longitude"] = coordinates.get("long")
            if item["type"] == "image" and "sticker_id" in item:  # legacy sticker shape
                item["type"] = "sticker"
            out.append(item)
        return _collapse_sticker_pair(out)

    def _on_postback(self, env: Envelope, postback: dict) -> InboundEvent:
        referral = postback.get("referral")
        metadata = {"referral": referral} if isinstance(referral, dict) else {}
        title = postback.get("title") if isinstance(postback.get("title"), str) else None
        return env.event(POSTBACK, message_id=as_str(postback.get("mid")), message_type="postback",
                         payload=as_str(postback.get("payload")), title=title, metadata=metadata)

    def _on_reaction(self, env: Envelope, reaction: dict) -> InboundEvent:
        action = (as_str(reaction.get("action")) or "react").lower()
        normalized = {"action": action,
                      "emoji": as_str(reaction.get("emoji")) if action == "react" else None}
        if as_str(reaction.get("reaction")):
            normalized["reaction"] = reaction["reaction"]
        mid = as_str(reaction.get("mid"))
        return env.event(REACTION, message_type="reaction", reaction=normalized,
                         target_ids=[mid] if mid else [])

    def _on_delivery(self, env: Envelope, delivery: dict) -> InboundEvent | None:
        mids = [m for m in map(as_str, as_list(delivery.get("mids"))) if m]
        watermark = to_datetime(delivery.get("watermark"))
        if not mids and watermark is None:
            return None
        return env.event(DELIVERY, watermark=watermark, target_ids=mids)

    def _on_read(self, env: Envelope, read: dict) -> InboundEvent | None:
        mid = as_str(read.get("mid"))              # Instagram
        watermark = to_datetime(read.get("watermark"))   # Messenger
        if not mid and watermark is None:
            return None
        return env.event(READ, watermark=watermark, target_ids=[mid] if mid else [])

    def _on_message_edit(self, env: Envelope, edit: dict) -> InboundEvent | None:
        mid = as_str(edit.get("mid"))
        if not mid:
            return None
        text = edit.get("text") if isinstance(edit.get("text"), str) else None
        metadata = {"num_edit": edit["num_edit"]} if isinstance(edit.get("num_edit"), int) else {}
        return env.event(EDIT, message_type="text", text=text, target_ids=[mid], metadata=metadata)

    # ------------------------------------------------------------------ sending

    def account_check(self, account: AccountCredentials) -> tuple[str, str]:
        """Messenger: a Page token's `/me` is its Page (Instagram overrides this)."""
        return "me", "id,name"

    @override
    def send_path(self, account: AccountCredentials) -> str:
        return "me/messages"   # `me` is the Page / IG account the token belongs to

    @override
    def message_id_of(self, body: dict) -> str | None:
        return as_str(body.get("message_id"))

    def build_bodies(self, recipient_id: str, message: OutboundMessage) -> list[dict]:
        """Media first, then the text chunks; quick replies and buttons ride on the last part.

        Buttons render as a button template (postback or web_url; at most 3, text <= 640),
        quick replies as text quick replies (at most 13); extras beyond Meta's caps are dropped.
        """
        if message.template:
            raise SendError("invalid_request",
                            f"{self.platform}: message templates are a WhatsApp feature; "
                            "use a tag (e.g. HUMAN_AGENT) outside the 24-hour window")
        parts: list[dict] = []
        if message.media:
            parts.append({"attachment": _media_attachment(message.media)})
        chunks = split_text(message.text, self.text_limit) if message.text else []
        if message.buttons and chunks and utf16_len(chunks[-1]) > BUTTON_TEXT_LIMIT:
            chunks[-1:] = split_text(chunks[-1], BUTTON_TEXT_LIMIT)
        parts.extend({"text": chunk} for chunk in chunks)
        if message.buttons:
            if not chunks:
                raise SendError("invalid_request", f"{self.platform}: buttons need text")
            parts[-1] = {"attachment": {"type": "template", "payload": {
                "template_type": "button", "text": parts[-1]["text"],
                "buttons": [_button(b) for b in message.buttons[:MAX_BUTTONS]]}}}
        if message.quick_replies and parts:
            parts[-1]["quick_replies"] = [
                {"content_type": "text", "title": qr["title"],
                 "payload": qr.get("payload") or qr["title"]}
                for qr in message.quick_replies[:MAX_QUICK_REPLIES]]
        envelope: dict = {"recipient": {"id": recipient_id}, "messaging_type": "RESPONSE"}
        if message.tag:
            envelope.update(messaging_type="MESSAGE_TAG", tag=message.tag)
        if message.metadata:   # on every part, so each echo is recognisable as ours
            parts = [{**part, "metadata": message.metadata} for part in parts]
        return [{**envelope, "message": part} for part in parts]


def _collapse_sticker_pair(attachments: list[dict]) -> list[dict]:
    """Until 30 Aug 2026 a sticker arrives as a sticker AND an image attachment: keep one
    sticker.
    """
    stickers = [a for a in attachments if a["type"] == "sticker"]
    if not stickers:
        return attachments
    keys = {a.get(k) for a in stickers for k in ("url", "sticker_id")} - {None}
    images = [a for a in attachments if a["type"] == "image"]
    lone_pair = len(stickers) == 1 and len(images) == 1 and len(attachments) == 2
    kept: list[dict] = []
    by_identity: dict = {}
    for att in attachments:
        if att["type"] == "image" and (lone_pair or att.get("url") in keys
                                       or att.get("sticker_id") in keys):
            _keep_url(stickers[0], att)
            continue
        if att["type"] == "sticker":
            identity = att.get("sticker_id") or att.get("url")
            if identity is not None and identity in by_identity:
                _keep_url(by_identity[identity], att)
                continue
            by_identity[identity] = att
        kept.append(att)
    return kept


def _keep_url(kept: dict, dropped: dict) -> None:
    """A collapsed duplicate may be the only part with a displayable URL: keep it."""
    if dropped.get("url"):
        kept.setdefault("url", dropped["url"])


def _media_attachment(media: dict) -> dict:
    kind = MEDIA_TYPES.get(str(media.get("type", "")).lower(), "file")
    return {"type": kind, "payload": {"url": media["url"], "is_reusable": True}}


def _button(button: dict) -> dict:
    if button.get("url"):
        return {"type": "web_url", "url": button["url"], "title": button["title"]}
    return {"type": "postback", "title": button["title"],
            "payload": button.get("payload") or button["title"]}
