"""What one call into the component may consume, and the errors that end a call."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Per-call bounds; the defaults follow the Rust host's (host-harness/src/limits.rs)."""

    #: Linear memory the instance may grow to (wasmtime store limits).
    memory_bytes: int = 32 * 1024 * 1024
    #: Guest instructions one call may run, in wasmtime fuel units; host calls do not count.
    #: About 150 ms of a tight loop here; the heaviest call of the shared scenarios uses 0.72 M
    #: (docs/decisions/0011-python-host.md).
    fuel: int = 2_000_000_000
    #: The call's wall-clock deadline, host calls and `clock.sleep` included.
    wall_seconds: int = 90
    #: HTTP requests one call may send.
    http_calls: int = 32
    #: Largest Jira response body handed to the guest; larger is `response-too-large`.
    response_bytes: int = 1024 * 1024
    #: Request, response and log bytes one call may move in total.
    total_bytes: int = 8 * 1024 * 1024
    #: Log lines one call may write.
    log_lines: int = 1_000
    #: Largest webhook answer the guest may return.
    webhook_response_bytes: int = 64 * 1024


class CallError(Exception):
    """A call produced no result; nothing the guest returned is used."""


class LimitExceeded(CallError):
    """The call broke one of its `Limits`; `limit` names which (as the Rust host does)."""

    def __init__(self, limit: str):
        super().__init__(f"limit: {limit}")
        self.limit = limit


class GuestTrap(CallError):
    """The guest trapped: it panicked, or aborted when its memory could not grow past
    `Limits.memory_bytes` (wasmtime-py cannot tell the two apart). `reason` is wasmtime's,
    `detail` adds the guest's backtrace."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"trap: {reason}")
        self.reason = reason
        self.detail = detail


class ContractError(CallError):
    """The guest answered something the host's contract forbids."""

    def __init__(self, message: str):
        super().__init__(f"contract: {message}")
