"""A throwaway PostgreSQL database shaped like a Supabase project, with our migrations applied.

What Supabase provides and the migrations rely on is emulated here, nothing more: the roles
anon, authenticated and service_role (NOLOGIN; service_role bypasses RLS as on Supabase) and
auth.uid(), read from the `request.jwt.claims` setting exactly as PostgREST/Supabase set it.
Each call makes a new database (dana_supa_<random>) so concurrent test sessions never share
one, and nothing is created in the `test` database that other tests use.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

MIGRATIONS = Path(__file__).resolve().parents[2] / "supabase" / "migrations"

ROLES = {"anon": "NOLOGIN", "authenticated": "NOLOGIN", "service_role": "NOLOGIN BYPASSRLS"}

AUTH_EMULATION = """
create schema auth;
create function auth.uid() returns uuid language sql stable as $$
    select nullif(current_setting('request.jwt.claims', true)::json->>'sub', '')::uuid
$$;
grant usage on schema auth to anon, authenticated, service_role;
"""


def conninfo(url: str, dbname: str | None = None) -> str:
    """A libpq conninfo for url (SQLAlchemy-style driver suffixes accepted), optionally
    pointing at another database."""
    url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    params = conninfo_to_dict(url)
    if dbname:
        params["dbname"] = dbname
    return make_conninfo(**params)


def ensure_roles(url: str) -> None:
    """Create the Supabase API roles if missing (they are cluster-wide, so serialized)."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn, conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('dana_supabase_roles'))")
        existing = {r[0] for r in conn.execute(
            "select rolname from pg_roles where rolname = any(%s)", [list(ROLES)])}
        for role, options in ROLES.items():
            if role not in existing:
                conn.execute(sql.SQL("create role {} " + options).format(sql.Identifier(role)))


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS.glob("*.sql"))


@contextmanager
def supabase_database(url: str) -> Iterator[str]:
    """Yield the conninfo of a fresh database with the auth emulation and every
    supabase/migrations/*.sql applied (as the connecting user, who owns the tables); drop it
    afterwards."""
    ensure_roles(url)
    name = f"dana_supa_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo(url), autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    target = conninfo(url, name)
    try:
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(AUTH_EMULATION)
            for path in migration_files():
                conn.execute(path.read_text())
        yield target
    finally:
        with psycopg.connect(conninfo(url), autocommit=True) as admin:
            admin.execute(sql.SQL("drop database if exists {} with (force)")
                          .format(sql.Identifier(name)))
