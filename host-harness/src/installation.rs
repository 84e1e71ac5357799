//! An installation as the host stores and configures it: the Jira site, its shared secret, its
//! sync configuration, and the host-side limits of one call for it. The defaults live here and
//! only here; scenario files, the admin API and the stock backends all read them from this type.

use std::collections::BTreeMap;

use jira_sync_plugin::model::{
    DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_EXACT_STATUS_MAPPING, DEFAULT_MAX_EMAIL_LOOKUPS,
    DEFAULT_MAX_TOKEN_LIFETIME_SECONDS, DEFAULT_MAX_TRANSITION_HOPS,
    DEFAULT_WEBHOOK_MAX_WAIT_SECONDS, RetryPolicy,
};
use serde::{Deserialize, Serialize};

use crate::limits::Limits;

/// One Jira site that installed the app, with everything the host keeps about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallationSpec {
    /// Atlassian Connect `clientKey`: the `iss` of Jira's inbound tokens.
    pub client_key: String,
    /// Atlassian Connect `sharedSecret`: signs tokens both ways.
    pub shared_secret: String,
    /// The site's base URL; the only origin the guest may reach during a call for it.
    pub base_url: String,
    /// The app key, the `iss` of the tokens the component signs.
    pub app_key: String,
    /// The app may call Jira's email API for users who hide their email.
    #[serde(default)]
    pub use_email_scope: bool,
    /// Jira project id -> status ids.
    #[serde(default)]
    pub sync_status_forward: BTreeMap<String, StatusPair>,
    /// Jira -> platform status sync.
    #[serde(default = "yes")]
    pub sync_status_reverse: bool,
    /// Platform -> Jira assignee sync.
    #[serde(default = "yes")]
    pub sync_forward_assignment: bool,
    /// Jira -> platform assignee sync.
    #[serde(default = "yes")]
    pub sync_reverse_assignment: bool,
    /// How groups are resolved when Jira moves an issue into a done status.
    #[serde(default)]
    pub resolution_strategy: Strategy,
    /// Transitions one status sync may take (docs/behaviour.md#2.7).
    #[serde(default = "default_hops")]
    pub max_transition_hops: u32,
    /// How 429s are ridden out (docs/behaviour.md#6).
    #[serde(default)]
    pub retry: RetrySpec,
    /// Leeway on inbound tokens' `exp` and `iat`, in seconds (docs/behaviour.md#1.2).
    #[serde(default = "default_clock_skew")]
    pub clock_skew_seconds: u32,
    /// The longest an inbound token may live, `exp - iat`, in seconds (docs/behaviour.md#1.2).
    #[serde(default = "default_max_token_lifetime")]
    pub max_token_lifetime_seconds: u32,
    /// Seconds one webhook may wait out Jira's 429s in all (docs/behaviour.md#6).
    #[serde(default = "default_webhook_max_wait")]
    pub webhook_max_wait_seconds: u32,
    /// Only the exact mapped status counts as already there for a status sync
    /// (docs/behaviour.md#2.4).
    #[serde(default = "default_exact_status_mapping")]
    pub exact_status_mapping: bool,
    /// Hidden emails one assignee search may look up through the email API
    /// (docs/behaviour.md#3.2).
    #[serde(default = "default_max_email_lookups")]
    pub max_email_lookups: u32,
    /// What one call for this installation may consume (host-side; the guest never sees it).
    #[serde(default)]
    pub limits: Limits,
}

impl InstallationSpec {
    /// An installation of `app_key` on the site at `base_url`, every other setting at its
    /// default.
    pub fn new(client_key: &str, shared_secret: &str, base_url: &str, app_key: &str) -> Self {
        InstallationSpec {
            client_key: client_key.to_owned(),
            shared_secret: shared_secret.to_owned(),
            base_url: base_url.to_owned(),
            app_key: app_key.to_owned(),
            use_email_scope: false,
            sync_status_forward: BTreeMap::new(),
            sync_status_reverse: yes(),
            sync_forward_assignment: yes(),
            sync_reverse_assignment: yes(),
            resolution_strategy: Strategy::default(),
            max_transition_hops: default_hops(),
            retry: RetrySpec::default(),
            clock_skew_seconds: default_clock_skew(),
            max_token_lifetime_seconds: default_max_token_lifetime(),
            webhook_max_wait_seconds: default_webhook_max_wait(),
            exact_status_mapping: default_exact_status_mapping(),
            max_email_lookups: default_max_email_lookups(),
            limits: Limits::default(),
        }
    }
}

fn default_hops() -> u32 {
    DEFAULT_MAX_TRANSITION_HOPS
}

fn default_clock_skew() -> u32 {
    DEFAULT_CLOCK_SKEW_SECONDS
}

fn default_max_token_lifetime() -> u32 {
    DEFAULT_MAX_TOKEN_LIFETIME_SECONDS
}

fn default_webhook_max_wait() -> u32 {
    DEFAULT_WEBHOOK_MAX_WAIT_SECONDS
}

fn default_exact_status_mapping() -> bool {
    DEFAULT_EXACT_STATUS_MAPPING
}

fn default_max_email_lookups() -> u32 {
    DEFAULT_MAX_EMAIL_LOOKUPS
}

fn yes() -> bool {
    true
}

/// Bounds on riding out Jira's rate limits, in the host's configuration format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Retries of one request after its first attempt.
    pub max_retries: u32,
    /// Seconds the component may wait in total across the retries of one request.
    pub max_total_wait: u32,
}

impl Default for RetrySpec {
    fn default() -> Self {
        let policy = RetryPolicy::default();
        RetrySpec {
            max_retries: policy.max_retries,
            max_total_wait: policy.max_total_wait,
        }
    }
}

/// The Jira status ids of one project's two group states.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusPair {
    /// The status a resolved group's issue is moved to.
    pub resolved: String,
    /// The status an unresolved group's issue is moved to.
    pub unresolved: String,
}

/// How the platform resolves its groups when Jira moves an issue into a done status.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Resolve now.
    #[default]
    Resolve,
    /// Resolve in the release currently deployed.
    ResolveCurrentRelease,
    /// Resolve in the next release.
    ResolveNextRelease,
}
