"""The workflow engine: trigger -> conditions -> ordered actions, every run recorded.

The processor calls handle_inbound() for each new customer message (once per message) and
handle_message_failed() when a sent message fails; a run that opened a new hand-off task
then runs the `handoff` workflows (e.g. open a ticket, sync the contact to the CRM).
Workflows run in `position` order; the first matching workflow with stop_processing ends the
evaluation. If nothing matched and the AI may answer, the default behaviour (AI reply,
hand-off when unsure) runs, so a customer is never met with silence.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from datetime import time as dtime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import bindparam, insert, select

from automation.ai.response_generator import detect_intent, detect_language
from automation.core import definitions as d
from automation.core.actions import ACTIONS, RunContext
from automation.core.business_profile import get_profile
from automation.core.patterns import PatternError, pattern_matches
from automation.platforms import base as ev
from automation.platforms.base import InboundEvent
from models_db import Workflow, WorkflowRun, db, new_id, utcnow
from utils.db import execute
from utils.store import get_store

log = logging.getLogger("dana.workflows")


# ------------------------------------------------------------------------ conditions

def _text(ctx: RunContext) -> str:
    return ((ctx.message or {}).get("text") or "").strip()


def _cached(ctx: RunContext, key: str, compute):
    if key not in ctx.cache:
        ctx.cache[key] = compute()
    return ctx.cache[key]


def _platform(ctx, c: d.PlatformCondition) -> bool:
    return ctx.conversation["platform"] in c.platforms


def _keywords(ctx, c: d.KeywordsCondition) -> bool:
    text = _text(ctx).lower()
    for word in c.any:
        word = word.lower()
        if c.whole_word:
            if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text):
                return True
        elif word in text:
            return True
    return False


def _regex(ctx, c: d.RegexCondition) -> bool:
    """RE2, linear in the text: a user's pattern can never freeze the process."""
    try:
        return pattern_matches(c.pattern, _text(ctx))
    except PatternError as exc:  # saved before patterns were checked with RE2
        log.warning("workflow regex condition refused by RE2, not matching: %s", exc)
        return False


def _business_hours(ctx, c: d.BusinessHoursCondition) -> bool:
    tz = ZoneInfo(ctx.business.get("timezone") or "UTC")
    when = ctx.item.timestamp if ctx.item else datetime.now(tz)
    local = when.astimezone(tz)
    start = dtime.fromisoformat(c.start)
    end = dtime(23, 59, 59, 999999) if c.end == "24:00" else dtime.fromisoformat(c.end)
    inside = local.weekday() in c.days and start <= local.time() < end
    return inside if c.inside else not inside


def _new_contact(ctx, c: d.NewContactCondition) -> bool:
    return ctx.new_contact == c.value


def _label(ctx, c: d.LabelCondition) -> bool:
    return (c.label in (ctx.conversation.get("labels") or [])) == c.present


def _status(ctx, c: d.StatusCondition) -> bool:
    return ctx.conversation["status"] in c.statuses


def _intent(ctx, c: d.IntentCondition) -> bool:
    return _cached(ctx, "intent", lambda: detect_intent(_text(ctx))) in c.intents


def _language(ctx, c: d.LanguageCondition) -> bool:
    return _cached(ctx, "language", lambda: detect_language(_text(ctx))) in c.languages


CONDITIONS = {
    "platform": _platform, "keywords": _keywords, "regex": _regex,
    "business_hours": _business_hours, "new_contact": _new_contact, "label": _label,
    "status": _status, "intent": _intent, "language": _language,
}

DEFAULT_DEFINITION = {
    "trigger": {"type": "message_received"},
    "conditions": [],
    "actions": [{"type": "ai_reply"}],
    "stop_on_error": False,
    "stop_processing": True,
}
_DEFAULT = d.WorkflowDefinition.model_validate(DEFAULT_DEFINITION)


# -------------------------------------------------------------------------- running

def _run_actions(ctx: RunContext, definition: d.WorkflowDefinition,
                 workflow_id: str | None = None) -> tuple[list[dict], str | None]:
    _write_pending_runs(commit=True)  # what ran before is on record before anything new runs
    outcomes, first_error = [], None
    for index, action in enumerate(definition.actions):
        started = time.monotonic()
        ctx.workflow_id, ctx.action_index = workflow_id, index
        try:
            result = ACTIONS[action.type](ctx, action)
        except Exception as exc:  # recorded; the rest still run unless stop_on_error
            log.warning("action %s failed: %s", action.type, exc)
            result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            first_error = first_error or f"{action.type}: {exc}"
        result = {"index": index, "type": action.type,
                  "ms": round((time.monotonic() - started) * 1000), **result}
        outcomes.append(result)
        if result["status"] == "failed" and definition.stop_on_error:
            break
    return outcomes, first_error


