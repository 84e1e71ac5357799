//! The scenario file: the platform's state, Jira's scripted answers, and the steps to play.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bindings::jira_sync::plugin::types::{
    Installation, ProjectStatusMapping, ResolutionStrategy, RetryPolicy, SyncConfig,
};
use crate::limits::Limits;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The host clock at the start, in Unix seconds.
    pub now: u64,
    pub installation: InstallationSpec,
    /// More installations, e.g. to show that cache entries never cross installations.
    #[serde(default)]
    pub other_installations: Vec<InstallationSpec>,
    /// Jira issue key -> linked group ids (of `installation`).
    #[serde(default)]
    pub links: BTreeMap<String, Vec<u64>>,
    /// Verified email -> platform user id.
    #[serde(default)]
    pub users: BTreeMap<String, u64>,
    /// Group id -> its state at the start.
    #[serde(default)]
    pub groups: BTreeMap<String, GroupSpec>,
    /// Jira's scripted answers.
    #[serde(default)]
    pub http: Vec<HttpStub>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallationSpec {
    pub client_key: String,
    pub shared_secret: String,
    pub base_url: String,
    pub app_key: String,
    #[serde(default)]
    pub use_email_scope: bool,
    /// Jira project id -> status ids.
    #[serde(default)]
    pub sync_status_forward: BTreeMap<String, StatusPair>,
    #[serde(default = "yes")]
    pub sync_status_reverse: bool,
    #[serde(default = "yes")]
    pub sync_forward_assignment: bool,
    #[serde(default = "yes")]
    pub sync_reverse_assignment: bool,
    #[serde(default)]
    pub resolution_strategy: Strategy,
    #[serde(default = "default_hops")]
    pub max_transition_hops: u32,
    #[serde(default)]
    pub retry: RetrySpec,
    /// Leeway on inbound tokens' `exp`, in seconds.
    #[serde(default)]
    pub clock_skew_seconds: u32,
    /// What one call for this installation may consume (host-side; the guest never sees it).
    #[serde(default)]
    pub limits: Limits,
}

fn default_hops() -> u32 {
    5
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    pub max_retries: u32,
    pub max_total_wait: u32,
}

impl Default for RetrySpec {
    fn default() -> Self {
        RetrySpec {
            max_retries: 3,
            max_total_wait: 60,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusPair {
    pub resolved: String,
    pub unresolved: String,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    #[default]
    Resolve,
    ResolveCurrentRelease,
    ResolveNextRelease,
}

impl InstallationSpec {
    pub fn to_installation(&self) -> Installation {
        Installation {
            client_key: self.client_key.clone(),
            shared_secret: self.shared_secret.clone(),
            base_url: self.base_url.clone(),
            app_key: self.app_key.clone(),
            config: SyncConfig {
                use_email_scope: self.use_email_scope,
                sync_status_forward: self
                    .sync_status_forward
                    .iter()
                    .map(|(project, pair)| ProjectStatusMapping {
                        project_id: project.clone(),
                        resolved_status: pair.resolved.clone(),
                        unresolved_status: pair.unresolved.clone(),
                    })
                    .collect(),
                sync_status_reverse: self.sync_status_reverse,
                sync_forward_assignment: self.sync_forward_assignment,
                sync_reverse_assignment: self.sync_reverse_assignment,
                resolution_strategy: match self.resolution_strategy {
                    Strategy::Resolve => ResolutionStrategy::Resolve,
                    Strategy::ResolveCurrentRelease => ResolutionStrategy::ResolveCurrentRelease,
                    Strategy::ResolveNextRelease => ResolutionStrategy::ResolveNextRelease,
                },
                max_transition_hops: self.max_transition_hops,
                retry: RetryPolicy {
                    max_retries: self.retry.max_retries,
                    max_total_wait_seconds: self.retry.max_total_wait,
                },
                clock_skew_seconds: self.clock_skew_seconds,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    #[serde(default)]
    pub status: GroupStatusSpec,
    #[serde(default)]
    pub assignee: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatusSpec {
    #[default]
    Unresolved,
    Resolved,
}

/// A scripted Jira answer, matched by method, path and query (in any order).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpStub {
    #[serde(default = "get")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON, or a string sent as it is.
    #[serde(default)]
    pub body: Value,
    /// Answer every match instead of the first one only.
    #[serde(default)]
    pub repeat: bool,
    /// Answer with this transport error instead: "timeout", "connection", "too-large".
    #[serde(default)]
    pub error: Option<String>,
}

fn get() -> String {
    "GET".to_owned()
}

fn ok() -> u16 {
    200
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    Webhook(Box<WebhookStep>),
    SyncStatusOutbound(StatusStep),
    SyncAssigneeOutbound(AssigneeStep),
    /// Moves the host clock forward by this many seconds.
    AdvanceClock(u64),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookStep {
    #[serde(default = "post")]
    pub method: String,
    #[serde(default = "webhook_path")]
    pub path: String,
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON, or a string sent as it is (e.g. a malformed body).
    #[serde(default)]
    pub body: Value,
    #[serde(default)]
    pub sign: Sign,
}

fn post() -> String {
    "POST".to_owned()
}

fn webhook_path() -> String {
    "/extensions/jira/issue-updated/".to_owned()
}

/// `true` signs like Jira; an object signs with overrides, to forge the tokens tests need.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub enum Sign {
    #[default]
    No,
    Jira(bool),
    With(Box<SignOverrides>),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignOverrides {
    /// Secret instead of the installation's.
    pub secret: Option<String>,
    /// `iss` instead of the client key.
    pub iss: Option<String>,
    /// Header `alg`: "none" leaves the signature empty; any other value is HMAC-signed as usual.
    pub alg: Option<String>,
    /// `exp` relative to now (default 180).
    pub exp_in: Option<i64>,
    /// Sign the qsh of another method, path or query.
    pub qsh_method: Option<String>,
    pub qsh_path: Option<String>,
    pub qsh_query: Option<String>,
    /// Leave these claims out.
    #[serde(default)]
    pub omit: Vec<String>,
    /// Authorization scheme (default "JWT"), e.g. "Bearer".
    pub scheme: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusStep {
    pub issue_key: String,
    pub resolved: bool,
    #[serde(default)]
    pub dry_run: bool,
    /// Another installation's client key (default: the scenario's).
    #[serde(default)]
    pub client_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssigneeStep {
    pub issue_key: String,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub unassign: bool,
    #[serde(default)]
    pub source: Source,
    #[serde(default)]
    pub client_key: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    #[default]
    Platform,
    ThisInstallation,
}

impl Scenario {
    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        Ok(serde_json::from_str(text)?)
    }
}
