//! The thin wit-bindgen layer: WIT imports behind the core's traits, WIT exports onto the core.
//!
//! Every conversion between a generated WIT type and its core mirror is one `From` impl below,
//! WIT -> core first, then core -> WIT.

use crate::env::{Cache, Clock, Deliveries, Groups, Http, Installations, Links, Log};
use crate::events;
use crate::mapping_check;
use crate::model;
use crate::outbound;
use crate::webhook;

wit_bindgen::generate!({ path: "../wit", world: "plugin" });

use exports::jira_sync::plugin::mapping_check as wit_check;
use exports::jira_sync::plugin::outbound as wit_out;
use exports::jira_sync::plugin::webhook as wit_hook;
use jira_sync::plugin::types as wit;
use jira_sync::plugin::{
    cache, clock, deliveries, group_assignment, group_status, http, installations, links, log,
};

/// The component's view of its host: every trait goes straight to an import.
struct Imports;

impl Http for Imports {
    fn send(&mut self, r: model::HttpRequest) -> Result<model::HttpResponse, model::HttpError> {
        http::send(&r.into()).map(Into::into).map_err(Into::into)
    }
}

impl Cache for Imports {
    fn get(&mut self, key: &str) -> Option<String> {
        cache::get(key)
    }
    fn set(&mut self, key: &str, value: &str, ttl_seconds: u32) {
        cache::set(key, value, ttl_seconds)
    }
    fn delete(&mut self, key: &str) {
        cache::delete(key)
    }
}

impl Installations for Imports {
    fn by_client_key(&mut self, client_key: &str) -> Option<model::Installation> {
        installations::get_by_client_key(client_key).map(Into::into)
    }
}

impl Groups for Imports {
    fn assign(&mut self, client_key: &str, issue_key: &str, email: &str) -> model::AssignOutcome {
        group_assignment::assign(client_key, issue_key, email).into()
    }

    fn unassign(&mut self, client_key: &str, issue_key: &str) -> model::UnassignOutcome {
        group_assignment::unassign(client_key, issue_key).into()
    }

    fn resolve(
        &mut self,
        client_key: &str,
        issue_key: &str,
        strategy: model::ResolutionStrategy,
    ) -> model::StatusChange {
        group_status::resolve(client_key, issue_key, strategy.into()).into()
    }

    fn unresolve(&mut self, client_key: &str, issue_key: &str) -> model::StatusChange {
        group_status::unresolve(client_key, issue_key).into()
    }
}

impl Links for Imports {
    fn remove_links(&mut self, client_key: &str, issue_key: &str) -> u32 {
        links::remove(client_key, issue_key)
    }
    fn rename_links(&mut self, client_key: &str, from: &str, to: &str) -> u32 {
        links::rename(client_key, from, to)
    }
}

impl Deliveries for Imports {
    fn claim(&mut self, client_key: &str, id: &str) -> model::Claim {
        deliveries::claim(client_key, id).into()
    }
    fn mark_handled(&mut self, client_key: &str, id: &str) {
        deliveries::mark_handled(client_key, id)
    }
    fn last_applied(
        &mut self,
        client_key: &str,
        issue_key: &str,
        field: model::Field,
    ) -> Option<i64> {
        deliveries::last_applied(client_key, issue_key, field.into())
    }
    fn set_last_applied(
        &mut self,
        client_key: &str,
        issue_key: &str,
        field: model::Field,
        updated_ms: i64,
    ) {
        deliveries::set_last_applied(client_key, issue_key, field.into(), updated_ms)
    }
}

impl Clock for Imports {
    fn now(&mut self) -> u64 {
        clock::now()
    }
    fn sleep(&mut self, seconds: u32) {
        clock::sleep(seconds)
    }
}

impl Log for Imports {
    fn log(&mut self, level: model::Level, event: &str, fields: &[(&str, &str)]) {
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        log::log(level.into(), event, &fields);
    }
}

/// Panics trap the instance; the host sees the message in its log first.
fn forward_panics() {
    std::panic::set_hook(Box::new(|info| {
        log::log(
            log::Level::Error,
            events::PLUGIN_PANIC,
            &[("message".to_owned(), info.to_string())],
        );
    }));
}

/// The exports: each converts its request, runs the core, and converts the answer back.
struct Component;

