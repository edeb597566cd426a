"""The PlatformConnector contract and the normalized shapes every connector speaks.

A connector turns one verified webhook delivery (already-parsed JSON) into a list of
InboundEvent, and sends OutboundMessage through the platform's Send API, mapping failures
to SendError by the Graph `error.code` (never by HTTP status or message text).
Adding a platform is one module with a PlatformConnector subclass plus a line in
automation/registry.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

# InboundEvent.kind values
MESSAGE = "message"        # a customer message of any type (opens/resets the 24 h window)
POSTBACK = "postback"      # a button/ice-breaker tap (opens/resets the window)
# a message the business sent (our app or the native inbox): never answered
ECHO = "echo"
REACTION = "reaction"      # a reaction added or removed on a message
UNSEND = "unsend"          # the customer deleted (unsent) one of their messages
EDIT = "edit"              # the customer edited a message
DELIVERY = "delivery"      # Messenger delivery watermark / mids
READ = "read"              # read watermark (Messenger) or read mid (Instagram)
STATUS = "status"          # WhatsApp status of an outbound wamid: sent|delivered|read|failed

WINDOW_KINDS = frozenset({MESSAGE, POSTBACK})


@dataclass
class InboundEvent:
    """One normalized item of a delivery. Unknown items are simply not produced."""

    kind: str
    platform: str
    account_id: str                     # Page id / IG account id / WhatsApp phone_number_id
    contact_id: str | None              # PSID / IGSID / wa_id (or BSUID when no wa_id)
    timestamp: datetime                 # the platform's timestamp (UTC)
    message_id: str | None = None       # mid / wamid of this message (the dedupe key)
    message_type: str | None = None     # text|image|audio|video|file|sticker|share|story_mention|
    #                                     story_reply|location|contacts|quick_reply|interactive|
    #                                     button|unsupported|reel|... (free-form, for display)
    text: str | None = None
    # [{type, url?, media_id?, mime_type?, caption?, ...}]
    attachments: list[dict] = field(default_factory=list)
    # quick reply / postback / interactive id / template button payload
    payload: str | None = None
    title: str | None = None            # postback or interactive title
    reply_to: str | None = None         # the mid/wamid this message replies to (context)
    # {name, first_name, username, phone, ...}
    profile: dict = field(default_factory=dict)
    reaction: dict | None = None        # {emoji, action: react|unreact}
    status: str | None = None           # for STATUS: sent|delivered|read|failed
    watermark: datetime | None = None   # for DELIVERY/READ on Messenger
    target_ids: list[str] = field(default_factory=list)     # mids/wamids the event refers to
    error: dict | None = None           # {code, title, message} for failed statuses / unsupported
    # story, location, contacts, referral, app_id, ...
    metadata: dict = field(default_factory=dict)

    @property
    def opens_window(self) -> bool:
        """Only customer messages and postbacks open or reset the 24-hour window."""
        return self.kind in WINDOW_KINDS


@dataclass
class OutboundMessage:
    """What we want to send; a connector renders it in its platform's format."""

    text: str | None = None
    quick_replies: list[dict] = field(default_factory=list)  # [{title, payload}]
    buttons: list[dict] = field(default_factory=list)        # [{title, payload} | {title, url}]
    media: dict | None = None                                # {type: image|video|audio|file, url}
    # quote this mid/wamid (WhatsApp context)
    reply_to: str | None = None
    # e.g. HUMAN_AGENT (Messenger/IG outside 24 h)
    tag: str | None = None
    # Messenger metadata (comes back in the echo)
    metadata: str | None = None
    # WhatsApp template: {name, language, components?}
    template: dict | None = None


@dataclass
class SendResult:
    """What a successful send returns: the platform's message id and its raw answer."""

    platform_message_id: str
    raw: dict = field(default_factory=dict)


class SendError(Exception):
    """A send that did not succeed, classified by the Graph error code.

    code: outside_window | token_invalid | rate_limited | recipient_unavailable |
          permission_denied | invalid_request | platform_error | network_error
    """

    def __init__(self, code: str, message: str, *, retryable: bool = False,
                 graph_code: int | None = None, graph_subcode: int | None = None,
                 http_status: int | None = None):
        """Classify a failed send (code) and keep Graph's codes for the logs."""
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.graph_code = graph_code
        self.graph_subcode = graph_subcode
        self.http_status = http_status

    @property
    def needs_reauth(self) -> bool:
        """True when the token was refused: the account must be re-authorized."""
        return self.code == "token_invalid"


@dataclass
class GraphConfig:
    """Where and how to call the Graph API (from settings; tests point it at loopback)."""

    base_url: str
    version: str
    timeout: float = 10.0
    retry_attempts: int = 4
    retry_wait_initial: float = 0.5
    retry_wait_max: float = 8.0

    def url(self, path: str) -> str:
        """The full URL of a Graph path under the configured version."""
        return f"{self.base_url.rstrip('/')}/{self.version}/{path.lstrip('/')}"


@dataclass
class AccountCredentials:
    """The connected account a reply goes out through."""

    external_id: str     # Page id / IG account id / phone_number_id
    access_token: str


@dataclass
class AccountProfile:
    """Who Graph says a token's account is (the answer to the connect-time ownership check)."""

    id: str
    name: str = ""
    display_phone_number: str | None = None   # WhatsApp only
    raw: dict = field(default_factory=dict)


class PlatformConnector:
    """Base class: one subclass per platform, listed in automation.registry.PLATFORMS."""

    platform: ClassVar[str]
    webhook_objects: ClassVar[tuple[str, ...]]   # accepted top-level `object` values
    secret_setting: ClassVar[str] = "META_APP_SECRET"

    def __init__(self, graph: GraphConfig):
        """Keep where and how to call the Graph API."""
        self.graph = graph

    def parse(self, payload: dict) -> list[InboundEvent]:
        """Normalize a delivery; unknown objects, fields and event kinds yield nothing."""
        raise NotImplementedError

    def send(self, account: AccountCredentials, recipient_id: str,
             message: OutboundMessage) -> SendResult:
        """Send one message; retries retryable failures with backoff; raises SendError."""
        raise NotImplementedError

    def fetch_account(self, account: AccountCredentials) -> AccountProfile:
        """Ask the platform, with the account's own token, which account that token manages.

        One read, no retry: the answer proves (or refuses) that whoever holds the token may
        connect `account.external_id`. Raises SendError with the platform's reason.
        """
        raise NotImplementedError
