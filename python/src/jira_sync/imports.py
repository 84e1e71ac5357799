"""What a Python platform implements: one `Protocol` per WIT import (wit/world.wit).

The host (`Plugin`) checks every call against the installation the call is bound to before it
reaches these (docs/behaviour.md#9), so an implementation never sees another installation's
client key, a cache key outside the call's namespace, or a request to another site.
"""

from __future__ import annotations

from typing import Optional, Protocol, Union

from .types import (
    AssignOutcome,
    ClaimOutcome,
    HttpError,
    HttpRequest,
    HttpResponse,
    Installation,
    IssueField,
    LogLevel,
    ResolutionStrategy,
    StatusChange,
    UnassignOutcome,
)


class Http(Protocol):
    """Sends the component's requests to Jira; a 429 or a 500 is a response, not an error."""

    def send(self, request: HttpRequest) -> Union[HttpResponse, HttpError]: ...


class Cache(Protocol):
    """A key/value cache whose entries expire on the platform's clock."""

    def get(self, key: str) -> Optional[str]: ...

    def set(self, key: str, value: str, ttl_seconds: int) -> None: ...

    def delete(self, key: str) -> None: ...


class Installations(Protocol):
    """The platform's registry of installations."""

    def get_by_client_key(self, client_key: str) -> Optional[Installation]: ...

    def outbound_authorization(self, client_key: str) -> Optional[str]:
        """The `Authorization` the host adds to the component's requests for an installation
        that is not Connect (the guest signs Connect requests itself)."""
        ...


class GroupAssignment(Protocol):
    """Assigns the platform's groups linked to a Jira issue."""

    def assign(self, client_key: str, issue_key: str, email: str) -> AssignOutcome: ...

    def unassign(self, client_key: str, issue_key: str) -> UnassignOutcome: ...


class GroupStatus(Protocol):
    """Resolves and unresolves the platform's groups linked to a Jira issue."""

    def resolve(self, client_key: str, issue_key: str, strategy: ResolutionStrategy) -> StatusChange: ...

    def unresolve(self, client_key: str, issue_key: str) -> StatusChange: ...


class Links(Protocol):
    """The links between groups and Jira issues, kept in step when Jira deletes or moves one."""

    def remove(self, client_key: str, issue_key: str) -> int: ...

    def rename(self, client_key: str, from_key: str, to_key: str) -> int: ...


class Deliveries(Protocol):
    """Dedupe and ordering of Jira's deliveries (docs/behaviour.md#7)."""

    def claim(self, client_key: str, delivery_id: str) -> ClaimOutcome: ...

    def mark_handled(self, client_key: str, delivery_id: str) -> None: ...

    def release(self, client_key: str, delivery_id: str) -> None:
        """Ends a claim the call did not mark handled, so that Jira's retry runs."""
        ...

    def last_applied(self, client_key: str, issue_key: str, field: IssueField) -> Optional[int]: ...

    def set_last_applied(self, client_key: str, issue_key: str, field: IssueField, updated_ms: int) -> None: ...


class Clock(Protocol):
    """The component's only clock."""

    def now(self) -> int: ...

    def sleep(self, seconds: int) -> None: ...


class Log(Protocol):
    """Structured events; the event names are part of the contract."""

    def log(self, level: LogLevel, event: str, fields: list[tuple[str, str]]) -> None: ...
