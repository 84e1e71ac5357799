//! The simulated REST endpoints, as a function of the simulator's state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jira_sync_plugin::{jwt, qsh};
use serde_json::{Value, json};

use super::world::{SimIssue, SimUser};
use super::{SimState, Webhook};

pub struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub now_ms: u64,
}

pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
    pub auth_error: Option<String>,
    pub fault: bool,
    pub webhooks: Vec<Webhook>,
}

/// A JSON answer without delay, fault or webhooks.
pub(super) fn json_answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
        delay: Duration::ZERO,
        auth_error: None,
        fault: false,
        webhooks: Vec::new(),
    }
}

fn no_content(webhooks: Vec<Webhook>) -> Answer {
    Answer {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
        delay: Duration::ZERO,
        auth_error: None,
        fault: false,
        webhooks,
    }
}

fn error(status: u16, messages: &[&str], errors: Value) -> Answer {
    json_answer(status, json!({"errorMessages": messages, "errors": errors}))
}

/// The Jira REST endpoints the simulator serves.
enum Endpoint {
    /// `GET /rest/api/2/status`
    Statuses,
    /// `GET /rest/api/2/issue/{key}`
    Issue(String),
    /// `GET /rest/api/2/issue/{key}/transitions`
    Transitions(String),
    /// `POST /rest/api/2/issue/{key}/transitions`
    Transition(String),
    /// `PUT /rest/api/2/issue/{key}/assignee`
    Assign(String),
    /// `GET /rest/api/3/user/email`
    Email,
    /// `GET /rest/api/2/user/assignable/search`
    AssignableSearch,
    /// `GET /rest/api/2/project/{idOrKey}/statuses`
    ProjectStatuses(String),
    /// `GET /rest/api/3/workflowscheme/project?projectId=`
    WorkflowSchemes,
    /// `GET /rest/api/3/workflow/search`
    WorkflowSearch,
}

impl Endpoint {
    /// The endpoint of `method` on `path` (percent-decoded segment by segment), if any.
    fn parse(method: &str, path: &str) -> Option<Self> {
        let segments: Vec<String> = path
            .trim_end_matches('/')
            .split('/')
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let key = |k: &str| k.to_owned();
        Some(match (method, &segments[..]) {
            ("GET", ["", "rest", "api", "2", "status"]) => Endpoint::Statuses,
            ("GET", ["", "rest", "api", "2", "issue", k]) => Endpoint::Issue(key(k)),
            ("GET", ["", "rest", "api", "2", "issue", k, "transitions"]) => {
                Endpoint::Transitions(key(k))
            }
            ("POST", ["", "rest", "api", "2", "issue", k, "transitions"]) => {
                Endpoint::Transition(key(k))
            }
            ("PUT", ["", "rest", "api", "2", "issue", k, "assignee"]) => Endpoint::Assign(key(k)),
            ("GET", ["", "rest", "api", "3", "user", "email"]) => Endpoint::Email,
            ("GET", ["", "rest", "api", "2", "user", "assignable", "search"]) => {
                Endpoint::AssignableSearch
            }
            ("GET", ["", "rest", "api", "2", "project", p, "statuses"]) => {
                Endpoint::ProjectStatuses(key(p))
            }
            ("GET", ["", "rest", "api", "3", "workflowscheme", "project"]) => {
                Endpoint::WorkflowSchemes
            }
            ("GET", ["", "rest", "api", "3", "workflow", "search"]) => Endpoint::WorkflowSearch,
            _ => return None,
        })
    }
}

