"""Append security events to the audit_log table (failed logins, token reuse, admin changes)."""
from __future__ import annotations

import logging

from flask import g, has_request_context, request

from models_db import AuditLog, db

log = logging.getLogger("dana.audit")


def audit(event: str, *, user_id: str | None = None, actor_id: str | None = None,
          commit: bool = True, **details) -> None:
    """Record one security event; the request's IP and id are attached when there is one."""
    ip = request_id = None
    if has_request_context():
        ip = request.remote_addr
        request_id = getattr(g, "request_id", None)
    db.session.add(AuditLog(event=event, user_id=user_id, actor_id=actor_id, ip=ip,
                            request_id=request_id, details=details or None))
    log.info("audit %s user=%s actor=%s %s", event, user_id, actor_id, details or "")
    if commit:
        db.session.commit()
