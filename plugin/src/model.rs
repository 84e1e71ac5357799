//! Plain-Rust mirrors of the WIT types, so that the core compiles and is tested natively.
//!
//! Also the one definition of an installation's configuration defaults, which hosts reuse when a
//! setting is left out.

use std::fmt;

/// Default [`SyncConfig::max_transition_hops`]: transitions one status sync may take when the
/// installation does not say (docs/behaviour.md#2.7).
pub const DEFAULT_MAX_TRANSITION_HOPS: u32 = 5;
/// Default [`RetryPolicy::max_retries`]: retries of one rate-limited request (docs/behaviour.md#6).
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Default [`RetryPolicy::max_total_wait`], in seconds: how long one request may spend waiting out
/// 429s before it fails as rate-limited (docs/behaviour.md#6).
pub const DEFAULT_MAX_TOTAL_WAIT_SECONDS: u32 = 60;
/// Default [`SyncConfig::clock_skew_seconds`]: no leeway on an inbound token's `exp` unless the
/// host asks for it (docs/behaviour.md#1.2).
pub const DEFAULT_CLOCK_SKEW_SECONDS: u32 = 0;
/// Default [`SyncConfig::max_token_lifetime_seconds`]: the longest an inbound token may live,
/// `exp - iat` (docs/behaviour.md#1.2). Jira's own webhook tokens live 180 s.
pub const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS: u32 = 3600;
/// Default [`SyncConfig::webhook_max_wait_seconds`]: how long one webhook may wait out Jira's 429s
/// in all, since Jira is waiting for the answer (docs/behaviour.md#6).
pub const DEFAULT_WEBHOOK_MAX_WAIT_SECONDS: u32 = 5;
/// Default [`SyncConfig::exact_status_mapping`]: off, so that an issue already in a status of the
/// target's side (done or not done) is left where a person put it (docs/behaviour.md#2.4).
pub const DEFAULT_EXACT_STATUS_MAPPING: bool = false;
/// Default [`SyncConfig::max_email_lookups`]: hidden emails one assignee search may ask the email
/// API for (docs/behaviour.md#3.2).
pub const DEFAULT_MAX_EMAIL_LOOKUPS: u32 = 10;

/// How the host resolves its groups when Jira moves an issue into a `done` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolutionStrategy {
    /// Resolve now.
    Resolve,
    /// Resolve in the release currently deployed.
    ResolveCurrentRelease,
    /// Resolve in the next release.
    ResolveNextRelease,
}

/// The Jira statuses a group state maps to, for one Jira project (outbound status sync).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMapping {
    /// Jira project id, e.g. "10000"; compared with the issue's `fields.project.id`.
    pub project_id: String,
    /// Jira status id the issue should reach when the group is resolved.
    pub resolved_status: String,
    /// Jira status id the issue should reach when the group is unresolved.
    pub unresolved_status: String,
}

/// One installation's sync settings: which directions run and within which bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// The app may call Jira's email API for users who hide their email.
    pub use_email_scope: bool,
    /// Platform -> Jira status mapping, one entry per Jira project; unlisted projects are skipped.
    pub sync_status_forward: Vec<StatusMapping>,
    /// Jira -> platform: resolve or unresolve groups when the issue enters or leaves `done`.
    pub sync_status_reverse: bool,
    /// Platform -> Jira: push group assignments to the Jira assignee.
    pub sync_forward_assignment: bool,
    /// Jira -> platform: assign groups when the Jira assignee changes.
    pub sync_reverse_assignment: bool,
    /// How the reverse status sync resolves groups.
    pub resolution_strategy: ResolutionStrategy,
    /// Transitions one status sync may take ([`DEFAULT_MAX_TRANSITION_HOPS`] by default); the
    /// guest clamps it to `1..=`[`crate::outbound::MAX_HOPS_CEILING`].
    pub max_transition_hops: u32,
    /// Bounds on riding out Jira's 429s.
    pub retry: RetryPolicy,
    /// Seconds of leeway on an inbound token's `exp`, for a drifting clock
    /// ([`DEFAULT_CLOCK_SKEW_SECONDS`] by default); also the leeway on its `iat`.
    pub clock_skew_seconds: u32,
    /// The longest an inbound token may live, `exp - iat` in seconds
    /// ([`DEFAULT_MAX_TOKEN_LIFETIME_SECONDS`] by default).
    pub max_token_lifetime_seconds: u32,
    /// Seconds one webhook may wait out Jira's 429s in all, across its requests
    /// ([`DEFAULT_WEBHOOK_MAX_WAIT_SECONDS`] by default); outbound calls keep [`Self::retry`].
    pub webhook_max_wait_seconds: u32,
    /// Only the exact mapped status counts as already there for a status sync; off by default
    /// ([`DEFAULT_EXACT_STATUS_MAPPING`]), when any status of the target's side does.
    pub exact_status_mapping: bool,
    /// Hidden emails one assignee search may look up through the email API
    /// ([`DEFAULT_MAX_EMAIL_LOOKUPS`] by default).
    pub max_email_lookups: u32,
}

