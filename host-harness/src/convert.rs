//! The one conversion layer between the WIT's generated types and the host's and the plugin's own
//! types. Each conversion is written once, as a `From` impl, grouped by direction:
//!
//! - the host's configuration → WIT (what the installations import hands the guest);
//! - WIT → the plugin's native core (what the benchmark's native baseline runs on);
//! - WIT → trace text and JSON (what traces, the server and the CLI print).

use jira_sync_plugin::model;
use serde_json::{Value, json};

use crate::installation::{InstallationSpec, Strategy};
use crate::wit::exports::jira_sync::plugin::mapping_check::{
    CheckError, IssueTypeCheck, ProjectOutcome, ProjectReport, StatusCheck,
};
use crate::wit::exports::jira_sync::plugin::outbound::{AssigneeOutcome, Failure, StatusOutcome};
use crate::wit::exports::jira_sync::plugin::webhook;
use crate::wit::jira_sync::plugin::http::{Error as HttpError, Method};
use crate::wit::jira_sync::plugin::log::Level;
use crate::wit::jira_sync::plugin::types::{
    Credentials, Installation, OauthApp, ProjectStatusMapping, ResolutionStrategy, RetryPolicy,
    SyncConfig,
};

// ---- The host's configuration → WIT ----

impl From<&InstallationSpec> for Installation {
    fn from(spec: &InstallationSpec) -> Self {
        Installation {
            client_key: spec.client_key.clone(),
            credentials: spec.guest_credentials().into(),
            base_url: spec.base_url.clone(),
            app_key: spec.app_key.clone(),
            config: SyncConfig {
                use_email_scope: spec.use_email_scope,
                sync_status_forward: spec
                    .sync_status_forward
                    .iter()
                    .map(|(project, pair)| ProjectStatusMapping {
                        project_id: project.clone(),
                        resolved_status: pair.resolved.clone(),
                        unresolved_status: pair.unresolved.clone(),
                    })
                    .collect(),
                sync_status_reverse: spec.sync_status_reverse,
                sync_forward_assignment: spec.sync_forward_assignment,
                sync_reverse_assignment: spec.sync_reverse_assignment,
                resolution_strategy: spec.resolution_strategy.into(),
                max_transition_hops: spec.max_transition_hops,
                retry: RetryPolicy {
                    max_retries: spec.retry.max_retries,
                    max_total_wait_seconds: spec.retry.max_total_wait,
                },
                clock_skew_seconds: spec.clock_skew_seconds,
                max_token_lifetime_seconds: spec.max_token_lifetime_seconds,
                webhook_max_wait_seconds: spec.webhook_max_wait_seconds,
                exact_status_mapping: spec.exact_status_mapping,
                max_email_lookups: spec.max_email_lookups,
            },
        }
    }
}

impl From<model::Credentials> for Credentials {
    fn from(credentials: model::Credentials) -> Self {
        match credentials {
            model::Credentials::Connect(secret) => Credentials::Connect(secret),
            model::Credentials::Oauth(app) => Credentials::Oauth(OauthApp {
                client_id: app.client_id,
                client_secret: app.client_secret,
            }),
            model::Credentials::AdminWebhook(secret) => Credentials::AdminWebhook(secret),
            model::Credentials::Forge => Credentials::Forge,
        }
    }
}

impl From<Strategy> for ResolutionStrategy {
    fn from(strategy: Strategy) -> Self {
        match strategy {
            Strategy::Resolve => ResolutionStrategy::Resolve,
            Strategy::ResolveCurrentRelease => ResolutionStrategy::ResolveCurrentRelease,
            Strategy::ResolveNextRelease => ResolutionStrategy::ResolveNextRelease,
        }
    }
}

// ---- WIT → the plugin's native core ----

impl From<Installation> for model::Installation {
    fn from(i: Installation) -> Self {
        model::Installation {
            client_key: i.client_key,
            credentials: i.credentials.into(),
            base_url: i.base_url,
            app_key: i.app_key,
            config: i.config.into(),
        }
    }
}

impl From<Credentials> for model::Credentials {
    fn from(credentials: Credentials) -> Self {
        match credentials {
            Credentials::Connect(secret) => model::Credentials::Connect(secret),
            Credentials::Oauth(app) => model::Credentials::Oauth(model::OauthApp {
                client_id: app.client_id,
                client_secret: app.client_secret,
            }),
            Credentials::AdminWebhook(secret) => model::Credentials::AdminWebhook(secret),
            Credentials::Forge => model::Credentials::Forge,
        }
    }
}

