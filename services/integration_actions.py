"""Workflow actions run on the owner's integrations: `crm_sync`, `create_ticket`, `track_event`.

The workflow action (automation/core/actions.py) asks, through the automation policy, for
`submit_action(request)`: it checks now that an enabled integration of the plan offers the
action (else the action fails, visibly, in the workflow run) and defers the call until the
customer has been answered (services/integrations.defer: after the HTTP response inline, at
the end of the job in the RQ worker). Then `perform()` runs it on each target integration:

- on the integration the workflow names (`integration`), or else on every enabled one of the
  action's category (ACTION_CATEGORIES: crm, helpdesk, analytics) that offers it;
- once per action run: an IntegrationAction row per (owner, type, action, idempotency key)
  is claimed before the call and marked `done` with the service's id after it, so a retried
  workflow run (event replay, RQ retry) finds it done and calls nothing. A failed run may be
  tried again by the next run of the same key; a run left `running` by a killed process is
  taken over after RUNNING_EXPIRES (the connectors search before they create, so a take-over
  finds what the killed run made instead of making it twice);
- retried and recorded like a notification (services/integrations.run_operation: tenacity,
  Retry-After honoured, 401 -> status `error`, `last_error`, `integration_error` event);
- what the service returned is kept: external ids on our contact and task (IntegrationLink,
  `link()`/`links_for()`), and on the conversation (IntegrationRef).
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from automation.core.handoff import conversation_history
from automation.integrations.base import ACTION_CATEGORIES, ActionRequest
from automation.registry import INTEGRATIONS
from models_db import Integration, IntegrationAction, IntegrationLink, db, utcnow
from services import entitlements
from services.integrations import (
    all_conversation_refs,
    defer,
    run_operation,
    set_conversation_ref,
)
from utils.store import get_store

log = logging.getLogger("dana.integrations")

RUNNING_EXPIRES = timedelta(minutes=5)
TRANSCRIPT_MESSAGES = 50
OBJECT_TYPES = ("contact", "task")


# ------------------------------------------------------- external ids of contacts, tasks

def links_for(owner_id: str, object_type: str, object_id: str) -> dict:
    """What each integration keeps about one of our contacts or tasks: {type: refs}."""
    rows = db.session.scalars(select(IntegrationLink).where(
        IntegrationLink.user_id == owner_id, IntegrationLink.object_type == object_type,
        IntegrationLink.object_id == object_id))
    return {r.type: dict(r.refs) for r in rows}


def link(owner_id: str, type_: str, object_type: str, object_id: str, refs: dict) -> dict:
    """Merge refs into what `type_` keeps about a contact or task; refs["id"] finds it back."""
    if object_type not in OBJECT_TYPES:
        raise ValueError(f"object_type must be one of {OBJECT_TYPES}")
    row = db.session.scalar(select(IntegrationLink).where(
        IntegrationLink.user_id == owner_id, IntegrationLink.type == type_,
        IntegrationLink.object_type == object_type, IntegrationLink.object_id == object_id))
    if row is None:
        row = IntegrationLink(user_id=owner_id, type=type_, object_type=object_type,
                              object_id=object_id, refs={})
        db.session.add(row)
    row.refs = {**(row.refs or {}), **refs}
    if refs.get("id") is not None:
        row.external_id = str(refs["id"])[:255]
    try:
        db.session.commit()
    except IntegrityError:  # the same object linked concurrently: merge into that row
        db.session.rollback()
        return link(owner_id, type_, object_type, object_id, refs)
    return dict(row.refs)


def find_by_external_id(type_: str, object_type: str, external_id: str,
                        owner_id: str | None = None) -> tuple[str, str, dict] | None:
    """(owner_id, object_id, refs) of the contact/task an integration's id belongs to."""
    query = select(IntegrationLink).where(IntegrationLink.type == type_,
                                          IntegrationLink.object_type == object_type,
                                          IntegrationLink.external_id == str(external_id))
    if owner_id is not None:
        query = query.where(IntegrationLink.user_id == owner_id)
    row = db.session.scalars(query.limit(1)).first()
    return (row.user_id, row.object_id, dict(row.refs)) if row else None


