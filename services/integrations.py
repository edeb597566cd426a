"""Integrations: configure (checked before stored), list, test, delete, and run them.

Configuration: validation (400 naming each field) -> plan (402 plan_limit) -> the connector's
check(), one real call (422 integration_check_failed, nothing kept) -> stored, secret fields
encrypted with the key ring and shown only masked.

Run time: team notifications (hand-offs, new conversations, customer messages in a thread,
workflow `notify` actions) are collected while a customer message is handled and delivered
after the automation has answered the customer (deferred_notifications), in the process that
handled it: the web process after its response (inline) or the RQ worker. A delivery retries
with back-off (tenacity, honouring Retry-After up to a bound); a failure marks the
integration `error` with `last_error` and publishes `integration_error`, and never reaches
the customer's reply.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from flask import after_this_request, current_app, g, has_app_context, has_request_context
from pydantic import ValidationError
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from automation.integrations.base import (
    IntegrationCheckFailed,
    IntegrationConnector,
    IntegrationError,
    Notification,
    conversation_link,
)
from automation.integrations.database.base import LookupRequestError
from automation.registry import INTEGRATIONS
from models_db import (
    Integration,
    IntegrationAction,
    IntegrationLink,
    IntegrationRef,
    db,
    utcnow,
)
from services import entitlements
from utils import events
from utils.audit import audit
from utils.config import current_settings
from utils.crypto import decrypt, encrypt
from utils.db import execute, memoized
from utils.errors import ApiError, NotFound, Unprocessable, ValidationFailed, validation_details
from utils.store import ConversationFilters, TaskFilters, get_store

log = logging.getLogger("dana.integrations")

MASK = "••••"
_PENDING = "dana_pending_notifications"
# Kinds delivered to every enabled integration offering `notify` (each decides what it shows).
TEAM_KINDS = ("handoff", "new_conversation", "customer_message")


# ---------------------------------------------------------------------------- helpers

def _settings():
    return current_settings()


def mask(secret: str | None) -> str | None:
    """"••••" + the last 4 characters (only the mask for short secrets, which 4 would expose)."""
    if not secret:
        return secret
    return MASK + secret[-4:] if len(secret) >= 12 else MASK


def _connector_class(type_: str) -> type[IntegrationConnector]:
    try:
        return INTEGRATIONS[type_]
    except KeyError:
        raise NotFound("No such integration.", code="integration_not_found") from None


def _decrypted(cls: type[IntegrationConnector], row: Integration) -> dict:
    config = dict(row.config)
    for name in cls.secret_fields:
        if config.get(name):
            config[name] = decrypt(config[name])
    return config


def _encrypted(cls: type[IntegrationConnector], config: dict) -> dict:
    stored = dict(config)
    for name in cls.secret_fields:
        if stored.get(name):
            stored[name] = encrypt(stored[name])
    return stored


def _to_dict(row: Integration) -> dict:
    cls = INTEGRATIONS.get(row.type)
    config = dict(row.config)
    for name in (cls.secret_fields if cls else ()):
        if config.get(name):
            config[name] = mask(decrypt(config[name]))
    return {"type": row.type, "status": row.status, "enabled": row.enabled, "config": config,
            "last_checked_at": row.last_checked_at.isoformat() if row.last_checked_at else None,
            "last_error": row.last_error, "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat()}


def _row(user_id: str, type_: str) -> Integration | None:
    return db.session.scalar(select(Integration).where(Integration.user_id == user_id,
                                                       Integration.type == type_))


def _get_row(user_id: str, type_: str) -> Integration:
    _connector_class(type_)
    row = _row(user_id, type_)
    if row is None:
        raise NotFound(f"No {type_} integration is configured.", code="integration_not_found")
    return row


def build_connector(row: Integration) -> IntegrationConnector:
    """A connector for a stored integration, its secrets decrypted in memory only."""
    cls = _connector_class(row.type)
    try:
        config = cls.config_model.model_validate(_decrypted(cls, row))
    except ValidationError as exc:  # e.g. the type's fields changed; names only, never values
        fields = ", ".join(d["field"] for d in validation_details(exc))
        raise IntegrationError(f"the stored configuration is no longer valid ({fields}); "
                               "configure the integration again", permanent=True) from None
    return cls(config, _settings())


# ------------------------------------------------------------------------ the config API

def list_types(user_id: str) -> dict:
    """The catalogue: every specified type, its config schema and whether the plan has it."""
    features = set(entitlements.effective_tier(user_id)["features"])
    items = [{"type": type_, "name": cls.name, "category": cls.category,
              "available": cls.available, "in_plan": type_ in features,
              "operations": sorted(cls.operations), "secret_fields": sorted(cls.secret_fields),
              "config_schema": cls.config_model.model_json_schema()}
             for type_, cls in INTEGRATIONS.items()]
    return {"items": items, "next_cursor": None}


def list_integrations(user_id: str) -> dict:
    """The caller's integrations (secrets masked)."""
    rows = db.session.scalars(select(Integration).where(Integration.user_id == user_id)
                              .order_by(Integration.created_at, Integration.id))
    return {"items": [_to_dict(r) for r in rows], "next_cursor": None}


