"""Fixtures for the database connectors: a shop's orders table on this machine's MariaDB and
PostgreSQL, created per test under a unique name (xdist-safe) with a read-only database user,
and dropped afterwards; plus the channel fixtures (fake Graph, a connected business) for the
end-to-end runs. Under CI=true a missing server fails the test instead of skipping it.
"""
from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from tests.channels.conftest import business, fake_graph, set_plan  # noqa: F401  (fixtures)
from tests.conftest import auth_header, need_service, register

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "database": "test"}
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}

# The shop's orders: 55821 is the one the customer asks about.
ORDERS = [("55821", "shipped", "DHL 00340434161234567890", Decimal("129.90")),
          ("55822", "processing", None, Decimal("15.00")),
          ("55823", "delivered", "UPS 1Z999AA10123456784", Decimal("42.00"))] + \
         [(str(60000 + i), "cancelled", None, Decimal("1.00")) for i in range(30)]


@pytest.fixture
def settings_overrides(fake_graph, request):  # noqa: F811  (the fixture above)
    """Graph at the fake, loopback databases allowed, quick integration retries."""
    base = {"GRAPH_API_URL": fake_graph.base_url, "GRAPH_RETRY_WAIT_SECONDS": 0.001,
            "GRAPH_RETRY_ATTEMPTS": 3, "GRAPH_TIMEOUT_SECONDS": 3.0,
            "DB_CONNECTOR_ALLOWED_HOSTS": "127.0.0.1", "INTEGRATION_RETRY_ATTEMPTS": 2,
            "INTEGRATION_RETRY_WAIT_SECONDS": 0.001, "INTEGRATION_RETRY_MAX_WAIT_SECONDS": 0.01}
    base.update(getattr(request, "param", {}))
    return base


@pytest.fixture(autouse=True)
def _pools_closed():
    """No test leaves database connections open in the worker."""
    yield
    from automation.integrations.database.base import dispose_all

    dispose_all()


@pytest.fixture
def shopkeeper(client):
    """A user on Professional (every database integration), without platform accounts."""
    body = register(client, name="Nora Shop")
    body["headers"] = auth_header(body)
    set_plan(body["user"]["id"], "professional")
    return body


@dataclass
class Shop:
    """A seeded orders table and how to reach it (as the business and as its admin)."""

    type: str                 # integration type: mysql | postgresql
    table: str                # the qualified table name to put in queries
    port: int
    username: str             # a read-only user (SELECT on the table only)
    password: str
    admin: object = field(repr=False)  # a DBAPI connection with full rights, autocommit
    sleep: str = ""           # a SELECT that sleeps 5 s on this server

    def config(self, queries: dict | None = None, **changes) -> dict:
        """An integration config for this table (default: the order_status lookup)."""
        config = {"host": "127.0.0.1", "port": self.port, "database": "test",
                  "username": self.username, "password": self.password,
                  "queries": queries if queries is not None else {
                      "order_status": f"SELECT order_number, status, tracking, total FROM "
                                      f"{self.table} WHERE order_number = :order_number"}}
        config.update(changes)
        return config

    def scalar(self, sql: str):
        """One value, read as the admin."""
        cur = self.admin.cursor()
        cur.execute(sql)
        value = cur.fetchone()[0]
        cur.close()
        return value


def _seed(cur, table: str, placeholder: str) -> None:
    cur.executemany(f"INSERT INTO {table} (order_number, status, tracking, total) VALUES "
                    f"({placeholder}, {placeholder}, {placeholder}, {placeholder})", ORDERS)


@pytest.fixture
def mariadb_shop():
    """An orders table and a SELECT-only user on MariaDB (127.0.0.1:3306, db test)."""
    import pymysql

    try:
        admin = pymysql.connect(**MARIADB, connect_timeout=3, autocommit=True)
    except Exception as exc:  # noqa: BLE001
        need_service("MariaDB", str(exc))
    suffix = uuid.uuid4().hex[:12]
    table, user, password = f"orders_{suffix}", f"dana_{suffix}", f"Ro-{uuid.uuid4().hex}"
    cur = admin.cursor()
    cur.execute(f"CREATE TABLE {table} (order_number VARCHAR(32) PRIMARY KEY, "
                "status VARCHAR(64) NOT NULL, tracking VARCHAR(64) NULL, total DECIMAL(10,2))")
    _seed(cur, table, "%s")
    cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
    cur.execute(f"GRANT SELECT ON test.{table} TO '{user}'@'%'")
    try:
        yield Shop("mysql", table, 3306, user, password, admin, sleep="SELECT SLEEP(5) AS s")
    finally:
        cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        admin.close()


@pytest.fixture
def postgres_shop():
    """An orders table in its own schema and a SELECT-only role on PostgreSQL (db test)."""
    import psycopg

    try:
        admin = psycopg.connect(**POSTGRES, connect_timeout=3, autocommit=True)
    except Exception as exc:  # noqa: BLE001
        need_service("PostgreSQL", str(exc))
    suffix = uuid.uuid4().hex[:12]
    schema, user, password = f"shop_{suffix}", f"dana_{suffix}", f"Ro-{uuid.uuid4().hex}"
    table = f"{schema}.orders"
    cur = admin.cursor()
    cur.execute(f"CREATE SCHEMA {schema}")
    cur.execute(f"CREATE TABLE {table} (order_number INTEGER PRIMARY KEY, status TEXT NOT NULL, "
                "tracking TEXT, total NUMERIC(10,2))")
    _seed(cur, table, "%s")
    cur.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
    cur.execute(f"GRANT USAGE ON SCHEMA {schema} TO {user}")
    cur.execute(f"GRANT SELECT ON {table} TO {user}")
    try:
        yield Shop("postgresql", table, 5432, user, password, admin,
                   sleep="SELECT pg_sleep(5) AS s")
    finally:
        cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        cur.execute(f"DROP ROLE IF EXISTS {user}")
        admin.close()


@pytest.fixture(params=["mysql", "postgresql"])
def shop(request) -> Shop:
    """The same tests on MariaDB and on PostgreSQL."""
    return request.getfixturevalue("mariadb_shop" if request.param == "mysql"
                                   else "postgres_shop")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def configure(client, user, type_: str, config: dict):
    """POST /api/integrations; the response."""
    return client.post("/api/integrations", headers=user["headers"],
                       json={"type": type_, "config": config})


def lookup(client, user, type_: str, query: str, params: dict | None = None):
    """POST /api/integrations/<type>/query; the response."""
    return client.post(f"/api/integrations/{type_}/query", headers=user["headers"],
                       json={"query": query, "params": params or {}})
