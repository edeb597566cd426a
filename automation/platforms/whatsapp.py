"""WhatsApp Cloud API (webhook object `whatsapp_business_account`).

Inbound: `entry[].changes[]` with `field == "messages"`; `value.messages[]` become MESSAGE /
REACTION events, `value.statuses[]` become STATUS events for our outbound wamids. Replies are
routed by `value.metadata.phone_number_id` (the id in the send URL), never by the WABA id.
Customer ids: `from` (wa_id); for users with usernames (2026 BSUIDs) `from` may be missing and
`from_user_id` / `contacts[].user_id` stand in.

Outbound: POST /{phone_number_id}/messages with `messaging_product: whatsapp`.
"""
from __future__ import annotations

import logging
from typing import ClassVar

from typing_extensions import override

from .base import (
    MESSAGE,
    REACTION,
    STATUS,
    AccountCredentials,
    AccountProfile,
    InboundEvent,
    OutboundMessage,
    SendError,
)
from .common import (
    Envelope,
    as_dict,
    as_int,
    as_list,
    as_str,
    clip,
    first_datetime,
    flag,
    scalars,
    split_text,
    utf16_len,
)
from .graph_connector import PERMISSION_DENIED, GraphConnector

log = logging.getLogger("dana.platforms")

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024          # media caption and interactive body
MAX_REPLY_BUTTONS = 3
MAX_LIST_ROWS = 10
LIST_BUTTON_LABEL = "Options"  # the label of the button that opens a list message
MEDIA = {"image": "image", "video": "video", "audio": "audio", "document": "file",
         "sticker": "sticker"}
OUTBOUND_MEDIA = {"image": "image", "video": "video", "audio": "audio", "file": "document",
                  "document": "document", "sticker": "sticker"}
# `played` is the first play of a voice message: for our state machine it is a read.
STATUSES = {"sent": "sent", "delivered": "delivered", "read": "read", "played": "read",
            "failed": "failed"}


def _error(errors) -> dict | None:
    """The first WhatsApp error object as {code, title, message}."""
    first = next((e for e in as_list(errors) if isinstance(e, dict)), None)
    if first is None:
        return None
    title = as_str(first.get("title"))
    details = as_str(as_dict(first.get("error_data")).get("details"))
    code = as_int(first.get("code"))
    return {"code": code if code is not None else first.get("code"), "title": title,
            "message": as_str(first.get("message")) or details or title}


