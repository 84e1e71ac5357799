"""Replay: plays a scenario file (README, "Scenarios and traces") against the component through
`Plugin`, with every import in memory, and prints the same JSON trace as `jira-sync-host replay`
(tests/peers/python.rs compares them).

    python -m jira_sync.replay SCENARIO.json [--component COMPONENT.wasm]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sys
from typing import Any, Optional, Union
from urllib.parse import parse_qsl, quote, unquote_plus, urlsplit

from .limits import CallError
from .plugin import Plugin
from .types import (
    AssigneeOutcome,
    AssigneeRequest,
    AssignOutcome,
    Credentials,
    Failure,
    HttpError,
    HttpRequest,
    HttpResponse,
    Installation,
    ProjectStatusMapping,
    RetryPolicy,
    StatusChange,
    StatusOutcome,
    StatusRequest,
    SyncConfig,
    UnassignOutcome,
    WebhookRequest,
)

# --- the platform: installations, links, groups, users, deliveries -------------------------


def installation(spec: dict[str, Any]) -> Installation:
    """A scenario's installation spec (host-harness/src/installation.rs) as the WIT record."""
    c = spec.get("credentials") or {"kind": "connect"}
    credentials = {
        "admin-webhook": lambda: Credentials("admin-webhook", secret=c.get("secret", "")),
        "oauth": lambda: Credentials("oauth", client_id=c.get("client_id", ""), client_secret=c.get("client_secret", "")),
        "forge": lambda: Credentials("forge"),
    }.get(c["kind"], lambda: Credentials.connect(spec.get("shared_secret", "")))()
    retry = spec.get("retry") or {}
    return Installation(
        client_key=spec["client_key"],
        credentials=credentials,
        base_url=spec["base_url"],
        app_key=spec["app_key"],
        config=SyncConfig(
            use_email_scope=spec.get("use_email_scope", False),
            sync_status_forward=tuple(
                ProjectStatusMapping(project, pair["resolved"], pair["unresolved"])
                for project, pair in (spec.get("sync_status_forward") or {}).items()
            ),
            sync_status_reverse=spec.get("sync_status_reverse", True),
            sync_forward_assignment=spec.get("sync_forward_assignment", True),
            sync_reverse_assignment=spec.get("sync_reverse_assignment", True),
            resolution_strategy=spec.get("resolution_strategy", "resolve"),
            max_transition_hops=spec.get("max_transition_hops", 5),
            retry=RetryPolicy(retry.get("max_retries", 3), retry.get("max_total_wait", 60)),
            clock_skew_seconds=spec.get("clock_skew_seconds", 0),
            max_token_lifetime_seconds=spec.get("max_token_lifetime_seconds", 3600),
            webhook_max_wait_seconds=spec.get("webhook_max_wait_seconds", 5),
            exact_status_mapping=spec.get("exact_status_mapping", False),
            max_email_lookups=spec.get("max_email_lookups", 10),
        ),
    )


def new_record() -> dict[str, Any]:
    return {"http": [], "assignments": [], "resolutions": [], "links": [],
            "cache": {"hits": 0, "misses": 0, "sets": 0, "deletes": 0}, "logs": [], "slept": 0,
            "refusals": []}


