"""Microsoft SQL Server through SQLAlchemy and pymssql — an optional extra.

pymssql is not in requirements.txt (it needs FreeTDS on some platforms): install it with
`pip install pymssql==2.4.6` to use this connector; without it the check answers that the
driver is not installed. SQL Server has no read-only session, so each connection gets
`SET ROWCOUNT` (the row cap), `SET LOCK_TIMEOUT`, READ COMMITTED, and pymssql's query
timeout; the statement rules (one SELECT, no INTO, no EXEC) and a login with only
db_datareader (README) keep it read-only. Plans are checked with SHOWPLAN_XML.

Not run against a real server here: the tests cover the dialect (sqlglot's T-SQL parsing and
SQLAlchemy's compilation of the bound parameters) and the driver's absence.
"""
from __future__ import annotations

import math
from typing import ClassVar

from sqlalchemy import text
from sqlalchemy.engine import Connection

from automation.integrations.database.base import SqlDatabaseConnector, SqlLookupConfig


class SqlServerConfig(SqlLookupConfig):
    """A SQL Server database (default port 1433) and its named lookups."""

    dialect: ClassVar[str] = "tsql"


class SqlServerConnector(SqlDatabaseConnector):
    """Lookups in a Microsoft SQL Server database (needs the optional pymssql driver)."""

    type: ClassVar[str] = "sqlserver"
    name: ClassVar[str] = "Microsoft SQL Server"
    config_model = SqlServerConfig
    drivername: ClassVar[str] = "mssql+pymssql"
    driver_module: ClassVar[str] = "pymssql"
    driver_hint: ClassVar[str] = ("it is an optional extra: pip install pymssql==2.4.6 "
                                  "(see the README, \"SQL Server\")")

    def connect_args(self, address: str | None) -> dict:
        """The login and query timeouts (seconds)."""
        cfg = self.config
        return {"login_timeout": cfg.connect_timeout_seconds,
                "timeout": max(1, math.ceil(cfg.statement_timeout_seconds)),
                "appname": "dana"}

    def on_connect(self, dbapi_connection) -> None:
        """Row cap, lock timeout and isolation for the session."""
        cfg = self.config
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"SET ROWCOUNT {cfg.max_rows + 1}; "
                           f"SET LOCK_TIMEOUT {int(cfg.statement_timeout_seconds * 1000)}; "
                           "SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        finally:
            cursor.close()

    def plan(self, conn: Connection, sql: str, params: dict) -> None:
        """SHOWPLAN_XML: the server compiles the query and returns its plan, running nothing."""
        conn.exec_driver_sql("SET SHOWPLAN_XML ON")
        try:
            conn.execute(text(sql), params).fetchall()
        finally:
            conn.exec_driver_sql("SET SHOWPLAN_XML OFF")

    def describe_error(self, exc: Exception) -> tuple[str, bool]:
        """The driver's message, and whether pymssql's query timeout fired."""
        reason, _ = super().describe_error(exc)
        return reason, "timed out" in reason.lower() or "timeout expired" in reason.lower()