/// Answers one request of the app: its JWT first, then any injected fault, then the endpoint.
pub fn handle(state: &mut SimState, call: &Call<'_>, ids: &AtomicU64) -> Answer {
    if let Some(answer) = super::oauth_api::token_endpoint(state, call) {
        return answer;
    }
    let verified = super::admin_api::verify(state, call)
        .or_else(|| super::oauth_api::verify(state, call))
        .unwrap_or_else(|| verify(state, call));
    if let Err(why) = verified {
        let mut answer = error(401, &["Authentication failed"], json!({}));
        answer.auth_error = Some(why);
        return answer;
    }
    if let Some(fault) = take_fault(state, call) {
        return fault;
    }
    if let Some(answer) = super::oauth_api::webhooks(state, call) {
        return answer;
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(call.query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match Endpoint::parse(call.method, call.path) {
        Some(Endpoint::Statuses) => json_answer(200, statuses(state)),
        Some(Endpoint::Issue(key)) => match issue(state, &key) {
            Some(issue) => json_answer(200, issue_json(state, issue)),
            None => issue_missing(),
        },
        Some(Endpoint::Transitions(key)) => match issue(state, &key) {
            Some(issue) => json_answer(200, transitions_json(state, issue)),
            None => issue_missing(),
        },
        Some(Endpoint::Transition(key)) => transition(state, &key, call, ids),
        Some(Endpoint::Assign(key)) => assign(state, &key, call.body, ids),
        Some(Endpoint::Email) => match param("accountId").and_then(|id| user(state, id)) {
            Some(user) => json_answer(
                200,
                json!({"accountId": user.account_id, "email": user.email}),
            ),
            None => error(404, &["The user does not exist."], json!({})),
        },
        Some(Endpoint::AssignableSearch) => match param("issueKey") {
            Some(key) => assignable_search(state, key, param("query").unwrap_or_default()),
            None => error(400, &["issueKey is required."], json!({})),
        },
        Some(Endpoint::ProjectStatuses(project)) => project_statuses(state, &project),
        Some(Endpoint::WorkflowSchemes) => workflow_schemes(state, &params),
        Some(Endpoint::WorkflowSearch) => workflow_search(state, &params),
        None => error(404, &["No such endpoint in the simulator."], json!({})),
    }
}

/// The project with this id or key.
fn project<'s>(state: &'s SimState, id_or_key: &str) -> Option<&'s super::world::SimProject> {
    state
        .world
        .projects
        .iter()
        .find(|p| p.id == id_or_key || p.key == id_or_key)
}

/// `GET /rest/api/2/project/{idOrKey}/statuses`: per issue type, the statuses of the project's
/// workflow in the site's order.
fn project_statuses(state: &SimState, id_or_key: &str) -> Answer {
    let Some(project) = project(state, id_or_key) else {
        return error(
            404,
            &[&format!(
                "No project could be found with key '{id_or_key}'."
            )],
            json!({}),
        );
    };
    let statuses: Vec<Value> = state
        .world
        .statuses
        .iter()
        .filter(|s| project.has_status(&s.id))
        .map(|s| status_json(state, &s.id))
        .collect();
    let types: Vec<Value> = project
        .issue_types
        .iter()
        .map(|t| {
            json!({"self": format!("/rest/api/2/issuetype/{}", t.id), "id": t.id,
                   "name": t.name, "subtask": false, "statuses": statuses})
        })
        .collect();
    json_answer(200, Value::Array(types))
}

/// `GET /rest/api/3/workflowscheme/project?projectId=..`: one scheme per project, whose default
/// workflow is the project's.
fn workflow_schemes(state: &SimState, params: &[(String, String)]) -> Answer {
    let values: Vec<Value> = params
        .iter()
        .filter(|(k, _)| k == "projectId")
        .filter_map(|(_, id)| state.world.projects.iter().find(|p| p.id == *id))
        .map(|p| {
            json!({"projectIds": [p.id], "workflowScheme": {
                "id": p.id.parse::<u64>().unwrap_or_default(),
                "name": format!("{} workflow scheme", p.key), "description": "",
                "defaultWorkflow": p.workflow_name(), "issueTypeMappings": {},
                "self": format!("/rest/api/3/workflowscheme/{}", p.id)}})
        })
        .collect();
    if values.is_empty() {
        return error(400, &["projectId is required."], json!({}));
    }
    json_answer(
        200,
        json!({"isLast": true, "maxResults": 50, "startAt": 0, "total": values.len(),
               "values": values}),
    )
}

/// `GET /rest/api/3/workflow/search`: the projects' workflows (those named by `workflowName`,
/// else all) with their statuses and transitions, paginated by `startAt` and `maxResults`.
fn workflow_search(state: &SimState, params: &[(String, String)]) -> Answer {
    let names: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "workflowName")
        .map(|(_, v)| v.as_str())
        .collect();
    let number = |name: &str, default: usize| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let (start, max) = (number("startAt", 0), number("maxResults", 50).clamp(1, 50));
    let all: Vec<Value> = state
        .world
        .projects
        .iter()
        .filter(|p| names.is_empty() || names.contains(&p.workflow_name().as_str()))
        .map(|p| workflow_json(state, p))
        .collect();
    let page: Vec<Value> = all.iter().skip(start).take(max).cloned().collect();
    json_answer(
        200,
        json!({"isLast": start + page.len() >= all.len(), "maxResults": max, "startAt": start,
               "total": all.len(), "values": page}),
    )
}

