"""The workflow actions, in one explicit registry (ACTIONS).

Each action is a plain function `(ctx, spec) -> dict` returning what it did; it raises
ActionFailed (or any exception) on failure, which the engine records. Customer-facing
actions are skipped while the AI is paused for the conversation, and every send carries an
idempotency key derived from the inbound message, so a retried run never messages twice.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from automation.ai.entities import extract_entities
from automation.ai.response_generator import ReplyContext, generate_reply
from automation.core import definitions as d
from automation.core import handoff
from automation.core.milestones import status_changed
from automation.core.policy import policy
from automation.core.sending import send_message
from automation.core.tasks import create_task as open_task
from automation.integrations.base import ActionRequest, Notification, conversation_link
from automation.platforms.base import InboundEvent, OutboundMessage
from utils import events
from utils.idempotency import AI_DRAFT, AUTO, action_key, idempotency_key
from utils.store import DuplicateMessage, NewMessage, get_store


class ActionFailed(Exception):
    """An action could not do its job; the message says why."""


@dataclass
class RunContext:
    """Everything an action may need about the event being handled."""

    owner_id: str
    conversation: dict
    message: dict | None
    item: InboundEvent | None
    business: dict
    trigger: str
    new_contact: bool = False
    # the conversation was opened by `message` during this run: until the run sends something,
    # its thread is that message alone
    opened: bool = False
    # `message` was stored by this run (not a redelivery or a re-run): nothing can have
    # answered it or run for it yet, so the re-run checks (already answered, workflow already
    # ran) are skipped; a second answer is still refused by the reply's idempotency key
    fresh: bool = False
    sends: int = 0
    handed_off: bool = False
    cache: dict = field(default_factory=dict)
    # set by the engine for each action: which workflow (None = the default) and which action
    workflow_id: str | None = None
    action_index: int = 0
    # the hand-off task this run opened (or, for a `handoff` trigger, the one that fired it)
    task: dict | None = None
    new_handoff: bool = False

    def action_key(self) -> str:
        """A stable idempotency key of the current action run (see utils/idempotency.py)."""
        return action_key(self.workflow_id, (self.message or {}).get("id"), self.trigger,
                          self.action_index)

    def reply_key(self, kind: str) -> str | None:
        """A stable idempotency key for the n-th automated send answering this message."""
        if not self.message:
            return None
        self.sends += 1
        return idempotency_key(AUTO, self.message["id"], self.sends)

    def refresh_conversation(self) -> dict:
        """Read the conversation again after an action changed it."""
        self.conversation = get_store().get_conversation(self.owner_id, self.conversation["id"])
        return self.conversation


_VAR = re.compile(r"\{\{\s*([a-z_]+)\.([A-Za-z0-9_]+)\s*\}\}")
# ctx.cache keys: the rows of this run's lookups ({variable: row}) and the message's entities
LOOKUP_ROWS, ENTITIES = "lookup_rows", "entities"


def message_entities(ctx: RunContext) -> dict:
    """Order number, e-mail and phone found in the message (computed once per run)."""
    if ENTITIES not in ctx.cache:
        ctx.cache[ENTITIES] = extract_entities((ctx.message or {}).get("text"))
    return ctx.cache[ENTITIES]


def _text_of(value) -> str:
    return "" if value is None else str(value)


def fill_variables(text: str, ctx: RunContext) -> str:
    """Fill {{contact.first_name}}-style variables; unknown ones become empty text.

    Also {{entities.order_number|email|phone}} from the message and {{<variable>.<column>}}
    from the row of an earlier `lookup` action.
    """
    contact = ctx.conversation.get("contact") or {}
    name = contact.get("name") or ""
    values = {
        ("contact", "name"): name,
        ("contact", "first_name"): name.split(" ")[0] if name else "",
        ("business", "name"): ctx.business.get("name", ""),
        ("message", "text"): (ctx.message or {}).get("text") or "",
        ("conversation", "platform"): ctx.conversation.get("platform", ""),
    }

    def value(match: re.Match) -> str:
        space, key = match.group(1), match.group(2)
        if (space, key) in values:
            return values[(space, key)]
        if space == "entities":
            return _text_of(message_entities(ctx).get(key))
        return _text_of((ctx.cache.get(LOOKUP_ROWS, {}).get(space) or {}).get(key))

    rendered = _VAR.sub(value, text)
    return re.sub(r"[ \t]+([,.!?])", r"\1", rendered).strip()


def _customer_facing_allowed(ctx: RunContext) -> dict | None:
    if not ctx.conversation["ai_enabled"]:
        return {"status": "skipped", "detail": "automated replies are paused for this conversation"}
    if ctx.handed_off:
        return {"status": "skipped", "detail": "handed off to a human"}
    return None


def _send(ctx: RunContext, outbound: OutboundMessage, sender_type: str, metadata: dict) -> dict:
    message = send_message(ctx.owner_id, ctx.conversation["id"], outbound, sender_type,
                           idempotency_key=ctx.reply_key(sender_type), metadata=metadata,
                           conversation=ctx.conversation)
    if message["status"] == "failed":
        raise ActionFailed(f"send failed: {message['error']}")
    return {"status": "ok", "message_id": message["id"], "message_status": message["status"]}


def _do_handoff(ctx: RunContext, reason: str, history: list[dict] | None = None) -> dict:
    def opened(task: dict) -> None:
        ctx.new_handoff = True

    task = handoff.hand_off(ctx.owner_id, ctx.conversation, reason,
                            trigger_message_id=(ctx.message or {}).get("id"), on_created=opened,
                            history=history)
    ctx.handed_off, ctx.task = True, task
    ctx.refresh_conversation()
    return {"status": "ok", "detail": f"handed off ({reason})", "task_id": task["id"]}


def ai_reply(ctx: RunContext, spec: d.AiReplyAction) -> dict:
    """Answer from the knowledge base with the configured AI, or hand off when unsure."""
    blocked = _customer_facing_allowed(ctx)
    if blocked:
        return blocked
    if ctx.message and not ctx.fresh and get_store().find_message_by_key(
            ctx.owner_id, idempotency_key(AUTO, ctx.message["id"])):
        ctx.sends += 1
        return {"status": "ok", "detail": "already answered"}
    if ctx.message and spec.draft_for_approval and not ctx.fresh and \
            get_store().find_message_by_key(ctx.owner_id,
                                            idempotency_key(AI_DRAFT, ctx.message["id"])):
        return {"status": "ok", "detail": "already drafted"}
    if not policy().consume_ai_reply(ctx.owner_id):
        return _do_handoff(ctx, "quota_exhausted")
    try:
        history = handoff.conversation_history(
            ctx.owner_id, ctx.conversation["id"],
            opened_by=ctx.message if ctx.opened and ctx.message and not ctx.sends else None)
        answer = generate_reply(ReplyContext(
            user_id=ctx.owner_id, business=ctx.business, conversation_id=ctx.conversation["id"],
            message_text=(ctx.message or {}).get("text") or "", history=history,
            contact_name=(ctx.conversation.get("contact") or {}).get("name"),
            platform=ctx.conversation["platform"],
            facts=dict(ctx.cache.get(LOOKUP_ROWS, {})) if spec.use_lookup else {}))
    except Exception:  # the run fails and is retried: its retry counts the reply again
        policy().release_ai_reply(ctx.owner_id)
        raise
    if answer.handoff or not answer.text:
        policy().release_ai_reply(ctx.owner_id)  # a hand-off is not an AI reply
        return _do_handoff(ctx, answer.reason or "low_confidence", history)
    if spec.draft_for_approval:
        return _draft_for_approval(ctx, answer)
    out = _send(ctx, OutboundMessage(text=answer.text), "ai",
                {"ai": {"provider": answer.provider, "confidence": round(answer.confidence, 3),
                        "sources": answer.sources}})
    out["provider"] = answer.provider
    return out


def _draft_for_approval(ctx: RunContext, answer) -> dict:
    """Keep the AI's answer as a draft note and post it to Slack for approval, unsent.

    Nobody could approve it without Slack, so then a human is called in instead (never
    silence). Approve / Send edited in Slack sends it (services/slack.py).
    """
    try:
        policy().require_integration(ctx.owner_id, "slack")
    except LookupError:
        return _do_handoff(ctx, "draft_needs_approval")
    key = idempotency_key(AI_DRAFT, ctx.message["id"]) if ctx.message else None
    try:
        draft = get_store().add_message(ctx.owner_id, NewMessage(
            conversation_id=ctx.conversation["id"], direction="outbound", sender_type="ai",
            text=answer.text, is_note=True, status="sent", idempotency_key=key,
            metadata={"ai_draft": {"status": "pending", "provider": answer.provider,
                                   "confidence": round(answer.confidence, 3)}}))
    except DuplicateMessage:
        return {"status": "ok", "detail": "already drafted"}
    events.new_message(ctx.owner_id, ctx.conversation["id"], draft)
    policy().notify_team(Notification(
        owner_id=ctx.owner_id, kind="ai_draft", text=answer.text, title="AI draft",
        conversation=ctx.conversation, message=draft,
        link=conversation_link(ctx.conversation["id"])), only_type="slack")
    return {"status": "ok", "detail": "draft posted for approval", "draft_id": draft["id"]}


def send_text(ctx: RunContext, spec: d.SendTextAction) -> dict:
    """Send a fixed text (with template variables)."""
    blocked = _customer_facing_allowed(ctx)
    if blocked:
        return blocked
    return _send(ctx, OutboundMessage(text=fill_variables(spec.text, ctx)), "ai",
                 {"workflow_action": "send_text"})


def send_quick_replies(ctx: RunContext, spec: d.SendQuickRepliesAction) -> dict:
    """Send a text with tappable options (their payloads come back as postbacks/quick replies)."""
    blocked = _customer_facing_allowed(ctx)
    if blocked:
        return blocked
    options = [{"title": o.title, "payload": o.payload} for o in spec.options]
    return _send(ctx, OutboundMessage(text=fill_variables(spec.text, ctx), quick_replies=options),
                 "ai", {"workflow_action": "send_quick_replies"})


def create_task(ctx: RunContext, spec: d.CreateTaskAction) -> dict:
    """Open a task on this conversation."""
    task = open_task(ctx.owner_id, {
        "title": fill_variables(spec.title, ctx),
        "description": fill_variables(spec.description, ctx) if spec.description else None,
        "priority": spec.priority, "conversation_id": ctx.conversation["id"]})
    return {"status": "ok", "task_id": task["id"]}


def _update_conversation(ctx: RunContext, changes: dict) -> dict:
    previous_status = ctx.conversation.get("status")
    conv = get_store().update_conversation(ctx.owner_id, ctx.conversation["id"], changes)
    ctx.conversation = conv
    events.conversation_updated(ctx.owner_id, conv)
    status_changed(ctx.owner_id, previous_status, conv)
    return {"status": "ok", "changes": changes}


def assign(ctx: RunContext, spec: d.AssignAction) -> dict:
    """Assign the conversation (the action `assign`)."""
    return _update_conversation(ctx, {"assignee_id": spec.assignee_id})


def add_label(ctx: RunContext, spec: d.AddLabelAction) -> dict:
    """Add a label unless the conversation already has it."""
    labels = list(ctx.conversation.get("labels") or [])
    if spec.label in labels:
        return {"status": "ok", "detail": "label already present"}
    return _update_conversation(ctx, {"labels": labels + [spec.label]})


def set_status(ctx: RunContext, spec: d.SetStatusAction) -> dict:
    """Move the conversation to the action's status."""
    return _update_conversation(ctx, {"status": spec.status})