# ------------------------------------------------------------------------- targets

def _targets(owner_id: str, action: str, only_type: str | None) -> list[Integration]:
    query = select(Integration).where(Integration.user_id == owner_id,
                                      Integration.enabled.is_(True))
    if only_type:
        query = query.where(Integration.type == only_type)
    rows = [r for r in db.session.scalars(query.order_by(Integration.created_at))
            if r.type in INTEGRATIONS and INTEGRATIONS[r.type].available
            and action in INTEGRATIONS[r.type].operations
            # unnamed: the action's own category (a CRM that can open cases is not a help desk)
            and (only_type or INTEGRATIONS[r.type].category == ACTION_CATEGORIES.get(action))]
    if not rows:
        return []
    features = set(entitlements.effective_tier(owner_id)["features"])
    return [r for r in rows if r.type in features]


def _no_target_reason(owner_id: str, action: str, only_type: str | None) -> str:
    what = f"'{only_type}'" if only_type else f"{ACTION_CATEGORIES.get(action, action)}"
    if only_type:
        cls = INTEGRATIONS.get(only_type)
        if cls is None:
            return f"unknown integration type {what}"
        if action not in cls.operations:
            return f"the {cls.name} integration cannot {action}"
        row = db.session.scalar(select(Integration).where(Integration.user_id == owner_id,
                                                          Integration.type == only_type))
        if row is None:
            return f"no {what} integration is configured"
        if not row.enabled:
            return f"the {what} integration is disabled"
        return f"the plan does not include the {what} integration"
    return f"no enabled {what} integration offers {action}"


def submit_action(request: ActionRequest, only_type: str | None = None) -> list[str]:
    """Queue an action after the customer's reply; the types it will run on.

    Raises LookupError (the workflow run records why) when no enabled integration of the
    plan offers it.
    """
    rows = _targets(request.owner_id, request.action, only_type)
    if not rows:
        raise LookupError(_no_target_reason(request.owner_id, request.action, only_type))
    types = [r.type for r in rows]
    defer(lambda: perform(request, types), f"the {request.action} action")
    return types


# ------------------------------------------------------------------------- running

def perform(request: ActionRequest, types: list[str] | None = None) -> dict:
    """Run an action now on these integration types (default: the action's category) of the
    owner; {type: outcome}. Never raises.
    """
    outcome: dict = {}
    try:
        if types is None:
            rows = _targets(request.owner_id, request.action, None)
        else:
            rows = [r for t in types for r in _targets(request.owner_id, request.action, t)]
        if rows:
            request = _complete(request)
    except Exception as exc:
        log.exception("cannot prepare the %s action", request.action)
        db.session.rollback()
        return {"error": f"{type(exc).__name__}: {exc}"}
    for row in rows:
        try:
            outcome[row.type] = _perform_one(row, request)
        except Exception as exc:  # recorded on the integration and the action record
            db.session.rollback()
            outcome[row.type] = {"status": "failed", "error": str(exc)}
    return outcome


def _complete(request: ActionRequest) -> ActionRequest:
    """The request with the current conversation, the full contact, the transcript (which
    now includes the reply) and what every integration kept about each.
    """
    store = get_store()
    owner = request.owner_id
    conv = store.get_conversation(owner, request.conversation["id"]) or request.conversation
    contact_id = (conv.get("contact") or {}).get("id")
    contact = (store.get_contact(owner, contact_id) if contact_id else None) \
        or dict(conv.get("contact") or {})
    contact["integration_refs"] = links_for(owner, "contact", contact["id"]) \
        if contact.get("id") else {}
    conv = {**conv, "integration_refs": all_conversation_refs(owner, conv["id"])}
    task = request.task
    if task is not None:
        task = {**(store.get_task(owner, task["id"]) or task),
                "integration_refs": links_for(owner, "task", task["id"])}
    transcript = tuple(conversation_history(owner, conv["id"], TRANSCRIPT_MESSAGES))
    return replace(request, conversation=conv, contact=contact, task=task,
                   transcript=transcript)