def _evaluate(ctx: RunContext, definition: d.WorkflowDefinition) -> tuple[bool, list[dict]]:
    results = []
    for cond in definition.conditions:
        try:
            ok = bool(CONDITIONS[cond.type](ctx, cond))
        except Exception as exc:  # a broken condition never matches
            log.warning("condition %s errored: %s", cond.type, exc)
            ok = False
        results.append({"type": cond.type, "matched": ok})
        if not ok:
            break
    return all(r["matched"] for r in results), results


_W, _R = Workflow.__table__, WorkflowRun.__table__
# Built once (Core statements keep their compiled form): the hot path reads the owner's
# workflows and records a run for every customer message.
_INSERT_RUN = insert(_R)
_RAN = select(_R.c.id).where(_R.c.workflow_id == bindparam("workflow_id"),
                             _R.c.message_id == bindparam("message_id"),
                             _R.c.status == "completed").limit(1)
_WORKFLOWS = (select(_W.c.id, _W.c.definition, _W.c.updated_at)
              .where(_W.c.user_id == bindparam("owner_id"), _W.c.enabled.is_(True),
                     _W.c.trigger_type.in_(bindparam("triggers", expanding=True)))
              .order_by(_W.c.position, _W.c.created_at))


class _Workflow(NamedTuple):
    id: str
    definition: dict
    updated_at: object


# Validated definitions by (workflow id, updated_at): an edit changes updated_at, so an
# entry is never stale; bounded, cleared when full.
_DEFINITIONS: dict[tuple, d.WorkflowDefinition] = {}
_DEFINITIONS_MAX = 2000


def _definition(workflow: _Workflow) -> d.WorkflowDefinition:
    """The workflow's definition, validated once per process and version (ValidationError
    when invalid).
    """
    key = (workflow.id, workflow.updated_at)
    found = _DEFINITIONS.get(key)
    if found is None:
        found = d.WorkflowDefinition.model_validate(workflow.definition)
        if len(_DEFINITIONS) >= _DEFINITIONS_MAX:
            _DEFINITIONS.clear()
        _DEFINITIONS[key] = found
    return found


# Run records waiting for the write they join (inside runs_join_next_write); None outside.
_pending_runs: ContextVar[list | None] = ContextVar("dana_pending_runs", default=None)


def _record(ctx: RunContext, workflow: _Workflow | None, matched: bool, conditions: list,
            actions: list, error: str | None, started: float) -> None:
    row = dict(
        id=new_id(), user_id=ctx.owner_id, workflow_id=workflow.id if workflow else None,
        trigger=ctx.trigger, conversation_id=ctx.conversation["id"],
        message_id=(ctx.message or {}).get("id"), matched=matched,
        conditions=conditions, actions=actions,
        status=("failed" if error else "completed") if matched else "not_matched",
        error=error, duration_ms=round((time.monotonic() - started) * 1000),
        started_at=utcnow())
    pending = _pending_runs.get()
    if pending is not None:
        pending.append(row)
        return
    execute(_INSERT_RUN, row)
    db.session.commit()


def _write_pending_runs(commit: bool) -> None:
    """INSERT the run records waiting inside runs_join_next_write (one statement), committed
    or left to the caller's transaction.
    """
    pending = _pending_runs.get()
    if not pending:
        return
    rows = list(pending)
    pending.clear()
    execute(_INSERT_RUN, rows)
    if commit:
        db.session.commit()


@contextmanager
def runs_join_next_write() -> Iterator[None]:
    """The runs recorded inside the block are written when it ends, in the transaction of the
    caller's next write (the processor's `automation` mark on the message: one commit for
    both, not one each). Before any further actions run they are written and committed as
    before, so a crash never finds actions done and their run unrecorded for longer than
    today's record did; nothing slow (no action, no call out) runs while they wait. When the
    block raises they are committed at once.
    """
    token = _pending_runs.set([])
    try:
        yield
    except BaseException:
        try:
            _write_pending_runs(commit=True)
        except Exception:  # the failure being raised matters more: the run is retried
            log.exception("could not record the workflow runs of a failed run")
        raise
    else:
        _write_pending_runs(commit=False)
    finally:
        _pending_runs.reset(token)


