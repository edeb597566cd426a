"""MySQL/MariaDB and PostgreSQL connectors against the real servers of this machine.

Each test runs on both (the `shop` fixture): configure (checked before stored), the lookup
round trip with its column list, write statements refused, injection through parameters
harmless, statement timeout, row cap, unreachable host, pools disposed, secrets hidden.
"""
from __future__ import annotations

import pytest

from tests.conftest import register
from tests.databases.conftest import closed_port, configure, lookup

WRITES = {
    "insert": "INSERT INTO {t} (order_number, status) VALUES ('1', 'x')",
    "update": "UPDATE {t} SET status = 'x'",
    "delete": "DELETE FROM {t}",
    "second statement": "SELECT status FROM {t}; DROP TABLE {t}",
    "select into": "SELECT * INTO copied_orders FROM {t}",
    "for update": "SELECT status FROM {t} WHERE order_number = :order_number FOR UPDATE",
    "drop": "DROP TABLE {t}",
    "truncate": "TRUNCATE TABLE {t}",
    "create as": "CREATE TABLE copied AS SELECT * FROM {t}",
    "positional param": "SELECT status FROM {t} WHERE order_number = ?",
}
PG_ONLY = {
    "cte with delete": "WITH gone AS (DELETE FROM {t} RETURNING *) SELECT * FROM gone",
    "cte with update": "WITH x AS (UPDATE {t} SET status = 'x' RETURNING *) SELECT * FROM x",
    "terminate backends": "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
    "copy": "COPY {t} TO '/tmp/orders.csv'",
}
MYSQL_ONLY = {
    "into outfile": "SELECT * FROM {t} INTO OUTFILE '/tmp/orders.csv'",
    "load_file": "SELECT LOAD_FILE('/etc/passwd')",
    "call": "CALL some_procedure()",
}


