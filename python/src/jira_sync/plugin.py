"""The component under wasmtime-py: one engine, the component compiled once, and a fresh store
and instance per call with a memory cap and a fuel budget, bound to one installation before the
guest runs, as the Rust host does (host-harness/src/runtime/)."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, ContextManager, Optional, Protocol, Union

import wasmtime
from wasmtime import component as wc

from . import wire
from .imports import Cache, Clock, Deliveries, GroupAssignment, GroupStatus, Http, Installations, Links, Log
from .limits import CallError, ContractError, GuestTrap, LimitExceeded, Limits
from .sandbox import Egress, webhook_tenant
from .types import (
    AssigneeOutcome,
    AssigneeRequest,
    HttpError,
    HttpRequest,
    HttpResponse,
    Installation,
    StatusOutcome,
    StatusRequest,
    WebhookRequest,
    WebhookResponse,
)

#: The WIT package this host speaks (wit/world.wit); the only place its version is written.
WIT_PACKAGE = "jira-sync:plugin"
WIT_VERSION = "0.5.0"

#: Where the package keeps the component (package data; see README, "A Python platform").
COMPONENT_FILE = "jira_sync_plugin.wasm"


def interface(name: str) -> str:
    """The full name of WIT interface `name`, e.g. `jira-sync:plugin/http@0.5.0`."""
    return f"{WIT_PACKAGE}/{name}@{WIT_VERSION}"


def bundled_component() -> Path:
    """The component shipped inside this package."""
    return Path(str(resources.files(__package__).joinpath(COMPONENT_FILE)))


class Observer(Protocol):
    """Sees what the platform's imports do not: every request the guest sent, with what it got
    (the sandbox's refusals included), and every attempt to reach another installation."""

    def http(self, request: HttpRequest, result: Union[HttpResponse, HttpError]) -> None: ...

    def refused(self, what: str) -> None: ...


@dataclass
class _Call:
    """What one call is bound to and has used so far."""

    tenant: Optional[str]
    installation: Optional[Installation]
    authorization: Optional[str]
    egress: Egress = field(default_factory=Egress)
    http_calls: int = 0
    log_lines: int = 0
    bytes: int = 0
    slept: int = 0
    started: float = field(default_factory=time.monotonic)
    claims: list[tuple[str, str]] = field(default_factory=list)
    handled: set[tuple[str, str]] = field(default_factory=set)


class Plugin:
    """The jira-sync component, run in a fresh sandbox per call over the platform's imports.

    `transaction`, when given, is entered around each call (e.g. a database connection's
    `with` block): a call that traps or breaks a limit raises through it, so that the platform
    can roll back what the call had changed.
    """

    def __init__(
        self,
        *,
        http: Http,
        cache: Cache,
        installations: Installations,
        group_assignment: GroupAssignment,
        group_status: GroupStatus,
        links: Links,
        deliveries: Deliveries,
        clock: Clock,
        log: Log,
        limits: Limits = Limits(),
        component: Union[str, Path, bytes, None] = None,
        transaction: Optional[Callable[[], ContextManager[Any]]] = None,
        observer: Optional[Observer] = None,
    ) -> None:
        self.http, self.cache, self.installations = http, cache, installations
        self.group_assignment, self.group_status, self.links = group_assignment, group_status, links
        self.deliveries, self.clock, self.log = deliveries, clock, log
        self.limits = limits
        self._transaction = transaction or contextlib.nullcontext
        self._observer = observer
        self._local = threading.local()

        config = wasmtime.Config()
        config.consume_fuel = True
        self._engine = wasmtime.Engine(config)
        self._component = _load(self._engine, component)
        self._check_version()
        self._linker = wc.Linker(self._engine)
        self._link()
        # Imports a newer component may add trap when called instead of failing every call.
        self._linker.define_unknown_imports_as_traps(self._component)
        self._exports = {
            (iface, func): self._export(iface, func)
            for iface, func in [("webhook", "handle"), ("outbound", "sync-status"), ("outbound", "sync-assignee")]
        }

    # --- the exports --------------------------------------------------------------------

    def handle(self, request: WebhookRequest) -> WebhookResponse:
        """`webhook.handle`: one Jira delivery in, the answer for Jira out."""

        def check(response: WebhookResponse) -> None:
            if len(response.body) > self.limits.webhook_response_bytes:
                raise LimitExceeded("webhook-response")

        return self._run(
            webhook_tenant(request), ("webhook", "handle"), wire.webhook_request(request),
            wire.webhook_response, check,
        )

    def sync_status(self, request: StatusRequest) -> StatusOutcome:
        """`outbound.sync-status`: moves a linked Jira issue to its group's status."""
        return self._run(
            request.client_key, ("outbound", "sync-status"), wire.status_request(request), wire.status_outcome,
        )

    def sync_assignee(self, request: AssigneeRequest) -> AssigneeOutcome:
        """`outbound.sync-assignee`: sets a linked Jira issue's assignee from its group's."""
        return self._run(
            request.client_key, ("outbound", "sync-assignee"), wire.assignee_request(request),
            wire.assignee_outcome,
        )

    # --- one call -----------------------------------------------------------------------

    def _run(self, tenant: Optional[str], export: tuple[str, str], argument: Any,
             convert: Callable[[Any], Any], check: Optional[Callable[[Any], None]] = None) -> Any:
        call = self._bind(tenant)
        self._local.call = call
        succeeded = False
        try:
            with self._transaction():
                store = wasmtime.Store(self._engine)
                store.set_limits(memory_size=self.limits.memory_bytes)
                store.set_fuel(self.limits.fuel)
                try:
                    instance = self._linker.instantiate(store, self._component)
                    func = instance.get_func(store, self._exports[export])
                    assert func is not None, export
                    raw = func(store, argument)
                except wasmtime.WasmtimeError as e:
                    raise _classify(e) from None
                result = convert(raw)
                if check is not None:
                    check(result)
            succeeded = True
            return result
        finally:
            self._local.call = None
            for claim in call.claims:
                # A failed call's marks were rolled back with the rest of its changes.
                if not succeeded or claim not in call.handled:
                    self.deliveries.release(*claim)

    def _bind(self, tenant: Optional[str]) -> _Call:
        installation = authorization = None
        if tenant is not None:
            installation = self.installations.get_by_client_key(tenant)
            # The guest signs Connect requests itself; the host adds every other credential.
            if installation is not None and installation.credentials.kind != "connect":
                authorization = self.installations.outbound_authorization(tenant)
        return _Call(tenant, installation, authorization)

    @property
    def _call(self) -> _Call:
        call: Optional[_Call] = getattr(self._local, "call", None)
        if call is None:
            raise ContractError("an import was called outside a call")
        return call

    def _past_deadline(self, waiting: int = 0) -> bool:
        # Seconds slept on a clock that does not really sleep (replay's) count too, so that a
        # replay ends where a real run would.
        call = self._call
        spent = max(time.monotonic() - call.started, call.slept)
        return spent + waiting > self.limits.wall_seconds

    def _count_bytes(self, count: int) -> None:
        call = self._call
        call.bytes += count
        if call.bytes > self.limits.total_bytes:
            raise LimitExceeded("total-bytes")

    def _own(self, client_key: str, what: str) -> bool:
        call = self._call
        if call.tenant == client_key:
            return True
        if self._observer is not None:
            self._observer.refused(
                f"{what}: installation `{client_key}` is not this call's ({call.tenant or 'none'})"
            )
        return False

    # --- the imports --------------------------------------------------------------------

    def _link(self) -> None:
        imports: dict[str, dict[str, Callable[..., Any]]] = {
            "http": {"send": self._send},
            "cache": {"get": self._cache_get, "set": self._cache_set, "delete": self._cache_delete},
            "installations": {"get-by-client-key": self._get_by_client_key},
            "group-assignment": {"assign": self._assign, "unassign": self._unassign},
            "group-status": {"resolve": self._resolve, "unresolve": self._unresolve},
            "links": {"remove": self._links_remove, "rename": self._links_rename},
            "deliveries": {
                "claim": self._claim, "mark-handled": self._mark_handled,
                "last-applied": self._last_applied, "set-last-applied": self._set_last_applied,
            },
            "clock": {"now": lambda _store: self.clock.now(), "sleep": self._sleep},
            "log": {"log": self._log},
        }
        with self._linker.root() as root:
            for name, funcs in imports.items():
                with root.add_instance(interface(name)) as instance:
                    for func_name, func in funcs.items():
                        instance.add_func(func_name, func)

    def _send(self, _store: Any, raw: Any) -> Any:
        call = self._call
        call.http_calls += 1
        if call.http_calls > self.limits.http_calls:
            raise LimitExceeded("http-calls")
        if self._past_deadline():
            raise LimitExceeded("deadline")
        request = wire.http_request(raw)
        call.bytes += len(request.body or b"")
        result: Union[HttpResponse, HttpError]
        refused = call.egress.check(request.url)
        if refused is not None:
            result = refused
        else:
            sent = request
            if call.authorization is not None:
                headers = [(k, v) for k, v in request.headers if k.lower() != "authorization"]
                sent = HttpRequest(request.method, request.url, headers + [("Authorization", call.authorization)],
                                   request.body)
            result = self.http.send(sent)
            if isinstance(result, HttpResponse) and len(result.body) > self.limits.response_bytes:
                result = HttpError("response-too-large", limit=self.limits.response_bytes)
        if self._observer is not None:
            self._observer.http(request, result)
        self._count_bytes(len(result.body) if isinstance(result, HttpResponse) else 0)
        return wire.http_result(result)

    def _cache_key(self, key: str) -> Optional[str]:
        tenant = self._call.tenant
        if tenant is None:
            if self._observer is not None:
                self._observer.refused("cache: this call is bound to no installation")
            return None
        # Length-prefixed, so that no (client key, key) pair can spell another's.
        return f"{len(tenant.encode())}:{tenant}:{key}"

    def _cache_get(self, _store: Any, key: str) -> Optional[str]:
        namespaced = self._cache_key(key)
        return None if namespaced is None else self.cache.get(namespaced)

    def _cache_set(self, _store: Any, key: str, value: str, ttl: int) -> None:
        namespaced = self._cache_key(key)
        if namespaced is not None:
            self.cache.set(namespaced, value, ttl)

    def _cache_delete(self, _store: Any, key: str) -> None:
        namespaced = self._cache_key(key)
        if namespaced is not None:
            self.cache.delete(namespaced)

    def _get_by_client_key(self, _store: Any, client_key: str) -> Any:
        # The call's own installation only, as read when the call was bound.
        if not self._own(client_key, "installations.get-by-client-key"):
            return None
        installation = self._call.installation
        if installation is None:
            return None
        self._call.egress.allow(installation.base_url)
        return wire.installation(installation)

    def _assign(self, _store: Any, client_key: str, issue_key: str, email: str) -> Any:
        if not self._own(client_key, "group-assignment.assign"):
            return wc.Variant("no-linked-groups")
        return wire.assign_outcome(self.group_assignment.assign(client_key, issue_key, email))

    def _unassign(self, _store: Any, client_key: str, issue_key: str) -> Any:
        if not self._own(client_key, "group-assignment.unassign"):
            return None
        return wire.count_or_none(self.group_assignment.unassign(client_key, issue_key))

    def _resolve(self, _store: Any, client_key: str, issue_key: str, strategy: str) -> Any:
        if not self._own(client_key, "group-status"):
            return None
        return wire.count_or_none(self.group_status.resolve(client_key, issue_key, strategy))  # type: ignore[arg-type]

    def _unresolve(self, _store: Any, client_key: str, issue_key: str) -> Any:
        if not self._own(client_key, "group-status"):
            return None
        return wire.count_or_none(self.group_status.unresolve(client_key, issue_key))

    def _links_remove(self, _store: Any, client_key: str, issue_key: str) -> int:
        if not self._own(client_key, "links.remove"):
            return 0
        return self.links.remove(client_key, issue_key)

    def _links_rename(self, _store: Any, client_key: str, from_key: str, to_key: str) -> int:
        if not self._own(client_key, "links.rename"):
            return 0
        return self.links.rename(client_key, from_key, to_key)

    def _claim(self, _store: Any, client_key: str, delivery_id: str) -> str:
        if not self._own(client_key, "deliveries.claim"):
            # Another installation's delivery is not this call's to handle.
            return "handled"
        call = self._call
        if (client_key, delivery_id) in call.claims:
            return "claimed"
        outcome = self.deliveries.claim(client_key, delivery_id)
        if outcome == "claimed":
            call.claims.append((client_key, delivery_id))
        return outcome

    def _mark_handled(self, _store: Any, client_key: str, delivery_id: str) -> None:
        if self._own(client_key, "deliveries.mark-handled"):
            self.deliveries.mark_handled(client_key, delivery_id)
            self._call.handled.add((client_key, delivery_id))

    def _last_applied(self, _store: Any, client_key: str, issue_key: str, issue_field: str) -> Optional[int]:
        if not self._own(client_key, "deliveries.last-applied"):
            return None
        return self.deliveries.last_applied(client_key, issue_key, issue_field)  # type: ignore[arg-type]

    def _set_last_applied(self, _store: Any, client_key: str, issue_key: str, issue_field: str, ms: int) -> None:
        if self._own(client_key, "deliveries.set-last-applied"):
            self.deliveries.set_last_applied(client_key, issue_key, issue_field, ms)  # type: ignore[arg-type]

    def _sleep(self, _store: Any, seconds: int) -> None:
        call = self._call
        if self._past_deadline(seconds):
            raise LimitExceeded("deadline")
        call.slept += seconds
        self.clock.sleep(seconds)

    def _log(self, _store: Any, level: str, event: str, fields: list[tuple[str, str]]) -> None:
        call = self._call
        call.log_lines += 1
        if call.log_lines > self.limits.log_lines:
            raise LimitExceeded("log")
        self._count_bytes(len(event.encode()) + sum(len(k.encode()) + len(v.encode()) for k, v in fields))
        self.log.log(level, event, list(fields))  # type: ignore[arg-type]

    # --- loading ------------------------------------------------------------------------

    def _check_version(self) -> None:
        names = list(self._component.type.imports(self._engine)) + list(self._component.type.exports(self._engine))
        ours = [n for n in names if n.startswith(f"{WIT_PACKAGE}/")]
        foreign = sorted({n.partition("@")[2] for n in ours} - {WIT_VERSION})
        if foreign:
            raise CallError(f"the component speaks {WIT_PACKAGE}@{', '.join(foreign)}; this host speaks {WIT_VERSION}")

    def _export(self, iface: str, func: str) -> wc.ExportIndex:
        instance = self._component.get_export_index(interface(iface))
        index = None if instance is None else self._component.get_export_index(func, instance)
        if index is None:
            raise CallError(f"the component exports no {interface(iface)}#{func}")
        return index


def _load(engine: wasmtime.Engine, component: Union[str, Path, bytes, None]) -> wc.Component:
    if isinstance(component, bytes):
        return wc.Component(engine, component)
    path = Path(component) if component is not None else bundled_component()
    if not path.is_file():
        raise FileNotFoundError(
            f"no component at {path}: pass `component=` or install a package built with it "
            "(README, \"A Python platform\")"
        )
    return wc.Component.from_file(engine, str(path))


def _classify(error: wasmtime.WasmtimeError) -> CallError:
    """The reason a call ended inside wasmtime, as the Rust host names it."""
    # A component call's traps come as a WasmtimeError whose message names the trap.
    message = str(error)
    if "all fuel consumed" in message:
        return LimitExceeded("cpu")
    # wasmtime's message is the backtrace, then "Caused by:" and the trap itself.
    reason = message.rpartition("Caused by:")[2].strip() or message.strip()
    return GuestTrap(reason, message)