def body_value(body: Optional[bytes]) -> Any:
    """A body for the trace: JSON when it parses, text otherwise, None when empty."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")


class World:
    """The scenario's platform and Jira, in memory; every import records into `record`."""

    def __init__(self, scenario: dict[str, Any]) -> None:
        self.now: int = scenario["now"]
        specs = [scenario["installation"], *scenario.get("other_installations", [])]
        self.installs = {s["client_key"]: installation(s) for s in specs if not s.get("uninstalled")}
        self.links: dict[tuple[str, str], list[int]] = {}
        self.groups: dict[int, dict[str, Any]] = {}
        client_key = scenario["installation"]["client_key"]
        for issue_key, ids in (scenario.get("links") or {}).items():
            for id_ in ids:
                self.groups.setdefault(id_, {"status": "unresolved", "assignee": None})
            self.links[(client_key, issue_key)] = self.links.get((client_key, issue_key), []) + ids
        self.users = list((scenario.get("users") or {}).items())
        for id_, g in (scenario.get("groups") or {}).items():
            self.groups[int(id_)] = {"status": g.get("status", "unresolved"), "assignee": g.get("assignee")}
        self.delivered: set[tuple[str, str]] = set()
        self.applied: dict[tuple[str, str, str], int] = {}
        self.entries: dict[str, tuple[str, int]] = {}
        self.stubs: list[dict[str, Any]] = scenario.get("http") or []
        self.used = [False] * len(self.stubs)
        self.unmatched: list[str] = []
        self.record = new_record()

    # Installations
    def get_by_client_key(self, client_key: str) -> Optional[Installation]:
        return self.installs.get(client_key)

    def outbound_authorization(self, client_key: str) -> Optional[str]:
        return None

    # Http: Jira's scripted answers
    def send(self, request: HttpRequest) -> Union[HttpResponse, HttpError]:
        url = urlsplit(request.url)
        found = next((i for i, s in enumerate(self.stubs) if not self.used[i] and _matches(s, request.method, url)), None)
        if found is None:
            found = next((i for i, s in enumerate(self.stubs) if s.get("repeat") and _matches(s, request.method, url)), None)
        if found is None:
            self.unmatched.append(f"{request.method} {request.url}")
            return HttpError("connection", f"no scripted answer for {request.method} {url.path}")
        self.used[found] = True
        stub = self.stubs[found]
        error = stub.get("error")
        if error == "timeout":
            return HttpError("timeout")
        if error == "connection":
            return HttpError("connection", "connection refused")
        if error == "too-large":
            return HttpError("response-too-large", limit=4194304)
        if error:
            return HttpError("connection", f"scripted error `{error}`")
        body = stub.get("body")
        raw = "" if body is None else body if isinstance(body, str) else _json(body)
        return HttpResponse(stub.get("status", 200), list((stub.get("headers") or {}).items()), raw.encode())

    # Cache
    def get(self, key: str) -> Optional[str]:
        entry = self.entries.get(key)
        if entry and entry[1] > self.now:
            self.record["cache"]["hits"] += 1
            return entry[0]
        self.entries.pop(key, None)
        self.record["cache"]["misses"] += 1
        return None

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        self.record["cache"]["sets"] += 1
        self.entries[key] = (value, self.now + ttl_seconds)

    def delete(self, key: str) -> None:
        self.record["cache"]["deletes"] += 1
        self.entries.pop(key, None)

    # Group assignment
    def assign(self, client_key: str, issue_key: str, email: str) -> AssignOutcome:
        ids = self.links.get((client_key, issue_key), [])
        user = next((id_ for known, id_ in self.users if known.lower() == email.lower()), None)
        if not ids:
            outcome, assigned = AssignOutcome("no-linked-groups"), ids
        elif user is not None:
            for id_ in ids:
                if id_ in self.groups:
                    self.groups[id_]["assignee"] = user
            outcome, assigned = AssignOutcome("assigned", len(ids)), ids
        else:
            outcome, assigned = AssignOutcome("no-user-with-email"), []
        self.record["assignments"].append({"issue_key": issue_key, "email": email, "result": outcome.kind,
                                           "groups": assigned})
        return outcome

    def unassign(self, client_key: str, issue_key: str) -> UnassignOutcome:
        ids = self.links.get((client_key, issue_key), [])
        for id_ in ids:
            if id_ in self.groups:
                self.groups[id_]["assignee"] = None
        outcome = UnassignOutcome("unassigned", len(ids)) if ids else UnassignOutcome("no-linked-groups")
        self.record["assignments"].append({"issue_key": issue_key, "email": None, "result": outcome.kind,
                                           "groups": ids})
        return outcome

    # Group status
    def _change(self, client_key: str, issue_key: str, status: str, strategy: Optional[str]) -> StatusChange:
        ids = self.links.get((client_key, issue_key), [])
        changed = 0
        for id_ in ids:
            group = self.groups.get(id_)
            if group and group["status"] != status:
                group["status"] = status
                changed += 1
        resolution: dict[str, Any] = {"issue_key": issue_key,
                                      "action": "resolve" if status == "resolved" else "unresolve"}
        if strategy:
            resolution["strategy"] = strategy
        resolution.update(groups=ids, changed=changed)
        self.record["resolutions"].append(resolution)
        return StatusChange("changed", changed) if ids else StatusChange("no-linked-groups")

    def resolve(self, client_key: str, issue_key: str, strategy: str) -> StatusChange:
        return self._change(client_key, issue_key, "resolved", strategy)

    def unresolve(self, client_key: str, issue_key: str) -> StatusChange:
        return self._change(client_key, issue_key, "unresolved", None)

    # Links
    def remove(self, client_key: str, issue_key: str) -> int:
        ids = self.links.pop((client_key, issue_key), [])
        for f in ("status", "assignee"):
            self.applied.pop((client_key, issue_key, f), None)
        self.record["links"].append({"issue_key": issue_key, "groups": ids})
        return len(ids)

    def rename(self, client_key: str, from_key: str, to_key: str) -> int:
        ids = self.links.get((client_key, from_key), [])
        if from_key != to_key:
            merged = sorted(set(self.links.get((client_key, to_key), [])) | set(ids))
            self.links.pop((client_key, from_key), None)
            if merged:
                self.links[(client_key, to_key)] = merged
            for f in ("status", "assignee"):
                old = self.applied.pop((client_key, from_key, f), None)
                current = self.applied.get((client_key, to_key, f))
                if old is not None and not (current is not None and current >= old):
                    self.applied[(client_key, to_key, f)] = old
        self.record["links"].append({"issue_key": from_key, "renamed_to": to_key, "groups": ids})
        return len(ids)

    # Deliveries: replay runs one call at a time, so a claim finds a delivery handled or free.
    def claim(self, client_key: str, delivery_id: str) -> str:
        return "handled" if (client_key, delivery_id) in self.delivered else "claimed"

    def mark_handled(self, client_key: str, delivery_id: str) -> None:
        self.delivered.add((client_key, delivery_id))

    def release(self, client_key: str, delivery_id: str) -> None:
        pass

    def last_applied(self, client_key: str, issue_key: str, field: str) -> Optional[int]:
        return self.applied.get((client_key, issue_key, field))

    def set_last_applied(self, client_key: str, issue_key: str, field: str, updated_ms: int) -> None:
        at = (client_key, issue_key, field)
        # Only forward, like the Rust host's compare-and-set.
        if not (at in self.applied and self.applied[at] > updated_ms):
            self.applied[at] = updated_ms

    # Clock
    def sleep(self, seconds: int) -> None:
        self.record["slept"] += seconds
        self.now += seconds

    # Log
    def log(self, level: str, event: str, fields: list[tuple[str, str]]) -> None:
        line: dict[str, Any] = {"level": level, "event": event}
        if fields:
            line["fields"] = dict(fields)
        self.record["logs"].append(line)

    # Observer: what the sandbox saw
    def http(self, request: HttpRequest, result: Union[HttpResponse, HttpError]) -> None:
        exchange: dict[str, Any] = {"method": request.method, "url": request.url, "headers": dict(request.headers),
                                    "body": body_value(request.body)}
        if isinstance(result, HttpResponse):
            exchange["status"] = result.status
        else:
            exchange["error"] = str(result)
        self.record["http"].append(exchange)

    def refused(self, what: str) -> None:
        self.record["refusals"].append(what)