impl wit_hook::Guest for Component {
    fn handle(request: wit_hook::Request) -> wit_hook::Response {
        forward_panics();
        webhook::handle(&mut Imports, &request.into()).into()
    }

    fn accept(request: wit_hook::Request) -> wit_hook::Acceptance {
        forward_panics();
        webhook::accept(&mut Imports, request.into()).into()
    }

    fn process(job: wit_hook::Job) -> wit_hook::JobOutcome {
        forward_panics();
        webhook::process(&mut Imports, &job.into()).into()
    }
}

impl wit_out::Guest for Component {
    fn sync_status(request: wit_out::StatusRequest) -> wit_out::StatusOutcome {
        forward_panics();
        outbound::sync_status(&mut Imports, &request.into()).into()
    }

    fn sync_assignee(request: wit_out::AssigneeRequest) -> wit_out::AssigneeOutcome {
        forward_panics();
        outbound::sync_assignee(&mut Imports, &request.into()).into()
    }
}

impl wit_check::Guest for Component {
    fn check(client_key: String) -> Result<Vec<wit_check::ProjectReport>, wit_check::CheckError> {
        forward_panics();
        mapping_check::check(&mut Imports, &client_key)
            .map(|reports| reports.into_iter().map(Into::into).collect())
            .map_err(Into::into)
    }
}

export!(Component);

// WIT -> core.

