"""Operator views that no other service offers: the audit log and the health report
(database, Redis, RQ workers, platform accounts).
"""
from __future__ import annotations

from flask import current_app
from sqlalchemy import func, select, text

from models_db import AuditLog, PlatformAccount, WebhookEvent, db
from services.rq_queue import live_workers
from utils.config import current_settings


def list_audit(event: str | None, user_id: str | None, limit: int = 100) -> list[dict]:
    """The newest audit events, optionally of one kind or about one user."""
    stmt = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if event:
        stmt = stmt.where(AuditLog.event == event)
    if user_id:
        stmt = stmt.where((AuditLog.user_id == user_id) | (AuditLog.actor_id == user_id))
    return [{"id": a.id, "created_at": a.created_at.isoformat(), "event": a.event,
             "user_id": a.user_id, "actor_id": a.actor_id, "ip": a.ip,
             "details": a.details or {}} for a in db.session.scalars(stmt)]


def health_report() -> dict:
    """What an operator checks first: can we reach the database and Redis, are RQ workers
    alive, how many deliveries failed, which platform accounts need attention.
    """
    report: dict = {}
    try:
        db.session.execute(text("SELECT 1"))
        report["database"] = "ok"
    except Exception as exc:  # noqa: BLE001  (shown to the operator, never raised)
        db.session.rollback()
        report["database"] = f"unreachable: {type(exc).__name__}"
    settings = current_settings()
    client = current_app.extensions.get("dana_redis")
    if client is None:
        report["redis"] = "not configured (REDIS_URL unset)"
        report["workers"] = "inline (AUTOMATION_QUEUE=inline)"
    else:
        try:
            client.ping()
            report["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            report["redis"] = f"unreachable: {type(exc).__name__}"
        if settings.AUTOMATION_QUEUE == "rq":
            try:
                report["workers"] = f"{live_workers(client)} worker(s)"
            except Exception as exc:  # noqa: BLE001
                report["workers"] = f"unknown: {type(exc).__name__}"
        else:
            report["workers"] = "inline (AUTOMATION_QUEUE=inline)"
    counts = db.session.execute(select(WebhookEvent.status, func.count())
                                .group_by(WebhookEvent.status)).all()
    report["webhook_events"] = {status: n for status, n in counts}
    report["accounts"] = [
        {"id": a.id, "user_id": a.user_id, "platform": a.platform, "name": a.name,
         "external_id": a.external_id, "status": a.status, "last_error": a.last_error}
        for a in db.session.scalars(select(PlatformAccount).order_by(PlatformAccount.status,
                                                                     PlatformAccount.created_at))]
    return report
