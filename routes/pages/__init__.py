"""Server-rendered pages: sign-in, the team console (/app) and the operator pages (/admin).

The pages use the same users, sessions and services as the API (see routes/pages/common.py
for the browser session and CSRF); views render templates/ and serve static/ (vendored assets).
"""
from __future__ import annotations

from datetime import timedelta

from flask import Flask

from routes.pages.admin import bp as admin_bp
from routes.pages.common import CookieSessionInterface, csrf
from routes.pages.console import bp as console_bp
from routes.pages.signin import bp as signin_bp
from utils.config import current_settings


def duration(seconds: float | None) -> str:
    """A number of seconds as a short human duration (45 s, 3 min, 2.5 h, 1.2 d); — for none."""
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def init_pages(app: Flask) -> None:
    """Cookie session settings, CSRF protection (checked by the page blueprints only: /api
    uses bearer tokens and /webhooks signatures) and the page blueprints.
    """
    settings = current_settings(app)
    app.config.update(
        SESSION_COOKIE_NAME="dana_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.WEB_SESSION_MAX_HOURS),
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the (bounded) session
    )
    app.session_interface = CookieSessionInterface()
    app.add_template_filter(duration)
    csrf.init_app(app)
    for bp in (signin_bp, console_bp, admin_bp):
        app.register_blueprint(bp)
