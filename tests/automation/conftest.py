"""Fixtures for connector tests: the loopback fake Graph API and a GraphConfig pointing at it."""
from __future__ import annotations

import pytest

from automation.platforms.base import GraphConfig
from tests.fakes.graph import FakeGraph


@pytest.fixture
def fake_graph():
    """A running FakeGraph on 127.0.0.1, stopped after the test."""
    server = FakeGraph().start()
    yield server
    server.stop()


@pytest.fixture
def graph(fake_graph) -> GraphConfig:
    """Tiny waits so retry tests are fast; 3 attempts so "bounded" is observable."""
    return GraphConfig(base_url=fake_graph.base_url, version="v21.0", timeout=2.0,
                       retry_attempts=3, retry_wait_initial=0.001, retry_wait_max=0.005)
