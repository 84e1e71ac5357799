"""The Rust host's sandbox rules, ported: egress (imports/egress.rs) and binding (binding.rs)."""

import base64
import json

from jira_sync import WebhookRequest
from jira_sync.sandbox import Egress, webhook_tenant


def test_only_the_installation_origin_passes():
    egress = Egress()
    assert egress.check("https://acme.atlassian.net/rest").kind == "denied"
    egress.allow("https://acme.atlassian.net/jira")
    assert egress.check("https://acme.atlassian.net/rest/api/2/status") is None
    assert egress.check("https://acme.atlassian.net:443/x") is None
    assert egress.check("https://ACME.atlassian.net/x") is None
    for denied in [
        "http://acme.atlassian.net/x",
        "https://acme.atlassian.net:8443/x",
        "https://evil.example/x",
        "https://acme.atlassian.net.evil.example/x",
        "file:///etc/passwd",
    ]:
        refused = egress.check(denied)
        assert refused is not None and refused.kind == "denied", denied
    assert str(egress.check("https://evil.example/x")) == (
        "denied: https://evil.example is not the site of an installation of this call"
    )
    assert egress.check("not a url").kind == "invalid-request"
    assert egress.check("https://acme.atlassian.net:99999/x").kind == "invalid-request"


def test_a_base_url_that_is_not_http_allows_nothing():
    egress = Egress()
    egress.allow("ftp://acme.atlassian.net")
    assert str(egress.check("ftp://acme.atlassian.net/x")) == "denied: scheme `ftp` is not allowed"


def token(iss: str) -> str:
    part = lambda value: base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{part({'alg': 'HS256'})}.{part({'iss': iss})}.c2ln"


def test_a_webhook_is_bound_to_the_iss_of_its_token_or_to_nothing():
    def tenant(authorization):
        headers = [] if authorization is None else [("authorization", authorization)]
        return webhook_tenant(WebhookRequest(b"", headers))

    assert tenant(f"JWT {token('jira:1c4')}") == "jira:1c4"
    assert tenant(f"  JWT {token('jira:1c4')} ") == "jira:1c4", "read as the guest reads it"
    assert tenant(None) is None
    assert tenant("JWT not-a-token") is None
    assert tenant("JWT") is None


def test_an_admin_or_oauth_webhook_is_bound_to_the_installation_its_path_names():
    headers = [("Authorization", f"JWT {token('jira:1c4')}")]
    assert webhook_tenant(WebhookRequest(b"", headers, path="/webhooks/admin/site%2D1")) == "site-1"
    assert webhook_tenant(WebhookRequest(b"", headers, path="/webhooks/oauth/cloud-1/")) == "cloud-1"
    assert webhook_tenant(WebhookRequest(b"", headers, path="/elsewhere")) is None
    assert webhook_tenant(WebhookRequest(b"", headers, path="/webhooks/admin/a%2Fb")) is None