impl From<http::Response> for model::HttpResponse {
    fn from(r: http::Response) -> Self {
        model::HttpResponse {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<http::Error> for model::HttpError {
    fn from(e: http::Error) -> Self {
        match e {
            http::Error::Denied(why) => model::HttpError::Denied(why),
            http::Error::Timeout => model::HttpError::Timeout,
            http::Error::Connection(why) => model::HttpError::Connection(why),
            http::Error::ResponseTooLarge(n) => model::HttpError::ResponseTooLarge(n),
            http::Error::InvalidRequest(why) => model::HttpError::InvalidRequest(why),
        }
    }
}

impl From<wit::Installation> for model::Installation {
    fn from(i: wit::Installation) -> Self {
        model::Installation {
            client_key: i.client_key,
            credentials: i.credentials.into(),
            base_url: i.base_url,
            app_key: i.app_key,
            config: i.config.into(),
        }
    }
}

impl From<wit::Credentials> for model::Credentials {
    fn from(c: wit::Credentials) -> Self {
        match c {
            wit::Credentials::Connect(secret) => model::Credentials::Connect(secret),
            wit::Credentials::Oauth(app) => model::Credentials::Oauth(model::OauthApp {
                client_id: app.client_id,
                client_secret: app.client_secret,
            }),
            wit::Credentials::AdminWebhook(secret) => model::Credentials::AdminWebhook(secret),
            wit::Credentials::Forge => model::Credentials::Forge,
        }
    }
}

impl From<wit::SyncConfig> for model::SyncConfig {
    fn from(c: wit::SyncConfig) -> Self {
        model::SyncConfig {
            use_email_scope: c.use_email_scope,
            sync_status_forward: c.sync_status_forward.into_iter().map(Into::into).collect(),
            sync_status_reverse: c.sync_status_reverse,
            sync_forward_assignment: c.sync_forward_assignment,
            sync_reverse_assignment: c.sync_reverse_assignment,
            resolution_strategy: c.resolution_strategy.into(),
            max_transition_hops: c.max_transition_hops,
            retry: c.retry.into(),
            clock_skew_seconds: c.clock_skew_seconds,
            max_token_lifetime_seconds: c.max_token_lifetime_seconds,
            webhook_max_wait_seconds: c.webhook_max_wait_seconds,
            exact_status_mapping: c.exact_status_mapping,
            max_email_lookups: c.max_email_lookups,
        }
    }
}

impl From<wit::ProjectStatusMapping> for model::StatusMapping {
    fn from(m: wit::ProjectStatusMapping) -> Self {
        model::StatusMapping {
            project_id: m.project_id,
            resolved_status: m.resolved_status,
            unresolved_status: m.unresolved_status,
        }
    }
}

impl From<wit::ResolutionStrategy> for model::ResolutionStrategy {
    fn from(s: wit::ResolutionStrategy) -> Self {
        match s {
            wit::ResolutionStrategy::Resolve => model::ResolutionStrategy::Resolve,
            wit::ResolutionStrategy::ResolveCurrentRelease => {
                model::ResolutionStrategy::ResolveCurrentRelease
            }
            wit::ResolutionStrategy::ResolveNextRelease => {
                model::ResolutionStrategy::ResolveNextRelease
            }
        }
    }
}

impl From<wit::RetryPolicy> for model::RetryPolicy {
    fn from(r: wit::RetryPolicy) -> Self {
        model::RetryPolicy {
            max_retries: r.max_retries,
            max_total_wait: r.max_total_wait_seconds,
        }
    }
}

impl From<group_assignment::AssignOutcome> for model::AssignOutcome {
    fn from(o: group_assignment::AssignOutcome) -> Self {
        match o {
            group_assignment::AssignOutcome::Assigned(n) => model::AssignOutcome::Assigned(n),
            group_assignment::AssignOutcome::NoUserWithEmail => {
                model::AssignOutcome::NoUserWithEmail
            }
            group_assignment::AssignOutcome::NoLinkedGroups => model::AssignOutcome::NoLinkedGroups,
        }
    }
}

impl From<group_assignment::UnassignOutcome> for model::UnassignOutcome {
    fn from(o: group_assignment::UnassignOutcome) -> Self {
        match o {
            group_assignment::UnassignOutcome::Unassigned(n) => {
                model::UnassignOutcome::Unassigned(n)
            }
            group_assignment::UnassignOutcome::NoLinkedGroups => {
                model::UnassignOutcome::NoLinkedGroups
            }
        }
    }
}

impl From<group_status::StatusOutcome> for model::StatusChange {
    fn from(o: group_status::StatusOutcome) -> Self {
        match o {
            group_status::StatusOutcome::Changed(n) => model::StatusChange::Changed(n),
            group_status::StatusOutcome::NoLinkedGroups => model::StatusChange::NoLinkedGroups,
        }
    }
}

impl From<deliveries::ClaimOutcome> for model::Claim {
    fn from(claim: deliveries::ClaimOutcome) -> Self {
        match claim {
            deliveries::ClaimOutcome::Claimed => model::Claim::Claimed,
            deliveries::ClaimOutcome::Handled => model::Claim::Handled,
            deliveries::ClaimOutcome::InProgress => model::Claim::InProgress,
        }
    }
}

impl From<wit_hook::Request> for model::WebhookRequest {
    fn from(r: wit_hook::Request) -> Self {
        model::WebhookRequest {
            method: r.method,
            path: r.path,
            query: r.query,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<wit_hook::Job> for model::Job {
    fn from(j: wit_hook::Job) -> Self {
        model::Job {
            client_key: j.client_key,
            delivery_id: j.delivery_id,
            body: j.body,
        }
    }
}

impl From<wit_out::StatusRequest> for outbound::StatusRequest {
    fn from(r: wit_out::StatusRequest) -> Self {
        outbound::StatusRequest {
            client_key: r.client_key,
            issue_key: r.issue_key,
            resolved: r.resolved,
            dry_run: r.dry_run,
            from_this_installation: matches!(r.source, wit_out::AssignmentSource::ThisInstallation),
        }
    }
}

impl From<wit_out::AssigneeRequest> for outbound::AssigneeRequest {
    fn from(r: wit_out::AssigneeRequest) -> Self {
        outbound::AssigneeRequest {
            client_key: r.client_key,
            issue_key: r.issue_key,
            target: r.target.into(),
            from_this_installation: matches!(r.source, wit_out::AssignmentSource::ThisInstallation),
        }
    }
}

impl From<wit_out::AssigneeTarget> for outbound::AssigneeTarget {
    fn from(t: wit_out::AssigneeTarget) -> Self {
        match t {
            wit_out::AssigneeTarget::Emails(emails) => outbound::AssigneeTarget::Emails(emails),
            wit_out::AssigneeTarget::Unassign => outbound::AssigneeTarget::Unassign,
        }
    }
}

// Core -> WIT.

impl From<model::HttpRequest> for http::Request {
    fn from(r: model::HttpRequest) -> Self {
        http::Request {
            method: r.method.into(),
            url: r.url,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<model::Method> for http::Method {
    fn from(m: model::Method) -> Self {
        match m {
            model::Method::Get => http::Method::Get,
            model::Method::Post => http::Method::Post,
            model::Method::Put => http::Method::Put,
            model::Method::Delete => http::Method::Delete,
        }
    }
}

impl From<model::HttpError> for http::Error {
    fn from(e: model::HttpError) -> Self {
        match e {
            model::HttpError::Denied(why) => http::Error::Denied(why),
            model::HttpError::Timeout => http::Error::Timeout,
            model::HttpError::Connection(why) => http::Error::Connection(why),
            model::HttpError::ResponseTooLarge(n) => http::Error::ResponseTooLarge(n),
            model::HttpError::InvalidRequest(why) => http::Error::InvalidRequest(why),
        }
    }
}

impl From<model::ResolutionStrategy> for wit::ResolutionStrategy {
    fn from(s: model::ResolutionStrategy) -> Self {
        match s {
            model::ResolutionStrategy::Resolve => wit::ResolutionStrategy::Resolve,
            model::ResolutionStrategy::ResolveCurrentRelease => {
                wit::ResolutionStrategy::ResolveCurrentRelease
            }
            model::ResolutionStrategy::ResolveNextRelease => {
                wit::ResolutionStrategy::ResolveNextRelease
            }
        }
    }
}

impl From<model::Field> for deliveries::Field {
    fn from(field: model::Field) -> Self {
        match field {
            model::Field::Status => deliveries::Field::Status,
            model::Field::Assignee => deliveries::Field::Assignee,
        }
    }
}

impl From<model::Level> for log::Level {
    fn from(l: model::Level) -> Self {
        match l {
            model::Level::Trace => log::Level::Trace,
            model::Level::Debug => log::Level::Debug,
            model::Level::Info => log::Level::Info,
            model::Level::Warn => log::Level::Warn,
            model::Level::Error => log::Level::Error,
        }
    }
}

impl From<model::WebhookResponse> for wit_hook::Response {
    fn from(r: model::WebhookResponse) -> Self {
        wit_hook::Response {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<model::Job> for wit_hook::Job {
    fn from(j: model::Job) -> Self {
        wit_hook::Job {
            client_key: j.client_key,
            delivery_id: j.delivery_id,
            body: j.body,
        }
    }
}

impl From<model::Acceptance> for wit_hook::Acceptance {
    fn from(a: model::Acceptance) -> Self {
        match a {
            model::Acceptance::Answered(response) => {
                wit_hook::Acceptance::Answered(response.into())
            }
            model::Acceptance::Queued(job) => wit_hook::Acceptance::Queued(job.into()),
        }
    }
}

impl From<model::JobOutcome> for wit_hook::JobOutcome {
    fn from(o: model::JobOutcome) -> Self {
        match o {
            model::JobOutcome::Done => wit_hook::JobOutcome::Done,
            model::JobOutcome::RetryAfter(seconds) => wit_hook::JobOutcome::RetryAfter(seconds),
            model::JobOutcome::Failed(why) => wit_hook::JobOutcome::Failed(why),
        }
    }
}

impl From<outbound::StatusOutcome> for wit_out::StatusOutcome {
    fn from(o: outbound::StatusOutcome) -> Self {
        match o {
            outbound::StatusOutcome::Transitioned(ids) => wit_out::StatusOutcome::Transitioned(ids),
            outbound::StatusOutcome::Unchanged => wit_out::StatusOutcome::Unchanged,
            outbound::StatusOutcome::NotMapped => wit_out::StatusOutcome::NotMapped,
            outbound::StatusOutcome::SkippedLoop => wit_out::StatusOutcome::SkippedLoop,
            outbound::StatusOutcome::Unreachable {
                target,
                transitions,
                statuses_seen,
            } => wit_out::StatusOutcome::Unreachable(wit_out::Unreachable {
                target,
                transitions,
                statuses_seen,
            }),
            outbound::StatusOutcome::IssueNotFound => wit_out::StatusOutcome::IssueNotFound,
            outbound::StatusOutcome::Unauthorized => wit_out::StatusOutcome::Unauthorized,
            outbound::StatusOutcome::Rejected(why) => wit_out::StatusOutcome::Rejected(why),
            outbound::StatusOutcome::RateLimited(secs) => wit_out::StatusOutcome::RateLimited(secs),
            outbound::StatusOutcome::Failed(f) => wit_out::StatusOutcome::Failed(f.into()),
        }
    }
}

impl From<outbound::AssigneeOutcome> for wit_out::AssigneeOutcome {
    fn from(o: outbound::AssigneeOutcome) -> Self {
        match o {
            outbound::AssigneeOutcome::Assigned(id) => wit_out::AssigneeOutcome::Assigned(id),
            outbound::AssigneeOutcome::Unassigned => wit_out::AssigneeOutcome::Unassigned,
            outbound::AssigneeOutcome::NoMatchingUser => wit_out::AssigneeOutcome::NoMatchingUser,
            outbound::AssigneeOutcome::NoVerifiedEmail => wit_out::AssigneeOutcome::NoVerifiedEmail,
            outbound::AssigneeOutcome::SkippedLoop => wit_out::AssigneeOutcome::SkippedLoop,
            outbound::AssigneeOutcome::Disabled => wit_out::AssigneeOutcome::Disabled,
            outbound::AssigneeOutcome::Unauthorized(why) => {
                wit_out::AssigneeOutcome::Unauthorized(why)
            }
            outbound::AssigneeOutcome::Failed(why, f) => {
                wit_out::AssigneeOutcome::Failed((why, f.into()))
            }
        }
    }
}

impl From<outbound::Failure> for wit_out::Failure {
    fn from(f: outbound::Failure) -> Self {
        match f {
            outbound::Failure::UnknownInstallation => wit_out::Failure::UnknownInstallation,
            outbound::Failure::Http(e) => wit_out::Failure::Http(e.into()),
            outbound::Failure::ServerError(status) => wit_out::Failure::ServerError(status),
            outbound::Failure::UnexpectedStatus(status) => {
                wit_out::Failure::UnexpectedStatus(status)
            }
            outbound::Failure::BadResponse(endpoint) => wit_out::Failure::BadResponse(endpoint),
        }
    }
}

impl From<mapping_check::ProjectReport> for wit_check::ProjectReport {
    fn from(r: mapping_check::ProjectReport) -> Self {
        wit_check::ProjectReport {
            project_id: r.mapping.project_id,
            resolved_status: r.mapping.resolved_status,
            unresolved_status: r.mapping.unresolved_status,
            outcome: r.outcome.into(),
        }
    }
}

impl From<mapping_check::ProjectOutcome> for wit_check::ProjectOutcome {
    fn from(o: mapping_check::ProjectOutcome) -> Self {
        match o {
            mapping_check::ProjectOutcome::Checked(checks) => {
                wit_check::ProjectOutcome::Checked(checks.into_iter().map(Into::into).collect())
            }
            mapping_check::ProjectOutcome::ProjectNotFound => {
                wit_check::ProjectOutcome::ProjectNotFound
            }
            mapping_check::ProjectOutcome::Unauthorized => wit_check::ProjectOutcome::Unauthorized,
            mapping_check::ProjectOutcome::RateLimited(secs) => {
                wit_check::ProjectOutcome::RateLimited(secs)
            }
            mapping_check::ProjectOutcome::Failed(f) => wit_check::ProjectOutcome::Failed(f.into()),
        }
    }
}

impl From<mapping_check::IssueTypeCheck> for wit_check::IssueTypeCheck {
    fn from(c: mapping_check::IssueTypeCheck) -> Self {
        wit_check::IssueTypeCheck {
            issue_type_id: c.issue_type_id,
            issue_type_name: c.issue_type_name,
            workflow: c.workflow,
            resolved: c.resolved.into(),
            unresolved: c.unresolved.into(),
        }
    }
}

impl From<mapping_check::StatusCheck> for wit_check::StatusCheck {
    fn from(c: mapping_check::StatusCheck) -> Self {
        match c {
            mapping_check::StatusCheck::Ok => wit_check::StatusCheck::Ok,
            mapping_check::StatusCheck::MissingStatus => wit_check::StatusCheck::MissingStatus,
            mapping_check::StatusCheck::UnreachableFrom(ids) => {
                wit_check::StatusCheck::UnreachableFrom(ids)
            }
            mapping_check::StatusCheck::UnknownScopes(endpoint) => {
                wit_check::StatusCheck::UnknownScopes(endpoint)
            }
            mapping_check::StatusCheck::UnknownWorkflow(name) => {
                wit_check::StatusCheck::UnknownWorkflow(name)
            }
        }
    }
}

impl From<mapping_check::CheckError> for wit_check::CheckError {
    fn from(e: mapping_check::CheckError) -> Self {
        match e {
            mapping_check::CheckError::UnknownInstallation => {
                wit_check::CheckError::UnknownInstallation
            }
        }
    }
}
