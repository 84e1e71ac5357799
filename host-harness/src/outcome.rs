//! JSON shapes of the exports' typed outcomes, as traces and the CLI print them.

use serde_json::{Value, json};

use crate::bindings::exports::jira_sync::plugin::outbound::{
    AssigneeOutcome, Failure, StatusOutcome,
};
use crate::bindings::jira_sync::plugin::http::Error as HttpError;

pub fn http_error(e: &HttpError) -> String {
    match e {
        HttpError::Denied(why) => format!("denied: {why}"),
        HttpError::Timeout => "timeout".to_owned(),
        HttpError::Connection(why) => format!("connection: {why}"),
        HttpError::ResponseTooLarge(limit) => format!("response-too-large: {limit}"),
        HttpError::InvalidRequest(why) => format!("invalid-request: {why}"),
    }
}

pub fn failure(f: &Failure) -> Value {
    match f {
        Failure::UnknownInstallation => json!({"type": "unknown-installation"}),
        Failure::Http(e) => json!({"type": "http", "error": http_error(e)}),
        Failure::ServerError(status) => json!({"type": "server-error", "status": status}),
        Failure::UnexpectedStatus(status) => json!({"type": "unexpected-status", "status": status}),
        Failure::BadResponse(endpoint) => json!({"type": "bad-response", "endpoint": endpoint}),
    }
}

pub fn status(o: &StatusOutcome) -> Value {
    match o {
        StatusOutcome::Transitioned(ids) => json!({"type": "transitioned", "transitions": ids}),
        StatusOutcome::Unchanged => json!({"type": "unchanged"}),
        StatusOutcome::NotMapped => json!({"type": "not-mapped"}),
        StatusOutcome::Unreachable(u) => json!({
            "type": "unreachable",
            "target": u.target,
            "transitions": u.transitions,
            "statuses_seen": u.statuses_seen,
        }),
        StatusOutcome::IssueNotFound => json!({"type": "issue-not-found"}),
        StatusOutcome::Unauthorized => json!({"type": "unauthorized"}),
        StatusOutcome::Rejected(message) => json!({"type": "rejected", "message": message}),
        StatusOutcome::RateLimited(after) => json!({"type": "rate-limited", "retry_after": after}),
        StatusOutcome::Failed(f) => json!({"type": "failed", "failure": failure(f)}),
    }
}

pub fn assignee(o: &AssigneeOutcome) -> Value {
    match o {
        AssigneeOutcome::Assigned(account) => json!({"type": "assigned", "account_id": account}),
        AssigneeOutcome::Unassigned => json!({"type": "unassigned"}),
        AssigneeOutcome::NoMatchingUser => json!({"type": "no-matching-user"}),
        AssigneeOutcome::NoVerifiedEmail => json!({"type": "no-verified-email"}),
        AssigneeOutcome::SkippedLoop => json!({"type": "skipped-loop"}),
        AssigneeOutcome::Disabled => json!({"type": "disabled"}),
        AssigneeOutcome::Unauthorized(message) => {
            json!({"type": "unauthorized", "message": message})
        }
        AssigneeOutcome::Failed((message, f)) => {
            json!({"type": "failed", "message": message, "failure": failure(f)})
        }
    }
}