/// A project's workflow as the workflow search shows it: an initial transition into its first
/// status, then its own (global when they are open from every status).
fn workflow_json(state: &SimState, project: &super::world::SimProject) -> Value {
    let statuses: Vec<Value> = state
        .world
        .statuses
        .iter()
        .filter(|s| project.has_status(&s.id))
        .map(|s| json!({"id": s.id, "name": s.name, "properties": {}}))
        .collect();
    let mut transitions = vec![json!({"id": "1", "name": "Create", "description": "",
                                      "from": [], "to": statuses.first().map(|s| s["id"].clone()),
                                      "type": "initial"})];
    transitions.extend(project.workflow.iter().map(|t| {
        json!({"id": t.id, "name": t.name, "description": "", "from": t.from, "to": t.to,
               "type": if t.from.is_empty() { "global" } else { "directed" }})
    }));
    json!({"id": {"name": project.workflow_name(), "entityId": format!("wf-{}", project.id)},
           "description": "", "statuses": statuses, "transitions": transitions})
}

/// `PUT .../assignee` `{"accountId": "..." | null}`.
fn assign(state: &mut SimState, key: &str, body: &[u8], ids: &AtomicU64) -> Answer {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return error(400, &["The request body is not JSON."], json!({}));
    };
    let account = match body.get("accountId") {
        Some(Value::String(id)) => Some(id.as_str()),
        Some(Value::Null) | None => None,
        Some(_) => return error(400, &[], json!({"accountId": "Not a string."})),
    };
    match set_assignee(state, key, account, ids) {
        Ok(webhook) => no_content(webhook.into_iter().collect()),
        Err(answer) => answer,
    }
}

/// The users who may be assigned `key`, matching `query` in their email or display name.
fn assignable_search(state: &SimState, key: &str, query: &str) -> Answer {
    if issue(state, key).is_none() {
        return issue_missing();
    }
    let query = query.to_lowercase();
    let users: Vec<Value> = state
        .world
        .users
        .iter()
        .filter(|u| {
            u.email.to_lowercase().contains(&query)
                || u.display_name.to_lowercase().contains(&query)
        })
        .map(user_json)
        .collect();
    json_answer(200, Value::Array(users))
}

/// The simulator's own control endpoints (no JWT): what people do in Jira's UI, and faults.
///
/// - `POST /_sim/issues/{key}/assignee` `{"accountId": "..." | null}`: someone (un)assigns it;
/// - `POST /_sim/issues/{key}/transitions` `{"transition": {"id": "..."}}`: someone moves it;
/// - `GET /_sim/issues/{key}`: the issue as Jira would answer it;
/// - `POST /_sim/faults` with a [`super::Fault`]; `POST /_sim/webhook-url` `{"url": "..."}`.
pub fn control(state: &mut SimState, call: &Call<'_>, ids: &AtomicU64) -> Answer {
    let segments: Vec<&str> = call.path.trim_matches('/').split('/').collect();
    let body = || serde_json::from_slice::<Value>(call.body).unwrap_or(Value::Null);
    match (call.method, &segments[..]) {
        ("GET", ["_sim", "issues", key]) => match issue(state, key) {
            Some(issue) => json_answer(200, issue_json(state, issue)),
            None => issue_missing(),
        },
        ("POST", ["_sim", "issues", key, "assignee"]) => {
            let account = body()["accountId"].as_str().map(str::to_owned);
            match set_assignee(state, key, account.as_deref(), ids) {
                Ok(webhook) => no_content(webhook.into_iter().collect()),
                Err(answer) => answer,
            }
        }
        ("POST", ["_sim", "issues", key, "transitions"]) => transition(state, key, call, ids),
        ("POST", ["_sim", "faults"]) => match serde_json::from_slice::<super::Fault>(call.body) {
            Ok(fault) => {
                state.faults.push(fault);
                no_content(Vec::new())
            }
            Err(e) => error(400, &[&e.to_string()], json!({})),
        },
        ("POST", ["_sim", "webhook-url"]) => match body()["url"].as_str() {
            Some(url) => {
                state.webhook_url = Some(url.to_owned());
                no_content(Vec::new())
            }
            None => error(400, &["url is required."], json!({})),
        },
        _ => error(404, &["No such control endpoint."], json!({})),
    }
}

