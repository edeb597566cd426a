"""/api/integrations: the catalogue, configuration checked before storing, masking, 404s."""
from __future__ import annotations

import json
import logging

import pytest

from tests.fakes.smtp import SmtpServer
from tests.helpers import assert_error
from tests.integrations.conftest import LOGIN, PASSWORD, email_config, user_on

TEN = ["slack", "email", "hubspot", "salesforce", "zendesk", "google_analytics", "mysql",
       "postgresql", "mongodb", "sqlserver"]


def test_types_list_all_ten_with_schema_and_plan(client, starter):
    free = user_on(client, "free")
    items = client.get("/api/integrations/types", headers=free["headers"]).get_json()["items"]
    assert [i["type"] for i in items] == TEN
    assert not any(i["in_plan"] for i in items)
    by_type = {i["type"]: i for i in client.get("/api/integrations/types",
                                                headers=starter["headers"]).get_json()["items"]}
    assert {t for t, i in by_type.items() if i["in_plan"]} == {"slack", "email"}
    email = by_type["email"]
    assert email["available"] is True and email["category"] == "email"
    assert email["operations"] == ["notify"] and email["secret_fields"] == ["password"]
    assert {"smtp_host", "smtp_port", "security", "username", "password", "from_address",
            "to_addresses"} <= set(email["config_schema"]["properties"])
    assert email["config_schema"]["properties"]["security"]["enum"] == ["starttls", "ssl", "none"]
    # every specified type is built now, each with its real schema
    assert all(i["available"] for i in by_type.values())
    assert by_type["zendesk"]["config_schema"]["required"] == ["subdomain", "email", "api_token"]
    assert {"uri", "database", "queries"} <= set(by_type["mongodb"]["config_schema"]["properties"])


def test_unavailable_type_is_refused(client, starter, monkeypatch):
    # A type that is specified but not built (as every type was before its connector) is
    # listed yet refused before any check runs.
    from automation.integrations.catalogue import PLANNED
    from automation.registry import INTEGRATIONS
    monkeypatch.setitem(INTEGRATIONS, "mongodb", PLANNED["mongodb"])
    pro = user_on(client, "professional")
    resp = client.post("/api/integrations", headers=pro["headers"], json={
        "type": "mongodb", "config": {"uri": "mongodb://db.example.com", "database": "shop"}})
    assert "not available yet" in assert_error(resp, 422, "integration_not_available")["message"]
    assert client.get("/api/integrations", headers=pro["headers"]).get_json()["items"] == []


def test_validation_names_each_bad_field(client, starter, smtp):
    resp = client.post("/api/integrations", headers=starter["headers"], json={
        "type": "email", "config": {"smtp_port": 70000, "security": "tls",
                                    "from_address": "not-an-address", "to_addresses": []}})
    fields = {d["field"] for d in assert_error(resp, 400, "validation_error")["details"]}
    assert {"config.smtp_host", "config.smtp_port", "config.security", "config.from_address",
            "config.to_addresses"} <= fields
    resp = client.post("/api/integrations", headers=starter["headers"],
                       json={"type": "fax", "config": {}})
    assert [d["field"] for d in assert_error(resp, 400, "validation_error")["details"]] == ["type"]
    resp = client.post("/api/integrations", headers=starter["headers"],
                       json={"type": "email", "config": email_config(smtp, sneaky=True)})
    details = assert_error(resp, 400, "validation_error")["details"]
    assert "config.sneaky" in {d["field"] for d in details}
    assert smtp.logins == []  # nothing invalid ever reaches the service


def test_plan_without_integrations_is_402_and_nothing_contacted(client, smtp):
    free = user_on(client, "free")
    resp = client.post("/api/integrations", headers=free["headers"],
                       json={"type": "email", "config": email_config(smtp)})
    assert "Starter" in assert_error(resp, 402, "plan_limit")["message"]
    assert smtp.logins == []
    assert client.get("/api/integrations", headers=free["headers"]).get_json()["items"] == []


def test_configure_checks_login_without_sending_and_masks_the_secret(client, starter, smtp):
    resp = client.post("/api/integrations", headers=starter["headers"],
                       json={"type": "email", "config": email_config(smtp)})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["type"] == "email" and body["status"] == "active" and body["enabled"] is True
    assert body["config"]["password"] == "••••" + PASSWORD[-4:]
    assert body["config"]["username"] == LOGIN and body["last_error"] is None
    assert body["last_checked_at"]
    assert smtp.logins == [(LOGIN, True)] and smtp.messages == []  # logged in, sent nothing
    for path in ("/api/integrations", "/api/integrations/email"):
        assert PASSWORD not in client.get(path, headers=starter["headers"]).get_data(as_text=True)
    # encrypted at rest
    from models_db import Integration, db
    row = db.session.scalar(db.select(Integration))
    assert PASSWORD not in json.dumps(row.config) and row.config["password"].startswith("gAAAA")