def _claim(row: Integration, request: ActionRequest) -> tuple[IntegrationAction, bool]:
    """The action's record, and whether this process may run it (claimed) or not."""
    key = (IntegrationAction.user_id == row.user_id, IntegrationAction.type == row.type,
           IntegrationAction.action == request.action,
           IntegrationAction.idempotency_key == request.idempotency_key)
    record = db.session.scalar(select(IntegrationAction).where(*key))
    if record is None:
        record = IntegrationAction(
            user_id=row.user_id, type=row.type, action=request.action,
            idempotency_key=request.idempotency_key, status="running", attempts=1,
            conversation_id=request.conversation.get("id"), result={})
        db.session.add(record)
        try:
            db.session.commit()
            return record, True
        except IntegrityError:  # another process claimed the same run first
            db.session.rollback()
            record = db.session.scalar(select(IntegrationAction).where(*key))
    if record.status == "done":
        return record, False
    if record.status == "running" and utcnow() - record.updated_at < RUNNING_EXPIRES:
        return record, False
    # failed before, or left running by a killed process: take it over (compare-and-set)
    taken = db.session.execute(update(IntegrationAction).where(
        IntegrationAction.id == record.id, IntegrationAction.attempts == record.attempts
    ).values(status="running", attempts=record.attempts + 1, error=None, updated_at=utcnow()))
    db.session.commit()
    db.session.refresh(record)
    return record, taken.rowcount == 1


def _perform_one(row: Integration, request: ActionRequest) -> dict:
    record, claimed = _claim(row, request)
    if not claimed:
        status = "already_done" if record.status == "done" else "in_progress"
        return {"status": status, "external_id": record.external_id}
    action = request.action
    try:
        result = run_operation(row, lambda connector: getattr(connector, action)(request)) or {}
    except Exception as exc:
        db.session.rollback()
        record.status, record.error = "failed", str(exc)[:2000]
        db.session.commit()
        return {"status": "failed", "error": record.error}
    _keep_refs(row, request, result.get("refs") or {})
    external_id = result.get("external_id")
    record.status, record.error = "done", None
    record.external_id = str(external_id)[:255] if external_id is not None else None
    record.result = {k: v for k, v in result.items() if k != "refs"}
    db.session.commit()
    return {"status": result.get("status", "ok"), "external_id": record.external_id}


def _keep_refs(row: Integration, request: ActionRequest, refs: dict) -> None:
    owner = row.user_id
    if refs.get("contact") and request.contact.get("id"):
        link(owner, row.type, "contact", request.contact["id"], refs["contact"])
    if refs.get("task") and request.task:
        link(owner, row.type, "task", request.task["id"], refs["task"])
    if refs.get("conversation"):
        conv_refs = refs["conversation"]
        external = conv_refs.get("id")
        set_conversation_ref(owner, request.conversation["id"], row.type, conv_refs,
                             external_id=str(external) if external is not None else None)


def action_record(owner_id: str, type_: str, action: str, idempotency_key: str) -> dict | None:
    """One action run's record (status, external_id, attempts, error), for tests and support."""
    record = db.session.scalar(select(IntegrationAction).where(
        IntegrationAction.user_id == owner_id, IntegrationAction.type == type_,
        IntegrationAction.action == action, IntegrationAction.idempotency_key == idempotency_key))
    if record is None:
        return None
    return {"status": record.status, "external_id": record.external_id,
            "attempts": record.attempts, "error": record.error, "result": dict(record.result)}
