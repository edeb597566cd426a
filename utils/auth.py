"""JWT issue and verification, server-side sessions, and the access decorators.

Access tokens (15 min) and refresh tokens (30 days) are HS-signed with JWT_SECRET_KEY under
one pinned algorithm. Both carry `sid`, the AuthSession they belong to; refresh tokens are
stored by jti and spent on use. Reusing a spent refresh token revokes its whole session
(the "family"), which also refuses every access token minted from it.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from functools import wraps

import jwt
from flask import g, request
from sqlalchemy import update

from models_db import AuthSession, RefreshToken, User, db, utcnow
from utils.audit import audit
from utils.config import current_settings
from utils.errors import Forbidden, NotFound, Unauthorized

REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "type", "sid"]


def _settings():
    return current_settings()


def _encode(claims: dict) -> str:
    s = _settings()
    return jwt.encode(claims, s.JWT_SECRET_KEY, algorithm=s.JWT_ALGORITHM)


def decode_token(token: str, expected_type: str) -> dict:
    """Verify signature, pinned algorithm, required claims and token type; else 401."""
    s = _settings()
    try:
        claims = jwt.decode(token, s.JWT_SECRET_KEY, algorithms=[s.JWT_ALGORITHM],
                            options={"require": REQUIRED_CLAIMS})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired.", code="token_expired") from None
    except jwt.PyJWTError:
        raise Unauthorized("The token is invalid.", code="invalid_token") from None
    if claims.get("type") != expected_type:
        raise Unauthorized(f"An {expected_type} token is required here.", code="invalid_token")
    return claims


def issue_tokens(user: User, session: AuthSession) -> dict:
    """Mint an access/refresh pair for a session; the refresh jti is stored server-side."""
    s = _settings()
    now = datetime.now(timezone.utc)
    access = _encode({
        "sub": user.id, "sid": session.id, "jti": str(uuid.uuid4()), "type": "access",
        "role": user.role, "iat": now, "exp": now + timedelta(seconds=s.ACCESS_TOKEN_TTL_SECONDS),
    })
    refresh_jti = str(uuid.uuid4())
    refresh_exp = now + timedelta(seconds=s.REFRESH_TOKEN_TTL_SECONDS)
    refresh = _encode({
        "sub": user.id, "sid": session.id, "jti": refresh_jti, "type": "refresh",
        "iat": now, "exp": refresh_exp,
    })
    db.session.add(RefreshToken(jti=refresh_jti, session_id=session.id, issued_at=now,
                                expires_at=refresh_exp))
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": s.ACCESS_TOKEN_TTL_SECONDS,
        "user": user.to_dict(),
    }


def issue_access_token(user: User, session: AuthSession) -> str:
    """Mint an access token only (no refresh token): what a signed-in page hands its
    Socket.IO client. Revoking the browser session refuses it at once.
    """
    s = _settings()
    now = datetime.now(timezone.utc)
    return _encode({
        "sub": user.id, "sid": session.id, "jti": str(uuid.uuid4()), "type": "access",
        "role": user.role, "iat": now, "exp": now + timedelta(seconds=s.ACCESS_TOKEN_TTL_SECONDS),
    })


def open_session(user: User) -> AuthSession:
    """Record a new login session of the user (flushed, not committed)."""
    ip = request.remote_addr if request else None
    ua = (request.headers.get("User-Agent") or "")[:255] if request else None
    session = AuthSession(user_id=user.id, ip=ip, user_agent=ua)
    db.session.add(session)
    db.session.flush()
    return session


def start_session(user: User) -> dict:
    """Open a new login session for the user and return its first token pair (committed)."""
    session = open_session(user)
    pair = issue_tokens(user, session)
    db.session.commit()
    return pair


def revoke_session(session: AuthSession, reason: str) -> None:
    """Revoke a session: its refresh tokens and access tokens stop working."""
    if session.revoked_at is None:
        session.revoked_at = utcnow()
        session.revoked_reason = reason


def revoke_user_sessions(user_id: str, reason: str, keep_session_id: str | None = None) -> int:
    """Revoke every live session of a user except one; returns how many were revoked."""
    q = db.select(AuthSession).where(AuthSession.user_id == user_id,
                                     AuthSession.revoked_at.is_(None))
    count = 0
    for session in db.session.scalars(q):
        if session.id != keep_session_id:
            revoke_session(session, reason)
            count += 1
    return count


def rotate_refresh_token(token: str) -> dict:
    """Spend a refresh token and return a new pair; a reused token revokes its family.

    Spending is ONE conditional UPDATE (`... WHERE spent_at IS NULL`) whose row count says
    who won: of any number of concurrent uses exactly one changes the row, on SQLite (which
    has no row locks: a read-then-write let several through) as on PostgreSQL (the UPDATE
    waits for a concurrent one, then re-checks the condition). Every other use is a reuse.
    """
    claims = decode_token(token, "refresh")
    row = db.session.get(RefreshToken, claims["jti"])
    if row is None or row.session_id != claims["sid"]:
        raise Unauthorized("The refresh token is not known.", code="invalid_token")
    session = row.session
    # A deactivated account says so first: its sessions were revoked when it was deactivated.
    if not session.user.is_active:
        raise Unauthorized("This account is deactivated.", code="account_disabled")
    if session.revoked_at is not None:
        raise Unauthorized("This session has been signed out.", code="token_revoked")
    spent = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.jti == row.jti, RefreshToken.spent_at.is_(None))
        .values(spent_at=utcnow())
        .execution_options(synchronize_session=False))
    if spent.rowcount != 1:
        revoke_session(session, "refresh_reuse")
        audit("refresh_token_reuse", user_id=session.user_id, commit=False, session_id=session.id)
        db.session.commit()
        raise Unauthorized("This refresh token was already used; the session is revoked.",
                           code="token_reused")
    pair = issue_tokens(session.user, session)
    db.session.commit()
    return pair


def authenticate_access_token(token: str) -> tuple[User, AuthSession]:
    """Resolve an access token to a live user and session, or raise 401."""
    claims = decode_token(token, "access")
    session = db.session.get(AuthSession, claims["sid"])
    if session is None or session.user_id != claims["sub"]:
        raise Unauthorized("The token is invalid.", code="invalid_token")
    user = session.user
    # A deactivated account says so first: its sessions were revoked when it was deactivated.
    if not user.is_active:
        raise Unauthorized("This account is deactivated.", code="account_disabled")
    if session.revoked_at is not None:
        raise Unauthorized("This session has been signed out.", code="token_revoked")
    return user, session


def bearer_token() -> str:
    """The token from `Authorization: Bearer <token>`, or 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send an access token as 'Authorization: Bearer <token>'.")
    return token.strip()


def require_auth(view):
    """Refuse the request without a valid access token; put the user on g.user."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        g.user, g.auth_session = authenticate_access_token(bearer_token())
        return view(*args, **kwargs)

    wrapper._dana_auth = True
    return wrapper


def require_admin(view):
    """Like require_auth, and the user must be an admin (else 403)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        g.user, g.auth_session = authenticate_access_token(bearer_token())
        if not g.user.is_admin:
            raise Forbidden("This needs an administrator.", code="admin_required")
        return view(*args, **kwargs)

    wrapper._dana_auth = True
    wrapper._dana_admin = True
    return wrapper


def validate_user_access(user_id: str) -> None:
    """The current user may act on user_id's data: it is theirs, or they are an admin.

    Someone else's data answers 404 exactly like a missing one, so ids don't leak.
    """
    user = getattr(g, "user", None)
    if user is None:
        raise Unauthorized()
    if user.id != user_id and not user.is_admin:
        raise NotFound()