def get_integration(user_id: str, type_: str) -> dict:
    """One of the caller's integrations; 404 when unknown or not configured."""
    return _to_dict(_get_row(user_id, type_))


def _merge_secrets(cls, given: dict, existing: Integration | None) -> dict:
    """An update that leaves a secret out, or sends back its mask, keeps the stored secret."""
    merged = dict(given)
    stored = _decrypted(cls, existing) if existing is not None else {}
    for name in cls.secret_fields:
        value = merged.get(name)
        keep = name not in merged or (isinstance(value, str) and value.startswith(MASK))
        if keep and stored.get(name):
            merged[name] = stored[name]
        elif keep and isinstance(value, str):
            merged.pop(name)  # a mask without a stored secret: treat as left out
    return merged


def configure_integration(user_id: str, type_: str, config: dict, enabled: bool = True
                          ) -> tuple[dict, bool]:
    """Validate, gate by plan, check with one real call, then store; (integration, created)."""
    cls = INTEGRATIONS.get(type_)
    if cls is None:
        raise ValidationFailed(f"Unknown integration type {type_!r}.", details=[{
            "field": "type", "message": f"must be one of: {', '.join(INTEGRATIONS)}",
            "type": "enum"}])
    if not cls.available:
        raise Unprocessable(f"The {cls.name} integration is not available yet.",
                            code="integration_not_available")
    existing = _row(user_id, type_)
    merged = _merge_secrets(cls, config, existing)
    try:
        parsed = cls.config_model.model_validate(merged)
    except ValidationError as exc:
        details = [dict(d, field=f"config.{d['field']}") for d in validation_details(exc)]
        raise ValidationFailed(details=details) from None
    others = db.session.scalar(select(func.count()).select_from(Integration).where(
        Integration.user_id == user_id, Integration.type != type_)) or 0
    entitlements.require_feature(user_id, type_, current_count=others, limit_name="integrations")
    try:
        detail = cls(parsed, _settings()).check()
    except IntegrationCheckFailed as exc:
        log.info("integration %s for user %s refused by the service", type_, user_id)
        raise Unprocessable(f"The {cls.name} service refused the configuration: {exc}",
                            code="integration_check_failed") from None
    stored = _encrypted(cls, parsed.model_dump(mode="json", exclude_none=True))
    previous = _quiet_connector(existing) if existing is not None else None
    now = utcnow()
    created = existing is None
    row = existing or Integration(user_id=user_id, type=type_)
    row.config, row.enabled, row.status = stored, enabled, "active"
    row.last_checked_at, row.last_error = now, None
    if created:
        db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:  # a concurrent first configuration of the same type won
        db.session.rollback()
        raise ApiError("This integration was just configured by another request; retry.",
                       status=409, code="conflict") from None
    if previous is not None:  # its connections were made with the old settings
        previous.dispose()
    audit("integration_configured", user_id=user_id, actor_id=user_id, type=type_,
          created=created, detail=detail)
    return _to_dict(row), created


def _quiet_connector(row: Integration) -> IntegrationConnector | None:
    """The connector of a stored row, or None when its config no longer builds one."""
    try:
        return build_connector(row)
    except Exception:  # an unreadable old config has no pool worth closing
        return None


def delete_integration(user_id: str, type_: str) -> None:
    """Remove the caller's integration and what it kept about conversations."""
    row = _get_row(user_id, type_)
    connector = _quiet_connector(row)
    db.session.delete(row)
    for model in (IntegrationRef, IntegrationLink, IntegrationAction):
        db.session.execute(model.__table__.delete().where(model.user_id == user_id,
                                                          model.type == type_))
    db.session.commit()
    if connector is not None:
        connector.dispose()
    audit("integration_deleted", user_id=user_id, actor_id=user_id, type=type_)


