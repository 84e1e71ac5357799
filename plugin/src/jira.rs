//! A signed, cached, rate-limit-aware client for the installation's Jira site.

use std::fmt;

use serde_json::Value;

use crate::env::Env;
use crate::events;
use crate::jwt::{self, Claims};
use crate::model::{
    Credentials, HttpError, HttpRequest, Installation, Level, Method, RetryPolicy, header,
};
use crate::qsh;

/// Lifetime of cached GET results (docs/behaviour.md#5).
pub const CACHE_TTL_SECONDS: u32 = 240;
/// Lifetime of outbound tokens: `exp` = `iat` + this (docs/behaviour.md#4).
pub const TOKEN_LIFETIME_SECONDS: u64 = 300;
/// The guest never holds a larger body, whatever the host allows.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// First wait when a 429 carries no `Retry-After`; doubled after each retry.
pub const INITIAL_BACKOFF_SECONDS: u32 = 1;

/// The Jira REST endpoints the guest calls. Their names appear in log fields, in
/// [`JiraError`]'s messages and in `bad-response` failures, so [`Endpoint::as_str`] is stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /rest/api/2/issue/{key}`: the issue's project and status.
    Issue,
    /// `GET /rest/api/2/issue/{key}/transitions`: the transitions available now.
    Transitions,
    /// `POST /rest/api/2/issue/{key}/transitions`: takes one transition.
    Transition,
    /// `PUT /rest/api/2/issue/{key}/assignee`: sets or clears the assignee.
    Assignee,
    /// `GET /rest/api/2/status`: every status with its category.
    StatusList,
    /// `GET /rest/api/2/user/assignable/search`: users who may be assigned the issue.
    AssignableSearch,
    /// `GET /rest/api/3/user/email`: an account's email, even when hidden (needs the email scope).
    UserEmail,
    /// `GET /rest/api/2/project/{id}/statuses`: a project's statuses, per issue type.
    ProjectStatuses,
    /// `GET /rest/api/3/workflowscheme/project`: which workflow each issue type of a project uses
    /// (needs administration scopes).
    WorkflowScheme,
    /// `GET /rest/api/3/workflow/search`: workflows with their transitions, paginated (needs
    /// administration scopes).
    WorkflowSearch,
}

impl Endpoint {
    /// The endpoint's name in logs and failures.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Issue => "issue",
            Endpoint::Transitions => "transitions",
            Endpoint::Transition => "transition",
            Endpoint::Assignee => "assignee",
            Endpoint::StatusList => "status-list",
            Endpoint::AssignableSearch => "assignable-search",
            Endpoint::UserEmail => "user-email",
            Endpoint::ProjectStatuses => "project-statuses",
            Endpoint::WorkflowScheme => "workflow-scheme",
            Endpoint::WorkflowSearch => "workflow-search",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Why a call to Jira gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JiraError {
    /// The HTTP import gave no response.
    Http(HttpError),
    /// Jira answered a non-2xx status (other than a 429 that retries absorbed).
    Status {
        /// The endpoint called.
        endpoint: Endpoint,
        /// The status Jira answered.
        status: u16,
        /// Jira's body, for the error messages a flow may pass on.
        body: Vec<u8>,
    },
    /// Jira still answered 429 when the retry budget ran out.
    RateLimited {
        /// The endpoint called.
        endpoint: Endpoint,
        /// Seconds to wait before trying again: Jira's `Retry-After`, or the next backoff.
        retry_after: u32,
    },
    /// The body was not the JSON the endpoint documents.
    BadResponse(Endpoint),
    /// The body exceeded [`MAX_RESPONSE_BYTES`].
    TooLarge(Endpoint),
}

impl fmt::Display for JiraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JiraError::Http(e) => write!(f, "{e}"),
            JiraError::Status {
                endpoint, status, ..
            } => write!(f, "{endpoint} answered {status}"),
            JiraError::RateLimited {
                endpoint,
                retry_after,
            } => write!(f, "{endpoint} rate-limited; retry after {retry_after} s"),
            JiraError::BadResponse(endpoint) => write!(f, "{endpoint} answered unexpected JSON"),
            JiraError::TooLarge(endpoint) => write!(f, "{endpoint} answered too large a body"),
        }
    }
}

/// One query parameter, unencoded.
pub type Param<'a> = (&'a str, &'a str);

