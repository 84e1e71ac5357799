"""A webhook through the Python host against the Rust host, measured in one run on this machine
(BENCHMARKS.md, "The Python host").

The Python side plays the webhooks of `jira-sync-host bench` (host-harness/src/bench/fixture.rs)
through `Plugin` over the in-memory platform of `jira_sync.replay`; the Rust side is that bench
itself, run right after. Medians of 9 batches, as the Rust bench takes them.

    python/.venv/bin/python python/benchmarks/webhook.py [--host target/release/jira-sync-host]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from typing import Callable

from jira_sync import WebhookRequest
from jira_sync.replay import World, authorization, new_record, plugin_for

NOW = 1_700_000_000
PATH = "/extensions/jira/issue-updated/"
FIXTURE = {
    "now": NOW,
    "installation": {"client_key": "jira:1c4", "shared_secret": "s3cret", "use_email_scope": True,
                     "base_url": "https://acme.atlassian.net", "app_key": "acme-platform.jira"},
    "links": {"APP-123": [1, 2]},
    "users": {"ada@example.com": 7},
    "http": [
        {"method": "GET", "path": "/rest/api/2/status", "repeat": True,
         "body": [{"id": "3", "statusCategory": {"key": "indeterminate"}},
                  {"id": "10101", "statusCategory": {"key": "done"}}]},
        {"method": "GET", "path": "/rest/api/3/user/email", "query": {"accountId": "5f1a"},
         "repeat": True, "body": {"accountId": "5f1a", "email": "ada@example.com"}},
    ],
    "steps": [],
}


def assignee(value: dict) -> dict:
    return {"changelog": {"items": [{"field": "assignee"}]},
            "issue": {"key": "APP-123", "fields": {"assignee": value}}}


WEBHOOKS = [
    ("assignee, visible email", assignee({"accountId": "5f1a", "emailAddress": "ada@example.com"})),
    ("assignee, hidden email, warm cache", assignee({"accountId": "5f1a"})),
    ("status change", {"changelog": {"items": [{"field": "status", "from": "3", "to": "10101"}]},
                       "issue": {"key": "APP-123", "fields": {}}}),
]


def median(batches: int, per_batch: int, f: Callable[[], None]) -> float:
    """Median seconds per run over `batches` batches of `per_batch` runs, after a warm-up."""
    for _ in range(min(per_batch, 200)):
        f()
    times = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(per_batch):
            f()
        times.append((time.perf_counter() - start) / per_batch)
    return statistics.median(times)


def python_rows(iterations: int) -> dict[str, float]:
    world = World(FIXTURE)
    plugin = plugin_for(world)
    token = authorization(FIXTURE, NOW, {"sign": True, "method": "POST", "path": PATH, "query": ""})
    rows = {}
    requests = [(name, WebhookRequest(json.dumps(body).encode(), [("Authorization", token)]))
                for name, body in WEBHOOKS]
    requests.append(("breakdown: no token, answered 409", WebhookRequest(b"{}")))
    for name, request in requests:
        def run(request: WebhookRequest = request) -> None:
            world.record = new_record()
            plugin.handle(request)

        expected = 409 if name.startswith("breakdown") else 200
        assert plugin.handle(request).status == expected, name
        rows[name] = median(9, iterations, run)
    return rows


def rust_rows(host: str | None, iterations: int) -> dict[str, float]:
    command = ([host] if host else ["cargo", "run", "--release", "--quiet", "-p", "jira-sync-host", "--"]) + [
        "bench", "--json", "--iterations", str(iterations)]
    rows = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    # "29.2 µs wasm / 4.9 µs native = 6.00×" -> 29.2e-6
    return {row["what"]: float(row["value"].split(" µs")[0]) * 1e-6 for row in rows if " µs" in row["value"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="a built jira-sync-host binary (default: cargo run --release)")
    parser.add_argument("--iterations", type=int, default=500, help="Python runs per batch")
    parser.add_argument("--rust-iterations", type=int, default=2000, help="Rust runs per batch")
    args = parser.parse_args()
    python = python_rows(args.iterations)
    rust = rust_rows(args.host, args.rust_iterations)
    print("| webhook | Python host (wasmtime-py 50.0.1) | Rust host, pooling | Rust host, on-demand | Python / Rust pooling |")
    print("|---|---|---|---|---|")
    for name, seconds in python.items():
        pooling, on_demand = rust.get(f"webhook: {name} (pooling)") or rust[f"{name} (pooling)"], rust.get(
            f"webhook: {name} (on-demand)")
        on_demand_text = f"{on_demand * 1e6:.1f} µs" if on_demand else "–"
        print(f"| {name} | {seconds * 1e6:.1f} µs | {pooling * 1e6:.1f} µs | {on_demand_text} | {seconds / pooling:.1f}× |")


if __name__ == "__main__":
    main()