def test_integration(user_id: str, type_: str) -> dict:
    """Run the connector's check() now; record the outcome on the integration."""
    row = _get_row(user_id, type_)
    ok, detail = True, ""
    try:
        detail = build_connector(row).check()
    except IntegrationCheckFailed as exc:
        ok, detail = False, str(exc)
    except Exception as exc:  # a broken stored config (e.g. an undecryptable secret)
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    row.last_checked_at = utcnow()
    if ok:
        row.status, row.last_error = "active", None
        db.session.commit()
    else:
        _record_failure(row, detail)
    return {"ok": ok, "detail": detail, "checked_at": row.last_checked_at.isoformat()}


test_integration.__test__ = False  # not a pytest test despite its name


def _record_failure(row: Integration, detail: str) -> None:
    row.status, row.last_error = "error", detail[:2000]
    db.session.commit()
    events.integration_error(row.user_id, {
        "kind": "integration", "type": row.type, "status": "error",
        "error": "integration_failed", "message": row.last_error})


# ------------------------------------------------------------- per-conversation refs

def conversation_ref(owner_id: str, conversation_id: str, type_: str) -> dict | None:
    """What integration `type_` keeps about a conversation (e.g. {"channel", "thread_ts"})."""
    ref = db.session.scalar(select(IntegrationRef).where(
        IntegrationRef.user_id == owner_id, IntegrationRef.conversation_id == conversation_id,
        IntegrationRef.type == type_))
    return dict(ref.refs) if ref else None


def set_conversation_ref(owner_id: str, conversation_id: str, type_: str, refs: dict,
                         external_id: str | None = None) -> dict:
    """Merge refs into what `type_` keeps about a conversation; external_id finds it back."""
    ref = db.session.scalar(select(IntegrationRef).where(
        IntegrationRef.user_id == owner_id, IntegrationRef.conversation_id == conversation_id,
        IntegrationRef.type == type_))
    if ref is None:
        ref = IntegrationRef(user_id=owner_id, conversation_id=conversation_id, type=type_,
                             refs={})
        db.session.add(ref)
    ref.refs = {**(ref.refs or {}), **refs}
    if external_id is not None:
        ref.external_id = external_id
    db.session.commit()
    return dict(ref.refs)


def find_conversation_by_ref(type_: str, external_id: str,
                             owner_id: str | None = None) -> tuple[str, str, dict] | None:
    """(owner_id, conversation_id, refs) of the conversation an external id belongs to."""
    query = select(IntegrationRef).where(IntegrationRef.type == type_,
                                         IntegrationRef.external_id == external_id)
    if owner_id is not None:
        query = query.where(IntegrationRef.user_id == owner_id)
    ref = db.session.scalars(query.limit(1)).first()
    return (ref.user_id, ref.conversation_id, dict(ref.refs)) if ref else None


def all_conversation_refs(owner_id: str, conversation_id: str) -> dict:
    """What every integration keeps about a conversation: {type: refs}."""
    rows = db.session.scalars(select(IntegrationRef).where(
        IntegrationRef.user_id == owner_id, IntegrationRef.conversation_id == conversation_id))
    return {r.type: dict(r.refs) for r in rows}


# -------------------------------------------------------------------------- running

def _wait(settings):
    exponential = wait_exponential(multiplier=settings.INTEGRATION_RETRY_WAIT_SECONDS,
                                   max=settings.INTEGRATION_RETRY_MAX_WAIT_SECONDS)

    def wait(retry_state) -> float:
        exc = retry_state.outcome.exception()
        if isinstance(exc, IntegrationError) and exc.retry_after is not None:
            return max(0.0, min(exc.retry_after, settings.INTEGRATION_RETRY_MAX_WAIT_SECONDS))
        return exponential(retry_state)
    return wait


def run_operation(row: Integration, operation):
    """Run operation(connector) with bounded retries; failures are recorded, then re-raised."""
    settings = _settings()
    try:
        connector = build_connector(row)
        retrying = Retrying(
            stop=stop_after_attempt(settings.INTEGRATION_RETRY_ATTEMPTS), wait=_wait(settings),
            retry=retry_if_exception(lambda e: isinstance(e, IntegrationError)
                                     and not e.permanent),
            reraise=True)
        result = retrying(operation, connector)
    except LookupRequestError:  # the caller's mistake (a bad value), not the service's failure
        raise
    except Exception as exc:
        detail = str(exc) if isinstance(exc, IntegrationError) else f"{type(exc).__name__}: {exc}"
        log.warning("integration %s of user %s failed: %s", row.type, row.user_id, detail)
        _record_failure(row, detail)
        raise
    skipped = isinstance(result, dict) and result.get("status") == "skipped"
    if not skipped and (row.status != "active" or row.last_error):
        # only a call that reached the service proves it works again ("skipped": none made)
        row.status, row.last_error = "active", None
        db.session.commit()
    return result


