"""What every database connector shares: read-only named lookups, checked and bounded.

A database integration answers a customer with the business's own data ("where is order
55821?"): the owner names a few lookups in the config (`queries`), and a workflow's `lookup`
action or the dashboard's "try it" runs one by name with values. Safety, in layers:

- the statement: exactly one SELECT, parsed with sqlglot in the server's dialect (no regex);
  DML or DDL anywhere in it (a CTE's DELETE), `SELECT … INTO`, row locks, a second statement
  and functions with effects outside the query (terminating backends, reading server files)
  are refused when the config is validated (400) and again before every run;
- the values: only bound parameters (`:name`), never text pasted into SQL or a filter;
- the session: read-only where the database offers it, a statement timeout (default 3 s)
  enforced by the server, and at most `max_rows` rows (default 20) read back;
- the network: the host is resolved once and refused when it is loopback, private,
  link-local or otherwise internal, unless DB_CONNECTOR_ALLOWED_HOSTS lists it (and, when
  that list is set, only its hosts are allowed); SQL connections go to the address checked;
- the pool: one small SQLAlchemy pool per distinct connection (keyed by a fingerprint of its
  settings, password included), disposed by the service when the integration changes or is
  deleted. `check()` never uses or leaves a pool.
"""
from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import ipaddress
import re
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

import sqlglot
from pydantic import Field, field_validator
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from automation.integrations.base import (
    IntegrationCheckFailed,
    IntegrationConnector,
    IntegrationError,
)
from automation.integrations.catalogue import SqlDatabaseConfig

QUERY_NAME = r"^[a-z][a-z0-9_]{0,63}$"
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_PARAM_LENGTH = 1000
# Functions with an effect outside the query itself, or that read the server's files: a
# read-only transaction does not stop them. (Defence in depth: the README asks for a
# read-only database user too.)
FORBIDDEN_FUNCTIONS = frozenset({
    "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
    "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "lo_import",
    "lo_export", "lo_unlink", "dblink", "dblink_exec", "dblink_connect", "set_config",
    "pg_advisory_lock", "pg_advisory_xact_lock", "pg_notify", "txid_current",
    "load_file", "get_lock", "release_lock", "sys_exec", "sys_eval",
    "xp_cmdshell", "openrowset", "opendatasource", "openquery",
})
_WRITE_NODES = (exp.DML, exp.DDL, exp.Command, exp.Into, exp.Lock, exp.Copy, exp.Set,
                exp.Transaction, exp.Commit, exp.Rollback, exp.Use, exp.Execute)


class UnsafeQuery(ValueError):
    """The statement is not a single read-only SELECT (the message says why)."""


class LookupRequestError(ValueError):
    """The caller asked for an unknown query or gave bad parameters (a 4xx, not an outage).

    `kind` is "query_not_found" or "invalid_params".
    """

    def __init__(self, message: str, kind: str):
        """Keep the human reason and which of the two mistakes it was."""
        super().__init__(message)
        self.kind = kind


class HostNotAllowed(Exception):
    """The host is internal or outside DB_CONNECTOR_ALLOWED_HOSTS (nothing was contacted)."""


# ------------------------------------------------------------------------ statements

def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name or "").lower()
    return (node.sql_name() if hasattr(node, "sql_name") else type(node).__name__).lower()


