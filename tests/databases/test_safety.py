"""The rules below every database connector: the SELECT-only parser per dialect, the host
vetting (SSRF), the entity extractor, and how the catalogue shows the database types."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from automation.ai.entities import extract_entities
from automation.integrations.database.base import (
    HostNotAllowed,
    UnsafeQuery,
    parse_select,
    resolve_host,
)
from tests.databases.conftest import configure

# The list, in each SQL dialect: every one must be refused.
REFUSED = [
    "INSERT INTO orders (status) VALUES ('x')",
    "UPDATE orders SET status = 'x'",
    "DELETE FROM orders",
    "SELECT status FROM orders; DROP TABLE orders",
    "SELECT 1; SELECT 2",
    "SELECT * INTO copied FROM orders",
    "WITH gone AS (DELETE FROM orders RETURNING *) SELECT * FROM gone",
    "SELECT status FROM orders FOR UPDATE",
    "SELECT status FROM orders WHERE id = ?",
    "SELECT status FROM orders WHERE id = $1",
    "SELECT status FROM orders WHERE note = 'see :b' AND id = :id",  # a bind inside a string
    "SELECT :id::int",
    "",
    "   ",
    "GRANT SELECT ON orders TO public",
    "SET GLOBAL read_only = 0",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT status FROM orders /*!50000 INTO OUTFILE '/tmp/x' */",   # MySQL runs these
    "SELECT status FROM orders -- a comment",
]


@pytest.mark.parametrize("dialect", ["mysql", "postgres", "tsql"])
@pytest.mark.parametrize("sql", REFUSED)
def test_refused_in_every_dialect(dialect, sql):
    if dialect in ("mysql", "tsql") and "RETURNING" in sql:
        sql = "WITH gone AS (SELECT 1) DELETE FROM orders"
    if dialect in ("mysql", "tsql") and "$1" in sql:
        sql = sql.replace("$1", "%s")   # `$1` is an identifier there; %s their positional
    with pytest.raises(UnsafeQuery):
        parse_select(sql, dialect)


@pytest.mark.parametrize("dialect", ["mysql", "postgres", "tsql"])
def test_accepted_selects_and_their_params(dialect):
    assert parse_select("SELECT status FROM orders WHERE order_number = :order_number",
                        dialect) == {"order_number"}
    assert parse_select("SELECT o.status, c.email FROM orders o JOIN customers c ON c.id = "
                        "o.customer_id WHERE c.email = :email OR c.phone = :phone", dialect) \
        == {"email", "phone"}
    assert parse_select("SELECT status FROM orders WHERE id = CAST(:id AS INT)", dialect) == \
        {"id"}
    assert parse_select("SELECT 1 AS a UNION SELECT 2", dialect) == set()
    assert parse_select("WITH recent AS (SELECT * FROM orders) SELECT status FROM recent "
                        "WHERE order_number = :n", dialect) == {"n"}


def _settings(allowed: str = ""):
    return SimpleNamespace(DB_CONNECTOR_ALLOWED_HOSTS=[h for h in allowed.split(",") if h])


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.0.0.7", "192.168.1.20",
                                  "172.16.5.5", "169.254.169.254", "::1", "0.0.0.0",
                                  "::ffff:127.0.0.1", "100.64.0.1", "fd00::1"])
def test_internal_hosts_are_refused_by_default(host):
    with pytest.raises(HostNotAllowed, match="internal"):
        resolve_host(host, 5432, _settings())


def test_public_address_is_allowed_and_pinned():
    assert resolve_host("8.8.8.8", 5432, _settings()) == "8.8.8.8"


def test_allow_list_by_name_by_address_and_by_range():
    assert resolve_host("db.internal.example", 3306, _settings("db.internal.example")) is None
    assert resolve_host("127.0.0.1", 3306, _settings("127.0.0.1")) is None   # listed as is
    assert resolve_host("localhost", 3306, _settings("127.0.0.0/8")) in ("127.0.0.1", "::1")
    assert resolve_host("10.2.3.4", 3306, _settings("10.0.0.0/8")) == "10.2.3.4"
    with pytest.raises(HostNotAllowed, match="not allowed here"):
        resolve_host("8.8.8.8", 3306, _settings("10.0.0.0/8"))   # a set list is exclusive
    with pytest.raises(HostNotAllowed, match="not allowed here"):
        resolve_host("192.168.0.1", 3306, _settings("10.0.0.0/8"))


@pytest.mark.parametrize("settings_overrides", [{"DB_CONNECTOR_ALLOWED_HOSTS": ""}],
                         indirect=True)
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "169.254.169.254"])
def test_api_refuses_internal_hosts_without_contacting_them(client, shopkeeper, host):
    resp = configure(client, shopkeeper, "postgresql", {
        "host": host, "port": 5432, "database": "test", "username": "postgres", "password": "x",
        "queries": {"one": "SELECT 1 AS one"}})
    assert resp.status_code == 422
    assert "internal address" in resp.get_json()["error"]["message"]


@pytest.mark.parametrize("text,expected", [
    ("Hi, where is my order 55821?", {"order_number": "55821"}),
    ("Where is order #A-1029?", {"order_number": "A-1029"}),
    ("Bestellung Nr. 4471 — wo bleibt sie?", {"order_number": "4471"}),
    ("order number: 55821, my email is jo.doe@shop.example.com",
     {"order_number": "55821", "email": "jo.doe@shop.example.com"}),
    ("call me at +1 (650) 555-1234 about 55821",
     {"order_number": "55821", "phone": "+16505551234"}),
    ("my phone is 0176 1234567", {"phone": "01761234567"}),
    ("hello there", {}),
])
def test_entity_extractor(text, expected):
    found = {k: v for k, v in extract_entities(text).items() if v}
    assert found == expected


def test_catalogue_lists_the_database_types_as_available(client, shopkeeper):
    items = {i["type"]: i for i in client.get("/api/integrations/types",
                                              headers=shopkeeper["headers"]).get_json()["items"]}
    for type_ in ("mysql", "postgresql", "mongodb", "sqlserver"):
        assert items[type_]["available"] is True and items[type_]["operations"] == ["lookup"]
        assert items[type_]["category"] == "database" and items[type_]["in_plan"] is True
    schema = items["mysql"]["config_schema"]["properties"]
    assert schema["statement_timeout_seconds"]["default"] == 3.0
    assert schema["max_rows"]["default"] == 20
    assert items["mongodb"]["secret_fields"] == ["uri"]