def pause_ai(ctx: RunContext, spec: d.PauseAiAction) -> dict:
    """Stop automated replies in this conversation."""
    return _update_conversation(ctx, {"ai_enabled": False})


def handoff_action(ctx: RunContext, spec: d.HandoffAction) -> dict:
    """Hand off to a human, once per run."""
    if ctx.handed_off:
        return {"status": "skipped", "detail": "already handed off"}
    return _do_handoff(ctx, spec.reason)


def notify(ctx: RunContext, spec: d.NotifyAction) -> dict:
    """Tell the team: on the dashboard (Socket.IO) or through a configured integration.

    An integration's delivery happens after the customer has been answered (it is queued
    here); its failure shows on the integration (status error, `integration_error`).
    """
    text = fill_variables(spec.template, ctx)
    if spec.channel == "dashboard":
        events.notification(ctx.owner_id, {"conversation_id": ctx.conversation["id"],
                                           "message": text, "trigger": ctx.trigger})
        return {"status": "ok", "channel": "dashboard"}
    try:
        policy().require_integration(ctx.owner_id, spec.channel)
    except LookupError as exc:
        raise ActionFailed(str(exc)) from None
    policy().notify_team(Notification(
        owner_id=ctx.owner_id, kind="notify", text=text,
        title=fill_variables(spec.title, ctx) if spec.title else "",
        conversation=ctx.conversation, message=ctx.message, target=spec.target,
        link=conversation_link(ctx.conversation["id"])), only_type=spec.channel)
    return {"status": "queued", "channel": spec.channel}


