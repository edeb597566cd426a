"""SQL Server: no server and (by default) no driver here, so what is honest to test is the
dialect — sqlglot's T-SQL rules and SQLAlchemy's compilation for pymssql — and the clear
answer when the optional driver is not installed."""
from __future__ import annotations

import sys

import pytest
from sqlalchemy import text
from sqlalchemy.dialects.mssql.pymssql import MSDialect_pymssql

from automation.integrations.database.base import UnsafeQuery, parse_select
from tests.databases.conftest import configure

ORDER_STATUS = "SELECT TOP 5 status, tracking FROM dbo.orders WHERE order_number = :order_number"


def _config(**queries) -> dict:
    return {"host": "127.0.0.1", "port": 1433, "database": "shop", "username": "dana_reader",
            "password": "Sql-Server-pw-1", "queries": queries or {"order_status": ORDER_STATUS}}


def test_tsql_lookup_is_accepted_and_compiles_to_bound_parameters():
    assert parse_select(ORDER_STATUS, "tsql") == {"order_number"}
    # pymssql declares paramstyle "pyformat"; SQLAlchemy reads it from the driver at connect
    compiled = str(text(ORDER_STATUS).compile(dialect=MSDialect_pymssql(paramstyle="pyformat")))
    assert "%(order_number)s" in compiled and ":order_number" not in compiled


@pytest.mark.parametrize("sql", [
    "SELECT * INTO #copy FROM dbo.orders",
    "EXEC xp_cmdshell 'dir'",
    "INSERT INTO dbo.orders (status) VALUES ('x')",
    "SELECT status FROM dbo.orders; DROP TABLE dbo.orders",
    "WITH x AS (SELECT 1 AS a) DELETE FROM dbo.orders",
    "SELECT * FROM OPENROWSET('SQLNCLI', 'Server=evil;', 'SELECT 1')",
    "WAITFOR DELAY '00:00:10'",
])
def test_tsql_writes_and_escapes_are_refused(sql):
    with pytest.raises(UnsafeQuery):
        parse_select(sql, "tsql")


def test_missing_driver_is_a_clear_422(client, shopkeeper, monkeypatch):
    monkeypatch.setitem(sys.modules, "pymssql", None)   # as on a server without the extra
    resp = configure(client, shopkeeper, "sqlserver", _config())
    assert resp.status_code == 422
    message = resp.get_json()["error"]["message"]
    assert "driver (pymssql) is not installed" in message
    assert "pip install pymssql==2.4.6" in message


def test_unsafe_query_is_a_400_naming_it(client, shopkeeper):
    resp = configure(client, shopkeeper, "sqlserver", _config(evil="EXEC sp_who"))
    assert resp.status_code == 400
    assert any("evil" in d["message"] for d in resp.get_json()["error"]["details"])
