"""SQL backend of the store: SQLAlchemy on the app database (SQLite or PostgreSQL).

Every query filters by owner_id; lists use keyset pagination on indexed sort keys and load
related rows in the same query (one query per list call).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import bindparam, exists, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from typing_extensions import override

from models_db import db, new_id, utcnow
from utils.db import execute
from utils.pagination import page_of, paginate
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
from utils.store.sql_models import (
    Contact,
    Conversation,
    Message,
    SubscriptionTier,
    Task,
    UserSubscription,
)

# What a conversation list reads: the conversation's columns and its contact's summary, as
# one flat row (conversation_dict without a contact). Reading columns instead of ORM objects
# is most of what makes a page of 50 cost about what a primary-key lookup costs.
CONVERSATION_COLUMNS = (
    Conversation.id, Conversation.platform, Conversation.platform_account_id,
    Conversation.status, Conversation.ai_enabled, Conversation.assignee_id, Conversation.labels,
    Conversation.unread_count, Conversation.message_count, Conversation.last_message_at,
    Conversation.last_inbound_at, Conversation.last_message_preview, Conversation.snoozed_until,
    Conversation.created_at, Conversation.updated_at, Conversation.contact_id,
    Contact.name.label("contact_name"),
    Contact.platform_user_id.label("contact_platform_user_id"),
    Contact.profile_pic.label("contact_profile_pic"),
)
MESSAGE_COLUMNS = (
    Message.id, Message.conversation_id, Message.direction, Message.sender_type, Message.text,
    Message.attachments, Message.platform, Message.platform_message_id, Message.status,
    Message.error, Message.reply_to, Message.is_note, Message.meta, Message.created_at,
)
# SQLite's full-text indexes (migration 0013): FTS5 with the trigram tokenizer, where a phrase
# query is a case-insensitive substring match of 3+ characters. messages_fts's rowid carries
# the conversation's rowid in its high 32 bits, so the matching conversations come straight
# from the index. The leading `+` keeps SQLite walking the inbox index newest-first (it stops
# after a page) instead of fetching and sorting every matching conversation.
_FTS_MATCH = text(
    "+conversations.rowid IN ("
    "SELECT rowid >> 32 FROM messages_fts WHERE messages_fts MATCH :fts_phrase "
    "UNION ALL SELECT cv.rowid FROM conversations AS cv "
    "JOIN contacts AS ct ON ct.id = cv.contact_id "
    "WHERE ct.rowid IN (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH :fts_phrase))")


def _text_search(owner_id: str, q: str):
    """Conversations whose contact's name or any message contains `q` (case-insensitive
    substring); the caller scopes the conversations to their owner.

    SQLite answers it from its full-text indexes (q of 3+ characters; FTS5's query parser
    stops at a NUL, so such a q takes the LIKE scan); PostgreSQL from its
    pg_trgm indexes on lower(text) and lower(name), as two IN subqueries (not a correlated
    EXISTS per conversation): each is answered once from its index, and the inbox index then
    yields the newest matching conversations in order.
    """
    if db.engine.dialect.name == "sqlite" and len(q) >= 3 and "\x00" not in q:
        return _FTS_MATCH.bindparams(fts_phrase='"' + q.replace('"', '""') + '"')
    pattern = like_pattern(q.lower())
    messages = select(Message.conversation_id).where(
        Message.owner_id == owner_id, func.lower(Message.text).like(pattern, escape="\\"))
    names = select(Contact.id).where(
        Contact.owner_id == owner_id, func.lower(Contact.name).like(pattern, escape="\\"))
    return or_(Conversation.id.in_(messages), Conversation.contact_id.in_(names))


def _label_filter(label: str):
    """Conversations whose JSON label list contains `label` (dialect-specific)."""
    if db.engine.dialect.name == "postgresql":
        return Conversation.labels.cast(JSONB).contains([label])
    each = func.json_each(Conversation.labels).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == label))


def _commit(serialize, row) -> dict:
    """Flush, serialize the row, then commit: the answer is what was written (Python-side
    defaults and onupdate values included after the flush), without the SELECT that reading
    the row after the commit (which expires it) would cost.
    """
    db.session.flush()
    out = serialize(row)
    db.session.commit()
    return out


# The pipeline's hot path (a customer's message in, the automated reply out) runs as Core
# statements on the tables, built once: no ORM identity map, unit of work or savepoint, and
# each statement's compiled form is cached with it.
_CT, _CV, _MS = Contact.__table__, Conversation.__table__, Message.__table__
_CONTACT_BY_KEY = select(_CT).where(_CT.c.owner_id == bindparam("owner_id"),
                                    _CT.c.platform == bindparam("platform"),
                                    _CT.c.platform_user_id == bindparam("platform_user_id"))
_CONTACT_SUMMARY = select(_CT.c.id, _CT.c.name, _CT.c.platform_user_id, _CT.c.profile_pic) \
    .where(_CT.c.id == bindparam("contact_id"), _CT.c.owner_id == bindparam("owner_id"))
_CONVERSATION_BY_KEY = (select(*CONVERSATION_COLUMNS)
                        .join(Contact, Contact.id == Conversation.contact_id)
                        .where(Conversation.owner_id == bindparam("owner_id"),
                               Conversation.platform_account_id == bindparam("account"),
                               Conversation.contact_id == bindparam("contact_id"),
                               Contact.owner_id == bindparam("owner_id")))
_CONVERSATION_BY_ID = (select(*CONVERSATION_COLUMNS)
                       .join(Contact, Contact.id == Conversation.contact_id)
                       .where(Conversation.owner_id == bindparam("owner_id"),
                              Conversation.id == bindparam("conversation_id")))
_CONVERSATION_COUNTERS = select(_CV.c.id, _CV.c.platform, _CV.c.message_count,
                                _CV.c.last_message_at, _CV.c.last_inbound_at).where(
    _CV.c.id == bindparam("conversation_id"), _CV.c.owner_id == bindparam("owner_id"))
_MESSAGE_FIELDS = ("id", "conversation_id", "direction", "sender_type", "text", "attachments",
                   "platform", "platform_message_id", "status", "error", "reply_to", "is_note",
                   "metadata", "created_at")
_MESSAGE_FOR_UPDATE = select(*(_MS.c[f] for f in _MESSAGE_FIELDS)).where(
    _MS.c.id == bindparam("message_id"), _MS.c.owner_id == bindparam("owner_id")) \
    .with_for_update()
_MESSAGE_READ = [_MS.c[f] for f in _MESSAGE_FIELDS if f != "metadata"] + \
    [_MS.c.metadata.label("meta")]  # rows that message_dict reads as they are
_MESSAGE_BY_ID = select(*_MESSAGE_READ).where(_MS.c.id == bindparam("message_id"),
                                              _MS.c.owner_id == bindparam("owner_id"))
_MESSAGE_BY_KEY = select(*_MESSAGE_READ).where(
    _MS.c.idempotency_key == bindparam("key"), _MS.c.owner_id == bindparam("owner_id"))
_MESSAGE_BY_MID = select(*_MESSAGE_READ).where(
    _MS.c.platform == bindparam("platform"), _MS.c.platform_message_id == bindparam("mid"))
_MESSAGE_BY_MID_OWNER = _MESSAGE_BY_MID.where(_MS.c.owner_id == bindparam("owner_id"))
_NEWEST_MESSAGES = (select(*_MESSAGE_READ)
                    .where(_MS.c.conversation_id == bindparam("conversation_id"),
                           _MS.c.owner_id == bindparam("owner_id"))
                    .order_by(_MS.c.created_at.desc(), _MS.c.id.desc())
                    .limit(bindparam("limit_plus_one")))
def _insert_ignore_stmt(table):
    """INSERT of every column of `table` ... ON CONFLICT DO NOTHING (rowcount 0: a unique key
    exists). Written as text with typed parameters because SQLAlchemy's dialect-specific
    on_conflict_do_nothing() has no cache key: it would be compiled again on every call.
    The clause is the same on SQLite (3.24+) and PostgreSQL.
    """
    columns = list(table.c)
    names = ", ".join(f'"{c.name}"' for c in columns)
    values = ", ".join(f":{c.key}" for c in columns)
    return text(f"INSERT INTO {table.name} ({names}) VALUES ({values}) ON CONFLICT DO NOTHING"
                ).bindparams(*(bindparam(c.key, type_=c.type) for c in columns))


# Every AI reply checks the plan in effect (services/entitlements.py): plain rows, prebuilt.
_TIER_BY_ID = select(SubscriptionTier.__table__).where(
    SubscriptionTier.__table__.c.id == bindparam("tier_id"))
_SUBSCRIPTION_BY_USER = select(UserSubscription.__table__).where(
    UserSubscription.__table__.c.user_id == bindparam("user_id"))
_INSERT_IGNORE = {t.name: _insert_ignore_stmt(t) for t in (_CT, _CV, _MS)}


def _insert_ignore(table):
    """The prebuilt INSERT ... ON CONFLICT DO NOTHING of one of the hot path's tables."""
    return _INSERT_IGNORE[table.name]


