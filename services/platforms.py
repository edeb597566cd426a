"""Connected platform accounts: connect (gated by plan), list, rename, re-authorize, disconnect.

Routing a delivery to its account and the account's token are automation/platforms/accounts.py.
"""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from models_db import PlatformAccount, db
from services import entitlements
from utils.audit import audit
from utils.crypto import encrypt
from utils.errors import Conflict, NotFound


def list_accounts(user_id: str) -> dict:
    """The user's connected accounts, oldest first (never their tokens)."""
    rows = db.session.scalars(select(PlatformAccount).where(PlatformAccount.user_id == user_id)
                              .order_by(PlatformAccount.created_at, PlatformAccount.id))
    return {"items": [a.to_dict() for a in rows], "next_cursor": None}


def connect_account(user_id: str, platform: str, external_id: str, access_token: str,
                    name: str) -> PlatformAccount:
    """Connect a Page / IG account / WhatsApp number; 409 if anyone connected it already."""
    taken = db.session.scalar(select(PlatformAccount.id).where(
        PlatformAccount.platform == platform, PlatformAccount.external_id == external_id))
    if taken:
        raise Conflict("This account is already connected.", code="account_already_connected")
    count = db.session.scalar(select(func.count()).select_from(PlatformAccount)
                              .where(PlatformAccount.user_id == user_id)) or 0
    entitlements.require_platform(user_id, platform, connected_accounts=count)
    account = PlatformAccount(user_id=user_id, platform=platform, external_id=external_id,
                              name=name, access_token_encrypted=encrypt(access_token))
    db.session.add(account)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("This account is already connected.",
                       code="account_already_connected") from None
    audit("platform_connected", user_id=user_id, actor_id=user_id, platform=platform,
          external_id=external_id)
    return account


def get_account(user_id: str, account_id: str) -> PlatformAccount:
    """One of the user's connected accounts, or 404."""
    account = db.session.scalar(select(PlatformAccount).where(
        PlatformAccount.id == account_id, PlatformAccount.user_id == user_id))
    if account is None:
        raise NotFound("No such platform account.", code="platform_account_not_found")
    return account


def update_account(user_id: str, account_id: str, changes: dict) -> PlatformAccount:
    """Rename or re-authorize (a new token makes a needs_reauth account active again)."""
    account = get_account(user_id, account_id)
    if changes.get("name") is not None:
        account.name = changes["name"]
    if changes.get("access_token"):
        account.access_token_encrypted = encrypt(changes["access_token"])
        account.status, account.last_error = "active", None
    db.session.commit()
    return account


def disconnect_account(user_id: str, account_id: str) -> None:
    """Forget an account and its token (audited); deliveries for it are then ignored."""
    account = get_account(user_id, account_id)
    db.session.delete(account)
    db.session.commit()
    audit("platform_disconnected", user_id=user_id, actor_id=user_id, platform=account.platform,
          external_id=account.external_id)
