"""/api/analytics: the numbers behind the console's charts (and any other frontend)."""
from __future__ import annotations

from flask import Blueprint, g

from routes.schemas import AnalyticsQuery, AnalyticsSummaryOut
from services import analytics
from utils.auth import require_auth
from utils.openapi import endpoint

bp = Blueprint("analytics", __name__, url_prefix="/api/analytics")


@bp.get("/summary")
@require_auth
@endpoint(query=AnalyticsQuery, response=AnalyticsSummaryOut, tags=["analytics"],
          errors=(400, 501))
def summary(query: AnalyticsQuery):
    """Messages per platform per day, conversations, first-response and resolution times,
    AI-answered share and hand-offs for the days from..to (UTC, inclusive; default 30 days).
    """
    return analytics.summary(g.user.id, query.from_, query.to)