def parse_select(sql: str, dialect: str) -> set[str]:
    """Refuse anything but one read-only SELECT; return the names of its `:params`.

    Raises UnsafeQuery with the reason. The parameters must be named (`:order_number`);
    positional ones (`?`, `$1`, `%s`) are refused so that values are always bound by name.
    """
    if not sql or not sql.strip():
        raise UnsafeQuery("the query is empty")
    try:
        # No comments: MySQL runs /*! … */ ones, so what we parse would not be what runs.
        if any(token.comments for token in Dialect.get_or_raise(dialect).tokenize(sql)):
            raise UnsafeQuery("comments are not allowed in a lookup")
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnsafeQuery(f"not a SELECT this connector can read ({first[:200]})") from None
    if len(statements) != 1:
        raise UnsafeQuery(f"exactly one statement is allowed, found {len(statements)}")
    root = statements[0]
    if not isinstance(root, (exp.Select, exp.SetOperation)):
        raise UnsafeQuery(f"only SELECT is allowed, not {type(root).__name__.upper()}")
    for node in root.walk():
        if isinstance(node, exp.Into):
            raise UnsafeQuery("SELECT … INTO writes data and is not allowed")
        if isinstance(node, exp.Lock):
            raise UnsafeQuery("row locks (FOR UPDATE / FOR SHARE) are not allowed")
        if isinstance(node, _WRITE_NODES):
            raise UnsafeQuery(f"{type(node).__name__.upper()} is not allowed in a lookup")
        if isinstance(node, exp.Func) and _function_name(node) in FORBIDDEN_FUNCTIONS:
            raise UnsafeQuery(f"the function {_function_name(node)}() is not allowed")
        if isinstance(node, exp.Parameter):
            raise UnsafeQuery("use named parameters (:name), not positional ones")
    names = set()
    for placeholder in root.find_all(exp.Placeholder):
        name = placeholder.name
        if not name or name == "?" or not PARAM_NAME.match(name):
            raise UnsafeQuery("use named parameters (:name), not positional ones")
        names.add(name)
    bound = set(text(sql)._bindparams)  # what SQLAlchemy will actually bind
    if bound != names:
        odd = ", ".join(sorted(bound ^ names))
        raise UnsafeQuery(f"parameters must be plain :name placeholders outside strings and "
                          f"casts (write CAST(:x AS type) instead of :x::type): {odd}")
    return names


# --------------------------------------------------------------------------- network

def _allowed_entries(settings) -> list[str]:
    return [h.strip().lower() for h in
            (getattr(settings, "DB_CONNECTOR_ALLOWED_HOSTS", None) or []) if h.strip()]


def _in_listed_ranges(addresses: list[str], entries: list[str]) -> list[str]:
    """The addresses inside an allow-listed IP or CIDR range, in resolution order."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # a host name: matched by name
    return [a for a in addresses
            if any(ipaddress.ip_address(a) in network for network in networks)]


def _internal(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def resolve_host(host: str, port: int, settings) -> str | None:
    """Resolve and vet a host; return the address to connect to (None: connect by name).

    An allow-listed name is connected to by name; anything else must resolve only to public
    addresses (and be allowed by a set allow-list), and the checked address is returned so
    that a second DNS answer cannot swap in an internal one. Raises HostNotAllowed.
    """
    entries = _allowed_entries(settings)
    name = host.strip().strip("[]")
    if name.lower() in entries:
        return None
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HostNotAllowed(f"the host {host} cannot be resolved ({exc})") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    listed = _in_listed_ranges(addresses, entries)
    if listed:
        return listed[0]  # never another of the name's addresses
    if entries:
        raise HostNotAllowed(f"the host {host} is not allowed here (DB_CONNECTOR_ALLOWED_HOSTS)")
    if any(_internal(a) for a in addresses):
        raise HostNotAllowed(f"the host {host} is an internal address; it is refused unless "
                             "DB_CONNECTOR_ALLOWED_HOSTS lists it")
    return addresses[0]


# ---------------------------------------------------------------------------- values

def json_value(value: Any) -> Any:
    """A database value as JSON can carry it (dates ISO 8601, decimals exact as text)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):  # as written in the database: "15.00", "129.90"
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)


@dataclass(frozen=True)
class LookupResult:
    """What a lookup read: the column names, up to max_rows rows, and whether more existed."""

    query: str
    columns: list[str]
    rows: list[dict]
    truncated: bool

    def to_dict(self) -> dict:
        """The API's shape: {query, columns, rows, row_count, truncated}."""
        return {"query": self.query, "columns": self.columns, "rows": self.rows,
                "row_count": len(self.rows), "truncated": self.truncated}


