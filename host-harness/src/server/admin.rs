//! The platform's admin API: set up installations, links and users; resolve, unresolve, assign
//! or unassign a group and push the change to every linked Jira issue (the outbound sync).

use std::time::Instant;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Context, emit};
use crate::backends::{BackendError, Group, GroupStatus, Platform as _};
use crate::installation::InstallationSpec;
use crate::wit::exports::jira_sync::plugin::outbound;

/// An answer: status and JSON body.
type Answer = (u16, Value);

/// Whether the request carries the admin token (always, when none is configured).
pub(super) fn allowed(context: &Context, headers: &[(String, String)]) -> bool {
    let Some(token) = &context.admin_token else {
        return true;
    };
    headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("authorization")
            && value.strip_prefix("Bearer ") == Some(token.as_str())
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    client_key: String,
    issue_key: String,
    groups: Vec<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    id: u64,
    email: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    user: u64,
}

/// The admin endpoints.
enum Endpoint<'a> {
    /// `POST /admin/installations`
    AddInstallation,
    /// `POST /admin/links`
    Link,
    /// `POST /admin/users`
    AddUser,
    /// `GET /admin/groups/{id}`
    Group(&'a str),
    /// `POST /admin/groups/{id}/{action}`
    GroupAction(&'a str, Action),
}

/// What the platform does to a group.
#[derive(Clone, Copy)]
enum Action {
    Resolve,
    Unresolve,
    Assign,
    Unassign,
}

/// The change pushed to every Jira issue linked to the group.
#[derive(Clone, Copy)]
enum Push {
    Status(bool),
    Assign(Option<u64>),
}

impl<'a> Endpoint<'a> {
    fn parse(method: &str, path: &'a str) -> Option<Self> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        Some(match (method, &segments[..]) {
            ("POST", ["admin", "installations"]) => Endpoint::AddInstallation,
            ("POST", ["admin", "links"]) => Endpoint::Link,
            ("POST", ["admin", "users"]) => Endpoint::AddUser,
            ("GET", ["admin", "groups", id]) => Endpoint::Group(id),
            ("POST", ["admin", "groups", id, action]) => {
                let action = match *action {
                    "resolve" => Action::Resolve,
                    "unresolve" => Action::Unresolve,
                    "assign" => Action::Assign,
                    "unassign" => Action::Unassign,
                    _ => return None,
                };
                Endpoint::GroupAction(id, action)
            }
            _ => return None,
        })
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Answer> {
    serde_json::from_slice(body).map_err(|e| (400, json!({"error": e.to_string()})))
}

fn stored(result: anyhow::Result<()>) -> Answer {
    match result {
        Ok(()) => (200, json!({"ok": true})),
        Err(e) => (500, json!({"error": format!("{e:#}")})),
    }
}

/// Answers one admin request.
pub(super) fn handle(context: &Context, method: &str, path: &str, body: &[u8]) -> Answer {
    let Some(endpoint) = Endpoint::parse(method, path) else {
        return (404, json!({"error": "no such admin endpoint"}));
    };
    let store = &context.store;
    let result = match endpoint {
        Endpoint::AddInstallation => parse::<InstallationSpec>(body).and_then(|spec| {
            spec.limits
                .check()
                .map_err(|why| (400, json!({"error": format!("limits: {why}")})))?;
            Ok(stored(store.add_installation(&spec)))
        }),
        Endpoint::Link => parse::<LinkBody>(body)
            .map(|link| stored(store.link(&link.client_key, &link.issue_key, &link.groups))),
        Endpoint::AddUser => {
            parse::<UserBody>(body).map(|user| stored(store.add_user(user.id, &user.email)))
        }
        Endpoint::Group(id) => known_group(context, id).map(|(_, group)| (200, json!(group))),
        Endpoint::GroupAction(id, action) => known_group(context, id)
            .and_then(|(group, _)| group_action(context, group, action, body)),
    };
    result.unwrap_or_else(|error| error)
}

fn known_group(context: &Context, id: &str) -> Result<(u64, Group), Answer> {
    let missing = || (404, json!({"error": format!("no group {id}")}));
    let number = id.parse::<u64>().map_err(|_| missing())?;
    match context.store.group(number) {
        Ok(Some(group)) => Ok((number, group)),
        Ok(None) => Err(missing()),
        Err(e) => Err(backend_failed(&e)),
    }
}

/// A backend failure as an answer: 500, so that the platform retries.
fn backend_failed(e: &BackendError) -> Answer {
    (500, json!({"error": e.to_string()}))
}

/// Changes the group on the platform, then pushes the change to every linked Jira issue.
fn group_action(
    context: &Context,
    group: u64,
    action: Action,
    body: &[u8],
) -> Result<Answer, Answer> {
    let push = match action {
        Action::Resolve => Push::Status(true),
        Action::Unresolve => Push::Status(false),
        Action::Assign => Push::Assign(Some(parse::<AssignBody>(body)?.user)),
        Action::Unassign => Push::Assign(None),
    };
    let store = &context.store;
    store
        .transaction(&mut |tx| match push {
            Push::Status(true) => tx.set_status(group, GroupStatus::Resolved),
            Push::Status(false) => tx.set_status(group, GroupStatus::Unresolved),
            Push::Assign(user) => tx.set_assignee(group, user),
        })
        .map_err(|e| backend_failed(&e))?;
    let links = store
        .links_of_group(group)
        .map_err(|e| backend_failed(&e))?;
    let results: Vec<Value> = links
        .into_iter()
        .map(|(client_key, issue_key)| {
            let outcome = push_to_issue(context, group, push, &client_key, &issue_key);
            json!({"client_key": client_key, "issue_key": issue_key, "outcome": outcome})
        })
        .collect();
    Ok((200, json!({"group": group, "results": results})))
}

/// Runs the outbound sync for one linked issue and returns its outcome as JSON.
fn push_to_issue(
    context: &Context,
    group: u64,
    push: Push,
    client_key: &str,
    issue_key: &str,
) -> Value {
    let started = Instant::now();
    let (trigger, result, record) = match push {
        Push::Status(resolved) => {
            let request = outbound::StatusRequest {
                client_key: client_key.to_owned(),
                issue_key: issue_key.to_owned(),
                resolved,
                dry_run: false,
                source: outbound::AssignmentSource::Platform,
            };
            let call = context.runtime.sync_status(&context.backends, &request);
            let verb = if resolved { "resolve" } else { "unresolve" };
            let result = call
                .result
                .as_ref()
                .map_or_else(|e| json!({"error": e.to_string()}), Value::from);
            (format!("{verb} group {group}"), result, call.record)
        }
        Push::Assign(user) => {
            let target = match user.map(|user| context.store.user_emails(user)) {
                Some(Ok(emails)) => outbound::AssigneeTarget::Emails(emails),
                Some(Err(e)) => return json!({"error": e.to_string()}),
                None => outbound::AssigneeTarget::Unassign,
            };
            let request = outbound::AssigneeRequest {
                client_key: client_key.to_owned(),
                issue_key: issue_key.to_owned(),
                target,
                source: outbound::AssignmentSource::Platform,
            };
            let call = context.runtime.sync_assignee(&context.backends, &request);
            let result = call
                .result
                .as_ref()
                .map_or_else(|e| json!({"error": e.to_string()}), Value::from);
            (format!("assign group {group}"), result, call.record)
        }
    };
    emit(context, trigger, started, result.clone(), record);
    result
}
