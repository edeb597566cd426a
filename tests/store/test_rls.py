"""Row-Level Security of supabase/migrations/*.sql on real PostgreSQL.

The migrations run on a fresh database with Supabase's roles and auth.uid() emulated
(tests/fakes/supabase_db.py). Each check runs in a transaction as PostgREST would run a
request: SET LOCAL ROLE authenticated and request.jwt.claims with sub = the user, never as a
superuser or the tables' owner, and rolls back. The queries deliberately forget the owner
filter: RLS alone must keep user A away from user B's rows.
"""
from __future__ import annotations

import json
import uuid
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import errors, sql

from tests.fakes.supabase_db import supabase_database

A, B = str(uuid.uuid4()), str(uuid.uuid4())
ROWS_PER_OWNER = 2
# a text column of each table that an UPDATE can change
TABLES = {"contacts": "notes", "conversations": "last_message_preview", "messages": "text",
          "tasks": "title"}


def _seed(conn, owner: str) -> dict:
    """ROWS_PER_OWNER contacts, each with a conversation, a message and a task."""
    ids = {}
    for i in range(ROWS_PER_OWNER):
        ids["contact"] = conn.execute(
            "insert into contacts (owner_id, platform, platform_user_id, name) "
            "values (%s, 'facebook', %s, 'Ada') returning id", [owner, f"psid-{i}"]).fetchone()[0]
        ids["conversation"] = conn.execute(
            "insert into conversations (owner_id, platform, platform_account_id, contact_id) "
            "values (%s, 'facebook', 'page-1', %s) returning id",
            [owner, ids["contact"]]).fetchone()[0]
        conn.execute(
            "insert into messages (owner_id, conversation_id, direction, sender_type, text, "
            "platform, platform_message_id) values (%s, %s, 'inbound', 'contact', 'hello order', "
            "'facebook', %s)", [owner, ids["conversation"], f"mid.{uuid.uuid4().hex}"])
        conn.execute("insert into tasks (owner_id, title, conversation_id) values (%s, 'Call', %s)",
                     [owner, ids["conversation"]])
    return ids


@pytest.fixture(scope="module")
def dsn(pg_url):
    with supabase_database(pg_url) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def seeded(dsn):
    """Rows of A and B, inserted through the API role that ingest uses (service_role)."""
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute("set local role service_role")
        return {A: _seed(conn, A), B: _seed(conn, B)}


@pytest.fixture
def conn(dsn, seeded):
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


@contextmanager
def request_as(conn, role: str, sub: str | None = None):
    """One rolled-back transaction as PostgREST runs a request for this role and user."""
    with conn.transaction(force_rollback=True):
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        claims = {"role": role, **({"sub": sub} if sub else {})}
        conn.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps(claims)])
        yield conn


def _owners(conn, table: str) -> list[str]:
    return [str(r[0]) for r in conn.execute(sql.SQL("select owner_id from {}")
                                            .format(sql.Identifier(table)))]


def _count_as_observer(conn, table: str, owner: str, where: str = "true") -> int:
    """Count rows bypassing RLS (back to the session's own role), inside the same transaction."""
    conn.execute("reset role")
    return conn.execute(sql.SQL("select count(*) from {} where owner_id = %s and " + where)
                        .format(sql.Identifier(table)), [owner]).fetchone()[0]


def test_requests_run_as_authenticated_not_superuser_nor_owner(conn):
    with request_as(conn, "authenticated", A):
        row = conn.execute(
            "select current_user, auth.uid(), r.rolsuper, r.rolbypassrls, "
            "(select count(*) from pg_tables where schemaname = 'public' "
            " and tableowner = current_user) "
            "from pg_roles r where r.rolname = current_user").fetchone()
    assert row[0] == "authenticated" and str(row[1]) == A
    assert row[2] is False and row[3] is False, "the API role must not bypass RLS"
    assert row[4] == 0, "the API role must not own the tables (owners bypass RLS)"


