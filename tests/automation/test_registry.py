"""The explicit platform registry."""
from __future__ import annotations

import pytest

from automation.platforms.base import GraphConfig, PlatformConnector
from automation.registry import PLATFORMS, get_connector


def test_platforms_map_names_to_connector_classes():
    assert set(PLATFORMS) == {"facebook", "instagram", "whatsapp"}
    for name, cls in PLATFORMS.items():
        assert issubclass(cls, PlatformConnector) and cls.platform == name


def test_get_connector_builds_an_instance_with_the_graph_config():
    graph = GraphConfig("http://127.0.0.1:9", "v21.0")
    connector = get_connector("whatsapp", graph)
    assert connector.platform == "whatsapp" and connector.graph is graph
    assert get_connector("whatsapp", graph) is not connector


def test_unknown_platform_is_a_key_error_naming_the_known_ones():
    with pytest.raises(KeyError, match="facebook, instagram, whatsapp"):
        get_connector("telegram", GraphConfig("http://127.0.0.1:9", "v21.0"))
