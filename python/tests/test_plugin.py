"""The package's Plugin driving the shipped component: typed results, the imports it calls,
the version check, and what a failed call leaves behind."""

from __future__ import annotations

import contextlib
import json

import pytest

import jira_sync.plugin
from jira_sync import (
    AssigneeRequest,
    CallError,
    LimitExceeded,
    Limits,
    Plugin,
    StatusRequest,
    WebhookRequest,
    WebhookResponse,
    bundled_component,
)
from jira_sync.replay import ScenarioClock, World, plugin_for

from conftest import CLIENT_KEY, scenario, signed

ASSIGN_GRACE = {
    "changelog": {"items": [{"field": "assignee"}]},
    "issue": {"key": "APP-123", "fields": {"assignee": {"emailAddress": "Ada@Example.com"}}},
}


def test_the_component_ships_inside_the_package():
    assert bundled_component().is_file(), "tests/peers/python.rs copies it in before pytest runs"


def test_a_webhook_without_a_token_is_answered_409_and_logged():
    world = World(scenario())
    answer = plugin_for(world).handle(WebhookRequest(b"{}"))
    assert isinstance(answer, WebhookResponse)
    assert answer.status == 409
    assert json.loads(answer.body) == {"error": "missing Authorization header"}
    assert [line["event"] for line in world.record["logs"]] == ["jira.webhook.auth-failed"]


def test_a_signed_webhook_assigns_the_linked_groups_through_the_platform():
    s = scenario(groups={"42": {}})
    world = World(s)
    answer = plugin_for(world).handle(WebhookRequest(json.dumps(ASSIGN_GRACE).encode(), signed(world, s)))
    assert answer.status == 200, answer.body
    assert world.groups[42]["assignee"] == 7
    assert world.record["assignments"] == [
        {"issue_key": "APP-123", "email": "Ada@Example.com", "result": "assigned", "groups": [42]}
    ]


def test_outbound_calls_return_typed_outcomes():
    world = World(scenario())
    plugin = plugin_for(world)
    unassigned = plugin.sync_assignee(AssigneeRequest(CLIENT_KEY, "APP-123", unassign=True))
    assert unassigned.kind == "failed"
    assert unassigned.failure is not None and unassigned.failure.kind == "http"
    assert unassigned.failure.error is not None and unassigned.failure.error.kind == "connection"
    assert world.unmatched == ["PUT https://acme.atlassian.net/rest/api/2/issue/APP-123/assignee"]

    loop = plugin.sync_status(StatusRequest(CLIENT_KEY, "APP-123", True, source="this-installation"))
    assert loop.kind == "skipped-loop"
    unknown = plugin.sync_status(StatusRequest("jira:nobody", "APP-123", True))
    assert unknown.kind == "failed" and unknown.failure is not None
    assert unknown.failure.kind == "unknown-installation"


def test_a_site_that_is_not_http_is_denied_by_the_sandbox():
    s = scenario()
    s["installation"]["base_url"] = "ftp://acme.atlassian.net"
    world = World(s)
    outcome = plugin_for(world).sync_status(StatusRequest(CLIENT_KEY, "APP-123", True))
    assert outcome.kind == "failed" and outcome.failure is not None and outcome.failure.error is not None
    assert str(outcome.failure.error) == "denied: scheme `ftp` is not allowed"
    assert world.unmatched == [], "the platform's Http never saw the request"


def test_a_component_of_another_wit_version_is_refused(monkeypatch):
    monkeypatch.setattr(jira_sync.plugin, "WIT_VERSION", "9.9.9")
    with pytest.raises(CallError, match=r"the component speaks jira-sync:plugin@0\.\d+\.\d+; this host speaks 9\.9\.9"):
        plugin_for(World(scenario()))


def test_a_missing_component_says_where_it_was_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match="no component at .*nothing.wasm"):
        plugin_for(World(scenario()), str(tmp_path / "nothing.wasm"))


def test_a_call_that_breaks_a_limit_raises_through_the_transaction_and_releases_its_claim():
    s = scenario(installation={**scenario()["installation"], "use_email_scope": True})
    world = World(s)
    released, outcomes = [], []
    world.release = lambda client_key, delivery_id: released.append((client_key, delivery_id))

    @contextlib.contextmanager
    def transaction():
        try:
            yield
            outcomes.append("commit")
        except BaseException as e:
            outcomes.append(f"rollback: {e}")
            raise

    plugin = Plugin(http=world, cache=world, installations=world, group_assignment=world,
                    group_status=world, links=world, deliveries=world, clock=ScenarioClock(world), log=world,
                    limits=Limits(http_calls=0), transaction=transaction)
    hidden = {"changelog": {"items": [{"field": "assignee", "to": "5f1a"}]},
              "issue": {"key": "APP-123", "fields": {"assignee": {"accountId": "5f1a"}}}}
    headers = signed(world, s) + [("X-Atlassian-Webhook-Identifier", "d-1")]
    with pytest.raises(LimitExceeded, match="limit: http-calls") as raised:
        plugin.handle(WebhookRequest(json.dumps(hidden).encode(), headers))
    assert raised.value.limit == "http-calls"
    assert outcomes == ["rollback: limit: http-calls"]
    assert released == [(CLIENT_KEY, "d-1")]

    # The next call is fresh and commits.
    assert plugin.handle(WebhookRequest(b"{}")).status == 409
    assert outcomes[-1] == "commit"

