//! Platform -> Jira: status transitions (SPEC 2) and assignee (SPEC 3).

use serde_json::{Value, json};

use crate::env::Env;
use crate::jira::{Jira, JiraError};
use crate::model::{HttpError, Installation, Level, Method};
use crate::payload;
use crate::qsh;
use crate::statuses;
use crate::users;

/// Whatever the configuration says, a status sync never takes more transitions than this.
pub const MAX_HOPS_CEILING: usize = 20;

pub const ASSIGN_UNAUTHORIZED: &str = "Insufficient permissions to assign user to the Jira issue.";
pub const ASSIGN_FAILED: &str = "There was an error assigning the issue.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRequest {
    pub client_key: String,
    pub issue_key: String,
    pub resolved: bool,
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    UnknownInstallation,
    Http(HttpError),
    ServerError(u16),
    UnexpectedStatus(u16),
    BadResponse(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusOutcome {
    Transitioned(Vec<String>),
    Unchanged,
    NotMapped,
    Unreachable {
        target: String,
        transitions: Vec<String>,
        statuses_seen: Vec<String>,
    },
    IssueNotFound,
    Unauthorized,
    Rejected(String),
    RateLimited(u32),
    Failed(Failure),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeTarget {
    Emails(Vec<String>),
    Unassign,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssigneeRequest {
    pub client_key: String,
    pub issue_key: String,
    pub target: AssigneeTarget,
    /// The assignment came from this installation's own webhook (SPEC 3.5).
    pub from_this_installation: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeOutcome {
    Assigned(String),
    Unassigned,
    NoMatchingUser,
    NoVerifiedEmail,
    SkippedLoop,
    Disabled,
    Unauthorized(String),
    Failed(String, Failure),
}

/// One entry of `GET .../transitions` that has a `to`.
#[derive(Debug, Clone)]
struct Transition {
    id: String,
    to: String,
    to_category: Option<String>,
}

pub fn sync_status(env: &mut impl Env, request: &StatusRequest) -> StatusOutcome {
    let Some(installation) = env.by_client_key(&request.client_key) else {
        return StatusOutcome::Failed(Failure::UnknownInstallation);
    };
    let mut jira = Jira::new(env, &installation);
    let max_hops = (installation.config.max_transition_hops as usize).clamp(1, MAX_HOPS_CEILING);
    match walk(&mut jira, &installation, request, max_hops) {
        Ok(outcome) => outcome,
        Err(e) => status_error(e),
    }
}

fn walk<E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &Installation,
    request: &StatusRequest,
    max_hops: usize,
) -> Result<StatusOutcome, JiraError> {
    let key = request.issue_key.as_str();
    let issue_path = format!("/rest/api/2/issue/{}", qsh::encode(key));
    let issue = jira.get_json("issue", &issue_path, &[], false)?;
    let (Some(project), Some(current)) = (
        issue.pointer("/fields/project/id").and_then(payload::id),
        issue.pointer("/fields/status/id").and_then(payload::id),
    ) else {
        return Err(JiraError::BadResponse("issue"));
    };
    let Some(mapping) = installation
        .config
        .sync_status_forward
        .iter()
        .find(|m| m.project_id == project)
    else {
        jira.env().log(
            Level::Info,
            "jira.external-project-not-found",
            &[("issue_key", key), ("project_id", &project)],
        );
        return Ok(StatusOutcome::NotMapped);
    };
    let target = if request.resolved {
        &mapping.resolved_status
    } else {
        &mapping.unresolved_status
    };
    if current == *target {
        jira.env().log(
            Level::Info,
            "jira.sync_status_outbound.unchanged",
            &[("issue_key", key), ("status", target)],
        );
        return Ok(StatusOutcome::Unchanged);
    }

    let transitions_path = format!("{issue_path}/transitions");
    let mut visited = vec![current];
    let mut seen = visited.clone();
    let mut taken = Vec::new();
    let mut target_rank = None;
    loop {
        let transitions = transitions(jira, &transitions_path)?;
        for t in &transitions {
            if !seen.contains(&t.to) {
                seen.push(t.to.clone());
            }
        }
        let next = match transitions.iter().find(|t| t.to == *target) {
            Some(direct) => direct,
            None if taken.len() + 1 >= max_hops => break,
            None => {
                let rank = match target_rank {
                    Some(rank) => rank,
                    None => {
                        let categories = statuses::categories(jira)?;
                        let category = categories
                            .iter()
                            .find(|(id, _)| id == target)
                            .map(|(_, c)| c.as_str());
                        *target_rank.insert(statuses::category_rank(category))
                    }
                };
                let Some(hop) = next_hop(&transitions, &visited, rank) else {
                    break;
                };
                hop
            }
        };
        if request.dry_run {
            jira.env().log(
                Level::Info,
                "jira.sync_status_outbound.dry-run",
                &[
                    ("issue_key", key),
                    ("transition", &next.id),
                    ("to", &next.to),
                ],
            );
            return Ok(StatusOutcome::Transitioned(vec![next.id.clone()]));
        }
        let body = json!({"transition": {"id": next.id}});
        let posted = jira.send(
            "transition",
            Method::Post,
            &transitions_path,
            &[],
            Some(&body),
        );
        if let Err(e) = posted {
            if !taken.is_empty() {
                // The outcome only names the failure; say where the walk left the issue.
                jira.env().log(
                    Level::Warn,
                    "jira.sync_status_outbound.stopped-midway",
                    &[
                        ("issue_key", key),
                        ("transitions", &taken.join(",")),
                        ("status", visited.last().map_or("", String::as_str)),
                    ],
                );
            }
            return Err(e);
        }
        jira.env().log(
            Level::Info,
            "jira.sync_status_outbound.transitioned",
            &[
                ("issue_key", key),
                ("transition", &next.id),
                ("to", &next.to),
            ],
        );
        taken.push(next.id.clone());
        if next.to == *target {
            return Ok(StatusOutcome::Transitioned(taken));
        }
        visited.push(next.to.clone());
    }
    jira.env().log(
        Level::Warn,
        "jira.status-sync-fail",
        &[
            ("issue_key", key),
            ("target", target),
            ("transitions", &taken.join(",")),
        ],
    );
    Ok(StatusOutcome::Unreachable {
        target: target.clone(),
        transitions: taken,
        statuses_seen: seen,
    })
}

/// The unvisited status whose category is nearest the target's; never a `done` one unless the
/// target is `done`, and even then only as a last resort, since entering another `done` status
/// resolves the platform's groups on the way and usually leaves only a reopen transition; ties
/// go to Jira's order.
fn next_hop<'t>(
    transitions: &'t [Transition],
    visited: &[String],
    target_rank: u8,
) -> Option<&'t Transition> {
    let done = statuses::category_rank(Some("done"));
    transitions
        .iter()
        .filter(|t| !visited.contains(&t.to))
        .map(|t| (t, statuses::category_rank(t.to_category.as_deref())))
        .filter(|(_, rank)| *rank != done || target_rank == done)
        .min_by_key(|(_, rank)| (*rank == done, rank.abs_diff(target_rank)))
        .map(|(t, _)| t)
}

fn transitions<E: Env>(jira: &mut Jira<'_, E>, path: &str) -> Result<Vec<Transition>, JiraError> {
    let body = jira.get_json("transitions", path, &[], false)?;
    let list = body
        .get("transitions")
        .and_then(Value::as_array)
        .ok_or(JiraError::BadResponse("transitions"))?;
    Ok(list
        .iter()
        .filter_map(|t| {
            let to = t.get("to").filter(|to| to.is_object())?;
            Some(Transition {
                id: payload::id(t.get("id")?)?,
                to: payload::id(to.get("id")?)?,
                to_category: to
                    .pointer("/statusCategory/key")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
        })
        .collect())
}

fn status_error(e: JiraError) -> StatusOutcome {
    match e {
        JiraError::Status {
            endpoint: "issue",
            status: 404,
            ..
        } => StatusOutcome::IssueNotFound,
        JiraError::Status {
            status: 401 | 403, ..
        } => StatusOutcome::Unauthorized,
        JiraError::Status {
            endpoint: "transition",
            status: 400,
            body,
        } => StatusOutcome::Rejected(jira_messages(&body)),
        JiraError::RateLimited { retry_after, .. } => StatusOutcome::RateLimited(retry_after),
        other => StatusOutcome::Failed(failure(other)),
    }
}

fn failure(e: JiraError) -> Failure {
    match e {
        JiraError::Http(e) => Failure::Http(e),
        JiraError::Status { status, .. } if status >= 500 => Failure::ServerError(status),
        JiraError::Status { status, .. } => Failure::UnexpectedStatus(status),
        JiraError::RateLimited { .. } => Failure::UnexpectedStatus(429),
        JiraError::BadResponse(endpoint) | JiraError::TooLarge(endpoint) => {
            Failure::BadResponse(endpoint.to_owned())
        }
    }
}

/// Jira's `errorMessages` and `errors` as one line for people.
fn jira_messages(body: &[u8]) -> String {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return "Jira rejected the request".to_owned();
    };
    let mut messages: Vec<String> = body
        .get("errorMessages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    if let Some(errors) = body.get("errors").and_then(Value::as_object) {
        for (field, message) in errors {
            let message = message
                .as_str()
                .map_or_else(|| message.to_string(), str::to_owned);
            messages.push(format!("{field}: {message}"));
        }
    }
    if messages.is_empty() {
        "Jira rejected the request".to_owned()
    } else {
        messages.join("; ")
    }
}

pub fn sync_assignee(env: &mut impl Env, request: &AssigneeRequest) -> AssigneeOutcome {
    let Some(installation) = env.by_client_key(&request.client_key) else {
        return AssigneeOutcome::Failed(ASSIGN_FAILED.to_owned(), Failure::UnknownInstallation);
    };
    let key = request.issue_key.as_str();
    if !installation.config.sync_forward_assignment {
        env.log(
            Level::Info,
            "jira.assignee-sync-disabled",
            &[("issue_key", key)],
        );
        return AssigneeOutcome::Disabled;
    }
    if request.from_this_installation {
        env.log(
            Level::Info,
            "jira.assignee-loop-skipped",
            &[("issue_key", key)],
        );
        return AssigneeOutcome::SkippedLoop;
    }
    let mut jira = Jira::new(env, &installation);
    let account = match &request.target {
        AssigneeTarget::Unassign => None,
        AssigneeTarget::Emails(emails) if emails.is_empty() => {
            jira.env().log(
                Level::Info,
                "jira.assignee-no-verified-email",
                &[("issue_key", key)],
            );
            return AssigneeOutcome::NoVerifiedEmail;
        }
        AssigneeTarget::Emails(emails) => match find_user(&mut jira, &installation, key, emails) {
            Ok(Some(account)) => Some(account),
            Ok(None) => {
                jira.env().log(
                    Level::Info,
                    "jira.assignee-not-found",
                    &[("issue_key", key)],
                );
                return AssigneeOutcome::NoMatchingUser;
            }
            Err(e) => return assign_error(e),
        },
    };
    let path = format!("/rest/api/2/issue/{}/assignee", qsh::encode(key));
    let body = json!({ "accountId": account });
    if let Err(e) = jira.send("assignee", Method::Put, &path, &[], Some(&body)) {
        return assign_error(e);
    }
    jira.env().log(
        Level::Info,
        "jira.assignee-pushed",
        &[
            ("issue_key", key),
            ("account_id", account.as_deref().unwrap_or("")),
        ],
    );
    match account {
        Some(account) => AssigneeOutcome::Assigned(account),
        None => AssigneeOutcome::Unassigned,
    }
}

/// The first assignable user whose email matches one of `emails`, case-insensitively.
fn find_user<E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &Installation,
    key: &str,
    emails: &[String],
) -> Result<Option<String>, JiraError> {
    for email in emails {
        let users = jira.get_json(
            "assignable-search",
            "/rest/api/2/user/assignable/search",
            &[("issueKey", key), ("query", email)],
            true,
        )?;
        let users = users
            .as_array()
            .ok_or(JiraError::BadResponse("assignable-search"))?;
        for user in users {
            let Some(account) = user.get("accountId").and_then(payload::id) else {
                continue;
            };
            let listed = user
                .get("emailAddress")
                .and_then(Value::as_str)
                .filter(|e| !e.is_empty())
                .map(str::to_owned);
            let found = match listed {
                Some(found) => Some(found),
                None if installation.config.use_email_scope => {
                    users::account_email(jira, &account)?
                }
                None => None,
            };
            if found.is_some_and(|found| found.eq_ignore_ascii_case(email)) {
                return Ok(Some(account));
            }
        }
    }
    Ok(None)
}

fn assign_error(e: JiraError) -> AssigneeOutcome {
    match e {
        JiraError::Status { status: 401, .. } => {
            AssigneeOutcome::Unauthorized(ASSIGN_UNAUTHORIZED.to_owned())
        }
        other => AssigneeOutcome::Failed(ASSIGN_FAILED.to_owned(), failure(other)),
    }
}
