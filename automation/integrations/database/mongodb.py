"""MongoDB through pymongo: named `find` lookups with `$param` placeholders.

A lookup is `{collection, filter, projection?, sort?, param_types?}`. In the filter, a string
value that is exactly `"$name"` is a placeholder: the caller's value replaces it *as a value*
(never as a key or an operator), so a customer typing `{"$ne": null}` only ever searches for
that text. Operators that run code or expressions (`$where`, `$function`, `$accumulator`,
`$expr`) are refused. Reads are `find` only (nothing else is expressible), bounded by
`maxTimeMS` on the server and `limit(max_rows + 1)`.

The client (a connection pool) is kept per distinct connection and closed when the
integration changes or is deleted. The hosts of the URI are vetted like the SQL ones
(internal addresses only when DB_CONNECTOR_ALLOWED_HOSTS lists them); the driver then
connects by name.

Not run against a real server here: tests use mongomock (pymongo's API in memory) for the
query building, placeholders, caps and refusals; `maxTimeMS` is not enforced by mongomock.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from automation.integrations.base import IntegrationCheckFailed, IntegrationError
from automation.integrations.catalogue import MongoDbConfig, MongoQuery
from automation.integrations.database.base import (
    QUERY_NAME,
    HostNotAllowed,
    LookupRequestError,
    LookupResult,
    clean_params,
    dispose_pool,
    json_value,
    pooled,
    resolve_host,
)
from automation.integrations.database.base import SqlDatabaseConnector as _Sql

PLACEHOLDER = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]{0,63})$")
FORBIDDEN_OPERATORS = frozenset({"$where", "$function", "$accumulator", "$expr"})
_MAX_DEPTH = 12


class UnsafeFilter(ValueError):
    """The filter uses an operator that runs code, or is too deep."""


def placeholders(value: Any, depth: int = 0) -> set[str]:
    """The `$name` placeholders of a filter; UnsafeFilter for refused operators."""
    if depth > _MAX_DEPTH:
        raise UnsafeFilter("the filter is nested too deeply")
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise UnsafeFilter("filter keys must be strings")
            if key in FORBIDDEN_OPERATORS:
                raise UnsafeFilter(f"{key} runs code on the server and is not allowed")
            found |= placeholders(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            found |= placeholders(item, depth + 1)
    elif isinstance(value, str):
        match = PLACEHOLDER.match(value)
        if match:
            found.add(match.group(1))
    return found


def _coerce(value: Any, type_: str | None) -> Any:
    if value is None or type_ in (None, "string"):
        return value
    try:
        return int(value) if type_ == "int" else float(value)
    except (TypeError, ValueError):
        raise LookupRequestError(f"{value!r} is not a number", "invalid_params") from None


def fill(value: Any, params: dict, types: dict) -> Any:
    """The filter with each placeholder replaced by its parameter's value (as a value)."""
    if isinstance(value, dict):
        return {k: fill(v, params, types) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, params, types) for v in value]
    if isinstance(value, str):
        match = PLACEHOLDER.match(value)
        if match:
            return _coerce(params[match.group(1)], types.get(match.group(1)))
    return value


class MongoLookup(MongoQuery):
    """A named `find`: collection, filter with `$param` placeholders, optional shape."""

    collection: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
                            description="not a system.* collection")
    filter: dict = Field(default_factory=dict,
                         description='e.g. {"order_number": "$order_number"}; "$name" '
                                     "values are placeholders")
    projection: list[str] | None = Field(default=None, max_length=50,
                                         description="the fields to return (default: all)")
    sort: dict[str, Literal[1, -1]] | None = Field(default=None, max_length=5)
    param_types: dict[str, Literal["string", "int", "float"]] = Field(
        default_factory=dict, description="convert a parameter before it is used "
                                          "(values arrive as text)")

    @field_validator("collection")
    @classmethod
    def _not_system(cls, value: str) -> str:
        if value.startswith("system."):
            raise ValueError("system collections are not allowed")
        return value

    @field_validator("filter")
    @classmethod
    def _safe_filter(cls, value: dict) -> dict:
        try:
            placeholders(value)
        except UnsafeFilter as exc:
            raise ValueError(str(exc)) from None
        return value


class MongoLookupConfig(MongoDbConfig):
    """The catalogue's MongoDB config with checked lookups and settable bounds."""

    queries: dict[str, MongoLookup] = Field(default_factory=dict, max_length=50)
    statement_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    max_rows: int = Field(default=20, ge=1, le=200)
    connect_timeout_seconds: int = Field(default=5, ge=1, le=30)

    @field_validator("queries")
    @classmethod
    def _names(cls, queries: dict) -> dict:
        for name in queries:
            if not re.match(QUERY_NAME, name):
                raise ValueError(f"query name {name!r} must match {QUERY_NAME}")
        return queries