_I = Integration.__table__.c
# Built once: the owner's enabled integrations' ids and types, oldest first (a Core read; the
# rows themselves are loaded only when one of them is to be told).
_ENABLED_TYPES = (select(_I.id, _I.type)
                  .where(_I.user_id == bindparam("owner_id"), _I.enabled.is_(True))
                  .order_by(_I.created_at))


def _takes_notifications(kind: str) -> bool:
    return kind in INTEGRATIONS and INTEGRATIONS[kind].available \
        and "notify" in INTEGRATIONS[kind].operations


def _targets(notification: Notification, only_type: str | None) -> list[Integration]:
    """The owner's enabled integrations that take notifications (of `only_type`), allowed by
    the plan. An event run notifies several times (the customer's message, the reply, a
    hand-off): asked once per run (utils.db.memoized), usually to learn there are none, which
    one prebuilt Core read answers; the integrations to tell are then loaded as objects.
    """
    def _read() -> list[Integration]:
        ids = [id_ for id_, kind in execute(_ENABLED_TYPES, {"owner_id": notification.owner_id})
               if (not only_type or kind == only_type) and _takes_notifications(kind)]
        if not ids:
            return []
        rows = db.session.scalars(select(Integration).where(Integration.id.in_(ids))
                                  .order_by(Integration.created_at)).all()
        features = set(entitlements.effective_tier(notification.owner_id)["features"])
        return [r for r in rows if r.type in features]

    return memoized(("notify_targets", notification.owner_id, only_type), _read)


def deliver(notification: Notification, only_type: str | None = None) -> dict:
    """Deliver a notification now to the owner's integrations; {type: result}. Never raises."""
    outcome = {}
    try:
        rows = _targets(notification, only_type)
    except Exception as exc:
        log.exception("cannot list integrations for a notification")
        return {"error": str(exc)}
    conv_id = (notification.conversation or {}).get("id")
    for row in rows:
        try:
            outcome[row.type] = _deliver_one(row, notification, conv_id)
        except Exception as exc:  # recorded on the integration (run_operation) and published
            db.session.rollback()
            outcome[row.type] = {"status": "failed", "error": str(exc)}
    return outcome


def _deliver_one(row: Integration, notification: Notification, conv_id: str | None) -> dict:
    refs = conversation_ref(row.user_id, conv_id, row.type) if conv_id else None
    if notification.kind == "customer_message" and not refs:
        return {"status": "skipped"}  # only integrations following this conversation
    note = notification
    if notification.conversation is not None:
        note = replace(notification, conversation={
            **notification.conversation,
            "integration_refs": all_conversation_refs(row.user_id, conv_id)})
    result = run_operation(row, lambda connector: connector.notify(note)) or {}
    if conv_id and (result.get("thread_ts") or result.get("external_id")):
        keep = {k: v for k, v in result.items() if v is not None and k != "status"}
        set_conversation_ref(row.user_id, conv_id, row.type, keep,
                             external_id=result.get("external_id") or result.get("thread_ts"))
    return result


def defer(job, label: str = "integration job") -> None:
    """Run job() after the customer has been answered: at the end of the current deferral
    scope, after the current HTTP response, or now when neither exists. Never raises.
    """
    def _safe() -> None:
        try:
            job()
        except Exception:  # each job records its own failures; belt and braces for the caller
            log.exception("%s failed", label)
            db.session.rollback()

    pending = g.get(_PENDING) if has_app_context() else None
    if pending is not None:
        pending.append(_safe)
        return
    if has_request_context():
        app = current_app._get_current_object()

        @after_this_request
        def _later(response):
            def _run():
                with app.app_context():
                    _safe()
            response.call_on_close(_run)
            return response
        return
    _safe()


def submit(notification: Notification, only_type: str | None = None) -> None:
    """Deliver after the customer has been answered (see defer())."""
    defer(lambda: deliver(notification, only_type),
          f"delivering a {notification.kind} notification")


@contextmanager
def deferred_notifications():
    """Collect submit()ted notifications and defer()red jobs (workflow actions on
    integrations) in this block, and run them in order when it ends.
    """
    outer = g.get(_PENDING)
    if outer is not None:  # nested: the outermost scope delivers
        yield
        return
    g.setdefault(_PENDING, [])
    try:
        yield
    finally:
        pending = g.pop(_PENDING, [])
        for job in pending:
            job()


