"""The browser session, CSRF and the helpers every page blueprint shares.

A browser session is Flask's signed cookie holding the id of an AuthSession row (the API's
session model) plus the sign-in and last-seen times. Each page request re-reads that row and
its user, so a logout elsewhere, a password change or an admin deactivating the user signs
the browser out at its very next request. The cookie is HttpOnly, SameSite=Lax, Secure over
HTTPS, and expires after WEB_SESSION_IDLE_MINUTES without a request or WEB_SESSION_MAX_HOURS
in all.
"""
from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from models_db import AuthSession, User, db
from utils.auth import open_session, revoke_session
from utils.config import current_settings
from utils.errors import ApiError

csrf = CSRFProtect()
log = logging.getLogger("dana.pages")
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class CookieSessionInterface(SecureCookieSessionInterface):
    """Secure cookie whenever the request came over HTTPS (directly, or through a trusted proxy:
    TRUSTED_PROXY_HOPS), so `make run` over plain HTTP still signs in.
    """

    def get_cookie_secure(self, app) -> bool:
        """Secure when configured, or when this request came over HTTPS."""
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure

    def open_session(self, app, request):
        """A request without the session cookie (a webhook, an API call with a bearer token)
        gets an empty session at once: Flask's would first build the cookie's signing
        serializer (key derivation objects) on every request, only to find nothing to read.
        """
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def _settings():
    return current_settings()


def _forget() -> None:
    """Empty the cookie session, and the CSRF token Flask-WTF cached from it for this request
    (the next form gets a token of the new session).
    """
    session.clear()
    g.pop("csrf_token", None)


def sign_in(user: User) -> None:
    """Start a browser session for an authenticated user (a fresh cookie: no fixation)."""
    auth_session = open_session(user)
    db.session.commit()
    now = int(time.time())
    _forget()
    session.permanent = True
    session.update(sid=auth_session.id, uid=user.id, iat=now, seen=now)


def sign_out(reason: str = "logout") -> None:
    """Revoke the browser's AuthSession and forget the cookie."""
    sid = session.get("sid")
    row = db.session.get(AuthSession, sid) if sid else None
    if row is not None:
        revoke_session(row, reason)
        db.session.commit()
    _forget()


def current_session() -> tuple[User, AuthSession] | None:
    """The signed-in user and session of this request, or None (an expired, revoked or
    deactivated one is cleared).
    """
    sid, uid = session.get("sid"), session.get("uid")
    if not sid or not uid:
        return None
    now = int(time.time())
    s = _settings()
    expired = (now - int(session.get("seen", 0)) > s.WEB_SESSION_IDLE_MINUTES * 60
               or now - int(session.get("iat", 0)) > s.WEB_SESSION_MAX_HOURS * 3600)
    row = db.session.get(AuthSession, sid)
    if (expired or row is None or row.user_id != uid or row.revoked_at is not None
            or not row.user.is_active):
        if expired and row is not None and row.revoked_at is None:
            revoke_session(row, "expired")
            db.session.commit()
        _forget()
        return None
    if now - int(session.get("seen", 0)) >= 30:  # re-sign the cookie at most twice a minute
        session["seen"] = now
    return row.user, row


def wants_json() -> bool:
    """A fetch from the pages' JavaScript (it asks for JSON), not a plain form post."""
    return request.accept_mimetypes.best == "application/json"


def safe_next(target: str | None) -> str:
    """Only a local path may be a post-login destination (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") \
            and not urlsplit(target).netloc and "\\" not in target:
        return target
    return url_for("console.inbox")


def done(message: str, endpoint: str, **values):
    """Answer a successful form: JSON for a fetch, else a flash message and a redirect."""
    if wants_json():
        return jsonify({"status": "ok", "message": message})
    flash(message, "success")
    return redirect(url_for(endpoint, **values))


def render(template: str, status: int = 200, **context):
    """Render a page of the console or admin."""
    return render_template(template, **context), status


def page_blueprint(name: str, url_prefix: str | None, *, login: bool = True,
                   admin: bool = False) -> Blueprint:
    """A blueprint whose every request is signed in (else /login), admin when asked (others
    see 404), and CSRF-checked on every state-changing method.
    """
    bp = Blueprint(name, __name__, url_prefix=url_prefix)

    @bp.before_request
    def _guard():
        g.user = g.auth_session = None
        found = current_session()
        if found:
            g.user, g.auth_session = found
        if login and g.user is None:
            if request.method in UNSAFE_METHODS and wants_json():
                return jsonify({"error": {"code": "unauthorized",
                                          "message": "Sign in again."}}), 401
            return redirect(url_for("signin.login", next=request.full_path.rstrip("?")))
        if admin and not g.user.is_admin:
            abort(404)
        if request.method in UNSAFE_METHODS:
            csrf.protect()
        return None

    @bp.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        message = ("This form has expired or did not come from Dana's own pages "
                   f"({exc.description}). Reload the page and try again.")
        if wants_json() or request.headers.get("X-CSRFToken") is not None:
            return jsonify({"error": {"code": "csrf_failed", "message": message}}), 400
        return render("error.html", 400, title="Form refused", message=message)

    @bp.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        if wants_json():
            return jsonify(exc.to_dict()), exc.status
        return render("error.html", exc.status, title="Something is not right",
                      message=exc.message)

    @bp.errorhandler(404)
    def _not_found(exc):
        if wants_json():
            return jsonify({"error": {"code": "not_found", "message": "Not found."}}), 404
        return render("error.html", 404, title="Not found",
                      message="There is no such page, or it is not yours.")

    @bp.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return exc
        log.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        message = "Something went wrong on our side; it has been logged."
        if wants_json():
            return jsonify({"error": {"code": "internal_error", "message": message}}), 500
        return render("error.html", 500, title="Something went wrong", message=message)

    @bp.errorhandler(429)
    def _too_many(exc):
        return render("error.html", 429, title="Too many attempts",
                      message=f"Too many requests ({exc.description}); wait a minute and retry.")

    return bp
