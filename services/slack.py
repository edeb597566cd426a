"""Slack: the /api/slack endpoints' rules and what Slack sends back (events, button clicks).

Outbound: a caller uses their own Slack integration; an admin without one falls back to the
server's SLACK_BOT_TOKEN/SLACK_CHANNEL_ID; anybody else gets `not_configured` (health) or
409 `slack_not_configured`. A thread that belongs to another user's conversation is a 404.

Inbound (routes/slack_api.py): every request is verified (v0 signature, 5-minute window)
against the signing secret of the integration it concerns, or SLACK_SIGNING_SECRET for a
workspace that set none. A thread reply by a person in a conversation's thread is sent to the
customer once (Slack's retries and replays are stopped by the slack_inbound table's key, and
the send is keyed by the Slack message) as an agent reply through services.messaging.
Buttons: take (task in progress), close (task done, conversation resolved), approve or send
an edited AI draft.

Slack wants its 200 within 3 s and does not deliver again after it, so a verified request is
first stored, with its slack_inbound key, in one transaction: as a webhook_events row of the
"slack" channel (the event outbox, automation/core/event_runner.py), answered 200 once stored
(503 when it could not be, so that Slack retries), then handed on like any delivery. The work
(run_stored) is done by whatever runs events (the inline dispatcher, `flask worker`): a
process killed before or during it leaves the row for the start-up and periodic sweeps, a
failed run is retried, and the row ends `dead` after EVENT_MAX_ATTEMPTS interrupted runs.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from automation.core.event_runner import settle_send
from automation.core.milestones import status_changed
from automation.core.policy import StoredChannel
from automation.integrations.base import IntegrationError
from automation.integrations.business import slack as slack_core
from automation.integrations.business.slack import SlackConfig, SlackConnector
from automation.platforms.base import OutboundMessage
from models_db import Integration, SlackInbound, WebhookEvent, db
from services import automation_queue, intake, integrations, messaging, tasks
from utils import events
from utils.config import current_settings
from utils.crypto import decrypt
from utils.errors import ApiError, NotFound, Unauthorized
from utils.store import get_store

log = logging.getLogger("dana.slack")

# Slack message subtypes that are a person writing (others: edits, joins, bots, ...).
HUMAN_SUBTYPES = (None, "file_share", "thread_broadcast")


def _settings():
    return current_settings()


def _user_row(user_id: str) -> Integration | None:
    return db.session.scalar(select(Integration).where(Integration.user_id == user_id,
                                                       Integration.type == "slack"))


# ------------------------------------------------------------------ the caller's Slack

@dataclass
class CallerSlack:
    """The Slack workspace a caller acts in, and whose row records failures (None: fallback)."""

    connector: SlackConnector
    row: Integration | None


def caller_slack(user) -> CallerSlack | None:
    """The caller's own enabled Slack integration, the server's for an admin, else None."""
    row = _user_row(user.id)
    if row is not None and row.enabled:
        return CallerSlack(integrations.build_connector(row), row)
    settings = _settings()
    if row is None and user.role == "admin" and settings.SLACK_BOT_TOKEN \
            and settings.SLACK_CHANNEL_ID:
        config = SlackConfig(bot_token=settings.SLACK_BOT_TOKEN,
                             channel_id=settings.SLACK_CHANNEL_ID,
                             signing_secret=settings.SLACK_SIGNING_SECRET)
        return CallerSlack(SlackConnector(config, settings), None)
    return None


def _require(user) -> CallerSlack:
    slack = caller_slack(user)
    if slack is None:
        raise ApiError("Slack is not configured: connect it with POST /api/integrations "
                       "(type slack).", status=409, code="slack_not_configured")
    return slack


def _upstream(exc: IntegrationError) -> ApiError:
    return ApiError(f"Slack refused or could not be reached: {exc}", status=502,
                    code="slack_error")


def health(user) -> dict:
    """Is the caller's Slack usable now? ok | error (with Slack's reason) | not_configured."""
    slack = caller_slack(user)
    if slack is None:
        return {"status": "not_configured", "source": None, "channel_id": None,
                "detail": "connect Slack with POST /api/integrations (type slack)",
                "checked_at": None}
    source = "integration" if slack.row is not None else "server"
    base = {"source": source, "channel_id": slack.connector.config.channel_id}
    if slack.row is not None:
        result = integrations.test_integration(user.id, "slack")
        return {"status": "ok" if result["ok"] else "error", **base, "detail": result["detail"],
                "checked_at": result["checked_at"]}
    try:
        return {"status": "ok", **base, "detail": slack.connector.check(), "checked_at": None}
    except Exception as exc:  # IntegrationCheckFailed: Slack's reason
        return {"status": "error", **base, "detail": str(exc), "checked_at": None}


def list_messages(user, limit: int, cursor: str | None) -> dict:
    """The channel's latest top-level messages, newest first."""
    try:
        return _require(user).connector.history(limit, cursor)
    except IntegrationError as exc:
        raise _upstream(exc) from None


