"""SQL backend of the store: SQLAlchemy on the app database (SQLite or PostgreSQL).

Every query filters by owner_id; lists use keyset pagination on indexed sort keys and load
related rows in the same query (one query per list call).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache
from types import SimpleNamespace

from sqlalchemy import (
    JSON,
    Boolean,
    Integer,
    String,
    and_,
    bindparam,
    case,
    column,
    exists,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    table,
    text,
    true,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import NullType
from typing_extensions import override

from models_db import TZDateTime, db, new_id, utcnow
from utils.db import SoloStatement, execute
from utils.pagination import cursor_params, keyset_bound, page_of, page_of_items, paginate
from utils.store.base import (
    STATUS_RANK,
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
    CONVERSATION_FIELDS,
    MESSAGE_FIELDS,
    Codec,
    apply_profile,
    contact_dict,
    conversation_dict,
    conversation_values,
    iso,
    like_pattern,
    message_dict,
    message_values,
    subscription_dict,
    task_dict,
    tier_dict,
    unchanged,
)
from utils.store.sql_models import (
    Contact,
    Conversation,
    Message,
    SubscriptionTier,
    Task,
    UserSubscription,
)

_conversations, _contacts, _messages = (Conversation.__table__, Contact.__table__,
                                        Message.__table__)


def _raw(column, name: str | None = None):
    """`column` read as the driver returns it: no SQLAlchemy type processing per value (most
    of a list's cost on SQLite); the dialect's Codec converts the values instead.
    """
    return type_coerce(column, NullType()).label(name or column.key)


# What lists read, in serialize's field order: a conversation's columns and its contact's
# summary as one flat row; a message's columns (`meta` is the `metadata` column).
CONVERSATION_COLUMNS = (
    *(_raw(_conversations.c[f]) for f in CONVERSATION_FIELDS),
    _raw(_conversations.c.contact_id), _raw(_contacts.c.name, "contact_name"),
    _raw(_contacts.c.platform_user_id, "contact_platform_user_id"),
    _raw(_contacts.c.profile_pic, "contact_profile_pic"),
)
MESSAGE_COLUMNS = tuple(_raw(_messages.c["metadata" if f == "meta" else f])
                        for f in MESSAGE_FIELDS)
_INBOX_ORDER = (_conversations.c.last_message_at.desc(), _conversations.c.id.desc())
_THREAD_ORDER = (_messages.c.created_at.desc(), _messages.c.id.desc())
_LIMIT = bindparam("limit", type_=Integer)


def _reader(type_, dialect: Dialect):
    """What SQLAlchemy does to a raw value of `type_` read on `dialect` (None: nothing)."""
    return type_.dialect_impl(dialect).result_processor(dialect, None)


def _sqlite_codec(dialect: Dialect) -> Codec:
    """Raw SQLite values to the API's: what TZDateTime, JSON and Boolean read back, without
    building a datetime per timestamp.

    TZDateTime stores naive UTC as 'YYYY-MM-DD HH:MM:SS.ffffff', which is its ISO text once
    the separator and the offset are put in (isoformat() leaves out zero microseconds); a
    stored value of any other form goes through the type's own reading.
    """
    read_time = _reader(TZDateTime(), dialect)
    read_json = _reader(JSON(), dialect) or json.loads
    read_flag = _reader(Boolean(), dialect)

    def time(value):
        if value is None:
            return None
        if len(value) == 26 and value[10] == " " and value[19] == ".":
            if value.endswith("000000"):
                return f"{value[:10]}T{value[11:19]}+00:00"
            return f"{value[:10]}T{value[11:]}+00:00"
        return iso(read_time(value))

    def json_value(value):
        if value == "[]":
            return []
        if value == "{}":
            return {}
        return read_json(value)

    return Codec(time, json_value, read_flag or bool)


def sql_codec(dialect: Dialect) -> Codec:
    """The Codec of raw driver values on `dialect`: SQLAlchemy's own result processing of
    TZDateTime, JSON and Boolean (psycopg already hands over datetimes, parsed JSON and bools),
    with a fast path on SQLite.
    """
    if dialect.name == "sqlite":
        return _sqlite_codec(dialect)
    read_time = _reader(TZDateTime(), dialect) or unchanged
    return Codec(lambda value: iso(read_time(value)), _reader(JSON(), dialect) or unchanged,
                 _reader(Boolean(), dialect) or unchanged)


# How a search picks its plan (one statement, two branches, each run only when its one-time
# condition holds; both give the same page):
# * from the matches: the search indexes give up to SEARCH_CAP matches (messages, then contact
#   names); fewer than that is every match, and the page is read from those conversations
#   (a primary-key lookup each and a sort);
# * walking the inbox newest first, checking one conversation at a time, and stopping after a
#   page: for a frequent word, where reading every match would cost a table visit each on
#   PostgreSQL (~11k for a word in 1% of a million messages).
# SQLite walks when the capped matches reach SEARCH_CAP (its full-text index lists them
# without visiting the table). PostgreSQL first samples the walk: of the first
# SAMPLE_CONVERSATIONS conversations, how many have the text in their contact's name or in
# their SAMPLE_MESSAGES newest messages (from the thread index alone); SAMPLE_HITS or more
# means the walk stops soon, so it walks without reading the matches at all; otherwise it
# reads the matches, and walks only if they reach SEARCH_CAP.
SEARCH_CAP = 1000
SAMPLE_CONVERSATIONS, SAMPLE_MESSAGES, SAMPLE_HITS = 20, 50, 4

# SQLite's full-text indexes (migration 0013): FTS5 with the trigram tokenizer, where a phrase
# query is a case-insensitive substring match of 3+ characters. messages_fts's rowid carries
# the conversation's rowid in its high 32 bits, so the matching conversations come straight
# from the index, as conversations' rowids.
_FTS_MATCHES = (
    "SELECT rowid >> 32 AS ref FROM messages_fts WHERE messages_fts MATCH :fts_phrase "
    "UNION ALL SELECT cv.rowid FROM conversations AS cv "
    "JOIN contacts AS ct ON ct.id = cv.contact_id "
    "WHERE ct.rowid IN (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH :fts_phrase)")
# Frequent on SQLite: every match is taken from the index (cheap there: no table visit) and
# the leading `+` keeps SQLite walking the inbox index newest-first (it stops after a page)
# instead of fetching and sorting every matching conversation.
_FTS_WALK = text(f"+conversations.rowid IN ({_FTS_MATCHES})")


def _search_kind(dialect: str, q: str) -> str:
    """How `q` is searched: SQLite's full-text indexes answer a q of 3+ characters (FTS5's
    query parser stops at a NUL, so such a q takes a LIKE scan: "scan"); PostgreSQL's pg_trgm
    indexes ("trgm") any q.
    """
    if dialect != "sqlite":
        return "trgm"
    return "fts" if len(q) >= 3 and "\x00" not in q else "scan"


def _search_params(kind: str, q: str) -> dict:
    if kind == "fts":
        return {"fts_phrase": '"' + q.replace('"', '""') + '"', "cap": SEARCH_CAP}
    params = {"pattern": like_pattern(q.lower())}
    if kind == "trgm":
        params.update(needle=q.lower(), cap=SEARCH_CAP, sample_size=SAMPLE_CONVERSATIONS,
                      sample_depth=SAMPLE_MESSAGES, sample_hits=SAMPLE_HITS)
    return params


def _like(column):
    return func.lower(column).like(bindparam("pattern", type_=String), escape="\\")


def _scan_search():
    """SQLite's search for a q its full-text index cannot take: two IN subqueries, each
    answered once, then the inbox walked newest-first.
    """
    owner = bindparam("owner_id", type_=String)
    messages = select(_messages.c.conversation_id).where(_messages.c.owner_id == owner,
                                                         _like(_messages.c.text))
    names = select(_contacts.c.id).where(_contacts.c.owner_id == owner, _like(_contacts.c.name))
    return or_(_conversations.c.id.in_(messages), _conversations.c.contact_id.in_(names))


def _search_hits(kind: str):
    """Up to :cap conversations with a match (a conversation once per matching message or
    name): SQLite's rowids from its full-text indexes, PostgreSQL's ids from the pg_trgm
    indexes on lower(text) and lower(name) (each matching row visited once).
    """
    if kind == "fts":
        return (text(f"{_FTS_MATCHES} LIMIT :cap").columns(ref=Integer)
                .cte("search_hits", nesting=True))
    owner = bindparam("owner_id", type_=String)
    cv, ct = _conversations.alias("cv"), _contacts.alias("ct")
    messages = select(_messages.c.conversation_id.label("ref")).where(
        _messages.c.owner_id == owner, _like(_messages.c.text))
    names = (select(cv.c.id).join_from(cv, ct, ct.c.id == cv.c.contact_id)
             .where(ct.c.owner_id == owner, _like(ct.c.name)))
    return (union_all(messages, names).limit(bindparam("cap", type_=Integer))
            .cte("search_hits", nesting=True))


# PostgreSQL's messages.search_head (migration 0015, not mapped): lower(text) for a text of up
# to 500 characters, '' for none, NULL for a longer one; carried by the thread index.
_search_rows = table("messages", column("id"), column("conversation_id"), column("created_at"),
                     column("text"), column("search_head"))


def _has_match(conversation_id, newest: int | None = None):
    """PostgreSQL: a message of the conversation contains :needle, checked from the thread
    index alone (an index-only scan of the conversation's entries, stopping at the first
    match); only a long text (search_head NULL) is read from the table. strpos on lower(text)
    is the same test as lower(text) LIKE '%q%'. `newest`: only that many newest messages
    (a sample: long texts are not read). OFFSET keeps the subquery a per-conversation check
    (PostgreSQL would otherwise turn the EXISTS into one join over every matching message).
    """
    needle = bindparam("needle", type_=String)
    m = _search_rows.alias("m")
    if newest is not None:
        head = (select(m.c.search_head).where(m.c.conversation_id == conversation_id)
                .correlate_except(m).order_by(m.c.created_at.desc(), m.c.id.desc())
                .limit(bindparam("sample_depth", type_=Integer)).subquery("head"))
        return exists(select(1).select_from(head)
                      .where(func.strpos(head.c.search_head, needle) > 0))
    long = _search_rows.alias("long")
    long_match = select(1).where(long.c.id == m.c.id,
                                 func.strpos(func.lower(long.c.text), needle) > 0)
    return exists(select(1).where(m.c.conversation_id == conversation_id,
                                  or_(func.strpos(m.c.search_head, needle) > 0,
                                      m.c.search_head.is_(None) & exists(long_match)))
                  .offset(0))


def _walk_check():
    """PostgreSQL's condition on one conversation of the inbox walk: its contact's name or one
    of its messages (_has_match).

    SQLite's walk takes every match once from its full-text index instead (_FTS_WALK): no
    table visit there.
    """
    return or_(_like(_contacts.c.name), _has_match(_conversations.c.id))


def _walk_decision(stmt, kind: str, hits):
    """True when the search walks the inbox (see SEARCH_CAP), as a one-row CTE: evaluated once,
    and the matches (`hits`) are only read when the sample does not decide.
    """
    cap = bindparam("cap", type_=Integer)
    many = select(func.count()).select_from(hits).scalar_subquery() >= cap
    if kind == "fts":
        return select(many.label("walk")).cte("search_plan", nesting=True)
    first = (stmt.with_only_columns(_conversations.c.id.label("id"), _contacts.c.name)
             .order_by(*_INBOX_ORDER).limit(bindparam("sample_size", type_=Integer))
             .subquery("sampled"))
    sampled = select(func.count()).select_from(first).where(or_(
        _like(first.c.name), _has_match(first.c.id, newest=SAMPLE_MESSAGES))).scalar_subquery()
    frequent = sampled >= bindparam("sample_hits", type_=Integer)
    return (select(case((frequent, true()), else_=many).label("walk"))
            .cte("search_plan", nesting=True))


def _searched(stmt, kind: str):
    """`stmt` (the inbox of one owner, filtered, after the cursor) restricted to the
    conversations whose contact's name or any message contains the search text
    (case-insensitive substring), newest first, by one of two plans (see SEARCH_CAP).
    """
    if kind == "scan":
        return stmt.where(_scan_search()).order_by(*_INBOX_ORDER).limit(_LIMIT)
    hits = _search_hits(kind)
    decision = _walk_decision(stmt, kind, hits)
    walk = select(decision.c.walk).scalar_subquery()
    if kind == "fts":
        # SQLite checks a subquery in WHERE on every row, but computes LIMIT once before the
        # loop, and a LIMIT of 0 skips the loop: the branch not taken costs nothing.
        from_hits = stmt.where(literal_column("conversations.rowid").in_(select(hits.c.ref)))
        walked = stmt.where(_FTS_WALK)
        limits = case((walk, 0), else_=_LIMIT), case((walk, _LIMIT), else_=0)
    else:  # PostgreSQL runs a condition without the row's columns once (a one-time filter)
        from_hits = stmt.where(~walk, _conversations.c.id.in_(select(hits.c.ref)))
        walked = stmt.where(walk, _walk_check())
        limits = _LIMIT, _LIMIT
    # The CTEs go inside the outer SELECT (a statement that begins with WITH would be taken
    # for a write by app._sqlite_lazy_begin, which begins IMMEDIATE before a write).
    both = union_all(*(branch.order_by(*_INBOX_ORDER).limit(limit).subquery().select()
                       for branch, limit in zip((from_hits, walked), limits, strict=True))) \
        .add_cte(hits, decision, nest_here=True).subquery()
    return select(*both.c).order_by(both.c.last_message_at.desc(), both.c.id.desc()) \
        .limit(_LIMIT)


def _label_filter(dialect: str):
    """Conversations whose JSON label list contains :label (dialect-specific)."""
    label = bindparam("label", type_=String)
    if dialect == "postgresql":
        return _conversations.c.labels.cast(JSONB).contains(func.jsonb_build_array(label))
    each = func.json_each(_conversations.c.labels).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == label))


def _conversation_select():
    return (select(*CONVERSATION_COLUMNS)
            .join_from(_conversations, _contacts, _contacts.c.id == _conversations.c.contact_id)
            .where(_conversations.c.owner_id == bindparam("owner_id", type_=String)))


@lru_cache(maxsize=256)
def _conversation_list(dialect: str, filters: tuple[str, ...], search: str | None,
                       after: bool):
    """The inbox statement of one shape (which filters, which search, a cursor or not), built
    once: SQLAlchemy then finds its compiled form without rebuilding and hashing it per call.
    """
    stmt = _conversation_select()
    for name in filters:
        stmt = stmt.where(_label_filter(dialect) if name == "label"
                          else _conversations.c[name] == bindparam(name, type_=String))
    if after:
        stmt = stmt.where(keyset_bound(_conversations.c.last_message_at, _conversations.c.id))
    if search:
        return _searched(stmt, search)
    return stmt.order_by(*_INBOX_ORDER).limit(_LIMIT)


@lru_cache(maxsize=4)
def _conversation_lookup(by_platform_user: bool):
    """One conversation of the owner, by id or by (account, platform, platform user id)."""
    stmt = _conversation_select()
    if by_platform_user:
        return stmt.where(
            _conversations.c.platform_account_id == bindparam("platform_account_id",
                                                             type_=String),
            _contacts.c.platform == bindparam("platform", type_=String),
            _contacts.c.platform_user_id == bindparam("platform_user_id", type_=String))
    return stmt.where(_conversations.c.id == bindparam("conversation_id", type_=String))


@lru_cache(maxsize=4)
def _message_list(after: bool):
    """A page of a conversation's thread, newest first (built once, like _conversation_list)."""
    stmt = select(*MESSAGE_COLUMNS).where(
        _messages.c.conversation_id == bindparam("conversation_id", type_=String),
        _messages.c.owner_id == bindparam("owner_id", type_=String))
    if after:
        stmt = stmt.where(keyset_bound(_messages.c.created_at, _messages.c.id))
    return stmt.order_by(*_THREAD_ORDER).limit(_LIMIT)


