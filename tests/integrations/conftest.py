"""Fixtures for the integrations tests: real SMTP servers (aiosmtpd), a CA for their TLS,
plus the channel fixtures (fake Graph, a connected business) for end-to-end runs."""
from __future__ import annotations

import pytest

from tests.channels.conftest import business, fake_graph  # noqa: F401  (fixtures)
from tests.conftest import auth_header, register
from tests.fakes.smtp import HangUpServer, SmtpServer, make_tls

LOGIN, PASSWORD = "agent@shop.example.com", "smtp-Pa55word-7781"


@pytest.fixture(scope="session")
def tls(tmp_path_factory):
    """A throw-away CA and a 127.0.0.1 server certificate (trusted via SMTP_CA_FILE)."""
    return make_tls(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def settings_overrides(fake_graph, tls, request):
    """Graph at the fake, the test CA trusted for SMTP, quick integration retries."""
    base = {"GRAPH_API_URL": fake_graph.base_url, "GRAPH_RETRY_WAIT_SECONDS": 0.001,
            "GRAPH_RETRY_ATTEMPTS": 3, "GRAPH_TIMEOUT_SECONDS": 3.0,
            "SMTP_CA_FILE": tls.ca_file, "INTEGRATION_RETRY_ATTEMPTS": 3,
            "INTEGRATION_RETRY_WAIT_SECONDS": 0.001, "INTEGRATION_RETRY_MAX_WAIT_SECONDS": 0.01}
    base.update(getattr(request, "param", {}))
    return base


@pytest.fixture
def smtp():
    """A real SMTP server requiring AUTH (plain SMTP on loopback)."""
    server = SmtpServer(users={LOGIN: PASSWORD}).start()
    yield server
    server.stop()


@pytest.fixture
def hangup():
    server = HangUpServer().start()
    yield server
    server.stop()


def email_config(server, **changes) -> dict:
    """An e-mail integration's config pointing at a test server."""
    config = {"smtp_host": server.host, "smtp_port": server.port, "security": "none",
              "username": LOGIN, "password": PASSWORD, "from_address": "dana@shop.example.com",
              "to_addresses": ["team@shop.example.com", "owner@shop.example.com"]}
    config.update(changes)
    return {k: v for k, v in config.items() if v is not None}


def user_on(client, plan: str) -> dict:
    """A registered user on a plan (set through the subscriptions service, as an admin would)."""
    from services.subscriptions import subscribe

    body = register(client)
    body["headers"] = auth_header(body)
    if plan != "free":
        subscribe(body["user"]["id"], plan, None, actor_id=body["user"]["id"])
    return body


@pytest.fixture
def starter(client):
    return user_on(client, "starter")