def _message_row(row) -> SimpleNamespace:
    """A Core row of _MESSAGE_FIELDS as message_dict reads it (`meta` for metadata)."""
    values = dict(row._mapping)
    values["meta"] = values.pop("metadata")
    return SimpleNamespace(**values)


_in_unit: ContextVar[bool] = ContextVar("dana_store_unit", default=False)


def _end_write() -> None:
    """Commit the hot path's write now, or at the end of the Store.unit() it is part of."""
    if not _in_unit.get():
        db.session.commit()


class SqlStore(Store):
    """The store on SQLAlchemy; see utils.store.base.Store for the contract."""

    name = "sql"

    @override
    @contextmanager
    def unit(self) -> Iterator[None]:
        if _in_unit.get():  # nested: the outermost unit commits
            yield
            return
        token = _in_unit.set(True)
        try:
            yield
        except BaseException:
            _in_unit.reset(token)
            db.session.rollback()
            raise
        _in_unit.reset(token)
        db.session.commit()

    # ------------------------------------------------------------------ contacts
    @override
    def upsert_contact(self, owner_id: str, platform: str, platform_user_id: str,
                       profile: dict) -> tuple[dict, bool]:
        key = {"owner_id": owner_id, "platform": platform, "platform_user_id": platform_user_id}
        row = execute(_CONTACT_BY_KEY, key).first()
        if row is None:
            now = utcnow()
            contact = SimpleNamespace(
                id=new_id(), **key, name=None, first_name=None, last_name=None, username=None,
                profile_pic=None, locale=None, phone=None, email=None, notes=None, profile={},
                created_at=now, updated_at=now)
            apply_profile(contact, profile)
            if execute(_insert_ignore(_CT), vars(contact)).rowcount == 1:
                _end_write()
                return contact_dict(contact), True
            # created concurrently by another process: read it (inside this transaction,
            # which holds the write lock on SQLite and saw the other commit)
            row = execute(_CONTACT_BY_KEY, key).first()
        contact = SimpleNamespace(**row._mapping)
        before = dict(vars(contact))
        apply_profile(contact, profile)
        changes = {k: v for k, v in vars(contact).items() if before[k] != v}
        if changes:
            contact.updated_at = changes["updated_at"] = utcnow()
            execute(update(_CT).where(_CT.c.id == contact.id).values(**changes))
        _end_write()
        return contact_dict(contact), False

    @override
    def get_contact(self, owner_id: str, contact_id: str) -> dict | None:
        c = self._contact(owner_id, contact_id)
        return contact_dict(c) if c else None

    def _contact(self, owner_id: str, contact_id: str) -> Contact | None:
        return db.session.scalar(select(Contact).where(Contact.id == contact_id,
                                                       Contact.owner_id == owner_id))

    @override
    def list_contacts(self, owner_id: str, q: str | None, platform: str | None, limit: int,
                      cursor: str | None) -> Page:
        stmt = select(Contact).where(Contact.owner_id == owner_id)
        if platform:
            stmt = stmt.where(Contact.platform == platform)
        if q:
            pattern = like_pattern(q.lower())
            stmt = stmt.where(or_(func.lower(Contact.name).like(pattern, escape="\\"),
                                  func.lower(Contact.email).like(pattern, escape="\\"),
                                  Contact.phone.like(pattern, escape="\\")))
        return paginate(stmt, Contact.created_at, Contact.id, cursor, limit, contact_dict)

    @override
    def update_contact(self, owner_id: str, contact_id: str, changes: dict) -> dict | None:
        c = self._contact(owner_id, contact_id)
        if c is None:
            return None
        for key, value in changes.items():
            setattr(c, key, value)
        return _commit(contact_dict, c)

    # ------------------------------------------------------------- conversations
    def open_conversation(self, owner_id: str, platform: str, platform_account_id: str,
                          contact_id: str) -> tuple[dict, bool]:
        """The conversation with this contact on this account, created if needed.
        LookupError when contact_id is not one of the owner's contacts.
        """
        key = {"owner_id": owner_id, "account": platform_account_id, "contact_id": contact_id}
        row = execute(_CONVERSATION_BY_KEY, key).first()
        if row is not None:
            return conversation_dict(row), False
        # The table's foreign key only says the contact exists, not whose it is.
        contact = execute(_CONTACT_SUMMARY, {"contact_id": contact_id,
                                                        "owner_id": owner_id}).first()
        if contact is None:
            raise LookupError("contact not found for this owner")
        now = utcnow()
        values = dict(id=new_id(), owner_id=owner_id, platform=platform,
                      platform_account_id=platform_account_id, contact_id=contact_id,
                      status="open", assignee_id=None, labels=[], ai_enabled=True,
                      last_message_at=now, last_inbound_at=None, last_message_preview=None,
                      unread_count=0, message_count=0, snoozed_until=None, created_at=now,
                      updated_at=now)
        try:
            created = execute(_insert_ignore(_CV), values).rowcount == 1
        except IntegrityError:  # the contact was deleted meanwhile (its foreign key)
            db.session.rollback()
            raise LookupError("contact not found for this owner") from None
        if created:
            _end_write()
            return conversation_dict(SimpleNamespace(
                **values, contact_name=contact.name,
                contact_platform_user_id=contact.platform_user_id,
                contact_profile_pic=contact.profile_pic)), True
        # Opened concurrently: this transaction (which began with the INSERT, holding the
        # write lock on SQLite; a fresh snapshot per statement on PostgreSQL) sees it.
        row = execute(_CONVERSATION_BY_KEY, key).first()
        _end_write()
        if row is None:
            raise LookupError("contact not found for this owner")
        return conversation_dict(row), False

    def _conversation_query(self, owner_id: str):
        return (select(*CONVERSATION_COLUMNS)
                .join(Contact, Contact.id == Conversation.contact_id)
                .where(Conversation.owner_id == owner_id))

    @override
    def get_conversation(self, owner_id: str, conversation_id: str) -> dict | None:
        row = execute(_CONVERSATION_BY_ID, {"owner_id": owner_id,
                                                       "conversation_id": conversation_id}
                                 ).first()
        return conversation_dict(row) if row else None

    @override
    def find_conversation(self, owner_id: str, platform: str, platform_account_id: str,
                          platform_user_id: str) -> dict | None:
        row = db.session.execute(self._conversation_query(owner_id).where(
            Conversation.platform_account_id == platform_account_id,
            Contact.platform == platform, Contact.platform_user_id == platform_user_id)).first()
        return conversation_dict(row) if row else None

    @override
    def list_conversations(self, owner_id: str, filters: ConversationFilters, limit: int,
                           cursor: str | None) -> Page:
        stmt = self._conversation_query(owner_id)
        if filters.status:
            stmt = stmt.where(Conversation.status == filters.status)
        if filters.platform:
            stmt = stmt.where(Conversation.platform == filters.platform)
        if filters.assignee_id:
            stmt = stmt.where(Conversation.assignee_id == filters.assignee_id)
        if filters.label:
            stmt = stmt.where(_label_filter(filters.label))
        if filters.q:
            stmt = stmt.where(_text_search(owner_id, filters.q))
        return paginate(stmt, Conversation.last_message_at, Conversation.id, cursor, limit,
                        conversation_dict, entities=False)

    def _conversation(self, owner_id: str, conversation_id: str) -> Conversation | None:
        return db.session.scalar(select(Conversation).where(
            Conversation.id == conversation_id, Conversation.owner_id == owner_id))

    @override
    def update_conversation(self, owner_id: str, conversation_id: str,
                            changes: dict) -> dict | None:
        conv = self._conversation(owner_id, conversation_id)
        if conv is None:
            return None
        for key, value in changes.items():
            setattr(conv, key, list(value) if key == "labels" else value)
        db.session.commit()
        return self.get_conversation(owner_id, conversation_id)

    @override
    def mark_conversation_read(self, owner_id: str, conversation_id: str) -> dict | None:
        return self.update_conversation(owner_id, conversation_id, {"unread_count": 0})

    # ------------------------------------------------------------------ messages
    @override
    def add_message(self, owner_id: str, message: NewMessage) -> dict:
        conv = execute(_CONVERSATION_COUNTERS, {
            "conversation_id": message.conversation_id, "owner_id": owner_id}).first()
        if conv is None:
            raise LookupError("conversation not found for this owner")
        now = utcnow()
        row = SimpleNamespace(
            id=new_id(), owner_id=owner_id, conversation_id=conv.id,
            direction=message.direction, sender_type=message.sender_type, text=message.text,
            attachments=list(message.attachments or []),
            platform=message.platform or conv.platform,
            platform_message_id=message.platform_message_id, status=message.status,
            error=message.error, reply_to=message.reply_to, is_note=message.is_note,
            meta=dict(message.metadata or {}), created_at=message.created_at or now,
            updated_at=now, idempotency_key=message.idempotency_key)
        values = {**vars(row), "metadata": row.meta}
        del values["meta"]
        try:
            inserted = execute(_insert_ignore(_MS), values).rowcount == 1
        except IntegrityError:  # not a duplicate key (e.g. the conversation was deleted)
            db.session.rollback()
            raise DuplicateMessage({}) from None
        if not inserted:  # a unique key exists: the platform message id or idempotency key
            existing = None
            if message.platform_message_id:
                existing = self.find_message(owner_id, row.platform, message.platform_message_id)
            if existing is None and message.idempotency_key:
                existing = self.find_message_by_key(owner_id, message.idempotency_key)
            if not _in_unit.get():
                db.session.rollback()  # nothing written: end the transaction (and its lock)
            raise DuplicateMessage(existing or {})
        if not message.is_note:
            # The counters are incremented in SQL (concurrent writers cannot lose a count);
            # the newest-message fields follow the conversation read above.
            changes = {"message_count": _CV.c.message_count + 1, "updated_at": now}
            if not conv.message_count or row.created_at >= conv.last_message_at:
                preview = message.text or (f"[{message.attachments[0].get('type', 'attachment')}]"
                                           if message.attachments else None)
                changes["last_message_at"] = row.created_at
                changes["last_message_preview"] = preview[:200] if preview else None
            if message.direction == "inbound":
                changes["unread_count"] = _CV.c.unread_count + 1
                if conv.last_inbound_at is None or row.created_at > conv.last_inbound_at:
                    changes["last_inbound_at"] = row.created_at
            execute(update(_CV).where(_CV.c.id == conv.id).values(**changes))
        _end_write()
        return message_dict(row)

    @override
    def get_message(self, owner_id: str, message_id: str) -> dict | None:
        row = execute(_MESSAGE_BY_ID, {"message_id": message_id,
                                                  "owner_id": owner_id}).first()
        return message_dict(row) if row else None

    @override
    def find_message(self, owner_id: str | None, platform: str,
                     platform_message_id: str) -> dict | None:
        params = {"platform": platform, "mid": platform_message_id, "owner_id": owner_id}
        row = execute(_MESSAGE_BY_MID if owner_id is None
                                 else _MESSAGE_BY_MID_OWNER, params).first()
        return message_dict(row) if row else None

    @override
    def find_message_by_key(self, owner_id: str, idempotency_key: str) -> dict | None:
        row = execute(_MESSAGE_BY_KEY, {"key": idempotency_key,
                                                   "owner_id": owner_id}).first()
        return message_dict(row) if row else None

    def update_message(self, owner_id: str, message_id: str, text: str | None = None,
                       metadata: dict | None = None) -> dict | None:
        """Replace the text and/or merge keys into the metadata (edits, reactions, errors).
        The row is locked (and re-read) from the read to the commit, so a concurrent merge is
        not lost.
        """
        found = execute(_MESSAGE_FOR_UPDATE, {"message_id": message_id,
                                                         "owner_id": owner_id}).first()
        if found is None:
            db.session.rollback()
            return None
        m = _message_row(found)
        changes = {}
        if text is not None:
            m.text = changes["text"] = text
        if metadata:
            m.meta = changes["metadata"] = {**(m.meta or {}), **metadata}
        if changes:
            changes["updated_at"] = utcnow()
            execute(update(_MS).where(_MS.c.id == m.id).values(**changes))
        db.session.commit()
        return message_dict(m)

    def mark_outbound_up_to(self, owner_id: str, conversation_id: str, status: str,
                            until: datetime) -> int:
        """Watermarks: every outbound message sent at or before `until` reaches `status`."""
        earlier = [s for s in ("sent", "delivered") if status_moves_forward(s, status)]
        result = db.session.execute(
            Message.__table__.update()
            .where(Message.owner_id == owner_id, Message.conversation_id == conversation_id,
                   Message.direction == "outbound", Message.is_note.is_(False),
                   Message.status.in_(earlier), Message.created_at <= until)
            .values(status=status, updated_at=utcnow()))
        db.session.commit()
        return result.rowcount

    def list_messages(self, owner_id: str, conversation_id: str, limit: int,
                      cursor: str | None) -> Page:
        """Newest page first; each page is oldest-first; the cursor goes back in time."""
        if not cursor:  # the newest page (the pipeline's burst and history): prebuilt
            rows = execute(_NEWEST_MESSAGES, {
                "conversation_id": conversation_id, "owner_id": owner_id,
                "limit_plus_one": limit + 1}).all()
            result = page_of(rows, limit, message_dict, lambda r: (r.created_at, r.id))
            result.items.reverse()
            return result
        stmt = select(*MESSAGE_COLUMNS).where(Message.conversation_id == conversation_id,
                                              Message.owner_id == owner_id)
        result = paginate(stmt, Message.created_at, Message.id, cursor, limit, message_dict,
                          entities=False)
        result.items.reverse()
        return result

    @override
    def update_message_status(self, owner_id: str, message_id: str, status: str,
                              error: str | None = None,
                              platform_message_id: str | None = None) -> dict | None:
        found = execute(_MESSAGE_FOR_UPDATE, {"message_id": message_id,
                                                         "owner_id": owner_id}).first()
        if found is None:
            db.session.rollback()
            return None
        m = _message_row(found)
        changes = {}
        if platform_message_id and not m.platform_message_id:
            m.platform_message_id = changes["platform_message_id"] = platform_message_id
        if status_moves_forward(m.status, status):
            m.status = changes["status"] = status
            if status == "failed":
                m.error = changes["error"] = error
        if not changes:
            db.session.rollback()
            return message_dict(m)
        changes["updated_at"] = utcnow()
        execute(update(_MS).where(_MS.c.id == m.id).values(**changes))
        db.session.commit()
        return message_dict(m)

    # --------------------------------------------------------------------- tasks
    @override
    def create_task(self, owner_id: str, data: dict) -> dict:
        task = Task(owner_id=owner_id, **data)
        db.session.add(task)
        db.session.commit()
        return task_dict(task)

    def _task(self, owner_id: str, task_id: str) -> Task | None:
        return db.session.scalar(select(Task).where(Task.id == task_id, Task.owner_id == owner_id))

    @override
    def get_task(self, owner_id: str, task_id: str) -> dict | None:
        t = self._task(owner_id, task_id)
        return task_dict(t) if t else None

    @override
    def list_tasks(self, owner_id: str, filters: TaskFilters, limit: int,
                   cursor: str | None) -> Page:
        stmt = select(Task).where(Task.owner_id == owner_id)
        for attr in ("status", "priority", "conversation_id"):
            value = getattr(filters, attr)
            if value:
                stmt = stmt.where(getattr(Task, attr) == value)
        return paginate(stmt, Task.created_at, Task.id, cursor, limit, task_dict)

    @override
    def update_task(self, owner_id: str, task_id: str, changes: dict) -> dict | None:
        t = self._task(owner_id, task_id)
        if t is None:
            return None
        for key, value in changes.items():
            setattr(t, key, value)
        db.session.commit()
        return task_dict(t)

    @override
    def delete_task(self, owner_id: str, task_id: str) -> bool:
        t = self._task(owner_id, task_id)
        if t is None:
            return False
        db.session.delete(t)
        db.session.commit()
        return True

    # ------------------------------------------------------------- subscriptions
    @override
    def list_tiers(self, include_inactive: bool = False) -> list[dict]:
        stmt = select(SubscriptionTier).order_by(SubscriptionTier.price, SubscriptionTier.name)
        if not include_inactive:
            stmt = stmt.where(SubscriptionTier.is_active.is_(True))
        return [tier_dict(t) for t in db.session.scalars(stmt)]

    @override
    def get_tier(self, tier_id: str) -> dict | None:
        t = execute(_TIER_BY_ID, {"tier_id": tier_id}).first()
        return tier_dict(t) if t else None

    @override
    def create_tier(self, data: dict) -> dict:
        tier = SubscriptionTier(**data)
        try:
            with db.session.begin_nested():
                db.session.add(tier)
        except IntegrityError:
            db.session.rollback()
            raise DuplicateTier() from None
        db.session.commit()
        return tier_dict(tier)

    @override
    def update_tier(self, tier_id: str, data: dict) -> dict | None:
        tier = db.session.get(SubscriptionTier, tier_id)
        if tier is None:
            return None
        for key, value in data.items():
            setattr(tier, key, value)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            raise DuplicateTier() from None
        return tier_dict(tier)

    @override
    def delete_tier(self, tier_id: str) -> bool:
        tier = db.session.get(SubscriptionTier, tier_id)
        if tier is None:
            return False
        db.session.delete(tier)
        db.session.commit()
        return True

    @override
    def count_tier_subscriptions(self, tier_id: str) -> int:
        return db.session.scalar(select(func.count()).select_from(UserSubscription)
                                 .where(UserSubscription.tier_id == tier_id)) or 0

    @override
    def get_subscription(self, user_id: str) -> dict | None:
        s = execute(_SUBSCRIPTION_BY_USER, {"user_id": user_id}).first()
        return subscription_dict(s) if s else None

    @override
    def save_subscription(self, user_id: str, data: dict) -> dict:
        stmt = select(UserSubscription).where(UserSubscription.user_id == user_id)
        sub = db.session.scalar(stmt)
        if sub is None:
            sub = UserSubscription(user_id=user_id, **data)
            try:
                with db.session.begin_nested():
                    db.session.add(sub)
            except IntegrityError:  # created concurrently: update that row instead
                sub = db.session.scalar(stmt)
        for key, value in data.items():
            setattr(sub, key, value)
        db.session.commit()
        return subscription_dict(sub)

    @override
    def find_subscription_by_customer(self, customer_id: str) -> dict | None:
        s = db.session.scalar(select(UserSubscription)
                              .where(UserSubscription.provider_customer_id == customer_id)
                              .limit(1))
        return subscription_dict(s) if s else None

    @override
    def list_subscriptions(self, limit: int, cursor: str | None,
                           status: str | None = None) -> Page:
        stmt = select(UserSubscription)
        if status:
            stmt = stmt.where(UserSubscription.status == status)
        return paginate(stmt, UserSubscription.created_at, UserSubscription.id, cursor, limit,
                        subscription_dict)

    # ------------------------------------------------------------------ analytics
    @override
    def analytics_facts(self, owner_id: str, since: datetime, until: datetime) -> dict:
        """Messages of [since, until) (time-ordered, only the columns analytics needs), the
        conversations resolved in it, and the tasks opened on conversations in it.
        """
        msgs = db.session.execute(
            select(Message.conversation_id, Message.direction, Message.sender_type,
                   Message.platform, Message.created_at)
            .where(Message.owner_id == owner_id, Message.is_note.is_(False),
                   Message.created_at >= since, Message.created_at < until)
            .order_by(Message.created_at, Message.id))
        convs = db.session.execute(
            select(Conversation.id, Conversation.platform, Conversation.created_at,
                   Conversation.updated_at)
            .where(Conversation.owner_id == owner_id, Conversation.status == "resolved",
                   Conversation.updated_at >= since, Conversation.updated_at < until))
        new_convs = db.session.scalar(
            select(func.count()).select_from(Conversation)
            .where(Conversation.owner_id == owner_id, Conversation.created_at >= since,
                   Conversation.created_at < until))
        handoffs = db.session.scalar(
            select(func.count()).select_from(Task)
            .where(Task.owner_id == owner_id, Task.conversation_id.is_not(None),
                   Task.created_at >= since, Task.created_at < until))
        return {
            "messages": [{"conversation_id": m.conversation_id, "direction": m.direction,
                          "sender_type": m.sender_type, "platform": m.platform,
                          "created_at": m.created_at} for m in msgs],
            "resolved": [{"id": c.id, "platform": c.platform, "created_at": c.created_at,
                          "resolved_at": c.updated_at} for c in convs],
            "new_conversations": new_convs or 0,
            "handoffs": handoffs or 0,
        }
