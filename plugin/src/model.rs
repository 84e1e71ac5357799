//! Plain-Rust mirrors of the WIT types, so that the core compiles and is tested natively.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolutionStrategy {
    Resolve,
    ResolveCurrentRelease,
    ResolveNextRelease,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMapping {
    pub project_id: String,
    pub resolved_status: String,
    pub unresolved_status: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    pub use_email_scope: bool,
    pub sync_status_forward: Vec<StatusMapping>,
    pub sync_status_reverse: bool,
    pub sync_forward_assignment: bool,
    pub sync_reverse_assignment: bool,
    pub resolution_strategy: ResolutionStrategy,
    pub max_transition_hops: u32,
    pub retry: RetryPolicy,
    pub clock_skew_seconds: u32,
}

/// How the client rides out Jira's 429s (SPEC 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries of one request after its first attempt.
    pub max_retries: u32,
    /// Total seconds the client may wait across the retries of one request.
    pub max_total_wait: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    pub client_key: String,
    pub shared_secret: String,
    pub base_url: String,
    pub app_key: String,
    pub config: SyncConfig,
}

pub type Header = (String, String);

/// The value of the first header called `name`, compared case-insensitively.
pub fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<Header>,
    pub body: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    Denied(String),
    Timeout,
    Connection(String),
    ResponseTooLarge(u64),
    InvalidRequest(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Denied(why) => write!(f, "denied by the sandbox: {why}"),
            HttpError::Timeout => f.write_str("timed out"),
            HttpError::Connection(why) => write!(f, "connection failed: {why}"),
            HttpError::ResponseTooLarge(limit) => {
                write!(f, "response larger than {limit} bytes")
            }
            HttpError::InvalidRequest(why) => write!(f, "invalid request: {why}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOutcome {
    Assigned(u32),
    NoUserWithEmail,
    NoLinkedGroups,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnassignOutcome {
    Unassigned(u32),
    NoLinkedGroups,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    Changed(u32),
    NoLinkedGroups,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    pub status: u16,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}