# A conversation's columns that update_conversation sets with one UPDATE (labels, JSON,
# cannot be compared in SQL on PostgreSQL: the ORM path writes them).
_CHANGEABLE_IN_SQL = frozenset({"status", "assignee_id", "ai_enabled", "unread_count",
                                "snoozed_until"})


_TASK_INSERT = insert(Task.__table__)


@lru_cache(maxsize=1)
def _task_defaults() -> dict:
    """A new task's optional columns: the model's scalar default ("open", "normal") or None."""
    return {c.key: c.default.arg if c.default is not None and c.default.is_scalar else None
            for c in Task.__table__.c
            if c.key not in ("id", "owner_id", "title", "created_at", "updated_at")}


_TASK_FILTERS = ("status", "priority", "conversation_id")


@lru_cache(maxsize=16)
def _task_list(filters: tuple[str, ...], after: bool):
    """A page of an owner's tasks, newest first, for one set of filters (built once, like
    _message_list): a hand-off looks for the conversation's open task with it on every call.
    """
    tasks = Task.__table__
    stmt = select(tasks).where(tasks.c.owner_id == bindparam("owner_id", type_=String))
    for name in filters:
        stmt = stmt.where(tasks.c[name] == bindparam(name, type_=String))
    if after:
        stmt = stmt.where(keyset_bound(tasks.c.created_at, tasks.c.id))
    return stmt.order_by(tasks.c.created_at.desc(), tasks.c.id.desc()).limit(_LIMIT)


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
_CONVERSATION_OF_OWNER = select(_CV.c.id, _CV.c.platform).where(
    _CV.c.id == bindparam("conversation_id"), _CV.c.owner_id == bindparam("owner_id"))