def test_configure_then_lookup_round_trip(client, shopkeeper, shop):
    resp = configure(client, shopkeeper, shop.type, shop.config())
    assert resp.status_code == 201, resp.get_json()
    stored = resp.get_json()
    assert stored["status"] == "active"
    resp = lookup(client, shopkeeper, shop.type, "order_status", {"order_number": "55821"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["columns"] == ["order_number", "status", "tracking", "total"]
    assert body["row_count"] == 1 and body["truncated"] is False
    [row] = body["rows"]
    assert row["status"] == "shipped" and row["tracking"] == "DHL 00340434161234567890"
    assert str(row["order_number"]) == "55821" and row["total"] == "129.90"
    # nothing matches: an empty answer, not an error
    none = lookup(client, shopkeeper, shop.type, "order_status", {"order_number": "1"}).get_json()
    assert none["rows"] == [] and none["row_count"] == 0


def test_check_reports_each_query_and_refuses_a_broken_one(client, shopkeeper, shop):
    good = shop.config({"order_status": f"SELECT status FROM {shop.table} "
                                         "WHERE order_number = :order_number",
                        "missing_table": "SELECT status FROM no_such_table_here WHERE id = :id"})
    resp = configure(client, shopkeeper, shop.type, good)
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "integration_check_failed"
    assert "missing_table" in error["message"] and "order_status" not in error["message"]
    assert client.get(f"/api/integrations/{shop.type}",
                      headers=shopkeeper["headers"]).status_code == 404   # nothing kept
    del good["queries"]["missing_table"]
    assert configure(client, shopkeeper, shop.type, good).status_code == 201
    test = client.post(f"/api/integrations/{shop.type}/test",
                       headers=shopkeeper["headers"]).get_json()
    assert test["ok"] is True and "order_status: ok" in test["detail"]


def _refused(client, user, shop, sql: str) -> None:
    before = shop.scalar(f"SELECT COUNT(*) FROM {shop.table}")
    resp = configure(client, user, shop.type, shop.config({"evil": sql.format(t=shop.table)}))
    assert resp.status_code == 400, resp.get_json()
    error = resp.get_json()["error"]
    assert error["code"] == "validation_error"
    assert any(d["field"] == "config.queries" and "evil" in d["message"]
               for d in error["details"])
    assert shop.scalar(f"SELECT COUNT(*) FROM {shop.table}") == before
    assert client.get(f"/api/integrations/{shop.type}",
                      headers=user["headers"]).status_code == 404


@pytest.mark.parametrize("name", sorted({**WRITES, **MYSQL_ONLY}))
def test_write_statements_are_refused_before_anything_runs_mysql(client, shopkeeper,
                                                                   mariadb_shop, name):
    _refused(client, shopkeeper, mariadb_shop, {**WRITES, **MYSQL_ONLY}[name])


@pytest.mark.parametrize("name", sorted({**WRITES, **PG_ONLY}))
def test_write_statements_are_refused_before_anything_runs_postgresql(client, shopkeeper,
                                                                        postgres_shop, name):
    _refused(client, shopkeeper, postgres_shop, {**WRITES, **PG_ONLY}[name])


def test_a_stored_write_query_is_still_refused_at_run_time(client, shopkeeper, shop):
    """A row written before a rule existed (or by hand) is re-parsed before every run."""
    from models_db import Integration, db

    assert configure(client, shopkeeper, shop.type, shop.config()).status_code == 201
    row = db.session.query(Integration).filter_by(user_id=shopkeeper["user"]["id"],
                                                  type=shop.type).one()
    row.config = {**row.config, "queries": {"evil": f"DELETE FROM {shop.table}"}}
    db.session.commit()
    resp = lookup(client, shopkeeper, shop.type, "evil")
    assert resp.status_code == 502
    assert "no longer valid (queries)" in resp.get_json()["error"]["message"]
    assert shop.scalar(f"SELECT COUNT(*) FROM {shop.table}") == 33


def test_the_session_itself_is_read_only(app, shop):
    """Below the parser: the connection Dana opens refuses writes even with full rights."""
    from sqlalchemy import text

    from automation.registry import INTEGRATIONS
    from utils.config import current_settings

    cls = INTEGRATIONS[shop.type]
    admin_user = "root" if shop.type == "mysql" else "postgres"
    connector = cls(cls.config_model.model_validate(
        shop.config(username=admin_user, password="")), current_settings())
    engine = connector._engine(shared=True)
    with engine.connect() as conn:
        with pytest.raises(Exception, match="(?i)read.only"):
            conn.execute(text(f"UPDATE {shop.table} SET status = 'hacked'"))
        conn.rollback()
    connector.dispose()
    assert shop.scalar(f"SELECT COUNT(*) FROM {shop.table} WHERE status = 'hacked'") == 0


@pytest.mark.parametrize("value", [
    "55821' OR '1'='1", "55821 OR 1=1", "x'; DROP TABLE orders; --", "55821\\' OR 1=1 -- ",
    "' UNION SELECT user(), 2, 3, 4 -- "])
def test_injection_through_parameters_is_harmless(client, shopkeeper, shop, value):
    assert configure(client, shopkeeper, shop.type, shop.config()).status_code == 201
    resp = lookup(client, shopkeeper, shop.type, "order_status", {"order_number": value})
    assert resp.status_code in (200, 400), resp.get_json()
    if resp.status_code == 200:
        assert resp.get_json()["rows"] == []
    else:  # PostgreSQL: not an integer -> the caller's mistake, and the integration stays fine
        assert resp.get_json()["error"]["code"] == "validation_error"
    assert shop.scalar(f"SELECT COUNT(*) FROM {shop.table}") == 33
    stored = client.get(f"/api/integrations/{shop.type}", headers=shopkeeper["headers"]).get_json()
    assert stored["status"] == "active"


def test_parameters_must_match_the_query(client, shopkeeper, shop):
    assert configure(client, shopkeeper, shop.type, shop.config()).status_code == 201
    missing = lookup(client, shopkeeper, shop.type, "order_status", {})
    assert missing.status_code == 400 and "order_number" in missing.get_json()["error"]["message"]
    extra = lookup(client, shopkeeper, shop.type, "order_status",
                   {"order_number": "55821", "status": "x"})
    assert extra.status_code == 400 and "status" in extra.get_json()["error"]["message"]
    unknown = lookup(client, shopkeeper, shop.type, "drop_everything", {})
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["code"] == "query_not_found"
    nested = client.post(f"/api/integrations/{shop.type}/query", headers=shopkeeper["headers"],
                         json={"query": "order_status", "params": {"order_number": {"$ne": 1}}})
    assert nested.status_code == 400


def test_statement_timeout_stops_a_sleeping_query(client, shopkeeper, shop):
    config = shop.config({"slow": shop.sleep}, statement_timeout_seconds=1)
    assert configure(client, shopkeeper, shop.type, config).status_code == 201
    resp = lookup(client, shopkeeper, shop.type, "slow")
    assert resp.status_code == 502
    error = resp.get_json()["error"]
    assert error["code"] == "integration_error" and "longer than 1 s" in error["message"]
    stored = client.get(f"/api/integrations/{shop.type}", headers=shopkeeper["headers"]).get_json()
    assert stored["status"] == "error" and "longer than 1 s" in stored["last_error"]


def test_row_cap_and_default_of_twenty(client, shopkeeper, shop):
    all_rows = {"everything": f"SELECT order_number, status FROM {shop.table} "
                              "ORDER BY order_number"}
    assert configure(client, shopkeeper, shop.type, shop.config(all_rows)).status_code == 201
    body = lookup(client, shopkeeper, shop.type, "everything").get_json()
    assert body["row_count"] == 20 and body["truncated"] is True
    assert configure(client, shopkeeper, shop.type,
                     shop.config(all_rows, max_rows=3)).status_code == 200
    body = lookup(client, shopkeeper, shop.type, "everything").get_json()
    assert [r["status"] for r in body["rows"]] == ["shipped", "processing", "delivered"]
    assert body["truncated"] is True


def test_unreachable_host_is_422_at_check(client, shopkeeper, shop):
    resp = configure(client, shopkeeper, shop.type, shop.config(port=closed_port()))
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "integration_check_failed"
    assert "cannot connect" in error["message"]


def test_wrong_password_is_422_and_never_echoed(client, shopkeeper, mariadb_shop):
    """MariaDB only: this machine's PostgreSQL trusts loopback connections."""
    shop = mariadb_shop
    resp = configure(client, shopkeeper, shop.type, shop.config(password="Wrong-Pa55word-991"))
    assert resp.status_code == 422
    assert "Wrong-Pa55word-991" not in resp.get_data(as_text=True)


def test_password_is_encrypted_at_rest_and_masked(client, shopkeeper, shop):
    from models_db import Integration, db

    assert configure(client, shopkeeper, shop.type, shop.config()).status_code == 201
    shown = client.get(f"/api/integrations/{shop.type}", headers=shopkeeper["headers"]).get_json()
    assert shown["config"]["password"] == "••••" + shop.password[-4:]
    row = db.session.query(Integration).filter_by(user_id=shopkeeper["user"]["id"],
                                                  type=shop.type).one()
    assert shop.password not in str(row.config)
    # an update sending the mask back keeps the real password (the check still connects)
    again = configure(client, shopkeeper, shop.type, {**shop.config(), "password":
                                                    shown["config"]["password"]})
    assert again.status_code == 200, again.get_json()


def test_another_user_cannot_run_the_lookup(client, shopkeeper, shop):
    assert configure(client, shopkeeper, shop.type, shop.config()).status_code == 201
    other = register(client)
    headers = {"Authorization": f"Bearer {other['access_token']}"}
    resp = client.post(f"/api/integrations/{shop.type}/query", headers=headers,
                       json={"query": "order_status", "params": {"order_number": "55821"}})
    assert resp.status_code == 404
    assert "shipped" not in resp.get_data(as_text=True)
    assert client.post(f"/api/integrations/{shop.type}/query",
                       json={"query": "order_status"}).status_code == 401


def test_pools_are_disposed_when_the_integration_changes_or_is_deleted(client, shopkeeper, shop):
    from automation.integrations.database.base import pool_count

    assert configure(client, shopkeeper, shop.type, shop.config()).status_code == 201
    assert pool_count() == 0          # the check used no pool
    lookup(client, shopkeeper, shop.type, "order_status", {"order_number": "55821"})
    assert pool_count() == 1
    assert configure(client, shopkeeper, shop.type,
                     shop.config(statement_timeout_seconds=2)).status_code == 200
    assert pool_count() == 0          # the old settings' pool is closed
    lookup(client, shopkeeper, shop.type, "order_status", {"order_number": "55821"})
    assert pool_count() == 1
    assert client.delete(f"/api/integrations/{shop.type}",
                         headers=shopkeeper["headers"]).status_code == 204
    assert pool_count() == 0


def test_disabled_integration_does_not_run(client, shopkeeper, shop):
    resp = client.post("/api/integrations", headers=shopkeeper["headers"],
                       json={"type": shop.type, "config": shop.config(), "enabled": False})
    assert resp.status_code == 201
    resp = lookup(client, shopkeeper, shop.type, "order_status", {"order_number": "55821"})
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "integration_disabled"