def _find_thread(channel: str, thread_ts: str) -> tuple[str, str, dict] | None:
    """(owner, conversation id, refs) of the conversation whose Slack thread this is."""
    return integrations.find_conversation_by_ref("slack",
                                                 slack_core.thread_key(channel, thread_ts))


def _thread_owner(channel: str, thread_ts: str) -> str | None:
    found = _find_thread(channel, thread_ts)
    return found[0] if found else None


def _own_thread(user, slack: CallerSlack, thread_ts: str) -> None:
    """A thread of another user's conversation is invisible: 404, exactly like a missing one."""
    owner = _thread_owner(slack.connector.config.channel_id, thread_ts)
    if owner is not None and owner != user.id:
        raise NotFound("No such Slack thread.", code="thread_not_found")


def post_message(user, text: str, thread_ts: str | None, blocks: list | None) -> dict:
    """Post in the caller's channel (or one of its threads); {ts, channel}."""
    slack = _require(user)
    if thread_ts:
        _own_thread(user, slack, thread_ts)
    try:
        if slack.row is None:
            return slack.connector.post(text, thread_ts=thread_ts, blocks=blocks)
        # the integration's retries; a failure shows on it (status error, integration_error)
        return integrations.run_operation(
            slack.row, lambda c: c.post(text, thread_ts=thread_ts, blocks=blocks))
    except IntegrationError as exc:
        if "thread_not_found" in str(exc):
            raise NotFound("No such Slack thread.", code="thread_not_found") from None
        raise _upstream(exc) from None


def thread(user, thread_ts: str, limit: int, cursor: str | None) -> dict:
    """A thread's parent and replies, oldest first."""
    slack = _require(user)
    _own_thread(user, slack, thread_ts)
    try:
        return slack.connector.replies(thread_ts, limit, cursor)
    except IntegrationError as exc:
        if "thread_not_found" in str(exc):
            raise NotFound("No such Slack thread.", code="thread_not_found") from None
        raise _upstream(exc) from None


# ------------------------------------------------------------------ requests from Slack

@dataclass
class Verified:
    """A request whose signature matched; owner_id is None when the server's secret did."""

    payload: dict
    owner_id: str | None


def _secret_of(row: Integration) -> str | None:
    secret = (row.config or {}).get("signing_secret")
    return decrypt(secret) if secret else None


def _candidates(channel: str | None, thread_ts: str | None) -> list[tuple[str | None, str]]:
    """(owner or None, signing secret) pairs that may have signed a request about this place."""
    out: list[tuple[str | None, str]] = []
    owner = _thread_owner(channel, thread_ts) if channel and thread_ts else None
    if owner is not None:
        rows = [row for row in [_user_row(owner)] if row is not None]
    else:
        # Not one of our threads: the integrations posting in this channel (or, without a
        # channel, e.g. url_verification, every Slack integration with its own secret).
        rows = [row for row in db.session.scalars(select(Integration).where(
                    Integration.type == "slack").order_by(Integration.created_at))
                if channel is None or (row.config or {}).get("channel_id") == channel]
    for row in rows:
        secret = _secret_of(row)
        if secret:
            out.append((row.user_id, secret))
    if _settings().SLACK_SIGNING_SECRET:
        out.append((None, _settings().SLACK_SIGNING_SECRET))
    return out


def verify_request(raw: bytes, timestamp: str | None, signature: str | None,
                   payload: dict, channel: str | None, thread_ts: str | None) -> Verified:
    """Check X-Slack-Signature; 401 invalid_signature (also for a stale timestamp)."""
    candidates = _candidates(channel, thread_ts)
    if not candidates:
        raise ApiError("No Slack signing secret is configured.", status=503,
                       code="slack_not_configured")
    for owner, secret in candidates:
        if slack_core.verify_signature(secret, raw, timestamp, signature):
            return Verified(payload, owner)
    raise Unauthorized("The Slack signature is missing, wrong or older than 5 minutes.",
                       code="invalid_signature")