class ScenarioClock:
    """The world's clock, moved by `advance_clock` steps and the guest's sleeps."""

    def __init__(self, world: World) -> None:
        self.world = world

    def now(self) -> int:
        return self.world.now

    def sleep(self, seconds: int) -> None:
        self.world.sleep(seconds)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _matches(stub: dict[str, Any], method: str, url: Any) -> bool:
    if stub.get("method", "GET").upper() != method.upper() or stub["path"] != url.path:
        return False
    wanted = sorted(f"{k}\0{v}" for k, v in (stub.get("query") or {}).items())
    got = sorted(f"{k}\0{v}" for k, v in parse_qsl(url.query, keep_blank_values=True))
    return wanted == got


def plugin_for(world: World, component: Optional[str] = None) -> Plugin:
    """A `Plugin` whose every import is `world`'s."""
    return Plugin(http=world, cache=world, installations=world, group_assignment=world,
                  group_status=world, links=world, deliveries=world, clock=ScenarioClock(world), log=world,
                  component=component, observer=world)


# --- signing webhooks like Jira (independently of the guest) ---------------------------------


def _canonical_query(query: str) -> str:
    params = []
    for pair in query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        params.append((unquote_plus(key), unquote_plus(value)))
    params = sorted((p for p in params if p[0] != "jwt"), key=lambda p: (p[0].encode("utf-16-be"), p[1].encode("utf-16-be")))
    out: list[str] = []
    for key in dict.fromkeys(k for k, _ in params):
        values = ",".join(quote(v, safe="-._~") for k, v in params if k == key)
        out.append(f"{quote(key, safe='-._~')}={values}")
    return "&".join(out)