@pytest.mark.parametrize("table", TABLES)
def test_select_without_owner_filter_returns_own_rows_only(conn, table):
    with request_as(conn, "authenticated", A):
        assert _owners(conn, table) == [A] * ROWS_PER_OWNER
    with request_as(conn, "service_role"):
        assert sorted(_owners(conn, table)) == sorted([A, B] * ROWS_PER_OWNER)


@pytest.mark.parametrize("table,column", TABLES.items())
def test_update_without_owner_filter_leaves_other_rows(conn, table, column):
    with request_as(conn, "authenticated", A):
        updated = conn.execute(sql.SQL("update {} set {} = 'x'").format(
            sql.Identifier(table), sql.Identifier(column))).rowcount
        assert updated == ROWS_PER_OWNER
        changed = f"{column} = 'x'"
        assert _count_as_observer(conn, table, B, changed) == 0
        assert _count_as_observer(conn, table, A, changed) == ROWS_PER_OWNER


@pytest.mark.parametrize("table", TABLES)
def test_delete_without_owner_filter_leaves_other_rows(conn, table):
    with request_as(conn, "authenticated", A):
        assert conn.execute(sql.SQL("delete from {}").format(sql.Identifier(table))).rowcount \
            == ROWS_PER_OWNER
        assert _count_as_observer(conn, table, A) == 0
        assert _count_as_observer(conn, table, B) == ROWS_PER_OWNER


INSERTS = {
    "contacts": ("insert into contacts (owner_id, platform, platform_user_id) "
                 "values (%(b)s, 'facebook', 'sneaky')"),
    "conversations": ("insert into conversations (owner_id, platform, platform_account_id, "
                      "contact_id) values (%(b)s, 'facebook', 'page-9', %(contact)s)"),
    "messages": ("insert into messages (owner_id, conversation_id, direction, sender_type, text) "
                 "values (%(b)s, %(conversation)s, 'inbound', 'contact', 'x')"),
    "tasks": "insert into tasks (owner_id, title) values (%(b)s, 'x')",
}


@pytest.mark.parametrize("table", TABLES)
def test_insert_for_another_owner_is_refused(conn, seeded, table):
    args = {"b": B, **seeded[B]}
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        with request_as(conn, "authenticated", A):
            conn.execute(INSERTS[table], args)


@pytest.mark.parametrize("table", TABLES)
def test_update_cannot_hand_a_row_to_another_owner(conn, table):
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        with request_as(conn, "authenticated", A):
            conn.execute(sql.SQL("update {} set owner_id = %s").format(sql.Identifier(table)), [B])


def test_search_function_sees_own_conversations_only(conn):
    with request_as(conn, "authenticated", A):
        rows = conn.execute("select owner_id from public.search_conversations('ORDER')").fetchall()
    assert [str(r[0]) for r in rows] == [A] * ROWS_PER_OWNER


@pytest.mark.parametrize("table", TABLES)
def test_anon_sees_nothing(conn, table):
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        with request_as(conn, "anon"):
            _owners(conn, table)
    # Supabase grants anon every table in `public` by default; even then RLS shows it nothing.
    with conn.transaction(force_rollback=True):
        conn.execute(sql.SQL("grant select on {} to anon").format(sql.Identifier(table)))
        conn.execute("set local role anon")
        assert _owners(conn, table) == []


@pytest.mark.parametrize("table", TABLES)
def test_authenticated_without_a_user_sees_nothing(conn, table):
    with request_as(conn, "authenticated"):
        assert _owners(conn, table) == []


# ---------------------------------------------------------------------- subscriptions
# Plans: everyone reads, no API role but service_role writes. A subscription: its user reads
# it, nobody writes it but service_role (else a user could give themselves a paid plan).

DEFAULT_TIERS = ["free", "starter", "professional", "enterprise"]
TIER_WRITES = {
    "insert": "insert into subscription_tiers (id, name) values ('gold', 'Gold')",
    "update": "update subscription_tiers set price = 0 where id = 'enterprise'",
    "delete": "delete from subscription_tiers where id = 'starter'",
}
SUBSCRIPTION_WRITES = {
    "insert-own": "insert into user_subscriptions (user_id, tier_id) values (%(a)s, 'enterprise')",
    "insert-other": "insert into user_subscriptions (user_id, tier_id) "
                    "values (%(b)s, 'enterprise')",
    "update-own": "update user_subscriptions set tier_id = 'enterprise', "
                  "current_period_end = null where user_id = %(a)s",
    "update-other": "update user_subscriptions set status = 'canceled' where user_id = %(b)s",
    "delete-own": "delete from user_subscriptions where user_id = %(a)s",
}