def test_refused_login_is_422_with_the_servers_reason_and_nothing_kept(client, starter, smtp):
    resp = client.post("/api/integrations", headers=starter["headers"], json={
        "type": "email", "config": email_config(smtp, password="wrong-password-0000")})
    error = assert_error(resp, 422, "integration_check_failed")
    assert "535" in error["message"] and "login" in error["message"]
    assert smtp.logins and all(s == (LOGIN, False) for s in smtp.logins)
    assert_error(client.get("/api/integrations/email", headers=starter["headers"]), 404,
                 "integration_not_found")
    from models_db import Integration, db
    assert db.session.scalar(db.select(db.func.count()).select_from(Integration)) == 0


def test_update_keeps_a_masked_or_omitted_secret(client, starter, smtp):
    first = client.post("/api/integrations", headers=starter["headers"],
                        json={"type": "email", "config": email_config(smtp)}).get_json()
    masked = first["config"]
    resp = client.post("/api/integrations", headers=starter["headers"], json={
        "type": "email", "config": dict(masked, to_addresses=["new@shop.example.com"])})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["config"]["to_addresses"] == ["new@shop.example.com"]
    without = {k: v for k, v in masked.items() if k != "password"}
    without["to_addresses"] = ["new@shop.example.com"]
    assert client.post("/api/integrations", headers=starter["headers"], json={
        "type": "email", "config": without}).status_code == 200
    # the stored password is still the real one: the checks logged in with it each time
    assert smtp.logins == [(LOGIN, True)] * 3
    # a new, wrong password is refused and the working config stays
    resp = client.post("/api/integrations", headers=starter["headers"], json={
        "type": "email", "config": dict(masked, password="another-wrong-one")})
    assert_error(resp, 422, "integration_check_failed")
    test = client.post("/api/integrations/email/test", headers=starter["headers"]).get_json()
    assert test["ok"] is True and smtp.logins[-1] == (LOGIN, True)
    listed = client.get("/api/integrations", headers=starter["headers"]).get_json()["items"]
    assert len(listed) == 1 and listed[0]["config"]["to_addresses"] == ["new@shop.example.com"]


def test_other_users_integration_is_404(client, starter, smtp, other_user):
    client.post("/api/integrations", headers=starter["headers"],
                json={"type": "email", "config": email_config(smtp)})
    for method, path in (("get", "/api/integrations/email"), ("delete", "/api/integrations/email"),
                         ("post", "/api/integrations/email/test")):
        assert_error(getattr(client, method)(path, headers=other_user["headers"]), 404,
                     "integration_not_found")
    assert client.get("/api/integrations", headers=other_user["headers"]).get_json()["items"] == []
    assert_error(client.get("/api/integrations/fax", headers=starter["headers"]), 404,
                 "integration_not_found")
    # the owner's integration survived the other user's DELETE
    assert client.get("/api/integrations/email", headers=starter["headers"]).status_code == 200


def test_delete_then_404(client, starter, smtp):
    client.post("/api/integrations", headers=starter["headers"],
                json={"type": "email", "config": email_config(smtp)})
    assert client.delete("/api/integrations/email", headers=starter["headers"]).status_code == 204
    assert_error(client.get("/api/integrations/email", headers=starter["headers"]), 404,
                 "integration_not_found")


def test_plan_count_limit(client, smtp, admin):
    tier = client.post("/api/subscriptions/tiers", headers=admin["headers"], json={
        "name": "One tool", "price": 1, "features": ["ai_replies", "email", "slack"],
        "platforms": ["facebook"], "monthly_ai_replies": 10, "platform_accounts": 1,
        "integrations": 0, "knowledge_documents": 1}).get_json()
    someone = user_on(client, "free")
    client.put(f"/api/subscriptions/user/{someone['user']['id']}", json={"tier_id": tier["id"]},
               headers=admin["headers"])
    resp = client.post("/api/integrations", headers=someone["headers"],
                       json={"type": "email", "config": email_config(smtp)})
    assert "more than 0 integrations" in assert_error(resp, 402, "plan_limit")["message"]


def test_test_endpoint_records_failure_and_publishes(app, client, starter, smtp):
    from utils.realtime import socketio

    client.post("/api/integrations", headers=starter["headers"],
                json={"type": "email", "config": email_config(smtp)})
    sock = socketio.test_client(app, auth={"token": starter["access_token"]})
    ok = client.post("/api/integrations/email/test", headers=starter["headers"]).get_json()
    assert ok["ok"] is True and "logged in" in ok["detail"] and ok["checked_at"]
    smtp.users[LOGIN] = "rotated-by-the-mail-admin"   # the password changed on the server
    failed = client.post("/api/integrations/email/test", headers=starter["headers"]).get_json()
    assert failed["ok"] is False and "535" in failed["detail"]
    stored = client.get("/api/integrations/email", headers=starter["headers"]).get_json()
    assert stored["status"] == "error" and "535" in stored["last_error"]
    events = [e for e in sock.get_received() if e["name"] == "integration_error"]
    assert events and events[0]["args"][0]["type"] == "email"
    sock.disconnect()


