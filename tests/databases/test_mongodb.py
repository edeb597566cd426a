"""MongoDB connector: pymongo's API through mongomock (no MongoDB server on this machine).

What runs here is our query building (placeholders filled as values), the refusals, the row
cap, the column list, the host vetting and the pool's lifecycle, through the same connector
code path as with pymongo. Not exercised: a real server's maxTimeMS, authentication, TLS.
"""
from __future__ import annotations

import mongomock
import pytest

from automation.integrations.database.mongodb import MongoDbConnector
from tests.databases.conftest import configure, lookup

URI = "mongodb://dana:S3cret-Mongo-pw@shop-db.example.com:27017/?authSource=admin"


@pytest.fixture
def settings_overrides(fake_graph):
    return {"GRAPH_API_URL": fake_graph.base_url,
            "DB_CONNECTOR_ALLOWED_HOSTS": "127.0.0.1,shop-db.example.com",
            "INTEGRATION_RETRY_ATTEMPTS": 1}


@pytest.fixture
def mongo(monkeypatch):
    """One in-memory server seeded with orders; records every client the connector makes."""
    client = mongomock.MongoClient()
    client.shop.orders.insert_many(
        [{"order_number": 55821, "status": "shipped", "email": "jo@example.com"},
         {"order_number": 55822, "status": "processing", "email": "al@example.com"}]
        + [{"order_number": 60000 + i, "status": "cancelled"} for i in range(30)])
    made = []

    def factory(uri, **options):
        made.append((uri, options))
        return client

    monkeypatch.setattr(MongoDbConnector, "client_factory", staticmethod(factory))
    client.made = made
    return client


def config(**queries) -> dict:
    return {"uri": URI, "database": "shop", "queries": queries or {
        "order_status": {"collection": "orders", "filter": {"order_number": "$order_number"},
                         "projection": ["order_number", "status"],
                         "param_types": {"order_number": "int"}}}}


def test_lookup_round_trip_with_typed_placeholder(client, shopkeeper, mongo):
    resp = configure(client, shopkeeper, "mongodb", config())
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["config"]["uri"] == "••••" + URI[-4:]   # the URI holds credentials
    body = lookup(client, shopkeeper, "mongodb", "order_status",
                  {"order_number": "55821"}).get_json()
    assert body["columns"] == ["order_number", "status"]
    assert body["rows"] == [{"order_number": 55821, "status": "shipped"}]
    uri, options = mongo.made[-1]
    assert uri == URI and options["serverSelectionTimeoutMS"] == 5000


@pytest.mark.parametrize("value", ['{"$ne": null}', "$ne", "{'$gt': ''}", "55821 || true"])
def test_operators_in_values_are_only_text(client, shopkeeper, mongo, value):
    text_config = config(by_email={"collection": "orders", "filter": {"email": "$email"}})
    assert configure(client, shopkeeper, "mongodb", text_config).status_code == 201
    body = lookup(client, shopkeeper, "mongodb", "by_email", {"email": value}).get_json()
    assert body["rows"] == []


def test_object_values_are_refused(client, shopkeeper, mongo):
    assert configure(client, shopkeeper, "mongodb", config()).status_code == 201
    resp = client.post("/api/integrations/mongodb/query", headers=shopkeeper["headers"],
                       json={"query": "order_status", "params": {"order_number": {"$ne": 1}}})
    assert resp.status_code == 400


@pytest.mark.parametrize("query", [
    {"collection": "orders", "filter": {"$where": "this.status == 'shipped'"}},
    {"collection": "orders", "filter": {"$expr": {"$eq": ["$status", "$email"]}}},
    {"collection": "orders", "filter": {"$or": [{"$function": {"body": "1", "args": [],
                                                               "lang": "js"}}]}},
    {"collection": "system.users", "filter": {}},
    {"collection": "$cmd", "filter": {}},
])
def test_code_running_operators_and_system_collections_are_refused(client, shopkeeper, mongo,
                                                                    query):
    resp = configure(client, shopkeeper, "mongodb", config(evil=query))
    assert resp.status_code == 400
    assert mongo.made == []   # refused before any connection


def test_row_cap(client, shopkeeper, mongo):
    cfg = {**config(cancelled={"collection": "orders", "filter": {"status": "$status"},
                               "sort": {"order_number": 1}}), "max_rows": 5}
    assert configure(client, shopkeeper, "mongodb", cfg).status_code == 201
    body = lookup(client, shopkeeper, "mongodb", "cancelled", {"status": "cancelled"}).get_json()
    assert body["row_count"] == 5 and body["truncated"] is True
    assert [r["order_number"] for r in body["rows"]] == [60000, 60001, 60002, 60003, 60004]
    assert all(isinstance(r["_id"], str) for r in body["rows"])   # ObjectId as text


@pytest.mark.parametrize("uri", ["mongodb://10.0.0.5:27017", "mongodb://169.254.169.254",
                                 "mongodb://shop-db.example.com,10.1.1.1:27017"])
def test_internal_hosts_are_refused_before_connecting(client, shopkeeper, mongo, uri):
    resp = configure(client, shopkeeper, "mongodb", {**config(), "uri": uri})
    assert resp.status_code == 422
    assert "not allowed" in resp.get_json()["error"]["message"]
    assert mongo.made == []


def test_client_is_closed_when_the_integration_is_deleted(client, shopkeeper, mongo):
    from automation.integrations.database.base import pool_count

    assert configure(client, shopkeeper, "mongodb", config()).status_code == 201
    lookup(client, shopkeeper, "mongodb", "order_status", {"order_number": "1"})
    assert pool_count() == 1
    assert client.delete("/api/integrations/mongodb",
                         headers=shopkeeper["headers"]).status_code == 204
    assert pool_count() == 0
