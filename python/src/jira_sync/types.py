"""The WIT's records and variants as Python dataclasses (wit/world.wit).

A variant is one frozen dataclass with a `kind` (the WIT case name) and the payload in named
fields, so that a platform matches on `outcome.kind` and reads typed fields; the same names
spell the replay trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

__all__ = [
    "AssignOutcome", "AssigneeOutcome", "AssigneeRequest", "AssignmentSource", "ClaimOutcome",
    "Credentials", "Failure", "Header", "HttpError", "HttpMethod", "HttpRequest", "HttpResponse",
    "Installation", "IssueField", "LogLevel", "ProjectStatusMapping", "ResolutionStrategy",
    "RetryPolicy", "StatusChange", "StatusOutcome", "StatusRequest", "SyncConfig",
    "UnassignOutcome", "Unreachable", "WEBHOOK_PATH", "WebhookRequest", "WebhookResponse",
]

Header = tuple[str, str]

# --- types ---------------------------------------------------------------------------------

ResolutionStrategy = Literal["resolve", "resolve-current-release", "resolve-next-release"]


@dataclass(frozen=True)
class ProjectStatusMapping:
    """The Jira statuses a group state maps to, for one Jira project."""

    project_id: str
    resolved_status: str
    unresolved_status: str


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on riding out Jira's rate limits."""

    max_retries: int = 3
    max_total_wait_seconds: int = 60


@dataclass(frozen=True)
class SyncConfig:
    """Per-installation sync configuration; the defaults are the WIT's."""

    use_email_scope: bool = False
    sync_status_forward: tuple[ProjectStatusMapping, ...] = ()
    sync_status_reverse: bool = True
    sync_forward_assignment: bool = True
    sync_reverse_assignment: bool = True
    resolution_strategy: ResolutionStrategy = "resolve"
    max_transition_hops: int = 5
    retry: RetryPolicy = RetryPolicy()
    clock_skew_seconds: int = 0
    max_token_lifetime_seconds: int = 3600
    webhook_max_wait_seconds: int = 5
    exact_status_mapping: bool = False
    max_email_lookups: int = 10


@dataclass(frozen=True)
class Credentials:
    """How Jira proves a delivery comes from the site (docs/behaviour.md#10).

    `connect` and `admin-webhook` carry `secret`; `oauth` carries `client_id` and
    `client_secret`; `forge` carries nothing.
    """

    kind: Literal["connect", "oauth", "admin-webhook", "forge"]
    secret: str = ""
    client_id: str = ""
    client_secret: str = ""

    @staticmethod
    def connect(shared_secret: str) -> Credentials:
        return Credentials("connect", secret=shared_secret)


@dataclass(frozen=True)
class Installation:
    """One Jira Cloud site that installed the app."""

    client_key: str
    credentials: Credentials
    base_url: str
    app_key: str
    config: SyncConfig = SyncConfig()


# --- http ----------------------------------------------------------------------------------

HttpMethod = Literal["GET", "POST", "PUT", "DELETE"]


@dataclass(frozen=True)
class HttpRequest:
    """A request the component sends to Jira."""

    method: HttpMethod
    url: str
    headers: list[Header]
    body: Optional[bytes]


@dataclass(frozen=True)
class HttpResponse:
    """Jira's answer, whatever its status."""

    status: int
    headers: list[Header] = field(default_factory=list)
    body: bytes = b""


@dataclass(frozen=True)
class HttpError:
    """Why no response came back: `denied`, `connection` and `invalid-request` carry a
    message, `response-too-large` the limit in bytes, `timeout` nothing."""

    kind: Literal["denied", "timeout", "connection", "response-too-large", "invalid-request"]
    message: str = ""
    limit: int = 0

    def __str__(self) -> str:
        if self.kind == "timeout":
            return "timeout"
        if self.kind == "response-too-large":
            return f"response-too-large: {self.limit}"
        return f"{self.kind}: {self.message}"


# --- platform outcomes ---------------------------------------------------------------------


@dataclass(frozen=True)
class AssignOutcome:
    """What `group-assignment.assign` did; `groups` counts the assigned groups."""

    kind: Literal["assigned", "no-user-with-email", "no-linked-groups"]
    groups: int = 0


@dataclass(frozen=True)
class UnassignOutcome:
    """What `group-assignment.unassign` did."""

    kind: Literal["unassigned", "no-linked-groups"]
    groups: int = 0


@dataclass(frozen=True)
class StatusChange:
    """What `group-status.resolve` or `unresolve` did; `groups` counts the changed groups."""

    kind: Literal["changed", "no-linked-groups"]
    groups: int = 0


ClaimOutcome = Literal["claimed", "handled", "in-progress"]
IssueField = Literal["status", "assignee"]
LogLevel = Literal["trace", "debug", "info", "warn", "error"]

# --- webhook -------------------------------------------------------------------------------

WEBHOOK_PATH = "/extensions/jira/issue-updated/"


@dataclass(frozen=True)
class WebhookRequest:
    """An inbound HTTP request as the platform received it."""

    body: bytes
    headers: list[Header] = field(default_factory=list)
    method: str = "POST"
    path: str = WEBHOOK_PATH
    query: str = ""


@dataclass(frozen=True)
class WebhookResponse:
    """The answer for Jira."""

    status: int
    headers: list[Header]
    body: bytes


# --- outbound ------------------------------------------------------------------------------

AssignmentSource = Literal["platform", "this-installation"]


@dataclass(frozen=True)
class Failure:
    """Why an outbound call failed: `http` carries `error`; `server-error` and
    `unexpected-status` carry `status`; `bad-response` carries `endpoint`."""

    kind: Literal["unknown-installation", "http", "server-error", "unexpected-status", "bad-response"]
    error: Optional[HttpError] = None
    status: int = 0
    endpoint: str = ""


@dataclass(frozen=True)
class StatusRequest:
    """A status sync request."""

    client_key: str
    issue_key: str
    resolved: bool
    dry_run: bool = False
    source: AssignmentSource = "platform"


@dataclass(frozen=True)
class Unreachable:
    """Why the target status could not be reached."""

    target: str
    transitions: list[str]
    statuses_seen: list[str]


@dataclass(frozen=True)
class StatusOutcome:
    """What a status sync did: `transitioned` carries `transitions`; `unreachable` carries
    `unreachable`; `rejected` carries `message`; `rate-limited` carries `retry_after`;
    `failed` carries `failure`."""

    kind: Literal[
        "transitioned", "unchanged", "not-mapped", "skipped-loop", "unreachable",
        "issue-not-found", "unauthorized", "rejected", "rate-limited", "failed",
    ]
    transitions: list[str] = field(default_factory=list)
    unreachable: Optional[Unreachable] = None
    message: str = ""
    retry_after: int = 0
    failure: Optional[Failure] = None


@dataclass(frozen=True)
class AssigneeRequest:
    """An assignee sync request: `emails` in order of preference, or `unassign`."""

    client_key: str
    issue_key: str
    emails: list[str] = field(default_factory=list)
    unassign: bool = False
    source: AssignmentSource = "platform"


@dataclass(frozen=True)
class AssigneeOutcome:
    """What an assignee sync did: `assigned` carries `account_id`; `unauthorized` carries
    `message`; `failed` carries `message` and `failure`."""

    kind: Literal[
        "assigned", "unassigned", "no-matching-user", "no-verified-email", "skipped-loop",
        "disabled", "unauthorized", "failed",
    ]
    account_id: str = ""
    message: str = ""
    failure: Optional[Failure] = None
