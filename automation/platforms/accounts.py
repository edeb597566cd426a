"""Connected platform accounts as the pipeline sees them: route a delivery to its owner,
read the account's token, stop using a token the platform refused.

Connecting, listing and disconnecting accounts (with the plan's gate) is services/platforms.py;
this module is the part the automation needs, below the services layer.
"""
from __future__ import annotations

from sqlalchemy import select

from models_db import PlatformAccount, db
from utils import events
from utils.crypto import decrypt


def routing_criteria(platform, external_id) -> tuple:
    """The routing rule, as SQL criteria on platform_accounts (values or bind parameters):
    a delivery is for the account with its platform and external id, whatever its status.
    """
    return PlatformAccount.platform == platform, PlatformAccount.external_id == external_id


def find_account(platform: str, external_id: str) -> PlatformAccount | None:
    """Route an inbound delivery: which connected account (and so which owner) is it for?"""
    return db.session.scalar(select(PlatformAccount).where(
        *routing_criteria(platform, external_id)))


def account_token(account: PlatformAccount) -> str:
    """The account's access token, decrypted for one Send API call (never logged)."""
    return decrypt(account.access_token_encrypted)


def mark_needs_reauth(account: PlatformAccount, detail: str) -> None:
    """The platform refused the token: stop using it and tell the owner."""
    if account.status != "needs_reauth":
        account.status = "needs_reauth"
        account.last_error = detail[:2000]
        db.session.commit()
        events.integration_error(account.user_id, {
            "kind": "platform_account", "platform_account_id": account.id,
            "platform": account.platform, "status": "needs_reauth", "error": "token_invalid",
            "message": detail})
