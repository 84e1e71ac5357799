"""A Python platform that receives Jira's webhooks and resolves or unresolves its groups.

    python python/examples/platform.py   # Jira's webhook: http://HOST:8080/extensions/jira/issue-updated/
"""

from http.server import BaseHTTPRequestHandler, HTTPServer

from jira_sync import AssignOutcome, Credentials, Installation, Plugin, StatusChange, UnassignOutcome, WebhookRequest
from jira_sync.defaults import MemoryCache, MemoryDeliveries, StdLog, SystemClock, UrllibHttp

SITE = Installation("jira:1c4", Credentials.connect("s3cret"), "https://acme.atlassian.net", "acme-platform.jira")
GROUPS = {"APP-123": "unresolved"}  # the Jira issue a group is linked to -> the group's status


class Groups:
    """The platform's own records: its installation, and its groups by linked Jira issue."""

    def get_by_client_key(self, key): return SITE if key == SITE.client_key else None
    def outbound_authorization(self, key): return None  # Connect: the component signs its requests
    def resolve(self, key, issue, strategy): return self.change(issue, "resolved")
    def unresolve(self, key, issue): return self.change(issue, "unresolved")
    def assign(self, key, issue, email): return AssignOutcome("no-user-with-email")  # no users here
    def unassign(self, key, issue): return UnassignOutcome("no-linked-groups")
    def remove(self, key, issue): return int(GROUPS.pop(issue, None) is not None)

    def rename(self, key, old, new):
        if old not in GROUPS:
            return 0
        GROUPS[new] = GROUPS.pop(old)
        return 1

    def change(self, issue, status):
        if issue not in GROUPS:
            return StatusChange("no-linked-groups")
        changed, GROUPS[issue] = GROUPS[issue] != status, status
        return StatusChange("changed", int(changed))


def plugin(http=None) -> Plugin:
    groups = Groups()
    return Plugin(http=http or UrllibHttp(), cache=MemoryCache(), installations=groups, group_assignment=groups,
                  group_status=groups, links=groups, deliveries=MemoryDeliveries(), clock=SystemClock(), log=StdLog())


class Webhooks(BaseHTTPRequestHandler):
    def do_POST(self):
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        answer = PLUGIN.handle(WebhookRequest(body, list(self.headers.items()), "POST", path, query))
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)


if __name__ == "__main__":
    PLUGIN = plugin()
    HTTPServer(("127.0.0.1", 8080), Webhooks).serve_forever()
