"""Facebook Messenger (webhook object `page`): a Page talking to people by PSID."""
from __future__ import annotations

from .messenger_common import MessengerStyleConnector


class FacebookConnector(MessengerStyleConnector):
    """Messenger: `entry[].messaging[]` in, POST /me/messages out; text under 2000 characters."""

    platform = "facebook"
    webhook_objects = ("page",)
    text_limit = 2000