/// The installation's Jira site, as the flows see it: every request signed for the installation,
/// GETs optionally cached, 429s ridden out within the installation's [`RetryPolicy`] (and, for a
/// webhook, within its wait budget for the whole call).
pub struct Jira<'a, E: Env> {
    env: &'a mut E,
    installation: &'a Installation,
    /// Seconds this client may still wait out 429s across all its requests; `None`: no bound
    /// beyond the per-request [`RetryPolicy`].
    wait_left: Option<u32>,
}

impl<'a, E: Env> Jira<'a, E> {
    /// A client for `installation`'s site over `env`'s imports, for an outbound call: each
    /// request may wait within the installation's [`RetryPolicy`].
    pub fn new(env: &'a mut E, installation: &'a Installation) -> Self {
        Jira {
            env,
            installation,
            wait_left: None,
        }
    }

    /// A client for a webhook, while Jira waits for the answer: on top of the [`RetryPolicy`],
    /// all its requests together wait at most the installation's `webhook-max-wait-seconds`
    /// (docs/behaviour.md#6).
    pub fn for_webhook(env: &'a mut E, installation: &'a Installation) -> Self {
        Jira {
            env,
            installation,
            wait_left: Some(installation.config.webhook_max_wait_seconds),
        }
    }

    /// The host, for what the flows do besides calling Jira (logging, the platform's groups).
    pub fn env(&mut self) -> &mut E {
        self.env
    }

