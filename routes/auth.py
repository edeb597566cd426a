"""/api/auth: register, login, refresh (rotation), logout, me, password."""
from __future__ import annotations

from flask import Blueprint, g

from models_db import db
from routes.schemas import (
    LoginIn,
    OkOut,
    PasswordChangeIn,
    RefreshIn,
    RegisterIn,
    TokenPairOut,
    UserOut,
)
from services import users as users_service
from utils.auth import require_auth, revoke_session, rotate_refresh_token, start_session
from utils.openapi import endpoint
from utils.ratelimit import account_key, auth_limit, limiter

bp = Blueprint("auth", __name__, url_prefix="/api/auth")
TAGS = ["auth"]


@bp.post("/register")
@limiter.limit(auth_limit)
@limiter.limit(auth_limit, key_func=account_key)
@endpoint(body=RegisterIn, response=TokenPairOut, status=201, tags=TAGS, errors=(409, 415, 429))
def register(body: RegisterIn):
    """Create an account and sign it in."""
    user = users_service.register_user(body.email, body.password, body.name, body.timezone)
    return start_session(user), 201


@bp.post("/login")
@limiter.limit(auth_limit)
@limiter.limit(auth_limit, key_func=account_key)
@endpoint(body=LoginIn, response=TokenPairOut, tags=TAGS, errors=(401, 415, 429))
def login(body: LoginIn):
    """Sign in with e-mail and password."""
    user = users_service.authenticate_user(body.email, body.password)
    return start_session(user)


@bp.post("/refresh")
@endpoint(body=RefreshIn, response=TokenPairOut, tags=TAGS, errors=(401,))
def refresh(body: RefreshIn):
    """Spend a refresh token for a new pair; reusing a spent one revokes the session."""
    return rotate_refresh_token(body.refresh_token)


@bp.post("/logout")
@require_auth
@endpoint(response=OkOut, tags=TAGS)
def logout():
    """Sign out the current session (its access and refresh tokens stop working)."""
    revoke_session(g.auth_session, "logout")
    db.session.commit()
    return {"status": "ok"}


@bp.get("/me")
@require_auth
@endpoint(response=UserOut, tags=TAGS)
def me():
    """The signed-in user."""
    return g.user.to_dict()


@bp.post("/password")
@require_auth
@endpoint(body=PasswordChangeIn, response=OkOut, tags=TAGS)
def change_password(body: PasswordChangeIn):
    """Change the password; every other session is signed out."""
    users_service.change_password(g.user, body.current_password, body.new_password,
                                  keep_session_id=g.auth_session.id)
    return {"status": "ok"}
