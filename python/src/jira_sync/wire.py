"""Between this package's dataclasses and wasmtime-py's component values.

wasmtime-py passes a record as a `Record` whose attributes are its fields under their WIT
(kebab-case) names, and a variant as a `Variant(tag, payload)` only when its cases cannot be
told apart by their Python types; a `result`, an `option` and the other variants (e.g.
`changed(u32)` or `no-linked-groups`) are the payload itself, or None.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from wasmtime.component import Record, Variant

from .types import (
    AssigneeOutcome,
    AssigneeRequest,
    AssignOutcome,
    Failure,
    HttpError,
    HttpRequest,
    HttpResponse,
    Installation,
    StatusChange,
    StatusOutcome,
    StatusRequest,
    UnassignOutcome,
    Unreachable,
    WebhookRequest,
    WebhookResponse,
)


def record(**fields: Any) -> Record:
    """A record to pass in: wasmtime-py reads its fields by their WIT (kebab-case) names."""
    value = Record()
    for name, field in fields.items():
        setattr(value, name.replace("_", "-"), field)
    return value


# --- imports: what the guest passes, what the platform answers ------------------------------


def http_request(raw: Any) -> HttpRequest:
    body = None if raw.body is None else bytes(raw.body)
    return HttpRequest(raw.method.upper(), raw.url, [tuple(h) for h in raw.headers], body)  # type: ignore[arg-type]


def http_error(error: HttpError) -> Variant:
    if error.kind == "timeout":
        return Variant("timeout")
    if error.kind == "response-too-large":
        return Variant("response-too-large", error.limit)
    return Variant(error.kind, error.message)


def http_result(result: Union[HttpResponse, HttpError]) -> Any:
    if isinstance(result, HttpError):
        return http_error(result)
    return record(status=result.status, headers=list(result.headers), body=bytes(result.body))


def installation(found: Installation) -> Record:
    c = found.credentials
    credentials = {
        "connect": lambda: Variant("connect", c.secret),
        "admin-webhook": lambda: Variant("admin-webhook", c.secret),
        "oauth": lambda: Variant("oauth", record(client_id=c.client_id, client_secret=c.client_secret)),
        "forge": lambda: Variant("forge"),
    }[c.kind]()
    config = found.config
    return record(
        client_key=found.client_key,
        credentials=credentials,
        base_url=found.base_url,
        app_key=found.app_key,
        config=record(
            use_email_scope=config.use_email_scope,
            sync_status_forward=[
                record(project_id=m.project_id, resolved_status=m.resolved_status,
                       unresolved_status=m.unresolved_status)
                for m in config.sync_status_forward
            ],
            sync_status_reverse=config.sync_status_reverse,
            sync_forward_assignment=config.sync_forward_assignment,
            sync_reverse_assignment=config.sync_reverse_assignment,
            resolution_strategy=config.resolution_strategy,
            max_transition_hops=config.max_transition_hops,
            retry=record(max_retries=config.retry.max_retries,
                         max_total_wait_seconds=config.retry.max_total_wait_seconds),
            clock_skew_seconds=config.clock_skew_seconds,
            max_token_lifetime_seconds=config.max_token_lifetime_seconds,
            webhook_max_wait_seconds=config.webhook_max_wait_seconds,
            exact_status_mapping=config.exact_status_mapping,
            max_email_lookups=config.max_email_lookups,
        ),
    )


def assign_outcome(outcome: AssignOutcome) -> Variant:
    return Variant("assigned", outcome.groups) if outcome.kind == "assigned" else Variant(outcome.kind)


def count_or_none(outcome: Union[UnassignOutcome, StatusChange]) -> Optional[int]:
    """`unassigned(n)` / `changed(n)` as n, `no-linked-groups` as None."""
    return None if outcome.kind == "no-linked-groups" else outcome.groups


# --- exports: what the platform asks, what the guest answers ---------------------------------


def webhook_request(request: WebhookRequest) -> Record:
    return record(method=request.method, path=request.path, query=request.query,
                  headers=list(request.headers), body=bytes(request.body))


def webhook_response(raw: Any) -> WebhookResponse:
    return WebhookResponse(raw.status, [tuple(h) for h in raw.headers], bytes(raw.body))  # type: ignore[misc]


def status_request(request: StatusRequest) -> Record:
    return record(client_key=request.client_key, issue_key=request.issue_key, resolved=request.resolved,
                  dry_run=request.dry_run, source=request.source)


def assignee_request(request: AssigneeRequest) -> Record:
    # `assignee-target` is `emails(list)` or `unassign`: a list, or None.
    target = None if request.unassign else list(request.emails)
    return record(client_key=request.client_key, issue_key=request.issue_key, target=target,
                  source=request.source)


def _http_error_from(raw: Variant) -> HttpError:
    if raw.tag == "timeout":
        return HttpError("timeout")
    if raw.tag == "response-too-large":
        return HttpError("response-too-large", limit=raw.payload)
    return HttpError(raw.tag, raw.payload)  # type: ignore[arg-type]


def failure(raw: Variant) -> Failure:
    tag, payload = raw.tag, raw.payload
    if tag == "http":
        return Failure("http", error=_http_error_from(payload))
    if tag in ("server-error", "unexpected-status"):
        return Failure(tag, status=payload)  # type: ignore[arg-type]
    if tag == "bad-response":
        return Failure(tag, endpoint=payload)
    return Failure(tag)  # type: ignore[arg-type]


def status_outcome(raw: Variant) -> StatusOutcome:
    tag, payload = raw.tag, raw.payload
    if tag == "transitioned":
        return StatusOutcome(tag, transitions=list(payload))
    if tag == "unreachable":
        return StatusOutcome(tag, unreachable=Unreachable(payload.target, list(payload.transitions),
                                                          list(getattr(payload, "statuses-seen"))))
    if tag == "rejected":
        return StatusOutcome(tag, message=payload)
    if tag == "rate-limited":
        return StatusOutcome(tag, retry_after=payload)
    if tag == "failed":
        return StatusOutcome(tag, failure=failure(payload))
    return StatusOutcome(tag)  # type: ignore[arg-type]


def assignee_outcome(raw: Variant) -> AssigneeOutcome:
    tag, payload = raw.tag, raw.payload
    if tag == "assigned":
        return AssigneeOutcome(tag, account_id=payload)
    if tag == "unauthorized":
        return AssigneeOutcome(tag, message=payload)
    if tag == "failed":
        message, why = payload
        return AssigneeOutcome(tag, message=message, failure=failure(why))
    return AssigneeOutcome(tag)  # type: ignore[arg-type]