CHANNEL = "slack"  # webhook_events.platform of Slack's stored requests


def _reply_key(channel: str | None, ts: str | None) -> str:
    """The idempotency key of the send of a person's thread reply: the Slack message."""
    return f"slack:{channel}:{ts}"


def _draft_key(draft_id: str | None) -> str:
    """The idempotency key of the send of an approved AI draft: the draft."""
    return f"draft-sent:{draft_id}"


def accept(key: str, kind: str, team_id: str | None, verified: Verified, raw: bytes,
           request_id: str | None = None) -> bool:
    """Store a verified Slack request to be handled (kind "event" or "interaction") under its
    unique key, and hand it on; False when the key was stored before (Slack's retry, a
    replayed request): nothing is stored or run again.

    The key and the event row are written in one transaction, so a key is never taken by a
    request that was not stored. 503 `not_stored` when the database cannot store it now, so
    that Slack delivers it again.
    """
    body = json.dumps({"kind": kind, "signed_by": verified.owner_id,
                       "raw": raw.decode("utf-8", errors="replace")})

    def _store() -> int | None:
        event = WebhookEvent(platform=CHANNEL, raw_body=body, status="received", attempts=0,
                             request_id=request_id)
        db.session.add(SlackInbound(key=key[:255], kind=kind, team_id=team_id))
        db.session.add(event)
        try:
            db.session.commit()
        except IntegrityError:  # the key is taken: this request was stored before
            db.session.rollback()
            return None
        return event.id

    event_id = intake.stored_or_503(_store)
    if event_id is None:
        return False
    automation_queue.dispatch(event_id)  # a wake-up only: the sweep finds it if lost
    return True


def run_stored(raw_body: str) -> bool:
    """Handle a stored Slack request (what a run of a "slack" event does); False when there
    was nothing to do for it.
    """
    stored = json.loads(raw_body)
    raw = stored["raw"].encode()
    if stored["kind"] == "event":
        return _handle_event(Verified(_json_object(raw), stored["signed_by"]))
    payload, channel, thread_ts = _interaction(raw)
    return _handle_interaction(Verified(payload, stored["signed_by"]), channel, thread_ts)


def settle_stored(raw_body: str) -> int:
    """Before a stored Slack request runs again after an interrupted run: its reply to the
    customer (a thread reply or an approved draft) that was left `queued` mid-send is failed
    `unknown_outcome` (it may have reached the customer) instead of being sent again.
    """
    stored = json.loads(raw_body)
    raw = stored["raw"].encode()
    if stored["kind"] == "event":
        event = _json_object(raw).get("event") or {}
        channel, thread_ts = event.get("channel"), event.get("thread_ts")
        key = _reply_key(channel, event.get("ts"))
    else:
        payload, channel, thread_ts = _interaction(raw)
        value = _action_value(payload["actions"][0]) if payload.get("actions") else {}
        key = _draft_key(value.get("draft_id"))
    found = _find_thread(channel, thread_ts) if channel and thread_ts else None
    if found is None:
        return 0
    message = get_store().find_message_by_key(found[0], key)
    return settle_send(found[0], message) if message is not None else 0


STORED_CHANNEL = StoredChannel(run=run_stored, settle=settle_stored)


def _may_act(verified: Verified, owner_id: str) -> bool:
    """Only the secret the owner's integration uses may act on the owner's conversations."""
    row = _user_row(owner_id)
    if row is None or not row.enabled:
        return False
    own_secret = _secret_of(row)
    return verified.owner_id == owner_id if own_secret else verified.owner_id is None


def receive_event(raw: bytes, timestamp: str | None, signature: str | None,
                  request_id: str | None = None) -> dict:
    """An Events API request: url_verification, or an event stored to be handled."""
    payload = _json_object(raw)
    event = payload.get("event") if isinstance(payload.get("event"), dict) else {}
    verified = verify_request(raw, timestamp, signature, payload, event.get("channel"),
                              event.get("thread_ts"))
    if payload.get("type") == "url_verification":
        return {"challenge": str(payload.get("challenge", ""))}
    if payload.get("type") != "event_callback" or not payload.get("event_id"):
        return {"status": "ignored"}
    if not accept(f"event:{payload['event_id']}", "event", payload.get("team_id"), verified,
                  raw, request_id):
        return {"status": "duplicate"}
    return {"status": "received"}


def _json_object(raw: bytes) -> dict:
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise ApiError("The body is not a JSON object.", code="invalid_json")
    return payload