def _canonical_path(path: str) -> str:
    path = path if path.startswith("/") else f"/{path}"
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return "".join("%26" if c == "&" else f"%{ord(c):02X}" if c in "\t\n\x0b\x0c\r \"'<>\\^`{|}" else c for c in path)


def qsh(method: str, path: str, query: str) -> str:
    """Atlassian's query string hash of a request (docs/behaviour.md#1.2)."""
    canonical = f"{method.upper()}&{_canonical_path(path)}&{_canonical_query(query)}"
    return hashlib.sha256(canonical.encode()).hexdigest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def authorization(scenario: dict[str, Any], now: int, hook: dict[str, Any]) -> str:
    o = {} if hook["sign"] is True else hook["sign"]
    inst = scenario["installation"]
    claims: dict[str, Any] = {
        "iss": o.get("iss", inst["client_key"]),
        "iat": now,
        "exp": now + o.get("exp_in", 180),
        "qsh": qsh(o.get("qsh_method", hook["method"]), o.get("qsh_path", hook["path"]),
                   o.get("qsh_query", hook["query"])),
    }
    for claim in o.get("omit", []):
        claims.pop(claim, None)
    alg = o.get("alg", "HS256")
    signing_input = f"{_b64url(_json({'typ': 'JWT', 'alg': alg}).encode())}.{_b64url(_json(claims).encode())}"
    signature = "" if alg == "none" else _b64url(
        hmac.new(o.get("secret", inst.get("shared_secret", "")).encode(), signing_input.encode(), hashlib.sha256).digest())
    return f"{o.get('scheme', 'JWT')} {signing_input}.{signature}"


# --- outcomes as the Rust trace spells them --------------------------------------------------


def failure_value(f: Failure) -> dict[str, Any]:
    if f.kind == "http":
        return {"type": "http", "error": str(f.error)}
    if f.kind in ("server-error", "unexpected-status"):
        return {"type": f.kind, "status": f.status}
    if f.kind == "bad-response":
        return {"type": f.kind, "endpoint": f.endpoint}
    return {"type": f.kind}


