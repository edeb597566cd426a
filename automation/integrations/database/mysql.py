"""MySQL and MariaDB through SQLAlchemy and PyMySQL.

Every connection's session is made read-only (`SET SESSION TRANSACTION READ ONLY`), bounded
in time by the server (MariaDB `max_statement_time`, MySQL `max_execution_time`, which stop
`SLEEP()` too) and in rows (`sql_select_limit`), with PyMySQL's own read timeout as a backstop
should the server not answer at all. Plans are checked with EXPLAIN.
"""
from __future__ import annotations

import math
from typing import ClassVar

from automation.integrations.database.base import SqlDatabaseConnector, SqlLookupConfig

# 1969: MariaDB "max_statement_time exceeded"; 3024: MySQL "maximum statement execution time
# exceeded"; 2013: the client's read timeout fired ("Lost connection ... during query").
_TIMEOUT_CODES = frozenset({1969, 3024})


class MySqlConfig(SqlLookupConfig):
    """A MySQL / MariaDB database (default port 3306) and its named lookups."""

    dialect: ClassVar[str] = "mysql"


class MySqlConnector(SqlDatabaseConnector):
    """Lookups in a MySQL or MariaDB database."""

    type: ClassVar[str] = "mysql"
    name: ClassVar[str] = "MySQL / MariaDB"
    config_model = MySqlConfig
    drivername: ClassVar[str] = "mysql+pymysql"
    driver_module: ClassVar[str] = "pymysql"
    driver_hint: ClassVar[str] = "install it with: pip install PyMySQL"

    def connect_args(self, address: str | None) -> dict:
        """Connect and read timeouts (the read timeout only backs up the server's own)."""
        cfg = self.config
        return {"connect_timeout": cfg.connect_timeout_seconds,
                "read_timeout": math.ceil(cfg.statement_timeout_seconds) + 5,
                "write_timeout": math.ceil(cfg.statement_timeout_seconds) + 5,
                "charset": "utf8mb4"}

    def on_connect(self, dbapi_connection) -> None:
        """Read-only session, the statement timeout and the row cap, set by the server."""
        cfg = self.config
        mariadb = "mariadb" in dbapi_connection.get_server_info().lower()
        timeout = (f"max_statement_time = {cfg.statement_timeout_seconds:.3f}" if mariadb
                   else f"max_execution_time = {int(cfg.statement_timeout_seconds * 1000)}")
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            cursor.execute(f"SET SESSION {timeout}, SESSION sql_select_limit = "
                           f"{cfg.max_rows + 1}")
        finally:
            cursor.close()

    def describe_error(self, exc: Exception) -> tuple[str, bool]:
        """PyMySQL's (code, message), and whether the statement timeout stopped it."""
        reason, _ = super().describe_error(exc)
        orig = getattr(exc, "orig", None)
        code = orig.args[0] if orig is not None and orig.args else None
        return reason, code in _TIMEOUT_CODES
