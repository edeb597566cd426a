"""Connected platform accounts as the pipeline sees them: route a delivery to its owner,
read the account's token, stop using a token the platform refused.

Connecting, listing and disconnecting accounts (with the plan's gate) is services/platforms.py;
this module is the part the automation needs, below the services layer.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select, update

from models_db import PlatformAccount, db, utcnow
from utils import events
from utils.crypto import decrypt
from utils.db import execute, forget, memoized


def routing_criteria(platform, external_id) -> tuple:
    """The routing rule, as SQL criteria on platform_accounts (values or bind parameters):
    a delivery is for the account with its platform and external id, whatever its status.
    """
    return PlatformAccount.platform == platform, PlatformAccount.external_id == external_id


@dataclass(frozen=True)
class Account:
    """What the pipeline reads of a connected account: a plain snapshot, not an ORM row (a
    row would be expired by every commit of the run and read again on its next use).
    """

    id: str
    user_id: str
    platform: str
    external_id: str
    status: str
    access_token_encrypted: str


_T = PlatformAccount.__table__.c
# Built once: a Core statement keeps its compiled form and cache key (the hot path).
_FIND = select(_T.id, _T.user_id, _T.platform, _T.external_id, _T.status,
               _T.access_token_encrypted).where(
    *routing_criteria(bindparam("platform"), bindparam("external_id")))


def find_account(platform: str, external_id: str) -> Account | None:
    """Route an inbound delivery: which connected account (and so which owner) is it for?

    Read once per event run (utils.db.memoized): routing the delivery and each send of the
    run ask again.
    """
    def _read() -> Account | None:
        row = execute(_FIND, {"platform": platform, "external_id": external_id}).first()
        return Account(*row) if row else None

    return memoized(("account", platform, external_id), _read)


def account_token(account: Account) -> str:
    """The account's access token, decrypted for one Send API call (never logged)."""
    return decrypt(account.access_token_encrypted)


def mark_needs_reauth(account: Account, detail: str) -> None:
    """The platform refused the token: stop using it and tell the owner."""
    if account.status != "needs_reauth":
        db.session.execute(update(PlatformAccount.__table__)
                           .where(_T.id == account.id)
                           .values(status="needs_reauth", last_error=detail[:2000],
                                   updated_at=utcnow()))
        db.session.commit()
        forget(("account", account.platform, account.external_id))
        events.integration_error(account.user_id, {
            "kind": "platform_account", "platform_account_id": account.id,
            "platform": account.platform, "status": "needs_reauth", "error": "token_invalid",
            "message": detail})
