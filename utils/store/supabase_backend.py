"""Supabase backend of the store: supabase-py (PostgREST) against SUPABASE_URL.

Isolation. Every Store method receives the owner's id, so every call that has one goes out
with a JWT minted for that owner: HS256 with SUPABASE_JWT_SECRET, role `authenticated`,
`sub` = owner id, `aud` authenticated, one minute of life. Supabase's Row-Level Security
(supabase/migrations/*.sql: auth.uid() = owner_id) then confines the call to the owner's rows.
Each query also filters by owner_id itself: defence in depth, and it keeps the queries on
the (owner_id, ...) indexes. This holds for ingest too (the webhook knows the page's owner).
The service-role key (SUPABASE_KEY, which bypasses RLS) is used only where no single user's
token can do the job: find_message(None, ...), the cross-owner duplicate check, and the
subscription writes and cross-user reads (see "Subscriptions" below).

Subscriptions. Plans have no owner and are public: they are read with an anon token, the
least privilege that sees them. A user's subscription is read with a token for that user
(RLS: auth.uid() = user_id), whoever asked - the user, an admin, or ingest checking the plan
of a page's owner: Dana's service layer has already decided that the caller may see it, just
as every owner-scoped method mints a token for the owner it is given. Every write to plans and
subscriptions goes out with the service key, as do the two reads that span users
(count_tier_subscriptions, list_subscriptions): the migration grants `authenticated` no write
on these tables at all, since a user who could write their own subscription row could move to
a paid plan without paying. Dana writes them only after its own checks
(services/subscriptions.py: the caller's own subscription, or an admin).

Clients. A fresh supabase-py client per store call, never kept, so no client ever carries
one owner's token into another owner's request. The clients share one httpx connection pool
per store, which holds no credentials: postgrest-py sends Authorization with each request,
not on the pool (building a client on it costs ~0.4 ms instead of ~50 ms without it). The
pool is per store instance, never module-level.

Behaviour matches SqlStore (utils/store/sql.py), the reference: the same serializers
(utils/store/serialize.py), keyset cursors, monotonic delivery status, DuplicateMessage,
DuplicateTier and LookupError. Where SqlStore holds a row lock or one transaction across
statements, this backend reads, then updates on condition that what it read still holds
(compare-and-set on the conversation counters, the delivery status, a message's updated_at)
and reads again when a concurrent writer got there first.
Inbox search (?q=) is the SQL function public.search_conversations, called through RPC.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import httpx
import jwt
from postgrest.exceptions import APIError
from postgrest.utils import sanitize_param
from supabase import Client, ClientOptions, create_client
from typing_extensions import override

from utils.config import ConfigError
from utils.errors import ApiError
from utils.pagination import decode_time_cursor, page_of
from utils.store.base import (
    ConversationFilters,
    DuplicateMessage,
    DuplicateTier,
    NewMessage,
    Page,
    Store,
    TaskFilters,
    status_moves_forward,
)
from utils.store.serialize import (
    apply_profile,
    contact_dict,
    conversation_dict,
    like_pattern,
    message_dict,
    subscription_dict,
    task_dict,
    tier_dict,
)

UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATION = "23503"
TOKEN_TTL = timedelta(seconds=60)
CAS_ATTEMPTS = 5
CONVERSATION_COLUMNS = "*,contact:contacts(id,name,platform_user_id,profile_pic)"
PROFILE_COLUMNS = ("name", "first_name", "last_name", "username", "profile_pic", "locale",
                   "phone", "email", "profile")
TIME_COLUMNS = {"created_at", "updated_at", "last_message_at", "last_inbound_at",
                "snoozed_until", "due_at", "started_at", "current_period_end", "canceled_at",
                "past_due_since", "trial_started_at"}


def _is_uuid(value) -> bool:
    """Ids are uuids on Supabase; anything else names no row (PostgREST would answer 400)."""
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _utc(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _time(value: str | None) -> datetime | None:
    return _utc(datetime.fromisoformat(value)) if value else None


def _obj(row: dict) -> SimpleNamespace:
    """A PostgREST row as the attribute object the SQL serializers read (times parsed, the
    `metadata` column under the ORM's attribute name `meta`).
    """
    values = {k: (_time(v) if k in TIME_COLUMNS else v) for k, v in row.items()}
    if "metadata" in values:
        values["meta"] = values.pop("metadata")
    return SimpleNamespace(**values)


def _conversation(row: dict) -> dict:
    return conversation_dict(_obj(row), _obj(row["contact"]))


def _first(response) -> dict | None:
    return response.data[0] if response.data else None


def _values(data: dict) -> dict:
    """Column values as JSON carries them: a Decimal (numeric) as its exact text, a datetime
    in UTC (a naive one taken as UTC, as the SQL backend does).
    """
    out = {}
    for key, value in data.items():
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, datetime):
            value = _utc(value)
        out[key] = value
    return out


def _profile_changes(row: dict, profile: dict) -> dict:
    """The columns apply_profile would change on this contact row."""
    before = {k: row.get(k) for k in PROFILE_COLUMNS}
    before["profile"] = before["profile"] or {}
    after = SimpleNamespace(**before)
    apply_profile(after, profile)
    return {k: v for k, v in vars(after).items() if v != before[k]}


def paginate(query, column: str, cursor: str | None, limit: int,
             to_dict: Callable[[SimpleNamespace], dict]) -> Page:
    """One page, newest first on (column, id), continuing after `cursor`: the pages and
    cursors of utils.pagination.paginate (the SQL backend), built through PostgREST.
    """
    if cursor:
        when, row_id = decode_time_cursor(cursor)
        if not _is_uuid(row_id):
            raise ApiError("The cursor is not valid for this list.", code="invalid_cursor")
        when, row_id = sanitize_param(when.isoformat()), sanitize_param(row_id)
        query = query.or_(f"{column}.lt.{when},and({column}.eq.{when},id.lt.{row_id})")
    rows = query.order(column, desc=True).order("id", desc=True).limit(limit + 1).execute().data
    return page_of([_obj(r) for r in rows], limit, to_dict,
                   lambda o: (getattr(o, column), o.id))


def _guard(query, column: str, value):
    """Condition an UPDATE on a value read earlier (compare-and-set)."""
    return query.is_(column, "null") if value is None else query.eq(column, value)


class SupabaseStore(Store):
    """The store on Supabase; see utils.store.base.Store for the contract."""

    name = "supabase"

    def __init__(self, settings):
        """Check the Supabase settings and prepare the shared connection pool."""
        missing = [n for n in ("SUPABASE_URL", "SUPABASE_KEY", "SUPABASE_JWT_SECRET")
                   if not getattr(settings, n)]
        if missing:
            raise ConfigError("DATA_BACKEND=supabase needs these settings, which are not set: "
                              + ", ".join(missing))
        self._url = settings.SUPABASE_URL
        self._service_key = settings.SUPABASE_KEY
        self._jwt_secret = settings.SUPABASE_JWT_SECRET
        # Connections only: no headers, no auth. Credentials go on each request (see docstring).
        self._http = httpx.Client(timeout=httpx.Timeout(20.0, connect=5.0), follow_redirects=True,
                                  http2=True)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _client(self, owner_id: str | None) -> Client:
        """A new client whose requests carry a JWT for owner_id (RLS applies), or the service
        key when there is no owner.
        """
        if owner_id is None:
            return self._client_with(self._service_key)
        return self._client_with(self._token({"sub": str(owner_id), "role": "authenticated",
                                              "aud": "authenticated"}))

    def _anon_client(self) -> Client:
        """A new client whose requests carry an anon JWT: what anyone may read (the plans)."""
        return self._client_with(self._token({"role": "anon"}))

    def _token(self, claims: dict) -> str:
        now = datetime.now(timezone.utc)
        return jwt.encode({**claims, "iat": now, "exp": now + TOKEN_TTL}, self._jwt_secret,
                          algorithm="HS256")

    def _client_with(self, token: str) -> Client:
        options = ClientOptions(headers={"Authorization": f"Bearer {token}"},
                                auto_refresh_token=False, persist_session=False,
                                httpx_client=self._http)
        return create_client(self._url, self._service_key, options=options)

    # ------------------------------------------------------------------ contacts
    @override
    def upsert_contact(self, owner_id: str, platform: str, platform_user_id: str,
                       profile: dict) -> tuple[dict, bool]:
        db = self._client(owner_id)

        def lookup() -> dict | None:
            return _first(db.table("contacts").select("*").eq("owner_id", owner_id)
                          .eq("platform", platform).eq("platform_user_id", platform_user_id)
                          .execute())

        row = lookup()
        if row is None:
            new = {"owner_id": owner_id, "platform": platform,
                   "platform_user_id": platform_user_id, "profile": {}}
            new.update(_profile_changes(new, profile))
            try:
                return contact_dict(_obj(db.table("contacts").insert(new).execute().data[0])), True
            except APIError as exc:
                if exc.code != UNIQUE_VIOLATION:
                    raise
                row = lookup()  # created concurrently by another process
        changes = _profile_changes(row, profile)
        if changes:
            row = (db.table("contacts").update(changes).eq("owner_id", owner_id)
                   .eq("id", row["id"]).execute().data[0])
        return contact_dict(_obj(row)), False

    @override
    def get_contact(self, owner_id: str, contact_id: str) -> dict | None:
        if not _is_uuid(contact_id):
            return None
        row = _first(self._client(owner_id).table("contacts").select("*")
                     .eq("owner_id", owner_id).eq("id", contact_id).execute())
        return contact_dict(_obj(row)) if row else None

    @override
    def list_contacts(self, owner_id: str, q: str | None, platform: str | None, limit: int,
                      cursor: str | None) -> Page:
        query = self._client(owner_id).table("contacts").select("*").eq("owner_id", owner_id)
        if platform:
            query = query.eq("platform", platform)
        if q:
            # the SQL backend's escaped LIKE pattern; PostgREST also reads `*` as a wildcard
            pattern = sanitize_param(like_pattern(q.lower()))
            query = query.or_(f"name.ilike.{pattern},email.ilike.{pattern},phone.ilike.{pattern}")
        return paginate(query, "created_at", cursor, limit, contact_dict)

    def _update_owned(self, table: str, owner_id: str, row_id: str, changes: dict):
        """UPDATE one of the owner's rows by id; the updated row, or None when not theirs."""
        if not _is_uuid(row_id):
            return None
        row = _first(self._client(owner_id).table(table).update(changes)
                     .eq("owner_id", owner_id).eq("id", row_id).execute())
        return _obj(row) if row else None

    @override
    def update_contact(self, owner_id: str, contact_id: str, changes: dict) -> dict | None:
        if not changes:
            return self.get_contact(owner_id, contact_id)
        row = self._update_owned("contacts", owner_id, contact_id, changes)
        return contact_dict(row) if row else None

    # ------------------------------------------------------------- conversations
    @override
    def open_conversation(self, owner_id: str, platform: str, platform_account_id: str,
                          contact_id: str, *, contact: dict | None = None) -> tuple[dict, bool]:
        # (`contact` is not needed: the insert's composite foreign key checks the owner)
        if not _is_uuid(contact_id):
            raise LookupError("contact not found for this owner")
        db = self._client(owner_id)

        def lookup() -> dict | None:
            return _first(db.table("conversations").select(CONVERSATION_COLUMNS)
                          .eq("owner_id", owner_id).eq("platform_account_id", platform_account_id)
                          .eq("contact_id", contact_id).execute())

        row = lookup()
        if row is not None:
            return _conversation(row), False
        new = {"owner_id": owner_id, "platform": platform,
               "platform_account_id": platform_account_id, "contact_id": contact_id}
        try:
            row = db.table("conversations").insert(new).select(CONVERSATION_COLUMNS).execute()
            return _conversation(row.data[0]), True
        except APIError as exc:
            if exc.code == FOREIGN_KEY_VIOLATION:  # (contact_id, owner_id) is not a contact
                raise LookupError("contact not found for this owner") from None
            if exc.code != UNIQUE_VIOLATION:
                raise
        return _conversation(lookup()), False  # opened concurrently by another process

    @override
    def get_conversation(self, owner_id: str, conversation_id: str) -> dict | None:
        if not _is_uuid(conversation_id):
            return None
        row = _first(self._client(owner_id).table("conversations").select(CONVERSATION_COLUMNS)
                     .eq("owner_id", owner_id).eq("id", conversation_id).execute())
        return _conversation(row) if row else None

    def find_conversation(self, owner_id: str, platform: str, platform_account_id: str,
                          platform_user_id: str) -> dict | None:
        """The conversation on this account with this platform user (contact, then
        conversation: both lookups are on unique keys).
        """
        db = self._client(owner_id)
        contact = _first(db.table("contacts").select("id").eq("owner_id", owner_id)
                         .eq("platform", platform).eq("platform_user_id", platform_user_id)
                         .execute())
        if contact is None:
            return None
        row = _first(db.table("conversations").select(CONVERSATION_COLUMNS)
                     .eq("owner_id", owner_id).eq("platform_account_id", platform_account_id)
                     .eq("contact_id", contact["id"]).execute())
        return _conversation(row) if row else None

    @override
    def list_conversations(self, owner_id: str, filters: ConversationFilters, limit: int,
                           cursor: str | None) -> Page:
        db = self._client(owner_id)
        if filters.q:
            # contact name or any message text: public.search_conversations in the migration
            query = db.rpc("search_conversations", {"q": filters.q}).select(CONVERSATION_COLUMNS)
        else:
            query = db.table("conversations").select(CONVERSATION_COLUMNS)
        query = query.eq("owner_id", owner_id)
        for column in ("status", "platform", "assignee_id"):
            if getattr(filters, column):
                query = query.eq(column, getattr(filters, column))
        if filters.label:
            query = query.contains("labels", [filters.label])
        return paginate(query, "last_message_at", cursor, limit,
                        lambda o: conversation_dict(o, _obj(o.contact)))

    @override
    def update_conversation(self, owner_id: str, conversation_id: str,
                            changes: dict) -> dict | None:
        if not changes:
            return self.get_conversation(owner_id, conversation_id)
        if not _is_uuid(conversation_id):
            return None
        row = _first(self._client(owner_id).table("conversations").update(changes)
                     .eq("owner_id", owner_id).eq("id", conversation_id)
                     .select(CONVERSATION_COLUMNS).execute())
        return _conversation(row) if row else None

    @override
    def mark_conversation_read(self, owner_id: str, conversation_id: str) -> dict | None:
        return self.update_conversation(owner_id, conversation_id, {"unread_count": 0})

    # ------------------------------------------------------------------ messages
    @override
    def add_message(self, owner_id: str, message: NewMessage) -> dict:
        db = self._client(owner_id)
        conv = self._conversation_row(db, owner_id, message.conversation_id)
        if conv is None:
            raise LookupError("conversation not found for this owner")
        created_at = _utc(message.created_at or datetime.now(timezone.utc))
        row = {
            "owner_id": owner_id, "conversation_id": conv["id"], "direction": message.direction,
            "sender_type": message.sender_type, "text": message.text,
            "attachments": list(message.attachments or []),
            "platform": message.platform or conv["platform"],
            "platform_message_id": message.platform_message_id, "status": message.status,
            "error": message.error, "reply_to": message.reply_to, "is_note": message.is_note,
            "idempotency_key": message.idempotency_key,
            "metadata": dict(message.metadata or {}), "created_at": created_at,
        }
        try:
            stored = db.table("messages").insert(row).execute().data[0]
        except APIError as exc:
            if exc.code != UNIQUE_VIOLATION:
                raise
            existing = None
            if message.platform_message_id:
                existing = self.find_message(owner_id, row["platform"],
                                             message.platform_message_id)
            if existing is None and message.idempotency_key:
                existing = self.find_message_by_key(owner_id, message.idempotency_key)
            raise DuplicateMessage(existing or {}) from None
        if not message.is_note:
            self._count_message(db, owner_id, conv, message, created_at)
        return message_dict(_obj(stored))

    @staticmethod
    def _conversation_row(db: Client, owner_id: str, conversation_id: str) -> dict | None:
        if not _is_uuid(conversation_id):
            return None
        return _first(db.table("conversations").select("*").eq("owner_id", owner_id)
                      .eq("id", conversation_id).execute())

    @staticmethod
    def _count_message(db: Client, owner_id: str, conv: dict, message: NewMessage,
                       created_at: datetime) -> None:
        """Update the conversation's counters and last-message fields as SqlStore does,
        conditioned on the counters read (every counted message changes message_count), so
        two concurrent messages never lose an increment.
        """
        for _ in range(CAS_ATTEMPTS):
            count, unread = conv["message_count"] or 0, conv["unread_count"] or 0
            changes: dict = {"message_count": count + 1}
            if not count or created_at >= _time(conv["last_message_at"]):
                changes["last_message_at"] = created_at
                preview = message.text or (
                    f"[{message.attachments[0].get('type', 'attachment')}]"
                    if message.attachments else None)
                changes["last_message_preview"] = preview[:200] if preview else None
            if message.direction == "inbound":
                changes["unread_count"] = unread + 1
                last_inbound = _time(conv["last_inbound_at"])
                if last_inbound is None or created_at > last_inbound:
                    changes["last_inbound_at"] = created_at
            done = (db.table("conversations").update(changes).eq("owner_id", owner_id)
                    .eq("id", conv["id"]).eq("message_count", conv["message_count"])
                    .eq("unread_count", conv["unread_count"]).execute().data)
            if done:
                return
            conv = SupabaseStore._conversation_row(db, owner_id, conv["id"])
            if conv is None:  # deleted meanwhile: nothing left to count on
                return
        raise RuntimeError("conversation counters: too many concurrent updates")

    @override
    def get_message(self, owner_id: str, message_id: str) -> dict | None:
        if not _is_uuid(message_id):
            return None
        row = _first(self._client(owner_id).table("messages").select("*")
                     .eq("owner_id", owner_id).eq("id", message_id).execute())
        return message_dict(_obj(row)) if row else None

    def find_message(self, owner_id: str | None, platform: str,
                     platform_message_id: str) -> dict | None:
        """The message with this platform id; owner_id None looks across owners (service key)."""
        query = (self._client(owner_id).table("messages").select("*").eq("platform", platform)
                 .eq("platform_message_id", platform_message_id))
        if owner_id is not None:
            query = query.eq("owner_id", owner_id)
        row = _first(query.execute())
        return message_dict(_obj(row)) if row else None

    @override
    def find_message_by_key(self, owner_id: str, idempotency_key: str) -> dict | None:
        row = _first(self._client(owner_id).table("messages").select("*")
                     .eq("owner_id", owner_id).eq("idempotency_key", idempotency_key).execute())
        return message_dict(_obj(row)) if row else None

    def update_message(self, owner_id: str, message_id: str, text: str | None = None,
                       metadata: dict | None = None) -> dict | None:
        """Replace the text and/or merge keys into the metadata (edits, reactions, errors)."""
        def changes_for(row: dict) -> dict:
            changes = {}
            if text is not None:
                changes["text"] = text
            if metadata:
                changes["metadata"] = {**(row["metadata"] or {}), **metadata}
            return changes

        # only if the row is as we read it, so a concurrent metadata merge is not lost
        return self._update_message_cas(owner_id, message_id, changes_for,
                                        lambda q, row: q.eq("updated_at", row["updated_at"]))

    def mark_outbound_up_to(self, owner_id: str, conversation_id: str, status: str,
                            until: datetime) -> int:
        """Watermarks: every outbound message sent at or before `until` reaches `status`."""
        earlier = [s for s in ("sent", "delivered") if status_moves_forward(s, status)]
        if not earlier or not _is_uuid(conversation_id):
            return 0
        moved = (self._client(owner_id).table("messages").update({"status": status})
                 .eq("owner_id", owner_id).eq("conversation_id", conversation_id)
                 .eq("direction", "outbound").eq("is_note", False).in_("status", earlier)
                 .lte("created_at", _utc(until).isoformat()).select("id").execute().data)
        return len(moved)

    def list_messages(self, owner_id: str, conversation_id: str, limit: int,
                      cursor: str | None) -> Page:
        """Newest page first; each page is oldest-first; the cursor goes back in time."""
        if not _is_uuid(conversation_id):
            return Page([], None)
        query = (self._client(owner_id).table("messages").select("*")
                 .eq("conversation_id", conversation_id).eq("owner_id", owner_id))
        result = paginate(query, "created_at", cursor, limit, message_dict)
        result.items.reverse()
        return result

    @override
    def update_message_status(self, owner_id: str, message_id: str, status: str,
                              error: str | None = None,
                              platform_message_id: str | None = None) -> dict | None:
        def changes_for(row: dict) -> dict:
            changes = {}
            if platform_message_id and not row["platform_message_id"]:
                changes["platform_message_id"] = platform_message_id
            if status_moves_forward(row["status"], status):
                changes["status"] = status
                if status == "failed":
                    changes["error"] = error
            return changes

        # only if nobody moved the status (or set the platform id) since we read it
        return self._update_message_cas(
            owner_id, message_id, changes_for,
            lambda q, row: _guard(q.eq("status", row["status"]), "platform_message_id",
                                  row["platform_message_id"]))

    def _update_message_cas(self, owner_id: str, message_id: str, changes_for, guard):
        """Read-modify-write one of the owner's messages without losing a concurrent write:
        the UPDATE applies only while `guard` still matches the row read; else read again.
        """
        if not _is_uuid(message_id):
            return None
        db = self._client(owner_id)
        for _ in range(CAS_ATTEMPTS):
            row = _first(db.table("messages").select("*").eq("owner_id", owner_id)
                         .eq("id", message_id).execute())
            if row is None:
                return None
            changes = changes_for(row)
            if not changes:
                return message_dict(_obj(row))
            query = (db.table("messages").update(changes).eq("owner_id", owner_id)
                     .eq("id", message_id))
            updated = _first(guard(query, row).execute())
            if updated:
                return message_dict(_obj(updated))
        raise RuntimeError("message update: too many concurrent updates")

    # --------------------------------------------------------------------- tasks
    @override
    def create_task(self, owner_id: str, data: dict) -> dict:
        try:
            row = (self._client(owner_id).table("tasks").insert({**data, "owner_id": owner_id})
                   .execute().data[0])
        except APIError as exc:
            if exc.code == FOREIGN_KEY_VIOLATION:  # conversation_id is not the owner's
                raise LookupError("conversation not found for this owner") from None
            raise
        return task_dict(_obj(row))

    @override
    def get_task(self, owner_id: str, task_id: str) -> dict | None:
        if not _is_uuid(task_id):
            return None
        row = _first(self._client(owner_id).table("tasks").select("*")
                     .eq("owner_id", owner_id).eq("id", task_id).execute())
        return task_dict(_obj(row)) if row else None

    @override
    def list_tasks(self, owner_id: str, filters: TaskFilters, limit: int,
                   cursor: str | None) -> Page:
        if filters.conversation_id and not _is_uuid(filters.conversation_id):
            return Page([], None)
        query = self._client(owner_id).table("tasks").select("*").eq("owner_id", owner_id)
        for column in ("status", "priority", "conversation_id"):
            if getattr(filters, column):
                query = query.eq(column, getattr(filters, column))
        return paginate(query, "created_at", cursor, limit, task_dict)

    @override
    def update_task(self, owner_id: str, task_id: str, changes: dict) -> dict | None:
        if not changes:
            return self.get_task(owner_id, task_id)
        row = self._update_owned("tasks", owner_id, task_id, changes)
        return task_dict(row) if row else None

    @override
    def delete_task(self, owner_id: str, task_id: str) -> bool:
        if not _is_uuid(task_id):
            return False
        deleted = (self._client(owner_id).table("tasks").delete().eq("owner_id", owner_id)
                   .eq("id", task_id).execute().data)
        return bool(deleted)

    # ------------------------------------------------------------- subscriptions
    # Which client each method uses, and why: "Subscriptions" in the module docstring.
    def list_tiers(self, include_inactive: bool = False) -> list[dict]:
        """Plans, cheapest first (anon token: plans are public)."""
        query = self._anon_client().table("subscription_tiers").select("*")
        if not include_inactive:
            query = query.eq("is_active", True)
        rows = query.order("price").order("name").execute().data
        return [tier_dict(_obj(r)) for r in rows]

    def get_tier(self, tier_id: str) -> dict | None:
        """One plan, archived or not (anon token: plans are public)."""
        row = _first(self._anon_client().table("subscription_tiers").select("*")
                     .eq("id", tier_id).execute())
        return tier_dict(_obj(row)) if row else None

    def create_tier(self, data: dict) -> dict:
        """Add a plan; DuplicateTier when the name is taken (service key: no user writes plans)."""
        try:
            row = (self._client(None).table("subscription_tiers").insert(_values(data))
                   .execute().data[0])
        except APIError as exc:
            if exc.code == UNIQUE_VIOLATION:
                raise DuplicateTier() from None
            raise
        return tier_dict(_obj(row))

    def update_tier(self, tier_id: str, data: dict) -> dict | None:
        """Change a plan; DuplicateTier when the new name is taken (service key)."""
        if not data:
            return self.get_tier(tier_id)
        try:
            row = _first(self._client(None).table("subscription_tiers").update(_values(data))
                         .eq("id", tier_id).execute())
        except APIError as exc:
            if exc.code == UNIQUE_VIOLATION:
                raise DuplicateTier() from None
            raise
        return tier_dict(_obj(row)) if row else None

    def delete_tier(self, tier_id: str) -> bool:
        """Delete a plan (service key; the caller checks that nobody is on it)."""
        deleted = (self._client(None).table("subscription_tiers").delete().eq("id", tier_id)
                   .execute().data)
        return bool(deleted)

    def count_tier_subscriptions(self, tier_id: str) -> int:
        """How many users are on this plan (service key: counts every user's row)."""
        response = (self._client(None).table("user_subscriptions")
                    .select("id", count="exact", head=True).eq("tier_id", tier_id).execute())
        return response.count or 0

    def get_subscription(self, user_id: str) -> dict | None:
        """The user's subscription, read with a token for that user (RLS: their row only)."""
        if not _is_uuid(user_id):
            return None
        row = _first(self._client(user_id).table("user_subscriptions").select("*")
                     .eq("user_id", user_id).execute())
        return subscription_dict(_obj(row)) if row else None

    def save_subscription(self, user_id: str, data: dict) -> dict:
        """Create or change the user's one subscription row (service key: with their own
        token a user could give themselves a paid plan, so the migration allows them no write).
        """
        db = self._client(None)
        if not data:
            return subscription_dict(_obj(_first(
                db.table("user_subscriptions").select("*").eq("user_id", user_id).execute())))
        values = _values(data)

        def update() -> dict | None:
            return _first(db.table("user_subscriptions").update(values).eq("user_id", user_id)
                          .execute())

        row = update()
        if row is None:
            try:
                row = (db.table("user_subscriptions").insert({**values, "user_id": user_id})
                       .execute().data[0])
            except APIError as exc:
                if exc.code != UNIQUE_VIOLATION:
                    raise
                row = update()  # created concurrently: change that row instead
        return subscription_dict(_obj(row))

    @override
    def find_subscription_by_customer(self, customer_id: str) -> dict | None:
        """The subscription billed to this payment-provider customer (service key: a
        webhook has no user behind it, and the stored customer id is what says whose it is).
        """
        row = _first(self._client(None).table("user_subscriptions").select("*")
                     .eq("provider_customer_id", customer_id).limit(1).execute())
        return subscription_dict(_obj(row)) if row else None

    def list_subscriptions(self, limit: int, cursor: str | None,
                           status: str | None = None) -> Page:
        """Every user's subscription, newest first (service key: spans users; admin only)."""
        query = self._client(None).table("user_subscriptions").select("*")
        if status:
            query = query.eq("status", status)
        return paginate(query, "created_at", cursor, limit, subscription_dict)

    # ------------------------------------------------------------- analytics
    @override
    def analytics_facts(self, owner_id: str, since: datetime, until: datetime) -> dict:
        """Not on this backend yet: PostgREST caps a read at one page of rows, and the period's
        messages need either paging or an aggregate SQL function (a migration of its own).
        """
        raise ApiError("Analytics are not available on the Supabase backend yet "
                       "(DATA_BACKEND=supabase); they work on DATA_BACKEND=sql.",
                       status=501, code="not_implemented")
