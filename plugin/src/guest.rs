//! The thin wit-bindgen layer: WIT imports behind the core's traits, WIT exports onto the core.

use crate::env::{Cache, Clock, Deliveries, Groups, Http, Installations, Log};
use crate::model;
use crate::outbound;
use crate::webhook;

wit_bindgen::generate!({ path: "../wit", world: "plugin" });

use exports::jira_sync::plugin::outbound as wit_out;
use exports::jira_sync::plugin::webhook as wit_hook;
use jira_sync::plugin::types as wit;
use jira_sync::plugin::{
    cache, clock, deliveries, group_assignment, group_status, http, installations, log,
};

/// The component's view of its host: every trait goes straight to an import.
struct Imports;

impl Http for Imports {
    fn send(&mut self, r: model::HttpRequest) -> Result<model::HttpResponse, model::HttpError> {
        let method = match r.method {
            model::Method::Get => http::Method::Get,
            model::Method::Post => http::Method::Post,
            model::Method::Put => http::Method::Put,
            model::Method::Delete => http::Method::Delete,
        };
        let request = http::Request {
            method,
            url: r.url,
            headers: r.headers,
            body: r.body,
        };
        match http::send(&request) {
            Ok(response) => Ok(model::HttpResponse {
                status: response.status,
                headers: response.headers,
                body: response.body,
            }),
            Err(e) => Err(http_error(e)),
        }
    }
}

fn http_error(e: http::Error) -> model::HttpError {
    match e {
        http::Error::Denied(why) => model::HttpError::Denied(why),
        http::Error::Timeout => model::HttpError::Timeout,
        http::Error::Connection(why) => model::HttpError::Connection(why),
        http::Error::ResponseTooLarge(n) => model::HttpError::ResponseTooLarge(n),
        http::Error::InvalidRequest(why) => model::HttpError::InvalidRequest(why),
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
        installations::get_by_client_key(client_key).map(|i| model::Installation {
            client_key: i.client_key,
            shared_secret: i.shared_secret,
            base_url: i.base_url,
            app_key: i.app_key,
            config: model::SyncConfig {
                use_email_scope: i.config.use_email_scope,
                sync_status_forward: i
                    .config
                    .sync_status_forward
                    .into_iter()
                    .map(|m| model::StatusMapping {
                        project_id: m.project_id,
                        resolved_status: m.resolved_status,
                        unresolved_status: m.unresolved_status,
                    })
                    .collect(),
                sync_status_reverse: i.config.sync_status_reverse,
                sync_forward_assignment: i.config.sync_forward_assignment,
                sync_reverse_assignment: i.config.sync_reverse_assignment,
                resolution_strategy: match i.config.resolution_strategy {
                    wit::ResolutionStrategy::Resolve => model::ResolutionStrategy::Resolve,
                    wit::ResolutionStrategy::ResolveCurrentRelease => {
                        model::ResolutionStrategy::ResolveCurrentRelease
                    }
                    wit::ResolutionStrategy::ResolveNextRelease => {
                        model::ResolutionStrategy::ResolveNextRelease
                    }
                },
                max_transition_hops: i.config.max_transition_hops,
                retry: model::RetryPolicy {
                    max_retries: i.config.retry.max_retries,
                    max_total_wait: i.config.retry.max_total_wait_seconds,
                },
                clock_skew_seconds: i.config.clock_skew_seconds,
            },
        })
    }
}

impl Groups for Imports {
    fn assign(&mut self, client_key: &str, issue_key: &str, email: &str) -> model::AssignOutcome {
        match group_assignment::assign(client_key, issue_key, email) {
            group_assignment::AssignOutcome::Assigned(n) => model::AssignOutcome::Assigned(n),
            group_assignment::AssignOutcome::NoUserWithEmail => {
                model::AssignOutcome::NoUserWithEmail
            }
            group_assignment::AssignOutcome::NoLinkedGroups => model::AssignOutcome::NoLinkedGroups,
        }
    }

    fn unassign(&mut self, client_key: &str, issue_key: &str) -> model::UnassignOutcome {
        match group_assignment::unassign(client_key, issue_key) {
            group_assignment::UnassignOutcome::Unassigned(n) => {
                model::UnassignOutcome::Unassigned(n)
            }
            group_assignment::UnassignOutcome::NoLinkedGroups => {
                model::UnassignOutcome::NoLinkedGroups
            }
        }
    }

    fn resolve(
        &mut self,
        client_key: &str,
        issue_key: &str,
        strategy: model::ResolutionStrategy,
    ) -> model::StatusChange {
        let strategy = match strategy {
            model::ResolutionStrategy::Resolve => wit::ResolutionStrategy::Resolve,
            model::ResolutionStrategy::ResolveCurrentRelease => {
                wit::ResolutionStrategy::ResolveCurrentRelease
            }
            model::ResolutionStrategy::ResolveNextRelease => {
                wit::ResolutionStrategy::ResolveNextRelease
            }
        };
        status_change(group_status::resolve(client_key, issue_key, strategy))
    }

