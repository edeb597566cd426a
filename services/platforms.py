"""Connected platform accounts: connect (gated by plan), list, disconnect, route inbound."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from models_db import PlatformAccount, db
from services import entitlements
from utils.audit import audit
from utils.crypto import decrypt, encrypt
from utils.errors import Conflict, NotFound
from utils.realtime import publish


def list_accounts(user_id: str) -> dict:
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
        raise Conflict("This account is already connected.", code="account_already_connected") from None
    audit("platform_connected", user_id=user_id, actor_id=user_id, platform=platform,
          external_id=external_id)
    return account


def get_account(user_id: str, account_id: str) -> PlatformAccount:
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
    account = get_account(user_id, account_id)
    db.session.delete(account)
    db.session.commit()
    audit("platform_disconnected", user_id=user_id, actor_id=user_id, platform=account.platform,
          external_id=account.external_id)


def find_account(platform: str, external_id: str) -> PlatformAccount | None:
    """Route an inbound delivery: which connected account (and so which owner) is it for?"""
    return db.session.scalar(select(PlatformAccount).where(
        PlatformAccount.platform == platform, PlatformAccount.external_id == external_id))


def account_token(account: PlatformAccount) -> str:
    return decrypt(account.access_token_encrypted)


def mark_needs_reauth(account: PlatformAccount, detail: str) -> None:
    """The platform refused the token: stop using it and tell the owner."""
    if account.status != "needs_reauth":
        account.status = "needs_reauth"
        account.last_error = detail[:2000]
        db.session.commit()
        publish(account.user_id, "integration_error", {
            "kind": "platform_account", "platform_account_id": account.id,
            "platform": account.platform, "status": "needs_reauth", "error": "token_invalid",
            "message": detail})
