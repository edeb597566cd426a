"""HTTP behaviour shared by every endpoint: the error shape, request ids, headers, CORS,
/health, the OpenAPI document and the offline docs page."""
from __future__ import annotations

import json
import re
from urllib.parse import urlparse

import pytest

from tests.helpers import assert_error

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


# --- the error shape --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/nope", "/api/auth/nope", "/api/users/me/extra",
                                  "/webhooks/nope"])
def test_unknown_api_path_is_json_404(client, path):
    resp = client.get(path, headers={"Accept": "text/html"})
    assert_error(resp, 404, "not_found")


@pytest.mark.parametrize("method, path, allowed", [
    ("get", "/api/auth/login", "POST"),
    ("delete", "/api/auth/register", "POST"),
    ("put", "/api/users/me", "PATCH"),
    ("post", "/health", "GET"),
])
def test_wrong_method_is_405(client, method, path, allowed):
    resp = getattr(client, method)(path)
    assert_error(resp, 405, "method_not_allowed")
    assert allowed in resp.headers["Allow"]


def test_body_over_5_mb_is_413(client, user):
    big = b'{"email": "a@example.com", "password": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    resp = client.post("/api/auth/register", data=big, content_type="application/json")
    assert_error(resp, 413, "payload_too_large")
    resp = client.patch("/api/users/me", data=big, content_type="application/json",
                        headers=user["headers"])
    assert_error(resp, 413, "payload_too_large")
    # Just under the limit is parsed (and refused for its content, not its size).
    ok_size = b'{"name": "' + b"x" * (5 * 1024 * 1024 - 100) + b'"}'
    resp = client.patch("/api/users/me", data=ok_size, content_type="application/json",
                        headers=user["headers"])
    assert_error(resp, 400, "validation_error")


@pytest.mark.parametrize("path", ["/api/auth/login", "/api/auth/register", "/api/auth/refresh"])
def test_malformed_json_is_400_invalid_json(client, path):
    resp = client.post(path, data='{"email": "a@example.com", ', content_type="application/json")
    assert_error(resp, 400, "invalid_json")


def test_malformed_json_on_authenticated_endpoint(client, user):
    resp = client.patch("/api/users/me", data="{nope", content_type="application/json",
                        headers=user["headers"])
    assert_error(resp, 400, "invalid_json")


@pytest.mark.parametrize("body", ["[1, 2]", '"a string"', "42"])
def test_json_that_is_not_an_object_is_a_validation_error(client, body):
    resp = client.post("/api/auth/login", data=body, content_type="application/json")
    assert_error(resp, 400, "validation_error")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_415(client, content_type):
    resp = client.post("/api/auth/login", data='{"email": "a@example.com", "password": "x"}',
                       content_type=content_type)
    assert_error(resp, 415, "unsupported_media_type")


@pytest.fixture
def boom(app):
    """A throwaway route that fails unexpectedly (added before the first request)."""

    def explode():
        raise RuntimeError("secret internal detail 4242")

    app.add_url_rule("/api/_boom", "boom", explode)
    return "/api/_boom"


def test_unexpected_exception_is_500_without_traceback(boom, client):
    resp = client.get(boom, headers={"X-Request-ID": "trace-me-123"})
    assert_error(resp, 500, "internal_error")
    text = resp.get_data(as_text=True)
    for leak in ("Traceback", "RuntimeError", "secret internal detail", "explode", ".py"):
        assert leak not in text
    assert resp.headers["X-Request-ID"] == "trace-me-123"
    # The app keeps serving afterwards.
    assert client.get("/health").status_code == 200


def test_api_error_without_accept_json_is_still_json(client):
    resp = client.get("/api/auth/me", headers={"Accept": "text/html"})
    assert_error(resp, 401, "unauthorized")


# --- request ids and headers ------------------------------------------------------------


@pytest.mark.parametrize("method, path", [
    ("get", "/health"), ("get", "/api/nope"), ("get", "/api/auth/me"),
    ("get", "/api/auth/login"), ("post", "/api/auth/login"), ("get", "/api/openapi.json"),
])
def test_every_response_has_a_request_id_and_security_headers(client, method, path):
    resp = getattr(client, method)(path)
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-ID"])
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers[name] == value
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