    fn unresolve(&mut self, client_key: &str, issue_key: &str) -> model::StatusChange {
        status_change(group_status::unresolve(client_key, issue_key))
    }
}

fn status_change(outcome: group_status::StatusOutcome) -> model::StatusChange {
    match outcome {
        group_status::StatusOutcome::Changed(n) => model::StatusChange::Changed(n),
        group_status::StatusOutcome::NoLinkedGroups => model::StatusChange::NoLinkedGroups,
    }
}

impl Deliveries for Imports {
    fn seen(&mut self, client_key: &str, id: &str) -> bool {
        deliveries::seen(client_key, id)
    }
    fn mark_seen(&mut self, client_key: &str, id: &str) {
        deliveries::mark_seen(client_key, id)
    }
    fn last_applied(&mut self, client_key: &str, issue_key: &str) -> Option<i64> {
        deliveries::last_applied(client_key, issue_key)
    }
    fn set_last_applied(&mut self, client_key: &str, issue_key: &str, updated_ms: i64) {
        deliveries::set_last_applied(client_key, issue_key, updated_ms)
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
        let level = match level {
            model::Level::Trace => log::Level::Trace,
            model::Level::Debug => log::Level::Debug,
            model::Level::Info => log::Level::Info,
            model::Level::Warn => log::Level::Warn,
            model::Level::Error => log::Level::Error,
        };
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        log::log(level, event, &fields);
    }
}

/// Panics trap the instance; the host sees the message in its log first.
fn forward_panics() {
    std::panic::set_hook(Box::new(|info| {
        log::log(
            log::Level::Error,
            "plugin.panic",
            &[("message".to_owned(), info.to_string())],
        );
    }));
}

struct Component;

impl wit_hook::Guest for Component {
    fn handle(request: wit_hook::Request) -> wit_hook::Response {
        forward_panics();
        let request = model::WebhookRequest {
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request.headers,
            body: request.body,
        };
        let response = webhook::handle(&mut Imports, &request);
        wit_hook::Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        }
    }
}

impl wit_out::Guest for Component {
    fn sync_status(request: wit_out::StatusRequest) -> wit_out::StatusOutcome {
        forward_panics();
        let request = outbound::StatusRequest {
            client_key: request.client_key,
            issue_key: request.issue_key,
            resolved: request.resolved,
            dry_run: request.dry_run,
        };
        match outbound::sync_status(&mut Imports, &request) {
            outbound::StatusOutcome::Transitioned(ids) => wit_out::StatusOutcome::Transitioned(ids),
            outbound::StatusOutcome::Unchanged => wit_out::StatusOutcome::Unchanged,
            outbound::StatusOutcome::NotMapped => wit_out::StatusOutcome::NotMapped,
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
            outbound::StatusOutcome::Failed(f) => wit_out::StatusOutcome::Failed(failure(f)),
        }
    }

    fn sync_assignee(request: wit_out::AssigneeRequest) -> wit_out::AssigneeOutcome {
        forward_panics();
        let request = outbound::AssigneeRequest {
            client_key: request.client_key,
            issue_key: request.issue_key,
            target: match request.target {
                wit_out::AssigneeTarget::Emails(emails) => outbound::AssigneeTarget::Emails(emails),
                wit_out::AssigneeTarget::Unassign => outbound::AssigneeTarget::Unassign,
            },
            from_this_installation: matches!(
                request.source,
                wit_out::AssignmentSource::ThisInstallation
            ),
        };
        match outbound::sync_assignee(&mut Imports, &request) {
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
                wit_out::AssigneeOutcome::Failed((why, failure(f)))
            }
        }
    }
}

fn failure(f: outbound::Failure) -> wit_out::Failure {
    match f {
        outbound::Failure::UnknownInstallation => wit_out::Failure::UnknownInstallation,
        outbound::Failure::Http(e) => wit_out::Failure::Http(match e {
            model::HttpError::Denied(why) => http::Error::Denied(why),
            model::HttpError::Timeout => http::Error::Timeout,
            model::HttpError::Connection(why) => http::Error::Connection(why),
            model::HttpError::ResponseTooLarge(n) => http::Error::ResponseTooLarge(n),
            model::HttpError::InvalidRequest(why) => http::Error::InvalidRequest(why),
        }),
        outbound::Failure::ServerError(status) => wit_out::Failure::ServerError(status),
        outbound::Failure::UnexpectedStatus(status) => wit_out::Failure::UnexpectedStatus(status),
        outbound::Failure::BadResponse(endpoint) => wit_out::Failure::BadResponse(endpoint),
    }
}

export!(Component);