def lookup(ctx: RunContext, spec: d.LookupAction) -> dict:
    """Read a row of the business's database; its columns become {{<variable>.<column>}}.

    Parameters are rendered from templates and bound by the connector. When a parameter
    renders empty, no row matches or the database fails (the failure is recorded on the
    integration), `on_missing` hands off (default), continues, or fails the action.
    """
    params = {name: fill_variables(template, ctx) for name, template in spec.params.items()}
    empty = sorted(name for name, value in params.items() if not value)
    if empty:
        return _lookup_missing(ctx, spec, f"no value for {', '.join(empty)} in the message")
    run = policy().run_lookup
    if run is None:
        raise ActionFailed("database lookups are not available in this app")
    try:
        result = run(ctx.owner_id, spec.integration, spec.query, params)
    except Exception as exc:  # an ApiError (not configured, bad params, database failure)
        return _lookup_missing(ctx, spec, f"lookup failed: {exc}", failed=True)
    if not result["rows"]:
        return _lookup_missing(ctx, spec, "no row matched")
    ctx.cache.setdefault(LOOKUP_ROWS, {})[spec.variable] = result["rows"][0]
    return {"status": "ok", "query": spec.query, "columns": result["columns"],
            "row_count": result["row_count"]}


def _lookup_missing(ctx: RunContext, spec: d.LookupAction, why: str,
                    failed: bool = False) -> dict:
    ctx.cache.setdefault(LOOKUP_ROWS, {})[spec.variable] = {}
    if spec.on_missing == "fail":
        raise ActionFailed(why)
    if spec.on_missing == "continue" or ctx.handed_off:
        return {"status": "ok", "detail": why, "row_count": 0}
    out = _do_handoff(ctx, "lookup_failed" if failed else "lookup_no_match")
    out["detail"] = f"{why}; {out['detail']}"
    return out