class MongoDbConnector(_Sql):
    """Lookups in a MongoDB database (find with placeholders, read-only by construction)."""

    type: ClassVar[str] = "mongodb"
    name: ClassVar[str] = "MongoDB"
    config_model = MongoLookupConfig
    secret_fields: ClassVar[frozenset[str]] = frozenset({"uri"})
    driver_module: ClassVar[str] = "pymongo"
    driver_hint: ClassVar[str] = "install it with: pip install pymongo"
    # The client class (pymongo.MongoClient unless set; tests use mongomock's).
    client_factory: ClassVar[Any] = None
    config: MongoLookupConfig

    def fingerprint(self) -> str:
        """Identifies one connection (the URI, with its credentials, hashed)."""
        cfg = self.config
        raw = "\x00".join([self.type, cfg.uri, cfg.database, str(cfg.statement_timeout_seconds),
                           str(cfg.connect_timeout_seconds)])
        return hashlib.sha256(raw.encode()).hexdigest()

    def _vet_hosts(self) -> None:
        from pymongo.errors import ConfigurationError, InvalidURI
        from pymongo.uri_parser import parse_uri

        try:
            nodes = parse_uri(self.config.uri, connect_timeout=self.config.connect_timeout_seconds
                              )["nodelist"]
        except (InvalidURI, ConfigurationError, ValueError) as exc:
            raise IntegrationError(f"the MongoDB URI is not valid: {exc}", permanent=True) \
                from None
        for host, port in nodes:
            try:
                resolve_host(host, port, self.settings)
            except HostNotAllowed as exc:
                raise IntegrationError(str(exc), permanent=True) from None

    def _new_client(self):
        cfg = self.config
        factory = self.client_factory or self._driver().MongoClient
        ms = int(cfg.connect_timeout_seconds * 1000)
        return factory(cfg.uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms,
                       socketTimeoutMS=int((cfg.statement_timeout_seconds + 5) * 1000),
                       maxPoolSize=5, appname="dana")

    def _client(self, pooled_: bool):
        self._driver()
        self._vet_hosts()
        if not pooled_:
            return self._new_client()
        return pooled(self.fingerprint(), self._new_client)

    def dispose(self) -> None:
        """Close this connection's client (the integration changed or was deleted)."""
        dispose_pool(self.fingerprint())

    def _lookup_spec(self, name: str) -> tuple[MongoLookup, set[str]]:
        spec = self.config.queries.get(name)
        if spec is None:
            raise LookupRequestError(f"no query named {name!r} in this integration",
                                     "query_not_found")
        return spec, placeholders(spec.filter)

    def _needed(self, name: str) -> tuple[Any, set[str]]:
        return self._lookup_spec(name)

    def _find(self, client, spec: MongoLookup, values: dict, limit: int) -> list[dict]:
        cfg = self.config
        projection = None
        if spec.projection:  # only these fields (_id too only when asked for)
            projection = {"_id": 0, **dict.fromkeys(spec.projection, 1)}
        cursor = client[cfg.database][spec.collection].find(
            fill(spec.filter, values, spec.param_types), projection)
        if spec.sort:
            cursor = cursor.sort(list(spec.sort.items()))
        return list(cursor.limit(limit).max_time_ms(int(cfg.statement_timeout_seconds * 1000)))

    def check(self) -> str:
        """Reach the server, then run every lookup once with empty values (one row at most)."""
        from pymongo.errors import PyMongoError

        try:
            client = self._client(pooled_=False)
        except IntegrationError as exc:
            raise IntegrationCheckFailed(str(exc)) from None
        results, failed = [], []
        try:
            client.admin.command("ping")
            for name, spec in self.config.queries.items():
                try:
                    self._find(client, spec, dict.fromkeys(placeholders(spec.filter)), 1)
                    results.append(f"{name}: ok")
                except (PyMongoError, LookupRequestError) as exc:
                    failed.append(f"{name}: {_reason(exc)}")
        except PyMongoError as exc:
            raise IntegrationCheckFailed(f"cannot reach MongoDB: {_reason(exc)}") from None
        finally:
            client.close()
        if failed:
            raise IntegrationCheckFailed("connected, but some queries do not work: "
                                         + "; ".join(failed))
        return f"connected to MongoDB; {'; '.join(results) if results else 'no queries yet'}"

    def lookup(self, name: str, params: dict | None) -> LookupResult:
        """Run lookup `name` with `params` put in its placeholders; bounded rows and time."""
        from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError

        spec, needed = self._lookup_spec(name)
        values = clean_params(needed, params)
        limit = self.config.max_rows
        try:
            docs = self._find(self._client(pooled_=True), spec, values, limit + 1)
        except ExecutionTimeout:
            raise IntegrationError(
                f"query {name} took longer than {self.config.statement_timeout_seconds:g} s "
                "and was stopped", permanent=True) from None
        except ConnectionFailure as exc:
            raise IntegrationError(f"MongoDB could not be reached: {_reason(exc)}") from None
        except PyMongoError as exc:
            raise IntegrationError(f"query {name} failed: {_reason(exc)}", permanent=True) \
                from None
        columns: list[str] = []
        for doc in docs[:limit]:
            columns.extend(k for k in doc if k not in columns)
        rows = [{c: json_value(doc.get(c)) for c in columns} for doc in docs[:limit]]
        return LookupResult(query=name, columns=columns, rows=rows, truncated=len(docs) > limit)


def _reason(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
