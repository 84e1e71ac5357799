//! Recording: one component call, as the server ran it, written as a scenario file that replay
//! plays back to the same result (docs/behaviour.md#12). [`capture`] notes what the call read
//! and what Jira answered; [`scenario`] writes it with the installation's secrets replaced by a
//! placeholder ([`resign`] signs the inbound credential again with it) and, on request, personal
//! data replaced by pseudonyms.

pub mod capture;
mod pseudonyms;
pub mod resign;

use std::collections::BTreeMap;

use serde_json::Value;
use url::Url;

use crate::backends::{GroupStatus, HttpStub, Query};
use crate::imports::record::body_value;
use crate::installation::{CredentialSpec, InstallationSpec};
use crate::replay::scenario::{
    AssigneeStep, CheckStep, GroupSpec, GroupStatusSpec, JobStep, Recorded, Scenario, Sign,
    StatusStep, Step, WebhookStep, body_bytes,
};
use crate::replay::trace;
use crate::wit::exports::jira_sync::plugin::{outbound, webhook};
use capture::{Capture, Exchange};
pub use resign::PLACEHOLDER_SECRET;

/// The webhook headers a scenario keeps: those the component reads, and Jira's retry count and
/// the content type for the reader. The others (cookies, proxies' credentials and client
/// addresses, the transport's framing) are not the component's business and stay out.
const KEPT_REQUEST_HEADERS: [&str; 5] = [
    "authorization",
    "x-hub-signature",
    "x-atlassian-webhook-identifier",
    "x-atlassian-webhook-retry",
    "content-type",
];
/// Jira's response headers a scenario keeps: those the component reads (rate limits), and the
/// content type. The others (cookies, the caller's account id, tracing ids) stay out.
const KEPT_RESPONSE_HEADERS: [&str; 3] = ["retry-after", "ratelimit-reason", "content-type"];

/// What a recorded call was asked: the step that asks it again, and the inbound body as it was
/// received (the bytes its proof was made over, which the step may write differently).
pub struct Asked {
    step: Step,
    received: Vec<u8>,
}

impl Asked {
    fn step(step: Step) -> Self {
        Asked {
            step,
            received: Vec::new(),
        }
    }

    /// `webhook.accept` for `request`.
    pub fn accept(request: &webhook::Request) -> Self {
        Asked {
            step: Step::Accept(Box::new(WebhookStep {
                method: request.method.clone(),
                path: request.path.clone(),
                query: request.query.clone(),
                headers: request
                    .headers
                    .iter()
                    .filter(|(name, _)| named(name, &KEPT_REQUEST_HEADERS))
                    .cloned()
                    .collect(),
                body: written_body(&request.body),
                sign: Sign::No,
            })),
            received: request.body.clone(),
        }
    }

    /// `webhook.process` for `job`.
    pub fn process(job: &webhook::Job) -> Self {
        Asked::step(Step::Process(JobStep {
            client_key: None,
            delivery_id: job.delivery_id.clone(),
            body: written_body(&job.body),
        }))
    }

    /// `outbound.sync-status` for `request`.
    pub fn sync_status(request: &outbound::StatusRequest) -> Self {
        Asked::step(Step::SyncStatusOutbound(StatusStep {
            issue_key: request.issue_key.clone(),
            resolved: request.resolved,
            dry_run: request.dry_run,
            source: request.source.into(),
            client_key: None,
        }))
    }

    /// `outbound.sync-assignee` for `request`.
    pub fn sync_assignee(request: &outbound::AssigneeRequest) -> Self {
        let (emails, unassign) = match &request.target {
            outbound::AssigneeTarget::Emails(emails) => (emails.clone(), false),
            outbound::AssigneeTarget::Unassign => (Vec::new(), true),
        };
        Asked::step(Step::SyncAssigneeOutbound(AssigneeStep {
            issue_key: request.issue_key.clone(),
            emails,
            unassign,
            source: request.source.into(),
            client_key: None,
        }))
    }

    /// `mapping-check.check` of the call's installation.
    pub fn check_mappings() -> Self {
        Asked::step(Step::CheckMappings(CheckStep::default()))
    }
}

/// The scenario of one recorded call of installation `spec` (as the server keeps it): what
/// `capture` saw, what the call was `asked`, and the call's `trace` as the outcome replay must
/// reproduce. `pseudonymise` replaces emails, account ids and display names.
pub fn scenario(
    capture: &Capture,
    spec: &InstallationSpec,
    asked: Asked,
    trace: &Value,
    pseudonymise: bool,
) -> anyhow::Result<Value> {
    let Asked { step, received } = asked;
    let client_key = &spec.client_key;
    let ours = |ck: &String| ck == client_key;
    let seen = capture.seen();
    let scenario = Scenario {
        now: capture.now(),
        installation: with_placeholders(spec),
        other_installations: Vec::new(),
        links: seen
            .links
            .iter()
            .filter(|((ck, _), groups)| ours(ck) && !groups.is_empty())
            .map(|((_, issue), groups)| (issue.clone(), groups.clone()))
            .collect(),
        users: seen.users.clone(),
        groups: seen
            .groups
            .iter()
            .map(|(id, group)| {
                let status = match group.status {
                    GroupStatus::Unresolved => GroupStatusSpec::Unresolved,
                    GroupStatus::Resolved => GroupStatusSpec::Resolved,
                };
                let spec = GroupSpec {
                    status,
                    assignee: group.assignee,
                };
                (id.to_string(), spec)
            })
            .collect(),
        cache: seen.cache.clone(),
        handled_deliveries: ids(&seen.handled, client_key),
        deliveries_in_progress: ids(&seen.in_progress, client_key),
        watermarks: seen
            .watermarks
            .iter()
            .filter(|((ck, _, _), _)| ours(ck))
            .fold(BTreeMap::new(), |mut all, ((_, issue, field), ms)| {
                all.entry(issue.clone())
                    .or_insert_with(BTreeMap::new)
                    .insert(*field, *ms);
                all
            }),
        http: seen.http.iter().map(stub).collect(),
        steps: vec![step],
        recorded: Some(Recorded {
            at: capture.now(),
            by: format!("jira-sync-host {}", env!("CARGO_PKG_VERSION")),
            pseudonymised: pseudonymise,
            steps: vec![trace::comparable(trace)],
        }),
    };
    drop(seen);
    let mut scenario = if pseudonymise {
        with_pseudonyms(scenario)?
    } else {
        scenario
    };
    if let Step::Accept(hook) = &mut scenario.steps[0] {
        let written = body_bytes(&hook.body);
        resign::credential(spec, &hook.path, &mut hook.headers, &received, &written);
    }
    Ok(serde_json::to_value(&scenario)?)
}

