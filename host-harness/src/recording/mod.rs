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

use crate::backends::{GroupStatus, HttpStub};
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

/// Response headers a scenario leaves out: they carry the site's session, not Jira's answer.
const DROPPED_RESPONSE_HEADERS: [&str; 1] = ["set-cookie"];
/// Request headers a scenario leaves out: the transport's framing of a body the scenario may
/// write differently (as JSON, or with pseudonyms).
const DROPPED_REQUEST_HEADERS: [&str; 2] = ["content-length", "transfer-encoding"];

/// The step that asks `webhook.accept` for `request` again.
pub fn accept_step(request: &webhook::Request) -> Step {
    Step::Accept(Box::new(WebhookStep {
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
        headers: request
            .headers
            .iter()
            .filter(|(name, _)| !named(name, &DROPPED_REQUEST_HEADERS))
            .cloned()
            .collect(),
        body: written_body(&request.body),
        sign: Sign::No,
    }))
}

/// The step that runs `job` again.
pub fn process_step(job: &webhook::Job) -> Step {
    Step::Process(JobStep {
        client_key: None,
        delivery_id: job.delivery_id.clone(),
        body: written_body(&job.body),
    })
}

/// The step that pushes a group's status again.
pub fn status_step(request: &outbound::StatusRequest) -> Step {
    Step::SyncStatusOutbound(StatusStep {
        issue_key: request.issue_key.clone(),
        resolved: request.resolved,
        dry_run: request.dry_run,
        source: request.source.into(),
        client_key: None,
    })
}

/// The step that pushes a group's assignee again.
pub fn assignee_step(request: &outbound::AssigneeRequest) -> Step {
    let (emails, unassign) = match &request.target {
        outbound::AssigneeTarget::Emails(emails) => (emails.clone(), false),
        outbound::AssigneeTarget::Unassign => (Vec::new(), true),
    };
    Step::SyncAssigneeOutbound(AssigneeStep {
        issue_key: request.issue_key.clone(),
        emails,
        unassign,
        source: request.source.into(),
        client_key: None,
    })
}

/// The step that checks the installation's mappings again.
pub fn check_step() -> Step {
    Step::CheckMappings(CheckStep::default())
}

/// The scenario of one recorded call of installation `spec` (as the server keeps it): what
/// `capture` saw, the `step` that asks for the call, and the call's `trace` as the outcome replay
/// must reproduce. `pseudonymise` replaces emails, account ids and display names.
pub fn scenario(
    capture: &Capture,
    spec: &InstallationSpec,
    step: Step,
    trace: &Value,
    pseudonymise: bool,
) -> anyhow::Result<Value> {
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
    let recorded_body = match &scenario.steps[0] {
        Step::Accept(hook) => body_bytes(&hook.body),
        _ => Vec::new(),
    };
    let mut scenario = if pseudonymise {
        with_pseudonyms(scenario)?
    } else {
        scenario
    };
    if let Step::Accept(hook) = &mut scenario.steps[0] {
        let written = body_bytes(&hook.body);
        resign::credential(
            spec,
            &hook.path,
            &mut hook.headers,
            &recorded_body,
            &written,
        );
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
    ids.dedup();
    ids
}

/// A body as a scenario writes it: JSON when it is a JSON object or array, else the text as it
/// is (an empty body is the empty string: a scenario's missing body would send `null`).
fn written_body(body: &[u8]) -> Value {
    match body_value(body) {
        json @ (Value::Object(_) | Value::Array(_)) => json,
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
            url.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ),
        Err(_) => (exchange.url.clone(), BTreeMap::new()),
    };
    let (status, headers, body, error) = match &exchange.answer {
        Ok(response) => (
            response.status,
            response
                .headers
                .iter()
                .filter(|(name, _)| !named(name, &DROPPED_RESPONSE_HEADERS))
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
