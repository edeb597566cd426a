"""Slack: a business's team channel, one thread per customer conversation.

The core of the Slack integration, on slack-sdk's WebClient (its base URL is the SLACK_API_URL
setting, so tests point it at a loopback fake): `check()` proves the bot token and the channel,
`post`/`update`/`history`/`replies` are the Web API calls the /api/slack endpoints and the
inbound events use, and `notify()` delivers hand-offs, new conversations and the customer's
messages into the conversation's thread (its ts is returned and kept on the conversation).
Rich formatting is Block Kit (`blocks`) with buttons whose clicks come back to
POST /webhooks/slack/interactions; `attachments` carry media links and colours.

Customer text is escaped (`&`, `<`, `>`) before it is posted, so a customer cannot make the
bot write `<!channel>` or a disguised link. Requests from Slack are verified with
`verify_signature()` (v0 HMAC over the raw body, 5-minute window).
"""
from __future__ import annotations

import json
import re
import time
from typing import ClassVar
from urllib.error import URLError

from pydantic import BaseModel, Field
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.signature import SignatureVerifier

from automation.integrations.base import (
    IntegrationCheckFailed,
    IntegrationConnector,
    IntegrationError,
    Notification,
)
from automation.integrations.catalogue import SECRET
from automation.integrations.catalogue import SlackConfig as CatalogueSlackConfig

DEFAULT_API_URL = "https://slack.com/api/"
TIMEOUT_SECONDS = 10
# Slack error codes that no retry fixes: the token or the channel must be changed.
PERMANENT_ERRORS = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
    "no_permission", "missing_scope", "channel_not_found", "not_in_channel", "is_archived",
    "org_login_required", "ekm_access_denied", "team_access_not_granted", "invalid_blocks",
    "msg_too_long", "thread_not_found",
})
# action_id of the buttons Dana puts on its posts (routes/slack_api.py dispatches on them)
ACTION_TAKE, ACTION_CLOSE = "dana_take", "dana_close"
ACTION_APPROVE, ACTION_SEND_EDITED = "dana_approve", "dana_send_edited"
DRAFT_INPUT_BLOCK, DRAFT_INPUT_ACTION = "dana_draft", "dana_draft_text"
MAX_TEXT = 3000   # a section block's text limit
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")


class SlackConfig(CatalogueSlackConfig):
    """The catalogue's Slack config, with Slack's formats and the posting options."""

    bot_token: str = Field(min_length=10, max_length=300, pattern=r"^xox[bpae]-[\w-]+$",
                           json_schema_extra=SECRET,
                           description="Bot User OAuth Token (xoxb-…) of your Slack app")
    channel_id: str = Field(min_length=3, max_length=64, pattern=r"^[CGD][A-Z0-9]+$",
                            description="ID of the channel to post in (C…); invite the bot there")
    signing_secret: str | None = Field(
        default=None, min_length=8, max_length=300, pattern=r"^[A-Za-z0-9]+$",
        json_schema_extra=SECRET,
        description="Signing Secret of your Slack app (Basic Information); without it the "
                    "server's SLACK_SIGNING_SECRET verifies this workspace's events")
    post_new_conversations: bool = Field(
        default=True, description="start a thread for every new conversation (hand-offs always do)")
    post_customer_messages: bool = Field(
        default=True, description="post the customer's later messages into the thread")
    post_replies: bool = Field(
        default=True, description="post the business's replies (AI, agents in Dana) into the "
                                  "thread too, so it reads as the whole conversation")


def escape(text: str | None) -> str:
    """Slack's mrkdwn escaping: customer text can neither mention @channel nor forge links."""
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def thread_key(channel: str, thread_ts: str) -> str:
    """How a conversation's thread is found back from an inbound event: "<channel>:<ts>"."""
    return f"{channel}:{thread_ts}"


def message_item(message: dict) -> dict:
    """The API's Slack message shape: {ts, user, text, thread_ts, reply_count}."""
    return {"ts": message.get("ts"), "user": message.get("user") or message.get("bot_id"),
            "text": message.get("text", ""), "thread_ts": message.get("thread_ts"),
            "reply_count": int(message.get("reply_count") or 0)}