def clean_params(needed: set[str], params: dict | None) -> dict:
    """Exactly the query's parameters, as scalars; LookupRequestError otherwise."""
    params = dict(params or {})
    missing = sorted(needed - set(params))
    unknown = sorted(set(params) - needed)
    if missing or unknown:
        parts = ([f"missing: {', '.join(missing)}"] if missing else []) + \
                ([f"unknown: {', '.join(unknown)}"] if unknown else [])
        raise LookupRequestError(f"the query's parameters do not match ({'; '.join(parts)})",
                                 "invalid_params")
    for name, value in params.items():
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise LookupRequestError(f"parameter {name} must be a string, number or null",
                                     "invalid_params")
        if isinstance(value, str) and (len(value) > MAX_PARAM_LENGTH or "\x00" in value):
            raise LookupRequestError(f"parameter {name} is too long or contains NUL",
                                     "invalid_params")
    return params


# ----------------------------------------------------------------------------- pools

# fingerprint -> a SQLAlchemy Engine or a MongoClient (each is a pool of connections)
_POOLS: dict[str, Any] = {}
_POOLS_LOCK = threading.Lock()


def close_pool(pool: Any) -> None:
    """Close an Engine's or a MongoClient's connections."""
    # not hasattr(): a MongoClient answers any attribute with a Database of that name
    (pool.dispose if isinstance(pool, Engine) else pool.close)()


def pooled(key: str, factory) -> Any:
    """The pool for connection `key`, made by factory() the first time."""
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = factory()
        return pool


def dispose_pool(key: str) -> bool:
    """Close and forget the pool of connection `key`; whether there was one."""
    with _POOLS_LOCK:
        pool = _POOLS.pop(key, None)
    if pool is not None:
        close_pool(pool)
    return pool is not None


def dispose_all() -> None:
    """Close every pooled database connection of this process (tests, shutdown)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        close_pool(pool)


def pool_count() -> int:
    """How many connection pools this process holds (for tests and the health page)."""
    return len(_POOLS)


# ---------------------------------------------------------------------------- config

class SqlLookupConfig(SqlDatabaseConfig):
    """The catalogue's SQL config with the lookups checked and the safety bounds settable."""

    dialect: ClassVar[str] = "mysql"  # sqlglot's name of the connector's SQL dialect

    queries: dict[str, str] = Field(
        default_factory=dict, max_length=50,
        description='named read-only lookups: {"order_status": "SELECT status FROM orders '
                    'WHERE order_number = :order_number"}; one SELECT each, values only as '
                    ':named parameters')
    statement_timeout_seconds: float = Field(default=3.0, gt=0, le=30,
                                             description="the server stops a lookup after this")
    max_rows: int = Field(default=20, ge=1, le=200, description="rows read back at most")
    connect_timeout_seconds: int = Field(default=5, ge=1, le=30)

    @field_validator("queries")
    @classmethod
    def _safe_queries(cls, queries: dict[str, str]) -> dict[str, str]:
        for name, sql in queries.items():
            if not re.match(QUERY_NAME, name):
                raise ValueError(f"query name {name!r} must match {QUERY_NAME}")
            if len(sql) > 10_000:
                raise ValueError(f"query {name}: longer than 10000 characters")
            try:
                parse_select(sql, cls.dialect)
            except UnsafeQuery as exc:
                raise ValueError(f"query {name}: {exc}") from None
        return queries


# ------------------------------------------------------------------------- connector