@pytest.fixture(scope="module")
def subscribed(dsn):
    """A on Starter, B on Free, written as Dana's server writes them (service_role)."""
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute("set local role service_role")
        conn.execute("insert into user_subscriptions (user_id, tier_id) "
                     "values (%s, 'starter'), (%s, 'free')", [A, B])


def _ids(conn, table: str, column: str = "id") -> list[str]:
    return sorted(str(r[0]) for r in conn.execute(
        sql.SQL("select {} from {}").format(sql.Identifier(column), sql.Identifier(table))))


def _subscriptions_as_observer(conn) -> list[tuple]:
    conn.execute("reset role")
    return conn.execute("select user_id::text, tier_id, status from user_subscriptions "
                        "order by tier_id").fetchall()


@pytest.mark.parametrize("role,sub", [("anon", None), ("authenticated", A),
                                      ("authenticated", None)], ids=["anon", "user", "no-user"])
def test_everyone_reads_every_plan_even_archived(conn, role, sub):
    with conn.transaction(force_rollback=True):
        conn.execute("update subscription_tiers set is_active = false where id = 'starter'")
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        conn.execute("select set_config('request.jwt.claims', %s, true)",
                     [json.dumps({"role": role, **({"sub": sub} if sub else {})})])
        assert _ids(conn, "subscription_tiers") == sorted(DEFAULT_TIERS)


@pytest.mark.parametrize("statement", TIER_WRITES.values(), ids=TIER_WRITES.keys())
@pytest.mark.parametrize("role,sub", [("anon", None), ("authenticated", A)],
                         ids=["anon", "user"])
def test_no_api_user_writes_plans(conn, role, sub, statement):
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        with request_as(conn, role, sub):
            conn.execute(statement)


def test_service_role_writes_plans(conn):
    with request_as(conn, "service_role"):
        for statement in TIER_WRITES.values():
            assert conn.execute(statement).rowcount == 1


def test_a_user_reads_only_their_own_subscription(conn, subscribed):
    with request_as(conn, "authenticated", A):
        assert _ids(conn, "user_subscriptions", "user_id") == [A]
    with request_as(conn, "authenticated", B):
        assert _ids(conn, "user_subscriptions", "user_id") == [B]
    with request_as(conn, "authenticated"):
        assert _ids(conn, "user_subscriptions", "user_id") == []
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        with request_as(conn, "anon"):
            _ids(conn, "user_subscriptions", "user_id")
    with request_as(conn, "service_role"):
        assert _ids(conn, "user_subscriptions", "user_id") == sorted([A, B])


@pytest.mark.parametrize("statement", SUBSCRIPTION_WRITES.values(),
                         ids=SUBSCRIPTION_WRITES.keys())
def test_a_user_cannot_write_any_subscription(conn, subscribed, statement):
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        with request_as(conn, "authenticated", A):
            conn.execute(statement, {"a": A, "b": B})


@pytest.mark.parametrize("statement", SUBSCRIPTION_WRITES.values(),
                         ids=SUBSCRIPTION_WRITES.keys())
def test_rls_alone_refuses_subscription_writes(conn, subscribed, statement):
    """Defence in depth: with Supabase's default table grants back, the missing write
    policies still leave every row as it was."""
    with conn.transaction(force_rollback=True):
        before = _subscriptions_as_observer(conn)
        conn.execute("grant insert, update, delete on user_subscriptions to authenticated")
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, true)",
                     [json.dumps({"role": "authenticated", "sub": A})])
        if statement.startswith("insert"):
            with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
                with conn.transaction():  # a savepoint, so the check below can still run
                    conn.execute(statement, {"a": A, "b": B})
        else:
            assert conn.execute(statement, {"a": A, "b": B}).rowcount == 0
        assert _subscriptions_as_observer(conn) == before
