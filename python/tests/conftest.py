"""Fixtures: the component comes from the package (copied in by tests/peers/python.rs); the
hostile guest of tests/hostile, built beside it, from JIRA_SYNC_HOSTILE_COMPONENT."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import pytest

from jira_sync import Limits, Plugin
from jira_sync.replay import World, authorization, plugin_for

NOW = 1_700_000_000
CLIENT_KEY = "jira:1c4"


def scenario(**overrides: Any) -> dict[str, Any]:
    """A scenario (README, "Scenarios and traces") with installation jira:1c4 and no steps."""
    base: dict[str, Any] = {
        "now": NOW,
        "installation": {"client_key": CLIENT_KEY, "shared_secret": "s3cret",
                         "base_url": "https://acme.atlassian.net", "app_key": "acme-platform.jira",
                         "sync_status_forward": {"10000": {"resolved": "10101", "unresolved": "3"}}},
        "other_installations": [{"client_key": "jira:other", "shared_secret": "other-secret",
                                 "base_url": "https://other.example", "app_key": "acme-platform.jira"}],
        "links": {"APP-123": [42]},
        "users": {"ada@example.com": 7},
        "steps": [],
    }
    base.update(overrides)
    return base


def signed(world: World, scenario_: dict[str, Any], path: str = "/extensions/jira/issue-updated/") -> list[tuple[str, str]]:
    """Headers of a delivery signed like Jira for the scenario's installation."""
    hook = {"sign": True, "method": "POST", "path": path, "query": ""}
    return [("Authorization", authorization(scenario_, world.now, hook))]


@pytest.fixture
def hostile_path() -> Path:
    path = os.environ.get("JIRA_SYNC_HOSTILE_COMPONENT")
    if not path:
        pytest.fail("JIRA_SYNC_HOSTILE_COMPONENT is not set: run the suite through "
                    "`cargo test -p jira-sync-tests --test peers python` (scripts/test.sh does)")
    return Path(path)


def hostile(world: World, path: Path, limits: Optional[Limits] = None) -> Plugin:
    plugin = plugin_for(world, str(path))
    if limits is not None:
        plugin.limits = limits
    return plugin