# ------------------------------------------------------------------ database lookups

def run_lookup(owner_id: str, type_: str, query: str, params: dict | None) -> dict:
    """Run a named lookup of the owner's database integration: {query, columns, rows, ...}.

    404 when the integration or the query does not exist, 400 when the parameters do not fit
    the query, 409 when the integration is disabled, 402 when the plan lacks the type; a
    failure of the database (unreachable, timeout) is recorded on the integration (status
    error, `integration_error`) and answers 502 `integration_error`.
    """
    row = _get_row(owner_id, type_)
    cls = INTEGRATIONS[type_]
    if "lookup" not in cls.operations:
        raise NotFound(f"The {cls.name} integration has no lookups.", code="query_not_found")
    if not row.enabled:
        raise ApiError(f"The {cls.name} integration is disabled.", status=409,
                       code="integration_disabled")
    entitlements.require_feature(owner_id, type_)
    try:
        connector = build_connector(row)
        values = connector.validate_request(query, params)
    except LookupRequestError as exc:
        if exc.kind == "query_not_found":
            raise NotFound(str(exc), code="query_not_found") from None
        raise ValidationFailed(str(exc), details=[{"field": "params", "message": str(exc),
                                                   "type": exc.kind}]) from None
    except IntegrationError as exc:
        _record_failure(row, str(exc))
        raise ApiError(f"The {cls.name} lookup failed: {exc}", status=502,
                       code="integration_error") from None
    try:
        result = run_operation(row, lambda c: c.lookup(query, values))
    except LookupRequestError as exc:
        raise ValidationFailed(str(exc), details=[{"field": "params", "message": str(exc),
                                                   "type": exc.kind}]) from None
    except Exception as exc:  # recorded on the integration by run_operation
        db.session.rollback()
        reason = str(exc) if isinstance(exc, IntegrationError) else type(exc).__name__
        raise ApiError(f"The {cls.name} lookup failed: {reason}", status=502,
                       code="integration_error") from None
    return result.to_dict()


def require_enabled(owner_id: str, type_: str) -> None:
    """A workflow `notify` needs this integration configured and enabled (else it fails)."""
    row = _row(owner_id, type_)
    if type_ not in INTEGRATIONS or row is None:
        raise LookupError(f"no '{type_}' integration is configured")
    if not row.enabled:
        raise LookupError(f"the '{type_}' integration is disabled")


# ----------------------------------------------------------------------- daily digest

def _in_window(value: str | None, start: datetime, end: datetime) -> bool:
    return bool(value) and start <= datetime.fromisoformat(value) < end


def digest_for(owner_id: str, now: datetime | None = None) -> Notification:
    """The daily digest: open hand-offs, and yesterday's (UTC) conversations and hand-offs."""
    now = now or datetime.now(timezone.utc)
    end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=1)
    store = get_store()
    open_tasks = store.list_tasks(owner_id, TaskFilters(status="open"), 100, None).items
    handoffs = [t for t in open_tasks if t["conversation_id"]]
    recent = store.list_conversations(owner_id, ConversationFilters(), 100, None).items
    new_yesterday = sum(_in_window(c["created_at"], start, end) for c in recent)
    tasks_yesterday = sum(_in_window(t["created_at"], start, end) for t in open_tasks)
    lines = [f"Yesterday ({start:%Y-%m-%d}): {new_yesterday} new conversation(s), "
             f"{tasks_yesterday} of them still waiting for a person.", "",
             f"Open hand-offs: {len(handoffs)}"]
    for task in handoffs:
        lines.append(f"- [{task['priority']}] {task['title']} (since {task['created_at'][:16]}Z)"
                     f" {conversation_link(task['conversation_id'])}")
    if not handoffs:
        lines.append("None: every customer has an answer.")
    return Notification(owner_id=owner_id, kind="digest", text="\n".join(lines),
                        title=f"Dana daily digest: {len(handoffs)} open hand-off(s)",
                        link=_settings().APP_URL)


def send_digests(now: datetime | None = None) -> dict:
    """E-mail each user with an enabled e-mail integration their digest; {user_id: outcome}."""
    owners = db.session.scalars(select(Integration.user_id).where(
        Integration.type == "email", Integration.enabled.is_(True)).order_by(Integration.user_id))
    return {owner: deliver(digest_for(owner, now), only_type="email").get("email")
            for owner in list(owners)}