def test_request_ids_are_unique(client):
    ids = {client.get("/health").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


def test_safe_incoming_request_id_is_echoed(client):
    resp = client.get("/health", headers={"X-Request-ID": "abc-DEF_123.4"})
    assert resp.headers["X-Request-ID"] == "abc-DEF_123.4"
    resp = client.get("/api/nope", headers={"X-Request-ID": "req-404"})
    assert resp.headers["X-Request-ID"] == "req-404"


@pytest.mark.parametrize("incoming", ["has space", "x" * 65, "<script>", "a;b=c"])
def test_unsafe_incoming_request_id_is_replaced(client, incoming):
    resp = client.get("/health", headers={"X-Request-ID": incoming})
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-ID"])


def test_request_id_is_recorded_in_the_audit_log(client):
    client.post("/api/auth/login", json={"email": "x@example.com", "password": "nope"},
                headers={"X-Request-ID": "audit-trace-1"})
    from models_db import AuditLog, db

    row = db.session.scalar(db.select(AuditLog).where(AuditLog.event == "login_failed"))
    assert row.request_id == "audit-trace-1"


# --- CORS -------------------------------------------------------------------------------

ORIGIN = "https://app.example.com"
CORS_ON = pytest.mark.parametrize("settings_overrides", [{"CORS_ORIGINS": [ORIGIN]}],
                                  indirect=True)


def preflight(client, origin, path="/api/auth/login", method="POST"):
    return client.options(path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "Content-Type, Authorization"})


@CORS_ON
def test_cors_preflight_from_allowed_origin(client):
    resp = preflight(client, ORIGIN)
    assert resp.status_code in (200, 204)
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    allowed = resp.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed


@CORS_ON
def test_cors_actual_request_from_allowed_origin(client, user):
    resp = client.get("/api/auth/me", headers={"Origin": ORIGIN, **user["headers"]})
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert "X-Request-ID" in resp.headers["Access-Control-Expose-Headers"]


@CORS_ON
@pytest.mark.parametrize("origin", ["https://evil.example.com", "http://app.example.com",
                                    "https://app.example.com.evil.net"])
def test_cors_preflight_from_other_origin_is_not_allowed(client, origin):
    resp = preflight(client, origin)
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "Access-Control-Allow-Credentials" not in resp.headers
    resp = client.get("/health", headers={"Origin": origin})
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_no_cors_by_default(client):
    resp = preflight(client, ORIGIN)
    assert "Access-Control-Allow-Origin" not in resp.headers


# --- /health, OpenAPI, docs -------------------------------------------------------------


def test_health(client):
    resp = client.get("/health")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert isinstance(body["version"], str) and body["version"]


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = spec["components"]["schemas"][name]
    return schema


def test_openapi_document(client):
    resp = client.get("/api/openapi.json")
    assert resp.status_code == 200
    spec = resp.get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"]

    login = spec["paths"]["/api/auth/login"]["post"]
    body = _resolve(spec, login["requestBody"]["content"]["application/json"]["schema"])
    assert {"email", "password"} <= set(body["properties"])
    assert set(body["required"]) == {"email", "password"}
    assert body["properties"]["email"]["format"] == "email"
    assert body.get("additionalProperties") is False  # unknown fields are refused
    assert {"200", "400", "401", "429"} <= set(login["responses"])
    ok = _resolve(spec, login["responses"]["200"]["content"]["application/json"]["schema"])
    assert {"access_token", "refresh_token", "token_type", "expires_in", "user"} <= set(
        ok["properties"])

    register_op = spec["paths"]["/api/auth/register"]["post"]
    reg = _resolve(spec, register_op["requestBody"]["content"]["application/json"]["schema"])
    assert reg["properties"]["password"]["minLength"] == 8
    assert "201" in register_op["responses"]

    # Protected operations declare bearer auth; path parameters use OpenAPI syntax.
    assert spec["paths"]["/api/auth/me"]["get"]["security"] == [{"bearerAuth": []}]
    user_op = spec["paths"]["/api/users/{user_id}"]["patch"]
    assert user_op["parameters"][0]["name"] == "user_id"
    assert "403" in user_op["responses"]
    list_params = {p["name"] for p in spec["paths"]["/api/users"]["get"]["parameters"]}
    assert {"limit", "cursor", "q"} <= list_params
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_docs_page_uses_only_local_assets(client):
    resp = client.get("/api/docs")
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(urls) >= 3, html
    # No other host anywhere in the page (the service must work offline).
    assert not re.search(r"(https?:)?//[A-Za-z0-9]", html), html
    for url in urls:
        parsed = urlparse(url)
        assert not parsed.scheme and not parsed.netloc, url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.get_data()) > 0
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts and all("src=" in s for s in scripts), "inline scripts are blocked by the CSP"
    init = [u for u in urls if u.endswith(".js") and "dana" in u]
    assert init
    init_js = client.get(init[0]).get_data(as_text=True)
    assert '"/api/openapi.json"' in init_js
    # Swagger UI's default online validator badge would be fetched from another host.
    assert re.search(r"validatorUrl:\s*null", init_js)
    assert not re.search(r"(https?:)?//[A-Za-z0-9]", init_js)