/// `scenario` with personal data replaced; the inbound credential is left for [`resign`] (it
/// holds no personal data, and a pseudonym inside a token would break it).
fn with_pseudonyms(mut scenario: Scenario) -> anyhow::Result<Scenario> {
    let credentials: Vec<(String, String)> = match &mut scenario.steps[0] {
        Step::Accept(hook) => {
            let names: Vec<String> = hook
                .headers
                .keys()
                .filter(|name| {
                    name.eq_ignore_ascii_case("authorization")
                        || name.eq_ignore_ascii_case(jira_sync_plugin::signature::HEADER)
                })
                .cloned()
                .collect();
            names
                .into_iter()
                .filter_map(|name| hook.headers.remove_entry(&name))
                .collect()
        }
        _ => Vec::new(),
    };
    let mut document = serde_json::to_value(&scenario)?;
    pseudonyms::apply(&mut document);
    let mut scenario: Scenario = serde_json::from_value(document)?;
    if let Step::Accept(hook) = &mut scenario.steps[0] {
        hook.headers.extend(credentials);
    }
    Ok(scenario)
}

/// The installation as a scenario carries it: every secret and token replaced by the
/// placeholder or left out.
fn with_placeholders(spec: &InstallationSpec) -> InstallationSpec {
    let mut spec = spec.clone();
    if !spec.shared_secret.is_empty() {
        spec.shared_secret = PLACEHOLDER_SECRET.to_owned();
    }
    spec.credentials = match spec.credentials {
        CredentialSpec::Connect => CredentialSpec::Connect,
        CredentialSpec::AdminWebhook { email, .. } => CredentialSpec::AdminWebhook {
            secret: PLACEHOLDER_SECRET.to_owned(),
            email,
            api_token: PLACEHOLDER_SECRET.to_owned(),
        },
        CredentialSpec::Oauth {
            client_id,
            webhook_ids,
            webhooks_expire_at,
            jql,
            ..
        } => CredentialSpec::Oauth {
            client_id,
            client_secret: PLACEHOLDER_SECRET.to_owned(),
            access_token: None,
            refresh_token: None,
            access_expires_at: 0,
            webhook_ids,
            webhooks_expire_at,
            jql,
        },
        CredentialSpec::Forge { .. } => CredentialSpec::Forge { access_token: None },
    };
    spec
}

fn ids(deliveries: &[(String, String)], client_key: &str) -> Vec<String> {
    let mut ids: Vec<String> = deliveries
        .iter()
        .filter(|(ck, _)| ck == client_key)
        .map(|(_, id)| id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A body as a scenario writes it: JSON, to be read, when a JSON object or array written back
/// gives the same bytes; else the text as it is, so that the bytes replayed are the bytes
/// received (their size counts against limits, and an admin webhook's proof covers them). An
/// empty body is the empty string (a scenario's missing body would send `null`).
fn written_body(body: &[u8]) -> Value {
    match body_value(body) {
        json @ (Value::Object(_) | Value::Array(_)) if json.to_string().as_bytes() == body => json,
        _ => Value::String(String::from_utf8_lossy(body).into_owned()),
    }
}

/// Whether header `name` is one of `names`.
fn named(name: &str, names: &[&str]) -> bool {
    names.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// One exchange as the scripted answer that replays it.
fn stub(exchange: &Exchange) -> HttpStub {
    let (path, query) = match Url::parse(&exchange.url) {
        Ok(url) => (
            url.path().to_owned(),
            Query::of(
                url.query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            ),
        ),
        Err(_) => (exchange.url.clone(), Query::default()),
    };
    let (status, headers, body, error) = match &exchange.answer {
        Ok(response) => (
            response.status,
            response
                .headers
                .iter()
                .filter(|(name, _)| named(name, &KEPT_RESPONSE_HEADERS))
                .cloned()
                .collect(),
            match written_body(&response.body) {
                Value::String(text) if text.is_empty() => Value::Null,
                body => body,
            },
            None,
        ),
        Err(e) => (200, BTreeMap::new(), Value::Null, Some(String::from(e))),
    };
    HttpStub {
        method: exchange.method.to_owned(),
        path,
        query,
        status,
        headers,
        body,
        repeat: false,
        error,
    }
}
