"""Instagram Messaging (webhook object `instagram`): an IG professional account talking to IGSIDs.

Same envelope and Send API as Messenger (see messenger_common); Instagram-only keys
(is_deleted, is_unsupported, read.mid, reply_to.story, story_mention) are handled there.
Apps using "Instagram API with Instagram Login" sign webhooks with the Instagram app secret.
"""
from __future__ import annotations

from .base import AccountCredentials, AccountProfile
from .messenger_common import MessengerStyleConnector


class InstagramConnector(MessengerStyleConnector):
    """Instagram: text must stay under 1000 characters, so long replies are split sooner."""

    platform = "instagram"
    webhook_objects = ("instagram",)
    secret_setting = "INSTAGRAM_APP_SECRET"
    text_limit = 1000

    def account_check(self, account: AccountCredentials) -> tuple[str, str]:
        """Instagram: the account itself, which only a token that manages it can read."""
        return account.external_id, "id,username"

    def profile_of(self, body: dict) -> AccountProfile:
        """Instagram answers `username` where Pages answer `name`."""
        return AccountProfile(id=str(body.get("id") or ""), name=str(body.get("username") or ""),
                              raw=body)