_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")
_ANGLE = re.compile(r"<([@#!]?)([^|>]+)(?:\|([^>]+))?>")


def plain_text(mrkdwn: str) -> str:
    """Slack's message text as the customer should read it (links, mentions, entities)."""
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", mrkdwn or "")
    text = _ANGLE.sub(lambda m: m.group(3) or (m.group(1) + m.group(2)
                                               if m.group(1) in "@#" else m.group(2)), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


def _handle_event(verified: Verified) -> bool:
    """A person's reply in a conversation's thread goes to the customer as an agent reply;
    False for anything else (nothing done).
    """
    event = verified.payload.get("event") or {}
    if event.get("type") != "message" or event.get("bot_id") or not event.get("user") \
            or event.get("subtype") not in HUMAN_SUBTYPES or event.get("app_id"):
        return False  # a bot (Dana's own posts included), an edit, a join...: not an answer
    channel, ts, thread_ts = event.get("channel"), event.get("ts"), event.get("thread_ts")
    if not channel or not thread_ts or thread_ts == ts:
        return False  # top-level chatter in the channel, not a reply in a conversation's thread
    found = _find_thread(channel, thread_ts)
    if found is None:
        return False
    owner_id, conversation_id, _refs = found
    if not _may_act(verified, owner_id):
        log.warning("Slack event %s signed for another workspace: ignored",
                    verified.payload.get("event_id"))
        return False
    text = plain_text(event.get("text", ""))
    if not text:
        return False
    message = messaging.send_agent_reply(
        owner_id, owner_id, conversation_id, text,
        idempotency_key=_reply_key(channel, ts),
        metadata={"source": "slack", "slack": {"user": event.get("user"), "ts": ts,
                                                "channel": channel}})
    if message["status"] == "failed":
        _tell_thread(owner_id, thread_ts, f":warning: Not delivered to the customer "
                                          f"({message['error']}).")
    return True


def _tell_thread(owner_id: str, thread_ts: str, text: str) -> None:
    """A short note from Dana in a conversation's thread (best effort: failures recorded)."""
    row = _user_row(owner_id)
    if row is None:
        return
    try:
        integrations.run_operation(row, lambda c: c.post(slack_core.escape(text),
                                                         thread_ts=thread_ts))
    except Exception:  # recorded on the integration (status error, integration_error)
        pass


# ------------------------------------------------------------------ interactions (buttons)

def _interaction(raw: bytes) -> tuple[dict, str | None, str | None]:
    """An interactivity body's payload, with the channel and thread it concerns."""
    form = parse_qs(raw.decode("utf-8", errors="replace"))
    try:
        payload = json.loads((form.get("payload") or [""])[0])
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise ApiError("The body has no JSON `payload` field.", code="invalid_payload")
    channel = (payload.get("channel") or {}).get("id") or \
        (payload.get("container") or {}).get("channel_id")
    message = payload.get("message") or {}
    thread_ts = message.get("thread_ts") or (payload.get("container") or {}).get("message_ts")
    return payload, channel, thread_ts


def _action_value(action: dict) -> dict:
    """A button's JSON value ({} when it is not JSON)."""
    try:
        value = json.loads(action.get("value") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def receive_interaction(raw: bytes, timestamp: str | None, signature: str | None,
                        request_id: str | None = None) -> dict:
    """A button click on one of Dana's posts; verified, deduplicated, stored to be handled."""
    payload, channel, thread_ts = _interaction(raw)
    verified = verify_request(raw, timestamp, signature, payload, channel, thread_ts)
    if payload.get("type") != "block_actions" or not payload.get("actions"):
        return {"status": "ignored"}
    action = payload["actions"][0]
    user_id = (payload.get("user") or {}).get("id")
    key = payload.get("trigger_id") or f"{action.get('action_ts')}:{user_id}"
    if not accept(f"interaction:{key}", "interaction", (payload.get("team") or {}).get("id"),
                  verified, raw, request_id):
        return {"status": "duplicate"}
    return {"status": "received"}


def _handle_interaction(verified: Verified, channel: str | None, thread_ts: str | None) -> bool:
    """Act on a button click; False when it concerns nothing Dana may act on."""
    payload = verified.payload
    action = payload["actions"][0]
    value = _action_value(action)
    if not value or not channel or not thread_ts:
        return False
    found = _find_thread(channel, thread_ts)
    if found is None:
        return False
    owner_id, conversation_id, refs = found
    if not _may_act(verified, owner_id) or value.get("conversation_id") != conversation_id:
        log.warning("Slack interaction for a conversation it does not concern: ignored")
        return False
    who = (payload.get("user") or {}).get("id") or ""
    if not slack_core.SLACK_USER_ID.match(who):
        return False
    action_id = action.get("action_id")
    if action_id == slack_core.ACTION_TAKE:
        _take(owner_id, conversation_id, value.get("task_id"), who, refs)
    elif action_id == slack_core.ACTION_CLOSE:
        _close(owner_id, conversation_id, value.get("task_id"), who, refs)
    elif action_id in (slack_core.ACTION_APPROVE, slack_core.ACTION_SEND_EDITED):
        edited = None
        if action_id == slack_core.ACTION_SEND_EDITED:
            state = ((payload.get("state") or {}).get("values") or {})
            edited = ((state.get(slack_core.DRAFT_INPUT_BLOCK) or {})
                      .get(slack_core.DRAFT_INPUT_ACTION) or {}).get("value")
        _send_draft(owner_id, conversation_id, value.get("draft_id"), edited, who,
                    (payload.get("message") or {}).get("ts"), thread_ts)
    else:
        return False
    return True


def _update_parent(owner_id: str, conversation_id: str, refs: dict, state: str,
                   who: str) -> None:
    row = _user_row(owner_id)
    conversation = get_store().get_conversation(owner_id, conversation_id)
    if row is None or conversation is None:
        return
    text, blocks = slack_core.conversation_blocks(
        conversation, integrations.conversation_link(conversation_id), state, by_user=who)
    try:
        integrations.run_operation(row, lambda c: c.update(refs["thread_ts"], text,
                                                           blocks=blocks,
                                                           channel=refs.get("channel")))
    except Exception:  # recorded on the integration
        pass


def _task_of(owner_id: str, task_id: str | None, conversation_id: str) -> dict | None:
    task = get_store().get_task(owner_id, task_id) if task_id else None
    return task if task and task.get("conversation_id") == conversation_id else None


def _take(owner_id: str, conversation_id: str, task_id: str | None, who: str,
          refs: dict) -> None:
    task = _task_of(owner_id, task_id, conversation_id)
    if task is not None and task["status"] == "open":
        tasks.update_task(owner_id, task["id"], {"status": "in_progress"})
    _update_parent(owner_id, conversation_id, refs, "taken", who)


def _close(owner_id: str, conversation_id: str, task_id: str | None, who: str,
           refs: dict) -> None:
    task = _task_of(owner_id, task_id, conversation_id)
    if task is not None and task["status"] != "done":
        tasks.update_task(owner_id, task["id"], {"status": "done"})
    store = get_store()
    conversation = store.get_conversation(owner_id, conversation_id)
    if conversation is not None and conversation["status"] != "resolved":
        resolved = store.update_conversation(owner_id, conversation_id, {"status": "resolved"})
        events.conversation_updated(owner_id, resolved)
        status_changed(owner_id, conversation["status"], resolved)
    _update_parent(owner_id, conversation_id, refs, "closed", who)


def _send_draft(owner_id: str, conversation_id: str, draft_id: str | None, edited: str | None,
                who: str, draft_ts: str | None, thread_ts: str) -> None:
    """Send an AI draft (as approved, or as edited in Slack) to the customer, once."""
    store = get_store()
    draft = store.get_message(owner_id, draft_id) if draft_id else None
    info = (draft or {}).get("metadata", {}).get("ai_draft")
    if draft is None or draft["conversation_id"] != conversation_id or not info:
        return
    text = (edited or "").strip() or draft["text"]
    sent = messaging.send_message(
        owner_id, conversation_id, OutboundMessage(text=text), "agent",
        idempotency_key=_draft_key(draft_id),
        metadata={"source": "slack", "draft_id": draft_id, "edited": text != draft["text"],
                  "slack": {"user": who}})
    store.update_message(owner_id, draft_id, metadata={"ai_draft": {
        **info, "status": "sent" if sent["status"] != "failed" else "failed",
        "message_id": sent["id"], "approved_by": who}})
    row = _user_row(owner_id)
    if row is None or not draft_ts:
        return
    outcome = "Sent" if sent["status"] != "failed" else f"Not delivered ({sent['error']})"
    note = f"{outcome} by <@{who}>: {slack_core.escape(text)}"
    try:
        integrations.run_operation(row, lambda c: c.update(
            draft_ts, note, blocks=[{"type": "section", "text": {"type": "mrkdwn",
                                                                  "text": note[:3000]}}]))
    except Exception:  # recorded on the integration
        pass