impl From<SyncConfig> for model::SyncConfig {
    fn from(c: SyncConfig) -> Self {
        model::SyncConfig {
            use_email_scope: c.use_email_scope,
            sync_status_forward: c
                .sync_status_forward
                .into_iter()
                .map(|m| model::StatusMapping {
                    project_id: m.project_id,
                    resolved_status: m.resolved_status,
                    unresolved_status: m.unresolved_status,
                })
                .collect(),
            sync_status_reverse: c.sync_status_reverse,
            sync_forward_assignment: c.sync_forward_assignment,
            sync_reverse_assignment: c.sync_reverse_assignment,
            resolution_strategy: c.resolution_strategy.into(),
            max_transition_hops: c.max_transition_hops,
            retry: model::RetryPolicy {
                max_retries: c.retry.max_retries,
                max_total_wait: c.retry.max_total_wait_seconds,
            },
            clock_skew_seconds: c.clock_skew_seconds,
            max_token_lifetime_seconds: c.max_token_lifetime_seconds,
            webhook_max_wait_seconds: c.webhook_max_wait_seconds,
            exact_status_mapping: c.exact_status_mapping,
            max_email_lookups: c.max_email_lookups,
        }
    }
}

impl From<ResolutionStrategy> for model::ResolutionStrategy {
    fn from(s: ResolutionStrategy) -> Self {
        match s {
            ResolutionStrategy::Resolve => model::ResolutionStrategy::Resolve,
            ResolutionStrategy::ResolveCurrentRelease => {
                model::ResolutionStrategy::ResolveCurrentRelease
            }
            ResolutionStrategy::ResolveNextRelease => model::ResolutionStrategy::ResolveNextRelease,
        }
    }
}

impl From<HttpError> for model::HttpError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Denied(why) => model::HttpError::Denied(why),
            HttpError::Timeout => model::HttpError::Timeout,
            HttpError::Connection(why) => model::HttpError::Connection(why),
            HttpError::ResponseTooLarge(n) => model::HttpError::ResponseTooLarge(n),
            HttpError::InvalidRequest(why) => model::HttpError::InvalidRequest(why),
        }
    }
}

impl From<&webhook::Request> for model::WebhookRequest {
    fn from(r: &webhook::Request) -> Self {
        model::WebhookRequest {
            method: r.method.clone(),
            path: r.path.clone(),
            query: r.query.clone(),
            headers: r.headers.clone(),
            body: r.body.clone(),
        }
    }
}

// ---- WIT → trace text and JSON ----