def _bump_conversation(inbound: bool):
    """The UPDATE of a conversation for a new message (not a note), built once: one more
    message (and unread, inbound); the newest-message fields when it is the newest (the first,
    or not older than the newest so far; the customer's last time likewise), decided on the
    row as it is. It returns serialize.CONVERSATION_FIELDS (no row: not the owner's).
    """
    created = bindparam("created", type_=_CV.c.last_message_at.type)
    newest = or_(_CV.c.message_count == 0, _CV.c.last_message_at <= created)
    changes = {
        "message_count": _CV.c.message_count + 1,
        "updated_at": bindparam("at", type_=_CV.c.updated_at.type),
        "last_message_at": case((newest, created), else_=_CV.c.last_message_at),
        "last_message_preview": case((newest, bindparam("preview", type_=String)),
                                     else_=_CV.c.last_message_preview),
    }
    if inbound:
        changes["unread_count"] = _CV.c.unread_count + 1
        changes["last_inbound_at"] = case(
            (or_(_CV.c.last_inbound_at.is_(None), _CV.c.last_inbound_at < created), created),
            else_=_CV.c.last_inbound_at)
    return (update(_CV).where(_CV.c.id == bindparam("cid"), _CV.c.owner_id == bindparam("owner"))
            .values(**changes).returning(*(_raw(_CV.c[f]) for f in CONVERSATION_FIELDS)))


