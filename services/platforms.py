"""Connected platform accounts: connect (gated by plan, proven with Graph), list, rename,
re-authorize, disconnect.

Routing a delivery to its account and the account's token are automation/platforms/accounts.py.
"""
from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from automation.connectors import connector_for
from automation.platforms.base import AccountCredentials, AccountProfile, SendError
from models_db import PlatformAccount, db
from services import entitlements
from utils.audit import audit
from utils.crypto import encrypt
from utils.errors import ApiError, Conflict, NotFound, Unprocessable

log = logging.getLogger("dana.platforms")


def list_accounts(user_id: str) -> dict:
    """The user's connected accounts, oldest first (never their tokens)."""
    rows = db.session.scalars(select(PlatformAccount).where(PlatformAccount.user_id == user_id)
                              .order_by(PlatformAccount.created_at, PlatformAccount.id))
    return {"items": [a.to_dict() for a in rows], "next_cursor": None}


ACCOUNT_NOUNS = {"facebook": "Page", "instagram": "Instagram account",
                 "whatsapp": "WhatsApp phone number"}


def verify_ownership(platform: str, external_id: str, access_token: str) -> AccountProfile:
    """Prove with one Graph call that `access_token` manages `external_id`; else 422.

    Messenger asks `/me` (a Page token is its Page); Instagram and WhatsApp read the account
    itself, which Graph refuses to a token that does not manage it. A refusal or another id
    answers 422 `platform_check_failed` with Meta's reason; Meta unreachable answers 503.
    """
    noun = ACCOUNT_NOUNS.get(platform, "account")
    try:
        profile = connector_for(platform).fetch_account(AccountCredentials(external_id,
                                                                           access_token))
    except SendError as exc:
        if exc.retryable:
            log.warning("ownership check of %s %s: Meta unavailable (%s)", platform, external_id,
                        exc.code)
            raise ApiError("Meta could not be reached to check this account; try again.",
                           code="platform_unavailable", status=503) from None
        raise Unprocessable(
            f"Meta refused this access token for {noun} {external_id}: {exc.message}",
            code="platform_check_failed",
            details=[{"field": "access_token", "message": exc.message,
                      "type": exc.code, "graph_code": exc.graph_code}]) from None
    if profile.id != external_id:
        raise Unprocessable(
            f"This access token manages {profile.id or 'another object'}, "
            f"not the {noun} {external_id}.",
            code="platform_check_failed",
            details=[{"field": "external_id", "message": "the token does not manage this id",
                      "type": "account_mismatch"}])
    return profile


def connect_account(user_id: str, platform: str, external_id: str, access_token: str,
                    name: str) -> PlatformAccount:
    """Connect a Page / IG account / WhatsApp number the token is proven to manage.

    Order: plan (402, before any outbound call) -> ownership check with Graph (422) ->
    already connected by anyone (409, so only a token that passed learns it) -> store,
    with the name / display number Graph answered.
    """
    count = db.session.scalar(select(func.count()).select_from(PlatformAccount)
                              .where(PlatformAccount.user_id == user_id)) or 0
    entitlements.require_platform(user_id, platform, connected_accounts=count)
    db.session.commit()   # hold no connection (or transaction) while Graph answers
    profile = verify_ownership(platform, external_id, access_token)
    taken = db.session.scalar(select(PlatformAccount.id).where(
        PlatformAccount.platform == platform, PlatformAccount.external_id == external_id))
    if taken:
        raise Conflict("This account is already connected.", code="account_already_connected")
    number = (profile.display_phone_number or "")[:32] or None
    account = PlatformAccount(user_id=user_id, platform=platform, external_id=external_id,
                              name=(name or profile.name)[:200], display_phone_number=number,
                              access_token_encrypted=encrypt(access_token))
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
    """Rename or re-authorize: a new token must pass the same Graph check as a connect (422,
    nothing changed), and then makes a needs_reauth account active again.
    """
    account = get_account(user_id, account_id)
    if changes.get("access_token"):
        platform, external_id = account.platform, account.external_id
        db.session.commit()   # hold no connection (or transaction) while Graph answers
        profile = verify_ownership(platform, external_id, changes["access_token"])
        account.access_token_encrypted = encrypt(changes["access_token"])
        account.status, account.last_error = "active", None
        if profile.display_phone_number:
            account.display_phone_number = profile.display_phone_number[:32]
    if changes.get("name") is not None:
        account.name = changes["name"]
    db.session.commit()
    return account


def disconnect_account(user_id: str, account_id: str) -> None:
    """Forget an account and its token (audited); deliveries for it are then ignored."""
    account = get_account(user_id, account_id)
    db.session.delete(account)
    db.session.commit()
    audit("platform_disconnected", user_id=user_id, actor_id=user_id, platform=account.platform,
          external_id=account.external_id)