class WhatsAppConnector(GraphConnector):
    """WhatsApp Cloud API connector: text up to 4096 characters, interactive buttons/lists,
    media by link.
    """

    platform = "whatsapp"
    webhook_objects = ("whatsapp_business_account",)
    # On WhatsApp code 10 is "permission denied" (on Messenger it is the 24 h window).
    error_overrides: ClassVar[dict[int, tuple[str, bool]]] = {10: PERMISSION_DENIED}

    # ------------------------------------------------------------------ parsing

    @override
    def parse_entry(self, entry: dict) -> list[InboundEvent]:
        events: list[InboundEvent] = []
        for change in as_list(entry.get("changes")):
            change = as_dict(change)
            if change.get("field") == "messages" and isinstance(change.get("value"), dict):
                events.extend(self.guarded("change", self._parse_value, entry, change["value"]))
        return events

    def _parse_value(self, entry: dict, value: dict) -> list[InboundEvent]:
        account_id = (as_str(as_dict(value.get("metadata")).get("phone_number_id"))
                      or as_str(entry.get("id")) or "")
        contacts = [c for c in as_list(value.get("contacts")) if isinstance(c, dict)]
        if value.get("errors"):
            # System-level errors (e.g. a webhook payload problem) concern no message: log only.
            log.info("whatsapp: system-level errors for %s: %s", account_id,
                     _error(value["errors"]))
        events: list[InboundEvent] = []
        for msg in as_list(value.get("messages")):
            events.extend(self.guarded("message", self._on_message, account_id, contacts, msg))
        for status in as_list(value.get("statuses")):
            events.extend(self.guarded("status", self._on_status, account_id, status))
        return events

    @staticmethod
    def _contact_for(contacts: list[dict], sender: str | None) -> dict:
        """The contacts[] item of this sender (by wa_id or BSUID); the only one if there is one."""
        for contact in contacts:
            if sender and sender in (as_str(contact.get("wa_id")), as_str(contact.get("user_id"))):
                return contact
        return contacts[0] if len(contacts) == 1 else {}

    @staticmethod
    def _profile(contact: dict) -> dict:
        profile = as_dict(contact.get("profile"))
        out = {key: as_str(profile.get(key)) for key in ("name", "username")}
        out["user_id"] = as_str(contact.get("user_id"))
        return {k: v for k, v in out.items() if v}

    def _on_message(self, account_id: str, contacts: list[dict], msg) -> InboundEvent | None:
        msg = as_dict(msg)
        mtype = (as_str(msg.get("type")) or "").lower()
        if mtype == "system" or not (mtype or msg.get("id")):
            return None   # system: e.g. "customer changed number", not written by the customer
        sender = as_str(msg.get("from")) or as_str(msg.get("from_user_id"))
        contact = self._contact_for(contacts, sender)
        env = Envelope(self.platform, account_id,
                       sender or as_str(contact.get("wa_id")) or as_str(contact.get("user_id")),
                       first_datetime(msg.get("timestamp")))
        context = as_dict(msg.get("context"))
        metadata: dict = {}
        for key in ("forwarded", "frequently_forwarded"):
            if flag(context.get(key)):
                metadata[key] = True
        if isinstance(context.get("referred_product"), dict):
            metadata["referred_product"] = context["referred_product"]
        if isinstance(msg.get("referral"), dict):
            metadata["referral"] = msg["referral"]
        fields = dict(message_id=as_str(msg.get("id")), message_type=mtype or "unknown",
                      reply_to=as_str(context.get("id")), profile=self._profile(contact),
                      error=_error(msg.get("errors")), metadata=metadata)
        body = as_dict(msg.get(mtype))

        if mtype == "reaction":
            emoji = as_str(body.get("emoji"))   # "" or missing = the reaction was removed
            target = as_str(body.get("message_id"))
            reaction = {"action": "react" if emoji else "unreact", "emoji": emoji}
            return env.event(REACTION, reaction=reaction,
                             target_ids=[target] if target else [], **fields)
        if mtype == "text":
            fields["text"] = as_str(body.get("body"))
        elif mtype in MEDIA:
            attachment = {"type": MEDIA[mtype], "media_id": as_str(body.get("id")),
                          **scalars(body, skip=("id",))}
            fields.update(message_type=MEDIA[mtype], text=as_str(body.get("caption")),
                          attachments=[{k: v for k, v in attachment.items() if v is not None}])
        elif mtype == "interactive":
            kind = as_str(body.get("type"))
            reply = as_dict(body.get(kind)) if kind else {}
            title = as_str(reply.get("title"))
            fields.update(payload=as_str(reply.get("id")), title=title, text=title)
            if kind:
                metadata["interactive_type"] = kind
            if as_str(reply.get("description")):
                metadata["description"] = reply["description"]
            if kind == "nfm_reply":   # WhatsApp Flows answer
                metadata["nfm_reply"] = reply
        elif mtype == "button":      # a template's quick-reply button
            fields.update(payload=as_str(body.get("payload")), title=as_str(body.get("text")),
                          text=as_str(body.get("text")))
        elif mtype == "location":
            metadata["location"] = scalars(body)
        elif mtype == "contacts":
            metadata["contacts"] = [c for c in as_list(msg.get("contacts")) if isinstance(c, dict)]
        elif body:                   # order, request_welcome, future types: keep the object
            metadata[mtype] = body
        return env.event(MESSAGE, **fields)

    def _on_status(self, account_id: str, status) -> InboundEvent | None:
        status = as_dict(status)
        raw_status = (as_str(status.get("status")) or "").lower()
        wamid = as_str(status.get("id"))
        if raw_status not in STATUSES or not wamid:
            return None
        metadata = {key: status[key]
                    for key in ("pricing", "conversation", "biz_opaque_callback_data",
                                "recipient_type") if status.get(key) is not None}
        if raw_status != STATUSES[raw_status]:
            metadata["platform_status"] = raw_status
        recipient = as_str(status.get("recipient_id")) or as_str(status.get("recipient_user_id"))
        env = Envelope(self.platform, account_id, recipient,
                       first_datetime(status.get("timestamp")))
        return env.event(STATUS, status=STATUSES[raw_status], target_ids=[wamid],
                         error=_error(status.get("errors")), metadata=metadata)

    # ------------------------------------------------------------------ sending

    def account_check(self, account: AccountCredentials) -> tuple[str, str]:
        """WhatsApp: the phone number object, readable only with a token of its business."""
        return account.external_id, "id,display_phone_number,verified_name"

    def profile_of(self, body: dict) -> AccountProfile:
        """The business's verified name and the number customers see."""
        return AccountProfile(id=str(body.get("id") or ""),
                              name=str(body.get("verified_name") or ""),
                              display_phone_number=as_str(body.get("display_phone_number")),
                              raw=body)

    @override
    def send_path(self, account: AccountCredentials) -> str:
        return f"{account.external_id}/messages"

    @override
    def message_id_of(self, body: dict) -> str | None:
        first = next((m for m in as_list(body.get("messages")) if isinstance(m, dict)), {})
        return as_str(first.get("id"))

    def build_bodies(self, recipient_id: str, message: OutboundMessage) -> list[dict]:
        """Media (captioned when the text fits), text chunks, and options as an interactive
        last part.

        Quick replies and payload buttons become reply buttons (up to 3) or a list (up to 10
        rows); URL buttons have no reply-button form, so they are appended to the text as
        "title: url" lines. `reply_to` quotes the original on the first part only.
        """
        envelope = {"messaging_product": "whatsapp", "recipient_type": "individual",
                    "to": recipient_id}
        if message.template:
            # A pre-approved template: the only message allowed outside the 24-hour window.
            template = {"name": message.template["name"],
                        "language": {"code": message.template.get("language") or "en_US"}}
            if message.template.get("components"):
                template["components"] = message.template["components"]
            return [{**envelope, "type": "template", "template": template}]
        text = message.text or ""
        links = [b for b in message.buttons if b.get("url")]
        if links:
            listed = "\n".join(f"{b['title']}: {b['url']}" for b in links)
            text = "\n\n".join(filter(None, [text, listed]))
        options = [*message.quick_replies, *(b for b in message.buttons if not b.get("url"))]
        chunks = split_text(text, TEXT_LIMIT) if text else []
        if options and chunks and utf16_len(chunks[-1]) > CAPTION_LIMIT:
            chunks[-1:] = split_text(chunks[-1], CAPTION_LIMIT)

        parts: list[dict] = []
        if message.media:
            kind = OUTBOUND_MEDIA.get(str(message.media.get("type", "")).lower(), "document")
            media: dict = {"link": message.media["url"]}
            if (len(chunks) == 1 and not options and kind not in ("audio", "sticker")
                    and utf16_len(chunks[0]) <= CAPTION_LIMIT):
                media["caption"] = chunks.pop()
            parts.append({"type": kind, kind: media})
        parts.extend({"type": "text", "text": {"preview_url": False, "body": chunk}}
                     for chunk in chunks)
        if options:
            if not chunks:
                raise SendError("invalid_request", "whatsapp: interactive options need body text")
            parts[-1] = _interactive(parts[-1]["text"]["body"], options)
        if message.reply_to and parts:
            parts[0]["context"] = {"message_id": message.reply_to}
        return [{**envelope, **part} for part in parts]


def _interactive(body: str, options: list[dict]) -> dict:
    """Reply buttons for up to 3 options, otherwise a single-section list (titles clipped to
    Meta's caps).
    """
    choices = [(str(o.get("payload") or o["title"]), str(o["title"])) for o in options]
    if len(choices) <= MAX_REPLY_BUTTONS:
        action = {"buttons": [{"type": "reply", "reply": {"id": cid, "title": clip(title, 20)}}
                              for cid, title in choices]}
        return {"type": "interactive",
                "interactive": {"type": "button", "body": {"text": body}, "action": action}}
    rows = [{"id": cid, "title": clip(title, 24)} for cid, title in choices[:MAX_LIST_ROWS]]
    action = {"button": LIST_BUTTON_LABEL, "sections": [{"rows": rows}]}
    return {"type": "interactive",
            "interactive": {"type": "list", "body": {"text": body}, "action": action}}
