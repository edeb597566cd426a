"""PostgreSQL through SQLAlchemy and psycopg 3.

Each connection starts with `default_transaction_read_only=on` and `statement_timeout` as
startup options, so the server itself refuses writes and stops a slow lookup (pg_sleep
included); rows are read through a server-side cursor, only max_rows + 1 of them. When the
host was checked by address, libpq's `hostaddr` pins the connection to that address while
`host` keeps the name (TLS). Plans are checked with EXPLAIN.
"""
from __future__ import annotations

from typing import ClassVar

from automation.integrations.database.base import SqlDatabaseConnector, SqlLookupConfig

_QUERY_CANCELED = "57014"


class PostgreSqlConfig(SqlLookupConfig):
    """A PostgreSQL database (default port 5432) and its named lookups."""

    dialect: ClassVar[str] = "postgres"


class PostgreSqlConnector(SqlDatabaseConnector):
    """Lookups in a PostgreSQL database."""

    type: ClassVar[str] = "postgresql"
    name: ClassVar[str] = "PostgreSQL"
    config_model = PostgreSqlConfig
    drivername: ClassVar[str] = "postgresql+psycopg"
    driver_module: ClassVar[str] = "psycopg"
    driver_hint: ClassVar[str] = "install it with: pip install 'psycopg[binary]'"
    stream: ClassVar[bool] = True

    def url_host(self, address: str | None) -> str:
        """The configured name (the checked address goes in hostaddr)."""
        return self.config.host

    def connect_args(self, address: str | None) -> dict:
        """Timeouts and the read-only session as startup options; hostaddr pins the address."""
        cfg = self.config
        args = {"connect_timeout": cfg.connect_timeout_seconds, "application_name": "dana",
                "options": f"-c default_transaction_read_only=on "
                           f"-c statement_timeout={int(cfg.statement_timeout_seconds * 1000)}"}
        if address:
            args["hostaddr"] = address
        return args

    def describe_error(self, exc: Exception) -> tuple[str, bool]:
        """The driver's message, and whether statement_timeout cancelled the query."""
        reason, _ = super().describe_error(exc)
        orig = getattr(exc, "orig", None)
        return reason, getattr(orig, "sqlstate", None) == _QUERY_CANCELED
