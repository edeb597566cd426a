"""GET /health: liveness and a database round trip, for load balancers and operators."""
from __future__ import annotations

from flask import Blueprint, current_app
from sqlalchemy import text

from models_db import db
from routes.schemas import HealthOut
from utils.openapi import endpoint

bp = Blueprint("health", __name__)

VERSION = "1.0.0"


@bp.get("/health")
@endpoint(response=HealthOut, tags=["health"], errors=(503,))
def health():
    """Liveness and database check."""
    try:
        db.session.execute(text("SELECT 1"))
        return {"status": "ok", "database": "ok", "version": VERSION}
    except Exception:
        db.session.rollback()
        current_app.logger.exception("health check: database unreachable")
        return {"status": "degraded", "database": "unreachable", "version": VERSION}, 503