def test_secrets_appear_in_no_log(client, starter, smtp, caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # the test server's own wire log
    dana = logging.getLogger("dana")  # Dana's logger does not propagate to the root
    dana.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="dana")
    client.post("/api/integrations", headers=starter["headers"], json={
        "type": "email", "config": email_config(smtp, password="wrong-but-secret-1")})
    client.post("/api/integrations", headers=starter["headers"],
                json={"type": "email", "config": email_config(smtp)})
    smtp.users[LOGIN] = "rotated"
    client.post("/api/integrations/email/test", headers=starter["headers"])
    dana.removeHandler(caplog.handler)
    assert any(r.name.startswith("dana.integrations") for r in caplog.records)
    text = "\n".join(r.getMessage() + repr(getattr(r, "__dict__", {})) for r in caplog.records)
    assert PASSWORD not in text and "wrong-but-secret-1" not in text


def test_openapi_documents_the_endpoints_and_notify(client):
    spec = client.get("/api/openapi.json").get_json()
    for path in ("/api/integrations", "/api/integrations/types",
                 "/api/integrations/{integration_type}",
                 "/api/integrations/{integration_type}/test"):
        assert path in spec["paths"], path
    notify = spec["components"]["schemas"]["NotifyAction"]["properties"]
    assert {"channel", "template", "title", "target"} <= set(notify)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_is_verified_against_the_configured_ca(client, starter, tls, security):
    server = SmtpServer(users={LOGIN: PASSWORD}, tls=tls,
                        implicit_tls=security == "ssl").start()
    try:
        resp = client.post("/api/integrations", headers=starter["headers"], json={
            "type": "email", "config": email_config(server, security=security)})
        assert resp.status_code == 201, resp.get_json()
        assert server.logins == [(LOGIN, True)]
    finally:
        server.stop()


def test_untrusted_certificate_is_refused(app, client, starter, tmp_path):
    from tests.fakes.smtp import make_tls

    other_ca = make_tls(tmp_path / "unknown")  # a certificate the app's CA did not sign
    server = SmtpServer(users={LOGIN: PASSWORD}, tls=other_ca).start()
    try:
        resp = client.post("/api/integrations", headers=starter["headers"], json={
            "type": "email", "config": email_config(server, security="starttls")})
        assert "certificate verify failed" in assert_error(
            resp, 422, "integration_check_failed")["message"]
        assert server.logins == []  # the password was never sent to the unverified server
    finally:
        server.stop()


def test_server_that_drops_the_connection_is_refused(client, starter, hangup):
    resp = client.post("/api/integrations", headers=starter["headers"],
                       json={"type": "email", "config": email_config(hangup)})
    assert "closed the connection" in assert_error(resp, 422, "integration_check_failed")["message"]
    assert client.get("/api/integrations", headers=starter["headers"]).get_json()["items"] == []


def test_relay_without_auth_is_checked_with_noop(client, starter):
    relay = SmtpServer().start()   # an internal relay: no AUTH
    try:
        resp = client.post("/api/integrations", headers=starter["headers"], json={
            "type": "email", "config": email_config(relay, username=None, password=None)})
        assert resp.status_code == 201, resp.get_json()
        assert "password" not in resp.get_json()["config"]
        test = client.post("/api/integrations/email/test", headers=starter["headers"]).get_json()
        assert test["ok"] is True and test["detail"].startswith("connected to 127.0.0.1")
        assert relay.messages == []
    finally:
        relay.stop()
    # once the relay is gone, the test says so and the status follows
    test = client.post("/api/integrations/email/test", headers=starter["headers"]).get_json()
    assert test["ok"] is False and "cannot reach the SMTP server" in test["detail"]
    assert client.get("/api/integrations/email",
                      headers=starter["headers"]).get_json()["status"] == "error"


def test_a_stored_config_gone_invalid_never_echoes_the_secret(client, starter, smtp):
    from models_db import Integration, db

    client.post("/api/integrations", headers=starter["headers"],
                json={"type": "email", "config": email_config(smtp)})
    row = db.session.scalar(db.select(Integration))
    # rules changed between versions: a whole-config error (pydantic would echo every value)
    row.config = {k: v for k, v in row.config.items() if k != "username"}
    db.session.commit()
    test = client.post("/api/integrations/email/test", headers=starter["headers"]).get_json()
    assert test["ok"] is False and "no longer valid" in test["detail"]
    stored = client.get("/api/integrations/email",
                        headers=starter["headers"]).get_data(as_text=True)
    assert PASSWORD not in test["detail"] and PASSWORD not in stored


@pytest.mark.parametrize(
    "settings_overrides", [{"SMTP_ALLOWED_HOSTS": "smtp.example.com"}], indirect=True
)
def test_hosts_outside_the_allow_list_are_never_contacted(client, starter, smtp):
    resp = client.post(
        "/api/integrations",
        headers=starter["headers"],
        json={"type": "email", "config": email_config(smtp)},
    )
    assert "not allowed" in assert_error(resp, 422, "integration_check_failed")["message"]
    assert smtp.logins == [] and smtp.messages == []