    /// GETs JSON; with `cache`, a live cached copy answers and a 2xx result is stored.
    pub fn get_json(
        &mut self,
        endpoint: Endpoint,
        path: &str,
        query: &[Param<'_>],
        cache: bool,
    ) -> Result<Value, JiraError> {
        if cache {
            self.get_json_cached_if(endpoint, path, query, |_| true)
        } else {
            let body = self.send(endpoint, Method::Get, path, query, None)?;
            serde_json::from_slice(&body).map_err(|_| JiraError::BadResponse(endpoint))
        }
    }

    /// GETs JSON through the cache; a fresh 2xx result is stored only if `worth_caching` says so.
    pub fn get_json_cached_if(
        &mut self,
        endpoint: Endpoint,
        path: &str,
        query: &[Param<'_>],
        worth_caching: impl Fn(&Value) -> bool,
    ) -> Result<Value, JiraError> {
        match self.cached_json(path, query) {
            Some(value) => Ok(value),
            None => self.fetch_json_caching_if(endpoint, path, query, worth_caching),
        }
    }

    /// The live cached copy of a GET, if any (a cached value that is not JSON counts as none).
    pub fn cached_json(&mut self, path: &str, query: &[Param<'_>]) -> Option<Value> {
        let url = self.url(path, query);
        let key = self.cache_key(Method::Get, &url);
        self.env
            .get(&key)
            .and_then(|hit| serde_json::from_str(&hit).ok())
    }

    /// GETs JSON from Jira without reading the cache; a 2xx result is stored if `worth_caching`
    /// says so.
    pub fn fetch_json_caching_if(
        &mut self,
        endpoint: Endpoint,
        path: &str,
        query: &[Param<'_>],
        worth_caching: impl Fn(&Value) -> bool,
    ) -> Result<Value, JiraError> {
        let url = self.url(path, query);
        let key = self.cache_key(Method::Get, &url);
        let body = self.send(endpoint, Method::Get, path, query, None)?;
        let value: Value =
            serde_json::from_slice(&body).map_err(|_| JiraError::BadResponse(endpoint))?;
        if worth_caching(&value) {
            self.env.set(&key, &value.to_string(), CACHE_TTL_SECONDS);
        }
        Ok(value)
    }

    /// Sends a signed request; 429s are retried within the policy; any 2xx body is returned.
    pub fn send(
        &mut self,
        endpoint: Endpoint,
        method: Method,
        path: &str,
        query: &[Param<'_>],
        body: Option<&Value>,
    ) -> Result<Vec<u8>, JiraError> {
        let url = self.url(path, query);
        let body = body.map(|b| serde_json::to_vec(b).expect("a JSON value serialises"));
        let mut budget = RetryBudget::new(self.installation.config.retry);
        loop {
            let request = self.signed(method, &url, body.clone());
            let response = self.env.send(request).map_err(JiraError::Http)?;
            if response.body.len() > MAX_RESPONSE_BYTES {
                return Err(JiraError::TooLarge(endpoint));
            }
            if (200..300).contains(&response.status) {
                return Ok(response.body);
            }
            if response.status != 429 {
                return Err(JiraError::Status {
                    endpoint,
                    status: response.status,
                    body: response.body,
                });
            }
            let retry_after =
                header(&response.headers, "retry-after").and_then(|v| v.trim().parse::<u32>().ok());
            let wait = budget.next_wait(retry_after);
            let reason = header(&response.headers, "ratelimit-reason").unwrap_or("");
            if !budget.allows(wait) || self.wait_left.is_some_and(|left| wait > left) {
                self.env.log(
                    Level::Warn,
                    events::RATE_LIMITED,
                    &[
                        ("endpoint", endpoint.as_str()),
                        ("retry_after", &wait.to_string()),
                        ("reason", reason),
                    ],
                );
                return Err(JiraError::RateLimited {
                    endpoint,
                    retry_after: wait,
                });
            }
            self.env.log(
                Level::Info,
                events::RATE_LIMIT_RETRY,
                &[
                    ("endpoint", endpoint.as_str()),
                    ("wait", &wait.to_string()),
                    ("reason", reason),
                ],
            );
            self.env.sleep(wait);
            budget.spend(wait, retry_after);
            if let Some(left) = &mut self.wait_left {
                *left -= wait;
            }
        }
    }

    /// A cache key owned by this installation: the client key is percent-encoded, so no other
    /// installation's key can produce the same prefix.
    pub fn cache_key(&self, method: Method, url: &str) -> String {
        format!(
            "jira-sync/v1/{}/{} {url}",
            qsh::encode(&self.installation.client_key),
            method.as_str()
        )
    }

    /// A key for facts the guest remembers itself (e.g. hidden emails), in the same namespace.
    pub fn fact_key(&self, fact: &str, subject: &str) -> String {
        format!(
            "jira-sync/v1/{}/{fact}/{}",
            qsh::encode(&self.installation.client_key),
            qsh::encode(subject)
        )
    }

    fn url(&self, path: &str, query: &[Param<'_>]) -> String {
        let mut url = format!("{}{path}", self.installation.base_url.trim_end_matches('/'));
        for (i, (key, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&qsh::encode(key));
            url.push('=');
            url.push_str(&qsh::encode(value));
        }
        url
    }

    /// The request, signed when the installation is a Connect one; for the other kinds the host
    /// adds the credential it keeps (docs/behaviour.md#10).
    fn signed(&mut self, method: Method, url: &str, body: Option<Vec<u8>>) -> HttpRequest {
        let mut headers = Vec::with_capacity(3);
        if let Credentials::Connect(secret) = &self.installation.credentials {
            let now = self.env.now();
            let hash = qsh::qsh_for_url(method.as_str(), url, &self.installation.base_url);
            let token = jwt::sign(
                &Claims {
                    iss: &self.installation.app_key,
                    iat: now,
                    exp: now + TOKEN_LIFETIME_SECONDS,
                    qsh: &hash,
                },
                secret,
            );
            headers.push(("Authorization".to_owned(), format!("JWT {token}")));
        }
        headers.push(("Accept".to_owned(), "application/json".to_owned()));
        if body.is_some() {
            headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
        }
        HttpRequest {
            method,
            url: url.to_owned(),
            headers,
            body,
        }
    }
}

/// One request's use of its [`RetryPolicy`]: the retries taken, the seconds waited, and the
/// fallback wait for a 429 without `Retry-After` (docs/behaviour.md#6).
struct RetryBudget {
    policy: RetryPolicy,
    retries: u32,
    waited: u32,
    backoff: u32,
}

impl RetryBudget {
    fn new(policy: RetryPolicy) -> Self {
        RetryBudget {
            policy,
            retries: 0,
            waited: 0,
            backoff: INITIAL_BACKOFF_SECONDS,
        }
    }

    /// Jira's `Retry-After` when it sent one, else the current backoff.
    fn next_wait(&self, retry_after: Option<u32>) -> u32 {
        retry_after.unwrap_or(self.backoff)
    }

    /// Whether one more retry after `wait` seconds stays within both bounds of the policy.
    fn allows(&self, wait: u32) -> bool {
        self.retries < self.policy.max_retries
            && self.waited.saturating_add(wait) <= self.policy.max_total_wait
    }

    /// Records a retry after `wait`; the backoff doubles only while Jira names no wait itself.
    fn spend(&mut self, wait: u32, retry_after: Option<u32>) {
        self.waited += wait;
        self.retries += 1;
        if retry_after.is_none() {
            self.backoff = self.backoff.saturating_mul(2);
        }
    }
}