def status_value(o: StatusOutcome) -> dict[str, Any]:
    if o.kind == "transitioned":
        return {"type": o.kind, "transitions": o.transitions}
    if o.kind == "unreachable" and o.unreachable is not None:
        u = o.unreachable
        return {"type": o.kind, "target": u.target, "transitions": u.transitions, "statuses_seen": u.statuses_seen}
    if o.kind == "rejected":
        return {"type": o.kind, "message": o.message}
    if o.kind == "rate-limited":
        return {"type": o.kind, "retry_after": o.retry_after}
    if o.kind == "failed" and o.failure is not None:
        return {"type": o.kind, "failure": failure_value(o.failure)}
    return {"type": o.kind}


def assignee_value(o: AssigneeOutcome) -> dict[str, Any]:
    if o.kind == "assigned":
        return {"type": o.kind, "account_id": o.account_id}
    if o.kind == "unauthorized":
        return {"type": o.kind, "message": o.message}
    if o.kind == "failed" and o.failure is not None:
        return {"type": o.kind, "message": o.message, "failure": failure_value(o.failure)}
    return {"type": o.kind}


# --- the steps -------------------------------------------------------------------------------


def replay(scenario: dict[str, Any], component: Optional[str] = None) -> dict[str, Any]:
    """Runs every step of `scenario` and returns its trace."""
    world = World(scenario)
    plugin = plugin_for(world, component)
    default_key = scenario["installation"]["client_key"]
    steps = []
    for step in scenario["steps"]:
        [(kind, spec)] = step.items()
        if kind == "advance_clock":
            world.now += spec
            steps.append({"kind": kind, "seconds": spec})
            continue
        world.record = new_record()
        response = outcome = error = None
        try:
            if kind == "webhook":
                hook = {"method": "POST", "path": "/extensions/jira/issue-updated/", "query": "", **spec}
                headers = list((hook.get("headers") or {}).items())
                if hook.get("sign") and not any(k.lower() == "authorization" for k, _ in headers):
                    headers.append(("Authorization", authorization(scenario, world.now, hook)))
                body = hook.get("body")
                raw = body if isinstance(body, str) else _json(body)
                answer = plugin.handle(WebhookRequest(raw.encode(), headers, hook["method"], hook["path"], hook["query"]))
                response = {"status": answer.status, "headers": dict(answer.headers), "body": body_value(answer.body)}
            elif kind == "sync_status_outbound":
                outcome = status_value(plugin.sync_status(StatusRequest(
                    spec.get("client_key", default_key), spec["issue_key"], spec["resolved"],
                    spec.get("dry_run", False), spec.get("source", "platform"))))
            elif kind == "sync_assignee_outbound":
                outcome = assignee_value(plugin.sync_assignee(AssigneeRequest(
                    spec.get("client_key", default_key), spec["issue_key"], spec.get("emails", []),
                    spec.get("unassign", False), spec.get("source", "platform"))))
            else:
                raise ValueError(f"unknown step {kind}")
        except CallError as e:
            error = str(e)
        r = world.record
        trace: dict[str, Any] = {"kind": kind, "response": response, "outcome": outcome, "error": error,
                                 "http": r["http"], "assignments": r["assignments"],
                                 "resolutions": r["resolutions"], "cache": r["cache"], "logs": r["logs"],
                                 "slept": r["slept"]}
        # Keys only a misbehaving guest, or a deleted or moved issue, adds: as in the Rust trace.
        if r["refusals"]:
            trace["refusals"] = r["refusals"]
        if r["links"]:
            trace["links"] = r["links"]
        steps.append(trace)
    groups = {str(id_): {"status": g["status"], "assignee": g["assignee"]} for id_, g in sorted(world.groups.items())}
    return {"steps": steps, "groups": groups, "unmatched_http": world.unmatched}


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jira_sync.replay", description=__doc__.splitlines()[0])
    parser.add_argument("scenario")
    parser.add_argument("--component", help="a component other than the one in the package")
    args = parser.parse_args(argv)
    with open(args.scenario, encoding="utf-8") as f:
        scenario = json.load(f)
    json.dump(replay(scenario, args.component), sys.stdout)


if __name__ == "__main__":
    main()