/// Where a delivery stands, as claiming it found it (docs/behaviour.md#7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This call holds the delivery now: handle it, then mark it handled.
    Claimed,
    /// It was handled before: acknowledge it without effects.
    Handled,
    /// Another call is handling it right now: answer so that Jira retries later.
    InProgress,
}

/// The issue field an ordering watermark belongs to; each field is ordered on its own
/// (docs/behaviour.md#7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The status.
    Status,
    /// The assignee.
    Assignee,
}

impl Field {
    /// The field's name, as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Status => "status",
            Field::Assignee => "assignee",
        }
    }
}

/// How the client rides out Jira's 429s (docs/behaviour.md#6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries of one request after its first attempt.
    pub max_retries: u32,
    /// Total seconds the client may wait across the retries of one request.
    pub max_total_wait: u32,
}

impl Default for RetryPolicy {
    /// [`DEFAULT_MAX_RETRIES`] retries within [`DEFAULT_MAX_TOTAL_WAIT_SECONDS`].
    fn default() -> Self {
        RetryPolicy {
            max_retries: DEFAULT_MAX_RETRIES,
            max_total_wait: DEFAULT_MAX_TOTAL_WAIT_SECONDS,
        }
    }
}

/// How Jira proves a delivery comes from the installation's site, and how the guest's requests
/// to the site are authorised (docs/behaviour.md#10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Atlassian Connect: the `sharedSecret`, which signs tokens both ways (HS256, with a qsh).
    Connect(String),
    /// An OAuth 2.0 (3LO) app: deliveries carry a bearer JWT signed with the client secret; the
    /// host authorises the guest's requests.
    Oauth(OauthApp),
    /// An administrator's webhook with this secret (`X-Hub-Signature`); the host authorises the
    /// guest's requests.
    AdminWebhook(String),
    /// A Forge app: the host verified the delivery and authorises the guest's requests.
    Forge,
}

impl Credentials {
    /// The kind's name, for logs and answers.
    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::Connect(_) => "connect",
            Credentials::Oauth(_) => "oauth",
            Credentials::AdminWebhook(_) => "admin-webhook",
            Credentials::Forge => "forge",
        }
    }
}

/// The client id and secret of an OAuth 2.0 (3LO) app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OauthApp {
    /// The client id: the `iss` of the app's deliveries' tokens.
    pub client_id: String,
    /// The client secret: signs those tokens (HS256).
    pub client_secret: String,
}

/// One Jira Cloud site that installed the app, in any of the ways Jira talks to apps, as the
/// host stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    /// The host's id of the installation: the Connect `clientKey` (the `iss` of its deliveries'
    /// tokens) or the id the host chose for another kind; also the cache namespace.
    pub client_key: String,
    /// How deliveries and requests are authenticated.
    pub credentials: Credentials,
    /// The base URL the guest reaches the site at, e.g. `https://acme.atlassian.net`; it may
    /// carry a path.
    pub base_url: String,
    /// The app key: the `iss` of the tokens the guest signs.
    pub app_key: String,
    /// What to sync, and within which bounds.
    pub config: SyncConfig,
}

/// A header name and value; names compare case-insensitively (see [`header`]).
pub type Header = (String, String);