def _integration_action(ctx: RunContext, action: str, only_type: str | None,
                        params: dict) -> dict:
    """Queue a CRM / help-desk / analytics action; it runs after the customer's answer, once
    per action run (the idempotency key), and its failure shows on the integration.
    """
    request = ActionRequest(
        owner_id=ctx.owner_id, action=action, idempotency_key=ctx.action_key(),
        conversation=ctx.conversation, contact=dict(ctx.conversation.get("contact") or {}),
        message=ctx.message, task=ctx.task, params=params, trigger=ctx.trigger,
        link=conversation_link(ctx.conversation["id"]))
    try:
        types = policy().submit_action(request, only_type)
    except LookupError as exc:
        raise ActionFailed(str(exc)) from None
    return {"status": "queued", "integrations": types, "idempotency_key": request.idempotency_key}


def crm_sync(ctx: RunContext, spec: d.CrmSyncAction) -> dict:
    """Sync the customer to the CRM(s): upsert the contact, log the conversation."""
    return _integration_action(ctx, "crm_sync", spec.integration,
                               {"log_conversation": spec.log_conversation})


def create_ticket(ctx: RunContext, spec: d.CreateTicketAction) -> dict:
    """Open a help-desk ticket for this conversation (kept on its hand-off task)."""
    return _integration_action(ctx, "create_ticket", spec.integration, {
        "subject": fill_variables(spec.subject, ctx), "tags": list(spec.tags),
        "priority": spec.priority})


def track_event(ctx: RunContext, spec: d.TrackEventAction) -> dict:
    """Send an analytics event (no personal data: the params are the workflow's own)."""
    return _integration_action(ctx, "track_event", spec.integration, {
        "event": spec.event, "params": dict(spec.params),
        "platform": ctx.conversation.get("platform")})


# The registry: action type -> function. Adding an action is a function plus a line here
# (and its model in definitions.py).
ACTIONS = {
    "ai_reply": ai_reply,
    "send_text": send_text,
    "send_quick_replies": send_quick_replies,
    "create_task": create_task,
    "assign": assign,
    "add_label": add_label,
    "set_status": set_status,
    "pause_ai": pause_ai,
    "handoff": handoff_action,
    "notify": notify,
    "lookup": lookup,
    "crm_sync": crm_sync,
    "create_ticket": create_ticket,
    "track_event": track_event,
}
