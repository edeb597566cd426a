"""User accounts: registration, login, profile, admin changes, password change."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from models_db import User, db
from services.subscriptions import ensure_subscription
from services.workflows import create_default_workflow
from utils.audit import audit
from utils.auth import revoke_user_sessions
from utils.errors import Conflict, NotFound, Unauthorized
from utils.pagination import paginate

# A hash to compare against when the e-mail is unknown, so timing does not tell
# whether an account exists.
_DUMMY = User(password_hash="")
_DUMMY.set_password("not-a-real-password")


def register_user(email: str, password: str, name: str = "", timezone: str = "UTC",
                  role: str = "user") -> User:
    """Create an account; 409 when the e-mail (case-insensitive) is taken."""
    user = User(email=User.normalize_email(email), name=name, timezone=timezone, role=role)
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("An account with this e-mail already exists.", code="email_taken") from None
    ensure_subscription(user.id)  # every new account starts on Free
    create_default_workflow(user.id)  # ... answering with AI, handing off when unsure
    return user


def authenticate_user(email: str, password: str) -> User:
    """Check credentials; a failed attempt is audited and answers one generic 401."""
    user = db.session.scalar(select(User).where(User.email == User.normalize_email(email)))
    ok = user.check_password(password) if user else _DUMMY.check_password(password)
    if user is None or not ok:  # the dummy's own password must not pass for a missing user
        audit("login_failed", user_id=user.id if user else None,
              email=User.normalize_email(email))
        raise Unauthorized("The e-mail or password is wrong.", code="invalid_credentials")
    if not user.is_active:
        audit("login_refused_inactive", user_id=user.id)
        raise Unauthorized("This account is deactivated.", code="account_disabled")
    return user


def update_profile(user: User, changes: dict) -> User:
    """Change the caller's own name or timezone."""
    for field in ("name", "timezone"):
        if changes.get(field) is not None:
            setattr(user, field, changes[field])
    db.session.commit()
    return user


def change_password(user: User, current: str, new: str, keep_session_id: str) -> None:
    """Change the password and sign out every other session of the user."""
    if not user.check_password(current):
        audit("password_change_failed", user_id=user.id)
        raise Unauthorized("The current password is wrong.", code="invalid_credentials")
    user.set_password(new)
    revoked = revoke_user_sessions(user.id, "password_changed", keep_session_id=keep_session_id)
    audit("password_changed", user_id=user.id, actor_id=user.id, commit=False,
          sessions_revoked=revoked)
    db.session.commit()


def list_users(q: str | None, limit: int, cursor: str | None) -> dict:
    """Admin: users in (created_at, id) order, optionally filtered by e-mail substring."""
    stmt = select(User)
    if q:
        stmt = stmt.where(User.email.contains(q.strip().lower(), autoescape=True))
    return paginate(stmt, User.created_at, User.id, cursor, limit, User.to_dict,
                    descending=False).to_dict()


def get_user(user_id: str) -> User:
    """An account by id (admin), or 404."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def admin_update_user(actor: User, user_id: str, changes: dict) -> User:
    """Admin: change a user's role, active flag or name; audited; deactivation signs out."""
    user = get_user(user_id)
    applied = {}
    for field in ("role", "is_active", "name"):
        value = changes.get(field)
        if value is not None and getattr(user, field) != value:
            applied[field] = value
            setattr(user, field, value)
    if applied.get("is_active") is False:
        revoke_user_sessions(user.id, "deactivated")
    if applied:
        audit("admin_user_update", user_id=user.id, actor_id=actor.id, commit=False, **applied)
    db.session.commit()
    return user
