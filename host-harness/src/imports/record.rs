//! What one call did through the imports, in order: the raw material of traces, the server's
//! logs and the demo's timeline.

use serde::Serialize;
use serde_json::Value;

/// One HTTP exchange as the guest saw it.
#[derive(Debug, Clone, Serialize)]
pub struct HttpExchange {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: String,
    /// The URL the guest asked for.
    pub url: String,
    /// The request's headers (the guest's JWT included).
    pub headers: serde_json::Map<String, Value>,
    /// The request's body (see [`body_value`]).
    pub body: Value,
    /// Jira's status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The transport or sandbox error, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A group assignment the guest asked for.
#[derive(Debug, Clone, Serialize)]
pub struct Assignment {
    /// The Jira issue whose groups were (un)assigned.
    pub issue_key: String,
    /// The assignee's email; `None` for an unassignment.
    pub email: Option<String>,
    /// `assigned`, `unassigned`, `no-user-with-email` or `no-linked-groups`.
    pub result: &'static str,
    /// The groups affected.
    pub groups: Vec<u64>,
}

/// A group status change the guest asked for.
#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    /// The Jira issue whose groups were (un)resolved.
    pub issue_key: String,
    /// `resolve` or `unresolve`.
    pub action: &'static str,
    /// The resolution strategy, for `resolve`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<&'static str>,
    /// The groups linked to the issue.
    pub groups: Vec<u64>,
    /// How many of `groups` were not already in that status.
    pub changed: u32,
}

/// Links removed (Jira deleted the issue) or moved to another key (Jira moved it).
#[derive(Debug, Clone, Serialize)]
pub struct LinkChange {
    /// The issue whose links these are.
    pub issue_key: String,
    /// The issue's new key, for a move; none for a deletion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_to: Option<String>,
    /// The groups linked to the issue.
    pub groups: Vec<u64>,
}

/// Cache operations of one call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CacheStats {
    /// `get`s that found a live entry.
    pub hits: u32,
    /// `get`s that did not.
    pub misses: u32,
    /// `set`s.
    pub sets: u32,
    /// `delete`s.
    pub deletes: u32,
}

/// One line the guest logged.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// The event name (the guest's list of them is `plugin/src/events.rs`).
    pub event: String,
    /// The event's fields.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub fields: serde_json::Map<String, Value>,
}

/// Everything one call did through the imports, in order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallRecord {
    /// HTTP exchanges.
    pub http: Vec<HttpExchange>,
    /// Group assignments asked for.
    pub assignments: Vec<Assignment>,
    /// Group status changes asked for.
    pub resolutions: Vec<Resolution>,
    /// Links removed or moved because Jira deleted or moved an issue.
    pub links: Vec<LinkChange>,
    /// Cache operations.
    pub cache: CacheStats,
    /// Log lines.
    pub logs: Vec<LogLine>,
    /// Seconds the guest asked to sleep (e.g. honouring `Retry-After`).
    pub slept: u64,
    /// What the host refused: reaching another installation than the call's
    /// (docs/behaviour.md#9).
    pub refusals: Vec<String>,
    /// `ISSUE field` of each change dropped at commit because a newer event had already been
    /// applied to that field (docs/behaviour.md#7).
    pub superseded: Vec<String>,
}

/// A body for the trace: JSON when it parses, text otherwise, null when empty.
pub fn body_value(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// Header or log-field pairs as a JSON object.
pub(super) fn string_map(pairs: &[(String, String)]) -> serde_json::Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}