/// The value of the first header called `name`, compared case-insensitively.
pub fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The HTTP methods the guest sends to Jira.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Reads: issue, transitions, statuses, users.
    Get,
    /// Creates: a transition.
    Post,
    /// Replaces: the assignee.
    Put,
    /// Removes; part of the WIT, unused by the flows today.
    Delete,
}

impl Method {
    /// The method as it goes on the wire and into the qsh's canonical request.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// A signed request to the installation's Jira site, ready for the HTTP import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Absolute URL, query string included.
    pub url: String,
    /// Request headers, `Authorization` included.
    pub headers: Vec<Header>,
    /// JSON body, if any.
    pub body: Option<Vec<u8>>,
}

/// Jira's answer, whatever its status: a 429 or a 500 is a response, not an [`HttpError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (e.g. `Retry-After`).
    pub headers: Vec<Header>,
    /// Response body.
    pub body: Vec<u8>,
}

/// Why the HTTP import gave no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The sandbox refused the request (e.g. a host other than the installation's site).
    Denied(String),
    /// No response within the host's timeout.
    Timeout,
    /// The connection failed.
    Connection(String),
    /// The response body exceeded the host's limit, in bytes.
    ResponseTooLarge(u64),
    /// The request itself is malformed (e.g. an unparsable URL).
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

/// What the host did when asked to assign an issue's linked groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOutcome {
    /// This many linked groups are now assigned to the user.
    Assigned(u32),
    /// No platform user has this (verified) email; nothing changed.
    NoUserWithEmail,
    /// No group is linked to the issue; nothing changed.
    NoLinkedGroups,
}

/// What the host did when asked to unassign an issue's linked groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnassignOutcome {
    /// This many linked groups are now unassigned.
    Unassigned(u32),
    /// No group is linked to the issue; nothing changed.
    NoLinkedGroups,
}

/// What the host did when asked to resolve or unresolve an issue's linked groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// This many linked groups changed status.
    Changed(u32),
    /// No group is linked to the issue; nothing changed.
    NoLinkedGroups,
}

/// Severity of a log event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Step-by-step detail.
    Trace,
    /// Diagnostics (e.g. a cache hit).
    Debug,
    /// A decision the flow took.
    Info,
    /// Something refused or skipped.
    Warn,
    /// A failure the host should look at.
    Error,
}

/// An inbound webhook delivery as the host received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// Method, e.g. "POST".
    pub method: String,
    /// Path, e.g. "/extensions/jira/issue-updated/".
    pub path: String,
    /// Raw query string without the leading `?`; part of the token's qsh.
    pub query: String,
    /// Request headers.
    pub headers: Vec<Header>,
    /// Request body: Jira's JSON payload.
    pub body: Vec<u8>,
}

/// The guest's answer to a webhook delivery; every failure is an answer, never a trap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    /// HTTP status code; Jira retries a 5xx.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<Header>,
    /// Response body (JSON or empty).
    pub body: Vec<u8>,
}

/// A verified delivery worth processing, as [`crate::webhook::accept`] hands it to the host's
/// queue (the WIT's `webhook.job`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The installation whose token verified the delivery.
    pub client_key: String,
    /// Jira's `X-Atlassian-Webhook-Identifier`, when the delivery has one (the host keeps one job
    /// per identifier).
    pub delivery_id: Option<String>,
    /// The webhook body as received.
    pub body: Vec<u8>,
}

/// What [`crate::webhook::accept`] decided about a delivery (the WIT's `webhook.acceptance`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    /// Nothing to do later: answer Jira with this (not found, refused, malformed, nothing to
    /// sync).
    Answered(WebhookResponse),
    /// Verified and worth processing: the host records the job durably, answers Jira 200, then
    /// calls [`crate::webhook::process`].
    Queued(Job),
}

/// How [`crate::webhook::process`] ended a job (the WIT's `webhook.job-outcome`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Finished: its effects were applied, or there was nothing to apply, or a permanent failure
    /// was logged. Also a duplicate of a handled delivery.
    Done,
    /// A transient failure: nothing was applied; run the job again after at least this many
    /// seconds.
    RetryAfter(u32),
    /// An unexpected failure: nothing was applied; the message says why. The host may retry
    /// with backoff a bounded number of times.
    Failed(String),
}
