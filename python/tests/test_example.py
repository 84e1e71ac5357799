"""python/examples/platform.py does what the README says: a signed status change from Jira
resolves the linked group."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

from jira_sync import HttpResponse, WebhookRequest
from jira_sync.replay import authorization


def load_example():
    path = Path(__file__).parent.parent / "examples" / "platform.py"
    spec = importlib.util.spec_from_file_location("platform_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class StatusList:
    """Jira's status list, the one request a status change needs."""

    def __init__(self):
        self.urls = []

    def send(self, request):
        self.urls.append(request.url)
        body = [{"id": "3", "statusCategory": {"key": "indeterminate"}},
                {"id": "10101", "statusCategory": {"key": "done"}}]
        return HttpResponse(200, [], json.dumps(body).encode())


def test_a_status_change_from_jira_resolves_the_linked_group():
    example = load_example()
    jira = StatusList()
    plugin = example.plugin(http=jira)
    scenario = {"installation": {"client_key": "jira:1c4", "shared_secret": "s3cret"}}
    token = authorization(scenario, int(time.time()),
                          {"sign": True, "method": "POST", "path": "/extensions/jira/issue-updated/", "query": ""})
    body = {"changelog": {"items": [{"field": "status", "from": "3", "to": "10101"}]},
            "issue": {"key": "APP-123", "fields": {}}}
    answer = plugin.handle(WebhookRequest(json.dumps(body).encode(), [("Authorization", token)]))
    assert answer.status == 200, answer.body
    assert example.GROUPS == {"APP-123": "resolved"}
    assert jira.urls == ["https://acme.atlassian.net/rest/api/2/status"]