/// Connect JWT of the app: HS256 with the shared secret, `iss` = app key, qsh of this request.
fn verify(state: &SimState, call: &Call<'_>) -> Result<(), String> {
    let authorization = call
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.as_str())
        .ok_or("no Authorization header")?;
    let token = authorization
        .strip_prefix("JWT ")
        .ok_or("Authorization is not a JWT")?;
    let token = jwt::decode(token).map_err(|e| e.to_string())?;
    let installation = &state.world.installation;
    if token.iss != installation.app_key {
        return Err(format!("unknown issuer {}", token.iss));
    }
    token
        .verify(
            &installation.shared_secret,
            call.now_ms / 1000,
            0,
            Some(&[qsh::qsh(call.method, call.path, call.query)]),
        )
        .map_err(|e| e.to_string())
}

fn take_fault(state: &mut SimState, call: &Call<'_>) -> Option<Answer> {
    let i = state.faults.iter().position(|f| {
        (f.method.is_empty() || f.method.eq_ignore_ascii_case(call.method))
            && call.path.contains(&f.path_contains)
    })?;
    let fault = &mut state.faults[i];
    fault.times = fault.times.saturating_sub(1);
    let answer = Answer {
        status: fault.status,
        headers: fault.headers.clone(),
        body: fault.body.clone().into_bytes(),
        delay: Duration::from_millis(fault.delay_ms),
        auth_error: None,
        fault: true,
        webhooks: Vec::new(),
    };
    if fault.times == 0 {
        state.faults.remove(i);
    }
    Some(answer)
}

fn issue_missing() -> Answer {
    error(
        404,
        &["Issue does not exist or you do not have permission to see it."],
        json!({}),
    )
}

fn issue<'s>(state: &'s SimState, key: &str) -> Option<&'s SimIssue> {
    state.world.issues.iter().find(|i| i.answers_to(key))
}

fn user<'s>(state: &'s SimState, account_id: &str) -> Option<&'s SimUser> {
    state
        .world
        .users
        .iter()
        .find(|u| u.account_id == account_id)
}

fn user_json(user: &SimUser) -> Value {
    let mut json = json!({"accountId": user.account_id, "displayName": user.display_name,
                          "active": true, "accountType": "atlassian"});
    if !user.hide_email {
        json["emailAddress"] = json!(user.email);
    }
    json
}

fn status_json(state: &SimState, id: &str) -> Value {
    let status = state.world.statuses.iter().find(|s| s.id == id);
    let (name, category) = status.map_or(("Unknown", "undefined"), |s| {
        (s.name.as_str(), s.category.as_str())
    });
    let category_id = match category {
        "new" => 2,
        "indeterminate" => 4,
        "done" => 3,
        _ => 1,
    };
    json!({"id": id, "name": name,
           "statusCategory": {"id": category_id, "key": category, "name": category}})
}

fn statuses(state: &SimState) -> Value {
    Value::Array(
        state
            .world
            .statuses
            .iter()
            .map(|s| status_json(state, &s.id))
            .collect(),
    )
}

pub(super) fn issue_json(state: &SimState, issue: &SimIssue) -> Value {
    let project = state
        .world
        .projects
        .iter()
        .find(|p| p.id == issue.project_id);
    json!({
        "id": issue.id,
        "key": issue.key,
        "fields": {
            "project": {"id": issue.project_id, "key": project.map(|p| p.key.as_str())},
            "status": status_json(state, &issue.status),
            "assignee": issue.assignee.as_deref().and_then(|a| user(state, a)).map(user_json),
            "updated": format_updated(issue.updated_ms),
        }
    })
}

fn open_transitions<'s>(
    state: &'s SimState,
    issue: &SimIssue,
) -> Vec<&'s super::world::SimTransition> {
    state
        .world
        .projects
        .iter()
        .find(|p| p.id == issue.project_id)
        .map(|p| {
            p.workflow
                .iter()
                .filter(|t| t.from.is_empty() || t.from.contains(&issue.status))
                .collect()
        })
        .unwrap_or_default()
}

