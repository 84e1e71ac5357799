//! The platform's admin API: set up installations, links and users; resolve, unresolve, assign
//! or unassign a group and push the change to every linked Jira issue through the outbox (the
//! outbound sync), and show each push's state; check an installation's status mappings against
//! its Jira site (docs/behaviour.md#11).

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Context, check, outbox, record_call, recording::Start};
use crate::backends::{BackendError, BackendResult, Group, OutboxEntry};
use crate::installation::InstallationSpec;
use crate::recording::Asked;
use crate::replay::trace;

/// An answer: status and JSON body.
type Answer = (u16, Value);

/// Whether the request carries the admin token (always, when none is configured).
pub(super) fn allowed(context: &Context, headers: &[(String, String)]) -> bool {
    let Some(token) = &context.admin_token else {
        return true;
    };
    headers.iter().any(|(name, value)| {
        // The scheme compares case-insensitively, as HTTP's authentication schemes do.
        name.eq_ignore_ascii_case("authorization")
            && value.split_once(' ').is_some_and(|(scheme, given)| {
                scheme.eq_ignore_ascii_case("bearer") && given == token.as_str()
            })
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
    /// `GET /admin/installations/{client_key}/check` (the key percent-encoded)
    CheckMappings(String),
    /// `PUT`, `GET` or `DELETE /admin/installations/{client_key}/recording`
    Recording(String, Switch),
    /// `POST /admin/links`
    Link,
    /// `POST /admin/users`
    AddUser,
    /// `GET /admin/groups/{id}`
    Group(&'a str),
    /// `POST /admin/groups/{id}/{action}`
    GroupAction(&'a str, Action),
    /// `GET /admin/groups/{id}/syncs`
    Syncs(&'a str),
}

/// What a request does to an installation's recording.
#[derive(Clone, Copy)]
enum Switch {
    On,
    Show,
    Off,
}

/// What the platform does to a group.
#[derive(Clone, Copy)]
enum Action {
    Resolve,
    Unresolve,
    Assign,
    Unassign,
}

impl<'a> Endpoint<'a> {
    fn parse(method: &str, path: &'a str) -> Option<Self> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        Some(match (method, &segments[..]) {
            ("POST", ["admin", "installations"]) => Endpoint::AddInstallation,
            ("GET", ["admin", "installations", key, "check"]) => {
                Endpoint::CheckMappings(decoded(key)?)
            }
            (method, ["admin", "installations", key, "recording"]) => {
                let switch = match method {
                    "PUT" => Switch::On,
                    "GET" => Switch::Show,
                    "DELETE" => Switch::Off,
                    _ => return None,
                };
                Endpoint::Recording(decoded(key)?, switch)
            }
            ("POST", ["admin", "links"]) => Endpoint::Link,
            ("POST", ["admin", "users"]) => Endpoint::AddUser,
            ("GET", ["admin", "groups", id]) => Endpoint::Group(id),
            ("GET", ["admin", "groups", id, "syncs"]) => Endpoint::Syncs(id),
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

/// A percent-encoded path segment.
fn decoded(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Answer> {
    serde_json::from_slice(body).map_err(|e| (400, json!({"error": e.to_string()})))
}

async fn stored(write: impl Future<Output = BackendResult<()>>) -> Answer {
    match write.await {
        Ok(()) => (200, json!({"ok": true})),
        Err(e) => backend_failed(&e),
    }
}

/// Answers one admin request.
pub(super) async fn handle(context: &Context, method: &str, path: &str, body: &[u8]) -> Answer {
    let Some(endpoint) = Endpoint::parse(method, path) else {
        return (404, json!({"error": "no such admin endpoint"}));
    };
    let store = &context.store;
    let result = match endpoint {
        Endpoint::AddInstallation => match parse::<InstallationSpec>(body) {
            Ok(spec) => match spec.check() {
                Ok(()) => Ok(stored(store.add_installation(&spec)).await),
                Err(why) => Err((400, json!({"error": why}))),
            },
            Err(answer) => Err(answer),
        },
        Endpoint::CheckMappings(client_key) => Ok(check_mappings(context, &client_key).await),
        Endpoint::Recording(client_key, switch) => {
            recording_switch(context, &client_key, switch, body).await
        }
        Endpoint::Link => match parse::<LinkBody>(body) {
            Ok(link) => {
                Ok(stored(store.link(&link.client_key, &link.issue_key, &link.groups)).await)
            }
            Err(answer) => Err(answer),
        },
        Endpoint::AddUser => match parse::<UserBody>(body) {
            Ok(user) => Ok(stored(store.add_user(user.id, &user.email)).await),
            Err(answer) => Err(answer),
        },
        Endpoint::Group(id) => known_group(context, id)
            .await
            .map(|(_, group)| (200, json!(group))),
        Endpoint::Syncs(id) => match known_group(context, id).await {
            Ok((group, _)) => Ok(syncs(context, group).await),
            Err(answer) => Err(answer),
        },
        Endpoint::GroupAction(id, action) => match known_group(context, id).await {
            Ok((group, _)) => group_action(context, group, action, body).await,
            Err(answer) => Err(answer),
        },
    };
    result.unwrap_or_else(|error| error)
}

/// `GET /admin/installations/{client_key}/check`: the mapping check's report (200), or 404 for
/// an installation the platform does not know; a call that failed is answered 500.
async fn check_mappings(context: &Context, client_key: &str) -> Answer {
    let started = std::time::Instant::now();
    let call = context
        .call_recorded(
            || Some(client_key.to_owned()),
            Asked::check_mappings,
            trace::check_mappings,
            async |backends| context.runtime.check_mappings(backends, client_key).await,
        )
        .await;
    let (answer, error) = match &call.result {
        Ok(Ok(reports)) => {
            let projects: Vec<Value> = reports.iter().map(Value::from).collect();
            let problems = check::problems(&projects);
            (
                (
                    200,
                    json!({"client_key": client_key, "problems": problems, "projects": projects}),
                ),
                None,
            )
        }
        Ok(Err(e)) => (
            (
                404,
                json!({"error": format!("no installation {client_key}"), "check": Value::from(e)}),
            ),
            None,
        ),
        Err(e) => ((500, json!({"error": e.to_string()})), Some(e.to_string())),
    };
    // The log line says how it went; the report itself is the answer's.
    let result = match answer.1.get("problems") {
        Some(problems) => json!({"problems": problems}),
        None => answer.1.clone(),
    };
    record_call(
        context,
        "check_mappings",
        format!("check the mappings of {client_key}"),
        started,
        result,
        error,
        call.record,
    );
    answer
}

/// `/admin/installations/{client_key}/recording` (docs/behaviour.md#12): `PUT` starts recording
/// the installation's calls (body, optional: `max_bytes`, `pseudonymise`), `GET` shows the
/// session, `DELETE` stops it; each answers the session's state.
async fn recording_switch(
    context: &Context,
    client_key: &str,
    switch: Switch,
    body: &[u8],
) -> Result<Answer, Answer> {
    let recordings = &context.recordings;
    let not_recording = || {
        (
            404,
            json!({"error": format!("{client_key} is not being recorded")}),
        )
    };
    match switch {
        Switch::On => {
            let start: Start = if body.iter().all(u8::is_ascii_whitespace) {
                parse(b"{}")?
            } else {
                parse(body)?
            };
            match context.store.installation_spec(client_key).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err((
                        404,
                        json!({"error": format!("no installation {client_key}")}),
                    ));
                }
                Err(e) => return Err(backend_failed(&e)),
            }
            let session = recordings
                .start(client_key, &start, outbox::now())
                .await
                .map_err(|(status, why)| (status, json!({"error": why})))?;
            Ok((200, json!({"recording": session})))
        }
        Switch::Show => recordings
            .state(client_key)
            .map(|session| (200, json!({"recording": session})))
            .ok_or_else(not_recording),
        Switch::Off => recordings
            .stop(client_key)
            .await
            .map(|session| (200, json!({"stopped": session})))
            .ok_or_else(not_recording),
    }
}

async fn known_group(context: &Context, id: &str) -> Result<(u64, Group), Answer> {
    let missing = || (404, json!({"error": format!("no group {id}")}));
    let number = id.parse::<u64>().map_err(|_| missing())?;
    match context.store.group(number).await {
        Ok(Some(group)) => Ok((number, group)),
        Ok(None) => Err(missing()),
        Err(e) => Err(backend_failed(&e)),
    }
}

/// A backend failure as an answer: 500, so that the platform retries.
fn backend_failed(e: &BackendError) -> Answer {
    (500, json!({"error": e.to_string()}))
}

/// Changes the group on the platform and records one push per linked Jira issue in the outbox,
/// in one transaction; then makes each push's first attempt, one after the other (the request
/// holds one worker). A push that fails for a transient reason stays in the outbox and is
/// retried in the background.
async fn group_action(
    context: &Context,
    group: u64,
    action: Action,
    body: &[u8],
) -> Result<Answer, Answer> {
    let push = match action {
        Action::Resolve => json!({"resolved": true}),
        Action::Unresolve => json!({"resolved": false}),
        Action::Assign => json!({"assign": parse::<AssignBody>(body)?.user}),
        Action::Unassign => json!({"assign": null}),
    };
    let now = outbox::now();
    let entries = context
        .store
        .change_group(group, &push, now, context.queue.lease_until(now))
        .await
        .map_err(|e| backend_failed(&e))?;
    let mut results = Vec::with_capacity(entries.len());
    for entry in &entries {
        let after = outbox::attempt(context, entry).await;
        results.push(json!({
            "client_key": after.client_key,
            "issue_key": after.issue_key,
            "outcome": after.outcome,
            "sync": sync_state(&after),
        }));
    }
    Ok((200, json!({"group": group, "results": results})))
}

/// An outbox entry as the admin API shows it.
fn sync_state(entry: &OutboxEntry) -> Value {
    json!({
        "id": entry.id,
        "state": entry.state,
        "attempts": entry.attempts,
        "next_at": (entry.state == "pending").then_some(entry.next_at),
    })
}

/// `GET /admin/groups/{id}/syncs`: every push of the group, newest first.
async fn syncs(context: &Context, group: u64) -> Answer {
    match context.store.pushes_of_group(group).await {
        Ok(entries) => (200, json!({"group": group, "syncs": entries})),
        Err(e) => backend_failed(&e),
    }
}