_BUMP_CONVERSATION = {inbound: _bump_conversation(inbound) for inbound in (False, True)}
# serialize.MESSAGE_FIELDS with the table's column name for `meta`.
_MESSAGE_FIELDS = tuple("metadata" if f == "meta" else f for f in MESSAGE_FIELDS)
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


# One key of a message's metadata set in SQL, on the row as it is (no read, no lost merge):
# what update_message does for one key, per dialect (the column is JSON text on both).
_SET_META_SQL = {
    "sqlite": "json_set(metadata, '$.' || :key, json(:value))",
    "postgresql": "CAST(CAST(metadata AS jsonb) || jsonb_build_object(CAST(:key AS text), "
                  "CAST(:value AS jsonb)) AS json)",
}
_SET_META = {
    dialect: text(f"UPDATE messages SET metadata = {expression}, updated_at = :at "
                  "WHERE id = :message_id AND owner_id = :owner_id").bindparams(
        bindparam("key", type_=String), bindparam("value", type_=String),
        bindparam("at", type_=_MS.c.updated_at.type), bindparam("message_id", type_=String),
        bindparam("owner_id", type_=String))
    for dialect, expression in _SET_META_SQL.items()}


@lru_cache(maxsize=32)
def _status_update(status: str, with_mid: bool) -> SoloStatement:
    """The UPDATE of a message's delivery status to `status` (and its platform message id
    when it has none, `with_mid`), built once per shape: it changes the row only where
    status_moves_forward allows (the row's status is compared in SQL: the statuses from which
    that rule moves to `status`) and returns the message (serialize.MESSAGE_FIELDS, raw).
    A whole transaction alone (utils.db.SoloStatement: on PostgreSQL one round trip, not
    BEGIN, UPDATE, COMMIT): every reply's "sent" is one.
    """
    known = (*STATUS_RANK, "failed")
    earlier = [s for s in known if status_moves_forward(s, status)]
    # (comparisons, not IN: a SoloStatement is compiled once, without expanding lists)
    forward = or_(false(), *(_MS.c.status == s for s in earlier))
    if status_moves_forward("(another status)", status):  # statuses the rule does not rank
        forward = or_(forward, and_(*(_MS.c.status != s for s in known)))
    changes = {"status": case((forward, bindparam("status_", type_=String)),
                              else_=_MS.c.status),
               "updated_at": bindparam("at", type_=_MS.c.updated_at.type)}
    if status == "failed":
        changes["error"] = case((forward, bindparam("error_", type_=String)),
                                else_=_MS.c.error)
    changed = forward
    if with_mid:
        no_mid = or_(_MS.c.platform_message_id.is_(None), _MS.c.platform_message_id == "")
        changes["platform_message_id"] = case(
            (no_mid, bindparam("mid", type_=String)), else_=_MS.c.platform_message_id)
        changed = or_(forward, no_mid)
    return SoloStatement(
        update(_MS).where(_MS.c.id == bindparam("msg"), _MS.c.owner_id == bindparam("owner"),
                          changed).values(**changes).returning(*MESSAGE_COLUMNS),
        ["msg", "owner", "status_", "error_", "mid", "at"])


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
_SUB_COLUMNS = tuple(UserSubscription.__table__.c)
_TIER_COLUMNS = tuple(SubscriptionTier.__table__.c)
_SUBSCRIPTION_AND_TIER = (
    select(*_SUB_COLUMNS, *(c.label(f"tier_{c.key}") for c in _TIER_COLUMNS))
    .select_from(UserSubscription.__table__.outerjoin(
        SubscriptionTier.__table__,
        SubscriptionTier.__table__.c.id == UserSubscription.__table__.c.tier_id))
    .where(UserSubscription.__table__.c.user_id == bindparam("user_id")))
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
                          contact_id: str, *, contact: dict | None = None) -> tuple[dict, bool]:
        """The conversation with this contact on this account, created if needed.
        LookupError when contact_id is not one of the owner's contacts.
        """
        key = {"owner_id": owner_id, "account": platform_account_id, "contact_id": contact_id}
        row = execute(_CONVERSATION_BY_KEY, key).first()
        if row is not None:
            return conversation_values(row, self._codec()), False
        if contact is not None and contact["id"] == contact_id:
            # upsert_contact's answer for this owner during the run: the owner's
            contact = SimpleNamespace(**contact)
        else:  # the table's foreign key only says the contact exists, not whose it is
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
        return conversation_values(row, self._codec()), False

    def _codec(self) -> Codec:
        """The Codec of this app's database (built on first use: the engine exists by then)."""
        codec = self.__dict__.get("_codec_value")
        if codec is None:
            codec = self._codec_value = sql_codec(db.engine.dialect)
        return codec

    def _rows(self, stmt, params: dict) -> list:
        """All rows of a statement built once (with bind parameters), run by utils.db.execute
        (a Core execution on the session's connection: no ORM result machinery).
        """
        return execute(stmt, params).all()

    def _one_conversation(self, stmt, params: dict) -> dict | None:
        rows = self._rows(stmt, params)
        return conversation_values(rows[0], self._codec()) if rows else None

    @override
    def get_conversation(self, owner_id: str, conversation_id: str) -> dict | None:
        return self._one_conversation(_conversation_lookup(False), {
            "owner_id": owner_id, "conversation_id": conversation_id})

    @override
    def find_conversation(self, owner_id: str, platform: str, platform_account_id: str,
                          platform_user_id: str) -> dict | None:
        return self._one_conversation(_conversation_lookup(True), {
            "owner_id": owner_id, "platform": platform,
            "platform_account_id": platform_account_id, "platform_user_id": platform_user_id})

    @override
    def list_conversations(self, owner_id: str, filters: ConversationFilters, limit: int,
                           cursor: str | None) -> Page:
        params = {"owner_id": owner_id, "limit": limit + 1}
        used = []
        for name in ("status", "platform", "assignee_id", "label"):
            value = getattr(filters, name)
            if value:
                used.append(name)
                params[name] = value
        dialect = db.engine.dialect.name
        search = _search_kind(dialect, filters.q) if filters.q else None
        if search:
            params.update(_search_params(search, filters.q))
        if cursor:
            params.update(cursor_params(cursor))
        stmt = _conversation_list(dialect, tuple(used), search, bool(cursor))
        codec = self._codec()
        return page_of_items([conversation_values(r, codec) for r in self._rows(stmt, params)],
                             limit, "last_message_at")

    def _conversation(self, owner_id: str, conversation_id: str) -> Conversation | None:
        return db.session.scalar(select(Conversation).where(
            Conversation.id == conversation_id, Conversation.owner_id == owner_id))

    @override
    def update_conversation(self, owner_id: str, conversation_id: str,
                            changes: dict) -> dict | None:
        if changes and _CHANGEABLE_IN_SQL.issuperset(changes):
            # One UPDATE that changes the row only where a value differs (as the ORM writes
            # nothing, updated_at included, for values it already has), no read before it.
            execute(update(_CV).where(
                _CV.c.id == conversation_id, _CV.c.owner_id == owner_id,
                or_(*(_CV.c[key].is_distinct_from(value) for key, value in changes.items())),
            ).values(**changes))
            db.session.commit()
            return self.get_conversation(owner_id, conversation_id)
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
        return self._add_message(owner_id, message)[0]

    @override
    def add_message_in(self, owner_id: str, message: NewMessage,
                       conversation: dict) -> tuple[dict, dict]:
        stored, counters = self._add_message(owner_id, message)
        if counters is None:  # a note: its conversation did not change
            return stored, conversation
        contact = conversation["contact"]
        return stored, conversation_values(
            tuple(counters) + (contact["id"], contact["name"], contact["platform_user_id"],
                               contact["profile_pic"]), self._codec())

    def _add_message(self, owner_id: str, message: NewMessage) -> tuple[dict, object]:
        """add_message; with the conversation's CONVERSATION_FIELDS after it (None for a
        note, which leaves them alone).

        A message that names its platform and is not a note is one INSERT and one UPDATE of
        its conversation: the UPDATE's WHERE is the ownership check, its SET decides the
        newest-message fields on the row as it is (no read before, no lost update), and it
        returns the conversation. A note (or a message without a platform) reads the
        conversation first, as the ownership check.
        """
        platform = message.platform
        if message.is_note or not platform:
            conv = execute(_CONVERSATION_OF_OWNER, {
                "conversation_id": message.conversation_id, "owner_id": owner_id}).first()
            if conv is None:
                raise LookupError("conversation not found for this owner")
            platform = platform or conv.platform
        now = utcnow()
        row = SimpleNamespace(
            id=new_id(), owner_id=owner_id, conversation_id=message.conversation_id,
            direction=message.direction, sender_type=message.sender_type, text=message.text,
            attachments=list(message.attachments or []), platform=platform,
            platform_message_id=message.platform_message_id, status=message.status,
            error=message.error, reply_to=message.reply_to, is_note=message.is_note,
            meta=dict(message.metadata or {}), created_at=message.created_at or now,
            updated_at=now, idempotency_key=message.idempotency_key)
        values = {**vars(row), "metadata": row.meta}
        del values["meta"]
        try:
            inserted = execute(_insert_ignore(_MS), values).rowcount == 1
        except IntegrityError:  # not a duplicate key: the conversation does not exist
            db.session.rollback()
            if execute(_CONVERSATION_OF_OWNER, {"conversation_id": message.conversation_id,
                                                "owner_id": owner_id}).first() is None:
                db.session.rollback()
                raise LookupError("conversation not found for this owner") from None
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
        counters = None
        if not message.is_note:
            preview = message.text or (f"[{message.attachments[0].get('type', 'attachment')}]"
                                       if message.attachments else None)
            counters = execute(_BUMP_CONVERSATION[message.direction == "inbound"], {
                "cid": message.conversation_id, "owner": owner_id,
                "at": now, "created": row.created_at,
                "preview": preview[:200] if preview else None}).first()
            if counters is None:  # not the owner's conversation: the INSERT is undone
                db.session.rollback()
                raise LookupError("conversation not found for this owner")
        _end_write()
        return message_dict(row), counters

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

    @override
    def set_message_meta(self, owner_id: str, message_id: str, key: str, value) -> bool:
        stmt = _SET_META.get(db.engine.dialect.name)
        if stmt is None or not key.isidentifier():  # another database, or a key to quote
            return super().set_message_meta(owner_id, message_id, key, value)
        found = execute(stmt, {"key": key, "value": json.dumps(value), "at": utcnow(),
                               "message_id": message_id, "owner_id": owner_id}).rowcount == 1
        db.session.commit()
        return found

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
        params = {"owner_id": owner_id, "conversation_id": conversation_id, "limit": limit + 1}
        if cursor:
            params.update(cursor_params(cursor))
        codec = self._codec()
        result = page_of_items([message_values(r, codec)
                                for r in self._rows(_message_list(bool(cursor)), params)],
                               limit, "created_at")
        result.items.reverse()
        return result

    @override
    def update_message_status(self, owner_id: str, message_id: str, status: str,
                              error: str | None = None,
                              platform_message_id: str | None = None) -> dict | None:
        # One conditional UPDATE, alone, decides on the row as it is (its lock, no read
        # before) and returns it; no row back: nothing to change (or not the owner's), read it.
        _, rows = _status_update(status, bool(platform_message_id)).run(
            msg=message_id, owner=owner_id, status_=status, error_=error,
            mid=platform_message_id, at=utcnow())
        if not rows:
            return self.get_message(owner_id, message_id)
        return message_values(rows[0], self._codec())

    # --------------------------------------------------------------------- tasks
    @override
    def create_task(self, owner_id: str, data: dict) -> dict:
        # One INSERT with every column given (the model's defaults filled in here, as
        # _add_message does for a message): no ORM object and unit of work, no read back.
        now = utcnow()
        values = {**_task_defaults(), **data, "id": new_id(), "owner_id": owner_id,
                  "created_at": now, "updated_at": now}
        execute(_TASK_INSERT, values)
        db.session.commit()
        return task_dict(SimpleNamespace(**values))

    def _task(self, owner_id: str, task_id: str) -> Task | None:
        return db.session.scalar(select(Task).where(Task.id == task_id, Task.owner_id == owner_id))

    @override
    def get_task(self, owner_id: str, task_id: str) -> dict | None:
        t = self._task(owner_id, task_id)
        return task_dict(t) if t else None

    @override
    def list_tasks(self, owner_id: str, filters: TaskFilters, limit: int,
                   cursor: str | None) -> Page:
        params = {"owner_id": owner_id, "limit": limit + 1}
        for name in _TASK_FILTERS:
            value = getattr(filters, name)
            if value:
                params[name] = value
        if cursor:
            params.update(cursor_params(cursor))
        stmt = _task_list(tuple(n for n in _TASK_FILTERS if n in params), bool(cursor))
        return page_of(self._rows(stmt, params), limit, task_dict,
                       lambda row: (row.created_at, row.id))

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
    def get_subscription_and_tier(self, user_id: str) -> tuple[dict | None, dict | None]:
        row = execute(_SUBSCRIPTION_AND_TIER, {"user_id": user_id}).first()
        if row is None:
            return None, None
        n = len(_SUB_COLUMNS)
        sub = SimpleNamespace(**{c.key: v for c, v in zip(_SUB_COLUMNS, row[:n], strict=True)})
        tier = SimpleNamespace(**{c.key: v for c, v in zip(_TIER_COLUMNS, row[n:], strict=True)})
        return subscription_dict(sub), (tier_dict(tier) if tier.id is not None else None)

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