fn transitions_json(state: &SimState, issue: &SimIssue) -> Value {
    let list: Vec<Value> = open_transitions(state, issue)
        .into_iter()
        .map(|t| {
            json!({"id": t.id, "name": t.name, "to": status_json(state, &t.to),
                   "hasScreen": false, "isGlobal": t.from.is_empty()})
        })
        .collect();
    json!({"expand": "transitions", "transitions": list})
}

fn transition(state: &mut SimState, key: &str, call: &Call<'_>, ids: &AtomicU64) -> Answer {
    let Some(issue) = issue(state, key) else {
        return issue_missing();
    };
    let Ok(body) = serde_json::from_slice::<Value>(call.body) else {
        return error(400, &["The request body is not JSON."], json!({}));
    };
    let id = body
        .pointer("/transition/id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(to) = open_transitions(state, issue)
        .into_iter()
        .find(|t| t.id == id)
        .map(|t| t.to.clone())
    else {
        return error(
            400,
            &[&format!(
                "Transition id '{id}' is not valid for this issue."
            )],
            json!({}),
        );
    };
    let from = issue.status.clone();
    let name = |id: &str| status_json(state, id)["name"].clone();
    let item = json!({"field": "status", "fieldtype": "jira", "fieldId": "status",
                      "from": from, "fromString": name(&from), "to": to, "toString": name(&to)});
    let updated = touch(state);
    if let Some(issue) = state.world.issues.iter_mut().find(|i| i.answers_to(key)) {
        issue.status = to;
        issue.updated_ms = updated;
    }
    no_content(webhook(state, key, item, ids).into_iter().collect())
}

/// Sets the assignee; `Ok(None)` when nothing changed (Jira sends no webhook then).
pub fn set_assignee(
    state: &mut SimState,
    key: &str,
    account_id: Option<&str>,
    ids: &AtomicU64,
) -> Result<Option<Webhook>, Answer> {
    let Some(issue) = issue(state, key) else {
        return Err(issue_missing());
    };
    if let Some(id) = account_id
        && user(state, id).is_none()
    {
        return Err(error(
            400,
            &[],
            json!({"assignee": format!("User '{id}' cannot be assigned issues.")}),
        ));
    }
    let from = issue.assignee.clone();
    if from.as_deref() == account_id {
        return Ok(None);
    }
    let display = |id: &Option<String>| {
        id.as_deref()
            .and_then(|id| user(state, id))
            .map(|u| u.display_name.clone())
    };
    let to = account_id.map(str::to_owned);
    let item = json!({"field": "assignee", "fieldtype": "jira", "fieldId": "assignee",
                      "from": from, "fromString": display(&from), "to": to, "toString": display(&to)});
    let updated = touch(state);
    if let Some(issue) = state.world.issues.iter_mut().find(|i| i.answers_to(key)) {
        issue.assignee = to;
        issue.updated_ms = updated;
    }
    Ok(webhook(state, key, item, ids))
}

/// A strictly increasing `updated` for the next change.
pub(super) fn touch(state: &mut SimState) -> i64 {
    let now = super::now_ms() as i64;
    state.last_updated_ms = now.max(state.last_updated_ms + 1);
    state.last_updated_ms
}

fn webhook(state: &SimState, key: &str, item: Value, ids: &AtomicU64) -> Option<Webhook> {
    queued(state, issue_updated_body(state, key, json!([item]))?, ids)
}

/// A delivery of `body` under the next id, if the site has somewhere to send it.
pub(super) fn queued(state: &SimState, body: Value, ids: &AtomicU64) -> Option<Webhook> {
    state.webhook_url.as_ref()?;
    Some(Webhook {
        id: format!("sim-{}", ids.fetch_add(1, Ordering::SeqCst)),
        body,
        authorization: None,
    })
}

/// Jira's `issue_updated` payload for `key` as it is now.
pub fn issue_updated_body(state: &SimState, key: &str, items: Value) -> Option<Value> {
    let issue = issue(state, key)?;
    Some(json!({
        "timestamp": super::now_ms(),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": "557058:jira-user", "displayName": "Someone in Jira"},
        "changelog": {"id": state.last_updated_ms.to_string(), "items": items},
        "issue": issue_json(state, issue),
    }))
}

fn format_updated(ms: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}