impl From<Method> for &'static str {
    fn from(method: Method) -> Self {
        match method {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

impl From<ResolutionStrategy> for &'static str {
    fn from(strategy: ResolutionStrategy) -> Self {
        match strategy {
            ResolutionStrategy::Resolve => "resolve",
            ResolutionStrategy::ResolveCurrentRelease => "resolve-current-release",
            ResolutionStrategy::ResolveNextRelease => "resolve-next-release",
        }
    }
}

impl From<Level> for &'static str {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

impl From<&HttpError> for String {
    fn from(e: &HttpError) -> Self {
        match e {
            HttpError::Denied(why) => format!("denied: {why}"),
            HttpError::Timeout => "timeout".to_owned(),
            HttpError::Connection(why) => format!("connection: {why}"),
            HttpError::ResponseTooLarge(limit) => format!("response-too-large: {limit}"),
            HttpError::InvalidRequest(why) => format!("invalid-request: {why}"),
        }
    }
}

impl From<&Failure> for Value {
    fn from(f: &Failure) -> Self {
        match f {
            Failure::UnknownInstallation => json!({"type": "unknown-installation"}),
            Failure::Http(e) => json!({"type": "http", "error": String::from(e)}),
            Failure::ServerError(status) => json!({"type": "server-error", "status": status}),
            Failure::UnexpectedStatus(status) => {
                json!({"type": "unexpected-status", "status": status})
            }
            Failure::BadResponse(endpoint) => json!({"type": "bad-response", "endpoint": endpoint}),
        }
    }
}

impl From<&StatusOutcome> for Value {
    fn from(o: &StatusOutcome) -> Self {
        match o {
            StatusOutcome::Transitioned(ids) => json!({"type": "transitioned", "transitions": ids}),
            StatusOutcome::Unchanged => json!({"type": "unchanged"}),
            StatusOutcome::NotMapped => json!({"type": "not-mapped"}),
            StatusOutcome::SkippedLoop => json!({"type": "skipped-loop"}),
            StatusOutcome::Unreachable(u) => json!({
                "type": "unreachable",
                "target": u.target,
                "transitions": u.transitions,
                "statuses_seen": u.statuses_seen,
            }),
            StatusOutcome::IssueNotFound => json!({"type": "issue-not-found"}),
            StatusOutcome::Unauthorized => json!({"type": "unauthorized"}),
            StatusOutcome::Rejected(message) => json!({"type": "rejected", "message": message}),
            StatusOutcome::RateLimited(after) => {
                json!({"type": "rate-limited", "retry_after": after})
            }
            StatusOutcome::Failed(f) => json!({"type": "failed", "failure": Value::from(f)}),
        }
    }
}

impl From<&AssigneeOutcome> for Value {
    fn from(o: &AssigneeOutcome) -> Self {
        match o {
            AssigneeOutcome::Assigned(account) => {
                json!({"type": "assigned", "account_id": account})
            }
            AssigneeOutcome::Unassigned => json!({"type": "unassigned"}),
            AssigneeOutcome::NoMatchingUser => json!({"type": "no-matching-user"}),
            AssigneeOutcome::NoVerifiedEmail => json!({"type": "no-verified-email"}),
            AssigneeOutcome::SkippedLoop => json!({"type": "skipped-loop"}),
            AssigneeOutcome::Disabled => json!({"type": "disabled"}),
            AssigneeOutcome::Unauthorized(message) => {
                json!({"type": "unauthorized", "message": message})
            }
            AssigneeOutcome::Failed((message, f)) => {
                json!({"type": "failed", "message": message, "failure": Value::from(f)})
            }
        }
    }
}

impl From<&ProjectReport> for Value {
    fn from(r: &ProjectReport) -> Self {
        json!({
            "project_id": r.project_id,
            "resolved_status": r.resolved_status,
            "unresolved_status": r.unresolved_status,
            "outcome": Value::from(&r.outcome),
        })
    }
}

impl From<&ProjectOutcome> for Value {
    fn from(o: &ProjectOutcome) -> Self {
        match o {
            ProjectOutcome::Checked(checks) => json!({
                "type": "checked",
                "issue_types": checks.iter().map(Value::from).collect::<Vec<_>>(),
            }),
            ProjectOutcome::ProjectNotFound => json!({"type": "project-not-found"}),
            ProjectOutcome::Unauthorized => json!({"type": "unauthorized"}),
            ProjectOutcome::RateLimited(after) => {
                json!({"type": "rate-limited", "retry_after": after})
            }
            ProjectOutcome::Failed(f) => json!({"type": "failed", "failure": Value::from(f)}),
        }
    }
}

impl From<&IssueTypeCheck> for Value {
    fn from(c: &IssueTypeCheck) -> Self {
        json!({
            "id": c.issue_type_id,
            "name": c.issue_type_name,
            "workflow": c.workflow,
            "resolved": Value::from(&c.resolved),
            "unresolved": Value::from(&c.unresolved),
        })
    }
}

impl From<&StatusCheck> for Value {
    fn from(c: &StatusCheck) -> Self {
        match c {
            StatusCheck::Ok => json!({"type": "ok"}),
            StatusCheck::MissingStatus => json!({"type": "missing-status"}),
            StatusCheck::UnreachableFrom(ids) => {
                json!({"type": "unreachable-from", "statuses": ids})
            }
            StatusCheck::UnknownScopes(endpoint) => {
                json!({"type": "unknown-scopes", "endpoint": endpoint})
            }
            StatusCheck::UnknownWorkflow(name) => {
                json!({"type": "unknown-workflow", "workflow": name})
            }
        }
    }
}

impl From<&CheckError> for Value {
    fn from(e: &CheckError) -> Self {
        match e {
            CheckError::UnknownInstallation => json!({"type": "unknown-installation"}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_installation_keeps_every_setting_on_its_way_to_the_guest() {
        let mut spec = InstallationSpec::new("jira:1", "s", "https://a.example", "app");
        spec.resolution_strategy = Strategy::ResolveNextRelease;
        spec.clock_skew_seconds = 7;
        spec.max_token_lifetime_seconds = 600;
        spec.webhook_max_wait_seconds = 2;
        spec.exact_status_mapping = true;
        spec.max_email_lookups = 4;
        let native = model::Installation::from(Installation::from(&spec));
        assert_eq!(native.client_key, "jira:1");
        assert_eq!(
            native.config.resolution_strategy,
            model::ResolutionStrategy::ResolveNextRelease
        );
        assert_eq!(native.config.clock_skew_seconds, 7);
        assert_eq!(
            native.config.max_transition_hops,
            model::DEFAULT_MAX_TRANSITION_HOPS
        );
        assert_eq!(native.config.retry, model::RetryPolicy::default());
        assert_eq!(native.config.max_token_lifetime_seconds, 600);
        assert_eq!(native.config.webhook_max_wait_seconds, 2);
        assert!(native.config.exact_status_mapping);
        assert_eq!(native.config.max_email_lookups, 4);
    }

    #[test]
    fn left_out_settings_take_the_plugins_defaults() {
        let spec: InstallationSpec = serde_json::from_value(json!({
            "client_key": "jira:1", "shared_secret": "s", "base_url": "https://a.example",
            "app_key": "app"}))
        .unwrap();
        let native = model::Installation::from(Installation::from(&spec));
        let config = &native.config;
        assert_eq!(
            config.max_token_lifetime_seconds,
            model::DEFAULT_MAX_TOKEN_LIFETIME_SECONDS
        );
        assert_eq!(
            config.webhook_max_wait_seconds,
            model::DEFAULT_WEBHOOK_MAX_WAIT_SECONDS
        );
        assert_eq!(
            config.exact_status_mapping,
            model::DEFAULT_EXACT_STATUS_MAPPING
        );
        assert_eq!(config.max_email_lookups, model::DEFAULT_MAX_EMAIL_LOOKUPS);
        assert_eq!(config.clock_skew_seconds, model::DEFAULT_CLOCK_SKEW_SECONDS);
    }
}