def verify_signature(signing_secret: str, body: bytes, timestamp: str | None,
                     signature: str | None, now: float | None = None) -> bool:
    """Slack's v0 request signature over the raw body, within a 5-minute window."""
    if not signing_secret or not timestamp or not signature:
        return False
    try:
        int(timestamp)
    except ValueError:
        return False

    class _Clock:
        def now(self) -> float:
            return time.time() if now is None else now

    verifier = SignatureVerifier(signing_secret, clock=_Clock())
    return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)


def _contact_name(conversation: dict) -> str:
    contact = conversation.get("contact") or {}
    return contact.get("name") or contact.get("platform_user_id") or "a customer"


def conversation_blocks(conversation: dict, link: str | None, state: str,
                        task: dict | None = None, by_user: str | None = None
                        ) -> tuple[str, list[dict]]:
    """The thread's parent post: who, where, the state, and buttons (take / close / open).

    `by_user` (a Slack user id) is mentioned after the state, e.g. "taken by @Sam".
    """
    name, platform = _contact_name(conversation), str(conversation.get("platform", "")).capitalize()
    headline = f"{name} on {platform}"
    text = escape(f"{headline}: {state}")
    mention = f" by <@{by_user}>" if by_user and SLACK_USER_ID.match(by_user) else ""
    blocks: list[dict] = [
        {"type": "section", "text": {"type": "mrkdwn",
                                      "text": f"*{escape(headline)}*\n{escape(state)}{mention}"}},
    ]
    elements: list[dict] = []
    if task is not None and task.get("status", "open") == "open":
        elements.append({"type": "button", "action_id": ACTION_TAKE, "style": "primary",
                         "text": {"type": "plain_text", "text": "Take it"},
                         "value": json.dumps({"task_id": task["id"],
                                              "conversation_id": conversation["id"]})})
    if conversation.get("status") != "closed":
        elements.append({"type": "button", "action_id": ACTION_CLOSE,
                         "text": {"type": "plain_text", "text": "Close"},
                         "value": json.dumps({"conversation_id": conversation["id"],
                                              **({"task_id": task["id"]} if task else {})})})
    if link:
        elements.append({"type": "button", "action_id": "dana_open", "url": link,
                         "text": {"type": "plain_text", "text": "Open in Dana"}})
    if elements:
        blocks.append({"type": "actions", "elements": elements})
    blocks.append({"type": "context", "elements": [{
        "type": "mrkdwn", "text": "Reply in this thread to answer the customer."}]})
    return text, blocks


def draft_blocks(draft: str, conversation_id: str, draft_id: str) -> tuple[str, list[dict]]:
    """An AI draft awaiting approval: the text, an editable copy, Approve / Send edited."""
    value = json.dumps({"conversation_id": conversation_id, "draft_id": draft_id})
    text = escape(f"AI draft (not sent yet): {draft}")
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn",
                                      "text": "*AI draft, not sent yet:*\n"
                                              + escape(draft)[:MAX_TEXT]}},
        {"type": "input", "block_id": DRAFT_INPUT_BLOCK, "optional": True,
         "label": {"type": "plain_text", "text": "Edit before sending"},
         "element": {"type": "plain_text_input", "action_id": DRAFT_INPUT_ACTION,
                     "multiline": True, "initial_value": draft[:MAX_TEXT]}},
        {"type": "actions", "elements": [
            {"type": "button", "action_id": ACTION_APPROVE, "style": "primary", "value": value,
             "text": {"type": "plain_text", "text": "Approve and send"}},
            {"type": "button", "action_id": ACTION_SEND_EDITED, "value": value,
             "text": {"type": "plain_text", "text": "Send edited"}}]},
    ]
    return text, blocks


def _media_attachments(message: dict | None) -> list[dict]:
    out = []
    for att in (message or {}).get("attachments") or []:
        url = att.get("url") if isinstance(att, dict) else None
        if not url:
            continue
        kind = att.get("type", "file")
        item = {"fallback": f"{kind}: {url}", "title": kind.capitalize(), "title_link": url}
        if kind == "image":
            item["image_url"] = url
        out.append(item)
    return out


def _gone(exc: IntegrationError) -> bool:
    """Slack no longer has the thread's parent (deleted in Slack)."""
    return str(exc).endswith(("thread_not_found", "message_not_found"))