def _already_ran(workflow_id: str, message_id: str | None) -> bool:
    if not message_id:
        return False
    return execute(_RAN, {"workflow_id": workflow_id,
                                     "message_id": message_id}).first() is not None


def _workflows_for(owner_id: str, triggers: list[str]) -> list[_Workflow]:
    return [_Workflow(*row) for row in execute(
        _WORKFLOWS, {"owner_id": owner_id, "triggers": list(triggers)})]


def run_workflows(ctx: RunContext, triggers: list[str], payload: str | None = None) -> str:
    """Evaluate the owner's workflows for these triggers; returns 'handled' or 'no_match'."""
    outcome = "no_match"
    for workflow in _workflows_for(ctx.owner_id, triggers):
        try:
            definition = _definition(workflow)
        except ValidationError:
            log.error("workflow %s has an invalid definition; skipped", workflow.id)
            continue
        if definition.trigger.type not in (ctx.trigger, "conversation_opened"):
            continue
        if definition.trigger.type == "postback" and definition.trigger.payload \
                and definition.trigger.payload != payload:
            continue
        if not ctx.fresh and _already_ran(workflow.id, (ctx.message or {}).get("id")):
            outcome = "handled"
            if definition.stop_processing:
                break
            continue
        started = time.monotonic()
        matched, conditions = _evaluate(ctx, definition)
        actions, error = _run_actions(ctx, definition, workflow.id) if matched else ([], None)
        _record(ctx, workflow, matched, conditions, actions, error, started)
        if matched:
            outcome = "handled"
            if definition.stop_processing:
                break
    return outcome


def handle_inbound(owner_id: str, conversation: dict, message: dict, item: InboundEvent, *,
                   opened: bool = False, new_contact: bool = False, fresh: bool = False) -> str:
    """Run the automation for one new customer message or postback (`fresh`: stored by this
    run, see RunContext.fresh).
    """
    trigger = "postback" if item.kind == ev.POSTBACK else "message_received"
    ctx = RunContext(owner_id=owner_id, conversation=conversation, message=message, item=item,
                     business=get_profile(owner_id), trigger=trigger,
                     new_contact=new_contact, opened=opened, fresh=fresh)
    payload = item.payload
    triggers = [trigger] + (["conversation_opened"] if opened else [])
    outcome = run_workflows(ctx, triggers, payload)
    if outcome == "no_match" and ctx.conversation["ai_enabled"] and not ctx.handed_off:
        # Never silence: fall back to the default behaviour (AI reply, hand-off when unsure).
        started = time.monotonic()
        definition = _DEFAULT
        actions, error = _run_actions(ctx, definition)
        _record(ctx, None, True, [{"type": "fallback", "matched": True}], actions, error, started)
        outcome = "fallback"
    _run_handoff_workflows(ctx)
    return outcome


def _run_handoff_workflows(ctx: RunContext) -> None:
    """A run that opened a new hand-off task fires the owner's `handoff` workflows (once:
    their own hand-off finds the task open and opens none).
    """
    if not ctx.new_handoff or ctx.trigger == "handoff":
        return
    # ctx.conversation is current: the hand-off that set new_handoff read it again
    # (actions._do_handoff), and every later action that changes it replaces it.
    handoff_ctx = RunContext(owner_id=ctx.owner_id, conversation=ctx.conversation,
                             message=ctx.message, item=ctx.item, business=ctx.business,
                             trigger="handoff", new_contact=ctx.new_contact, sends=ctx.sends,
                             handed_off=True, task=ctx.task)
    run_workflows(handoff_ctx, ["handoff"])


def handle_message_failed(owner_id: str, message: dict) -> str:
    """Run `message_failed` workflows for a sent message that failed (e.g. outside the window)."""
    conversation = get_store().get_conversation(owner_id, message["conversation_id"])
    if conversation is None:
        return "no_match"
    ctx = RunContext(owner_id=owner_id, conversation=conversation, message=message, item=None,
                     business=get_profile(owner_id), trigger="message_failed")
    outcome = run_workflows(ctx, ["message_failed"])
    _run_handoff_workflows(ctx)
    return outcome
