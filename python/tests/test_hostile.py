"""The sandbox against the hostile guest (tests/hostile): every misdeed ends as a Python
exception naming its reason or is refused, the platform never sees another installation, and
the next call runs fresh."""

from __future__ import annotations

import pytest

from jira_sync import GuestTrap, LimitExceeded, Limits, WebhookRequest
from jira_sync.replay import World

from conftest import CLIENT_KEY, hostile, scenario, signed


def call(plugin, world, s, command: str):
    return plugin.handle(WebhookRequest(command.encode(), signed(world, s)))


@pytest.mark.parametrize(
    ("command", "limit"),
    [("loop", "cpu"), ("sleep", "deadline"), ("http-flood", "http-calls"), ("log-flood", "log"),
     ("huge-response", "webhook-response")],
)
def test_a_runaway_guest_breaks_a_limit_and_the_next_call_runs(hostile_path, command, limit):
    s = scenario()
    world = World(s)
    plugin = hostile(world, hostile_path)
    with pytest.raises(LimitExceeded) as raised:
        call(plugin, world, s, command)
    assert raised.value.limit == limit
    assert str(raised.value) == f"limit: {limit}"
    assert call(plugin, world, s, "assign").status == 200


def test_moving_too_many_bytes_breaks_the_total(hostile_path):
    s = scenario(http=[{"method": "GET", "path": "/rest/api/2/status", "repeat": True, "body": "x" * 1000}])
    world = World(s)
    plugin = hostile(world, hostile_path, Limits(http_calls=100, total_bytes=10_000))
    with pytest.raises(LimitExceeded, match="limit: total-bytes"):
        call(plugin, world, s, "http-flood")
    assert len(world.record["http"]) == 11, "10,000 bytes are within the total, the eleventh response is past it"


def test_hoarding_memory_past_the_cap_traps_with_the_reason(hostile_path):
    s = scenario()
    world = World(s)
    plugin = hostile(world, hostile_path, Limits(memory_bytes=4 << 20))
    with pytest.raises(GuestTrap, match="unreachable") as raised:
        call(plugin, world, s, "alloc")
    assert "wasm backtrace" in raised.value.detail
    assert call(plugin, world, s, "assign").status == 200


def test_a_panic_is_a_trap_not_a_crash(hostile_path):
    s = scenario()
    world = World(s)
    with pytest.raises(GuestTrap, match="wasm trap"):
        call(hostile(world, hostile_path), world, s, "panic")


def test_the_guest_reaches_only_its_own_site(hostile_path):
    s = scenario()
    world = World(s)
    plugin = hostile(world, hostile_path)
    answer = call(plugin, world, s, "http-foreign")
    assert answer.body.startswith(b"refused: Error::Denied(")
    assert world.record["http"][0]["error"] == (
        "denied: https://evil.example is not the site of an installation of this call"
    )
    assert world.unmatched == [], "the platform's Http never saw it"


@pytest.mark.parametrize("command", ["escape-secret", "escape-groups", "escape-links", "escape-deliveries"])
def test_another_installations_data_is_out_of_reach(hostile_path, command):
    s = scenario(links={"APP-123": [42], "OTHER-1": [9]})
    world = World(s)
    seen = []
    for name in ("assign", "resolve", "remove", "rename", "claim", "mark_handled", "set_last_applied", "last_applied"):
        setattr(world, name, lambda *args, _name=name: seen.append((_name, args)))
    answer = call(hostile(world, hostile_path), world, s, command)
    assert answer.status == 200
    assert seen == [], "the platform was never asked about jira:other"
    assert world.record["refusals"], "the attempts were recorded"
    assert all("installation `jira:other` is not this call's (jira:1c4)" in r for r in world.record["refusals"])


def test_cache_entries_live_in_the_calls_installation_namespace(hostile_path):
    s = scenario()
    world = World(s)
    assert call(hostile(world, hostile_path), world, s, "cache-set").body == b"set"
    assert list(world.entries) == [f"{len(CLIENT_KEY)}:{CLIENT_KEY}:secret-key"]