class SqlDatabaseConnector(IntegrationConnector):
    """A SQL database through SQLAlchemy; subclasses give the driver and session rules."""

    category: ClassVar[str] = "database"
    operations: ClassVar[frozenset[str]] = frozenset({"lookup"})
    secret_fields: ClassVar[frozenset[str]] = frozenset({"password"})
    drivername: ClassVar[str]            # SQLAlchemy's, e.g. "mysql+pymysql"
    driver_module: ClassVar[str]         # the DBAPI module, e.g. "pymysql"
    driver_hint: ClassVar[str] = ""      # how to install the driver when it is missing
    stream: ClassVar[bool] = False       # read through a server-side cursor (only max_rows+1)
    config: SqlLookupConfig

    # -- per database (overridden)

    def connect_args(self, address: str | None) -> dict:
        """DBAPI connect() arguments: timeouts, and the checked address to connect to."""
        return {}

    def url_host(self, address: str | None) -> str:
        """The host part of the SQLAlchemy URL (the checked address unless by name)."""
        return address or self.config.host

    def on_connect(self, dbapi_connection) -> None:
        """Make a new DBAPI connection's session read-only and bounded (timeout, rows)."""

    def prepare_session(self, conn: Connection) -> None:
        """Per-transaction setup before a lookup (when the session settings cannot do it)."""

    def plan(self, conn: Connection, sql: str, params: dict) -> None:
        """Ask the server to plan the query (EXPLAIN or equivalent) without running it."""
        conn.execute(text(f"EXPLAIN {sql}"), params)

    def describe_error(self, exc: Exception) -> tuple[str, bool]:
        """(reason, is_timeout) for a driver error; never includes the password."""
        orig = getattr(exc, "orig", None) or exc
        message = " ".join(str(orig).split())[:300] or type(orig).__name__
        secret = self.config.password
        return (message.replace(secret, "****") if len(secret) >= 4 else message), False

    # -- shared

    def _driver(self):
        try:
            return __import__(self.driver_module)
        except ImportError:
            raise IntegrationError(
                f"the {self.name} driver ({self.driver_module}) is not installed on this "
                f"server; {self.driver_hint}", permanent=True) from None

    def _url(self, address: str | None) -> URL:
        cfg = self.config
        return URL.create(self.drivername, username=cfg.username, password=cfg.password,
                          host=self.url_host(address), port=cfg.port, database=cfg.database)

    def _address(self) -> str | None:
        try:
            return resolve_host(self.config.host, self.config.port, self.settings)
        except HostNotAllowed as exc:
            raise IntegrationError(str(exc), permanent=True) from None

    def fingerprint(self) -> str:
        """Identifies one connection's settings (password included, hashed)."""
        cfg = self.config
        raw = "\x00".join([self.type, cfg.host.lower(), str(cfg.port), cfg.database,
                           cfg.username, cfg.password, str(cfg.statement_timeout_seconds),
                           str(cfg.max_rows), str(cfg.connect_timeout_seconds)])
        return hashlib.sha256(raw.encode()).hexdigest()

    def _engine(self, shared: bool) -> Engine:
        self._driver()
        address = self._address()
        if not shared:
            return self._listening(create_engine(self._url(address), poolclass=NullPool,
                                                 connect_args=self.connect_args(address)))
        return pooled(self.fingerprint(), lambda: self._listening(create_engine(
            self._url(address), connect_args=self.connect_args(address),
            pool_size=2, max_overflow=3, pool_timeout=5, pool_recycle=300,
            pool_pre_ping=True)))

    def _listening(self, engine: Engine) -> Engine:
        event.listen(engine, "connect", lambda dbapi_conn, _record: self.on_connect(dbapi_conn))
        return engine

    def dispose(self) -> None:
        """Close this connection's pool (the integration changed or was deleted)."""
        dispose_pool(self.fingerprint())

    def _needed(self, name: str) -> tuple[str, set[str]]:
        sql = self.config.queries.get(name)
        if sql is None:
            raise LookupRequestError(f"no query named {name!r} in this integration",
                                     "query_not_found")
        try:
            return sql, parse_select(sql, self.config.dialect)
        except UnsafeQuery as exc:  # stored before a rule existed: never run it
            raise IntegrationError(f"query {name} is refused: {exc}", permanent=True) from None

    def validate_request(self, name: str, params: dict | None) -> dict:
        """The cleaned parameters for query `name` (LookupRequestError when they do not fit)."""
        _, needed = self._needed(name)
        return clean_params(needed, params)

    def check(self) -> str:
        """Connect, then have the server plan every named query (with NULL values)."""
        try:
            engine = self._engine(shared=False)
        except IntegrationError as exc:
            raise IntegrationCheckFailed(str(exc)) from None
        results, failed = [], []
        try:
            with engine.connect() as conn:
                version = self.server_version(conn)
                for name, sql in self.config.queries.items():
                    needed = parse_select(sql, self.config.dialect)
                    try:
                        self.prepare_session(conn)
                        self.plan(conn, sql, dict.fromkeys(needed))
                        results.append(f"{name}: ok")
                    except DBAPIError as exc:
                        failed.append(f"{name}: {self.describe_error(exc)[0]}")
                    finally:
                        conn.rollback()
        except SQLAlchemyError as exc:
            raise IntegrationCheckFailed(f"cannot connect to {self.config.host}:"
                                         f"{self.config.port}: {self.describe_error(exc)[0]}") \
                from None
        finally:
            engine.dispose()
        if failed:
            raise IntegrationCheckFailed("connected, but some queries do not work: "
                                         + "; ".join(failed))
        queries = "; ".join(results) if results else "no queries yet"
        return f"connected to {version}; {queries}"

    def server_version(self, conn: Connection) -> str:
        """A short "Product x.y" for the check's detail."""
        info = conn.dialect.server_version_info or ()
        return f"{self.name} {'.'.join(str(p) for p in info[:3])}".strip()

    def lookup(self, name: str, params: dict | None) -> LookupResult:
        """Run named query `name` with bound `params`, read-only, bounded in time and rows."""
        sql, needed = self._needed(name)
        values = clean_params(needed, params)
        engine = self._engine(shared=True)
        limit = self.config.max_rows
        try:
            with engine.connect() as conn:
                if self.stream:
                    conn = conn.execution_options(stream_results=True, max_row_buffer=limit + 1)
                try:
                    self.prepare_session(conn)
                    result = conn.execute(text(sql), values)
                    columns = list(result.keys())
                    raw = result.fetchmany(limit + 1)
                    result.close()
                finally:
                    conn.rollback()  # never commit anything
        except DBAPIError as exc:
            reason, timed_out = self.describe_error(exc)
            if str(getattr(getattr(exc, "orig", None), "sqlstate", "") or "").startswith("22"):
                # a data exception: the value does not fit the column (a customer's typo)
                raise LookupRequestError(f"a value does not fit the query: {reason}",
                                         "invalid_params") from None
            if timed_out:
                raise IntegrationError(
                    f"query {name} took longer than {self.config.statement_timeout_seconds:g}"
                    f" s and was stopped", permanent=True) from None
            if exc.connection_invalidated or _is_connection_error(exc):
                raise IntegrationError(f"{self.name} could not be reached: {reason}") from None
            raise IntegrationError(f"query {name} failed: {reason}", permanent=True) from None
        except SQLAlchemyError as exc:
            raise IntegrationError(f"{self.name} could not be reached: "
                                   f"{self.describe_error(exc)[0]}") from None
        rows = [{c: json_value(v) for c, v in zip(columns, row, strict=False)}
                for row in raw[:limit]]
        return LookupResult(query=name, columns=columns, rows=rows,
                            truncated=len(raw) > limit)


def _is_connection_error(exc: DBAPIError) -> bool:
    """A failure to reach the server (retry may help), as opposed to the query's own error."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    if isinstance(exc, InterfaceError):
        return True
    text_ = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, OperationalError) and any(
        s in text_ for s in ("can't connect", "connection refused", "could not connect",
                             "timed out", "lost connection", "server has gone away",
                             "connection failed", "name or service not known"))
