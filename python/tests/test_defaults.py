"""The ready-made imports: urllib HTTP against a loopback server, the cache's expiry, the
delivery register's claims."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from jira_sync import HttpError, HttpRequest, HttpResponse
from jira_sync.defaults import MemoryCache, MemoryDeliveries, UrllibHttp


class Jira(BaseHTTPRequestHandler):
    def do_GET(self):
        status, headers, body = {
            "/ok": (200, [("X-Seen", self.headers.get("Authorization", ""))], b'{"ok":true}'),
            "/boom": (503, [("Retry-After", "2")], b"down"),
            "/moved": (302, [("Location", "https://evil.example/")], b""),
            "/big": (200, [], b"x" * 2048),
        }[self.path]
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def jira():
    server = HTTPServer(("127.0.0.1", 0), Jira)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def get(url: str, headers=()) -> HttpRequest:
    return HttpRequest("GET", url, list(headers), None)


def test_urllib_http_answers_every_status_and_follows_no_redirect(jira):
    http = UrllibHttp(max_body_bytes=1024)
    ok = http.send(get(f"{jira}/ok", [("Authorization", "JWT t")]))
    assert isinstance(ok, HttpResponse) and ok.status == 200 and ok.body == b'{"ok":true}'
    assert ("X-Seen", "JWT t") in ok.headers
    boom = http.send(get(f"{jira}/boom"))
    assert isinstance(boom, HttpResponse) and (boom.status, boom.body) == (503, b"down")
    assert ("Retry-After", "2") in boom.headers
    moved = http.send(get(f"{jira}/moved"))
    assert isinstance(moved, HttpResponse) and moved.status == 302, "the redirect goes back to the guest"
    assert http.send(get(f"{jira}/big")) == HttpError("response-too-large", limit=1024)


def test_urllib_http_reports_a_refused_connection():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = UrllibHttp().send(get(f"http://127.0.0.1:{port}/"))
    assert isinstance(refused, HttpError) and refused.kind == "connection"


def test_the_cache_forgets_an_entry_when_it_expires(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("jira_sync.defaults.time.time", lambda: now[0])
    cache = MemoryCache()
    cache.set("k", "v", 60)
    assert cache.get("k") == "v"
    now[0] += 60
    assert cache.get("k") is None
    cache.set("k", "v", 60)
    cache.delete("k")
    assert cache.get("k") is None


def test_a_delivery_is_claimed_once_until_released_or_handled():
    deliveries = MemoryDeliveries()
    assert deliveries.claim("jira:1c4", "d-1") == "claimed"
    assert deliveries.claim("jira:1c4", "d-1") == "in-progress"
    assert deliveries.claim("jira:other", "d-1") == "claimed", "per installation"
    deliveries.release("jira:1c4", "d-1")
    assert deliveries.claim("jira:1c4", "d-1") == "claimed"
    deliveries.mark_handled("jira:1c4", "d-1")
    assert deliveries.claim("jira:1c4", "d-1") == "handled"


def test_a_watermark_only_moves_forward():
    deliveries = MemoryDeliveries()
    assert deliveries.last_applied("jira:1c4", "APP-1", "status") is None
    deliveries.set_last_applied("jira:1c4", "APP-1", "status", 20)
    deliveries.set_last_applied("jira:1c4", "APP-1", "status", 10)
    assert deliveries.last_applied("jira:1c4", "APP-1", "status") == 20
    assert deliveries.last_applied("jira:1c4", "APP-1", "assignee") is None