class SlackConnector(IntegrationConnector):
    """Posts into a business's Slack channel and reads it back, through slack-sdk."""

    type: ClassVar[str] = "slack"
    name: ClassVar[str] = "Slack"
    category: ClassVar[str] = "messaging"
    config_model: ClassVar[type[BaseModel]] = SlackConfig
    secret_fields: ClassVar[frozenset[str]] = frozenset({"bot_token", "signing_secret"})
    operations: ClassVar[frozenset[str]] = frozenset({"notify"})

    def __init__(self, config: SlackConfig, settings) -> None:
        """Keep the config and build a WebClient on SLACK_API_URL (no hidden retries)."""
        super().__init__(config, settings)
        base = getattr(settings, "SLACK_API_URL", None) or DEFAULT_API_URL
        # Retries belong to services/integrations (tenacity, Retry-After): none in the client.
        self.client = WebClient(token=config.bot_token, base_url=base.rstrip("/") + "/",
                                timeout=TIMEOUT_SECONDS, retry_handlers=[])
        self._identity: dict | None = None

    # ------------------------------------------------------------------ Web API calls

    def _call(self, method: str, **kwargs) -> dict:
        """One Web API call; Slack's refusals become IntegrationError (permanent or not)."""
        try:
            return self.client.api_call(method, json=kwargs).data
        except SlackApiError as exc:
            response = exc.response
            data = response.data if isinstance(response.data, dict) else {}
            code = data.get("error") or f"http_{response.status_code}"
            retry_after = None
            if response.status_code == 429 or code == "ratelimited":
                header = (response.headers or {}).get("Retry-After") or \
                    (response.headers or {}).get("retry-after")
                if isinstance(header, list):
                    header = header[0] if header else None
                try:
                    retry_after = float(header) if header is not None else None
                except ValueError:
                    retry_after = None
            raise IntegrationError(f"Slack {method} failed: {code}", retry_after=retry_after,
                                   permanent=code in PERMANENT_ERRORS) from None
        except (SlackClientError, URLError, OSError, ValueError) as exc:
            raise IntegrationError(f"Slack {method} unreachable: {type(exc).__name__}") from None

    def identity(self) -> dict:
        """auth.test: the workspace (team_id) and the bot's own user/bot ids, cached."""
        if self._identity is None:
            data = self._call("auth.test")
            self._identity = {k: data.get(k) for k in ("team_id", "team", "user_id", "bot_id")}
        return self._identity

    def check(self) -> str:
        """auth.test proves the token; reading the channel proves the bot was invited there."""
        try:
            who = self.identity()
            self._call("conversations.history", channel=self.config.channel_id, limit=1)
        except IntegrationError as exc:
            reason = str(exc).rsplit(": ", 1)[-1]
            hints = {"not_in_channel": " (invite the bot: /invite @your-app in the channel)",
                     "channel_not_found": " (check channel_id; invite the bot if it is private)",
                     "missing_scope": " (add the scopes listed in docs/SLACK_SETUP_GUIDE.md)"}
            hint = hints.get(reason, "")
            raise IntegrationCheckFailed(f"Slack refused: {reason}{hint}") from None
        workspace = who.get("team") or who.get("team_id")
        return f"workspace {workspace}, channel {self.config.channel_id}"

    def post(self, text: str, *, thread_ts: str | None = None, blocks: list | None = None,
             attachments: list | None = None, channel: str | None = None) -> dict:
        """chat.postMessage; returns {ts, channel}."""
        args: dict = {"channel": channel or self.config.channel_id, "text": text}
        if thread_ts:
            args["thread_ts"] = thread_ts
        if blocks:
            args["blocks"] = blocks
        if attachments:
            args["attachments"] = attachments
        data = self._call("chat.postMessage", **args)
        return {"ts": data["ts"], "channel": data["channel"]}

    def update(self, ts: str, text: str, *, blocks: list | None = None,
               channel: str | None = None) -> dict:
        """chat.update of one of the bot's own posts (e.g. a hand-off now taken)."""
        args: dict = {"channel": channel or self.config.channel_id, "ts": ts, "text": text}
        if blocks is not None:
            args["blocks"] = blocks
        data = self._call("chat.update", **args)
        return {"ts": data["ts"], "channel": data["channel"]}

    def _page(self, method: str, limit: int, cursor: str | None, **kwargs) -> dict:
        args = {"channel": self.config.channel_id, "limit": limit, **kwargs}
        if cursor:
            args["cursor"] = cursor
        data = self._call(method, **args)
        next_cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
        return {"items": [message_item(m) for m in data.get("messages", [])],
                "next_cursor": next_cursor}

    def history(self, limit: int = 20, cursor: str | None = None) -> dict:
        """conversations.history of the channel, newest first, in the API's list shape."""
        return self._page("conversations.history", limit, cursor)

    def replies(self, thread_ts: str, limit: int = 50, cursor: str | None = None) -> dict:
        """conversations.replies: a thread's parent and replies, oldest first (list shape)."""
        return self._page("conversations.replies", limit, cursor, ts=thread_ts)

    # ------------------------------------------------------------------ notifications

    def notify(self, notification: Notification) -> dict:
        """Deliver into the conversation's thread (started on first use); returns its refs.

        Without a conversation (a workflow's plain notice, a digest) it is one top-level post.
        """
        n = notification
        channel = n.target or self.config.channel_id
        conversation = n.conversation
        # A workflow's notice to another channel is one post there: the conversation's thread
        # stays in the integration's own channel.
        if conversation is None or channel != self.config.channel_id:
            title = f"*{escape(n.title)}*\n" if n.title else ""
            posted = self.post(escape(n.text), channel=channel, blocks=[{
                "type": "section", "text": {"type": "mrkdwn",
                                            "text": (title + escape(n.text))[:MAX_TEXT]}}])
            return {"channel": posted["channel"], "ts": posted["ts"]}
        written_here = (((n.message or {}).get("metadata") or {}).get("source") == "slack")
        if (n.kind == "business_message" and written_here) or \
                (n.kind == "new_conversation" and not self.config.post_new_conversations) or \
                (n.kind == "customer_message" and not self.config.post_customer_messages) or \
                (n.kind == "business_message" and not self.config.post_replies):
            return {"status": "skipped"}
        refs = ((conversation.get("integration_refs") or {}).get("slack") or {})
        thread_ts = refs.get("thread_ts") if refs.get("channel", channel) == channel else None
        if thread_ts is None and n.kind == "business_message":
            return {"status": "skipped"}   # a reply alone does not start a thread
        state = {"handoff": "needs a human", "new_conversation": "new conversation"}.get(
            n.kind, "conversation")
        parent_text, parent_blocks = conversation_blocks(conversation, n.link, state, n.task)
        if thread_ts is None:
            thread_ts = self.post(parent_text, blocks=parent_blocks, channel=channel)["ts"]
        elif n.kind == "handoff":
            try:
                self.update(thread_ts, parent_text, blocks=parent_blocks, channel=channel)
            except IntegrationError as exc:
                if not _gone(exc):
                    raise
        body, blocks = self._thread_body(n)
        media = _media_attachments(n.message) or None
        try:
            posted = self.post(body, blocks=blocks, thread_ts=thread_ts, channel=channel,
                               attachments=media)
        except IntegrationError as exc:
            if not _gone(exc):
                raise
            # the thread's parent was deleted in Slack: start the conversation's thread anew
            thread_ts = self.post(parent_text, blocks=parent_blocks, channel=channel)["ts"]
            posted = self.post(body, blocks=blocks, thread_ts=thread_ts, channel=channel,
                               attachments=media)
        return {"channel": channel, "thread_ts": thread_ts, "ts": posted["ts"],
                "external_id": thread_key(channel, thread_ts)}

    @staticmethod
    def _thread_body(n: Notification) -> tuple[str, list[dict] | None]:
        """The text (and blocks) posted in the thread for this kind of notification."""
        if n.kind == "ai_draft" and n.message is not None:
            text, blocks = draft_blocks(n.text, n.conversation["id"], n.message["id"])
            return text, blocks
        if n.kind in ("customer_message", "new_conversation"):
            who = _contact_name(n.conversation)
            body = f"*{escape(who)}:* {escape(n.text) or '_(attachment)_'}"
        elif n.kind == "handoff":
            body = ":raising_hand: *A human is needed.*\n" + escape(n.text)
        elif n.kind == "business_message":
            sender = (n.message or {}).get("sender_type")
            who = {"ai": "AI", "agent": "Agent (in Dana)"}.get(sender, "Dana")
            body = f"_{who} replied:_ {escape(n.text) or '_(attachment)_'}"
        else:
            body = (f"*{escape(n.title)}*\n" if n.title else "") + escape(n.text)
        return body, [{"type": "section", "text": {"type": "mrkdwn", "text": body[:MAX_TEXT]}}]