def test_docs_viewer_renders_openapi_31_without_a_downgrade(client):
    """The spec is OpenAPI 3.1 (JSON Schema 2020-12 nullables, no 3.0 `nullable`), and the
    vendored Swagger UI is a 5.x release, the first to render 3.1."""
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    assert "nullable" not in json.dumps(spec)
    task = spec["components"]["schemas"]["TaskOut"]["properties"]["assignee_id"]
    assert {"type": "null"} in task["anyOf"]
    bundle = client.get("/api/docs/assets/swagger-ui-bundle.js").get_data(as_text=True)
    versions = {tuple(map(int, v.split("."))) for v in re.findall(r'"(\d+\.\d+\.\d+)"', bundle)}
    assert max(versions) >= (5, 0, 0)
    assert "isOAS31" in bundle  # Swagger UI's OpenAPI 3.1 support


def test_missing_docs_asset_is_404(client):
    assert_error(client.get("/api/docs/assets/nope.js"), 404, "not_found")



@pytest.mark.parametrize("settings_overrides", [{"TRUSTED_PROXY_HOPS": 1,
                                                 "RATE_LIMIT_AUTH": "2 per minute"}], indirect=True)
def test_behind_a_proxy_rate_limits_count_real_client_addresses(client):
    """With one trusted proxy hop, each client (X-Forwarded-For) has its own login budget."""
    def login(ip, email):
        return client.post("/api/auth/login", json={"email": email, "password": "wrong-password"},
                           headers={"X-Forwarded-For": ip},
                           environ_base={"REMOTE_ADDR": "10.9.9.9"})
    codes = [login("203.0.113.1", f"a{i}@example.com").status_code for i in range(3)]
    assert codes == [401, 401, 429]
    assert login("203.0.113.2", "b@example.com").status_code == 401  # another client, same proxy


def test_openapi_documents_the_multipart_import(client):
    body = client.get("/api/openapi.json").get_json()["paths"]["/api/knowledge/import"]["post"][
        "requestBody"
    ]
    schema = body["content"]["multipart/form-data"]["schema"]
    assert {k: schema["properties"]["file"][k] for k in ("type", "format")} == {
        "type": "string",
        "format": "binary",
    }
    assert schema["required"] == ["file"]
    assert ".csv" in schema["properties"]["file"]["description"]
    assert "comma-separated" in schema["properties"]["tags"]["description"]


def test_openapi_documents_every_workflow_action_and_its_parameters(client):
    """Each action of the workflow language says what it does and what each parameter is."""
    from automation.core.actions import ACTIONS

    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    actions = {
        s["properties"]["type"]["const"]: s
        for s in schemas.values()
        if s.get("title", "").endswith("Action")
    }
    assert set(actions) == set(ACTIONS)
    for name, schema in actions.items():
        assert schema.get("description"), name
        for param, prop in schema["properties"].items():
            if param != "type":
                assert prop.get("description") or "$ref" in str(prop), (name, param)


def test_readme_documents_every_workflow_action_parameter_and_the_import_fields():
    """The newcomer's guide names each action with each of its parameters."""
    from pathlib import Path

    from automation.core import definitions as d
    from automation.core.actions import ACTIONS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = {
        line.split("|")[1].strip().strip("`"): line
        for line in readme.splitlines()
        if line.startswith("| `")
    }
    models = {
        m.model_fields["type"].annotation.__args__[0]: m
        for m in vars(d).values()
        if isinstance(m, type) and m.__name__.endswith("Action")
    }
    assert set(models) == set(ACTIONS)
    for name, model in models.items():
        assert name in rows, name
        for param in model.model_fields:
            if param != "type":
                assert f"`{param}`" in rows[name], (name, param)
    assert "multipart/form-data: `file`" in readme and "`tags`" in readme
