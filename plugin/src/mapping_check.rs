//! The mapping check (docs/behaviour.md#11): before a status sync finds a mapping broken weeks
//! later (`unreachable`), read each mapped project's statuses and workflows and say, per issue
//! type, whether the mapped statuses exist and whether the status sync can reach them.
//!
//! Which workflow an issue type uses comes from the project's workflow scheme; the workflows'
//! transitions from the workflow search. Both need administration scopes: when Jira refuses them
//! the check says so (`unknown-scopes`) instead of guessing from the statuses alone.

use std::collections::VecDeque;

use serde_json::Value;

use crate::env::Env;
use crate::events;
use crate::jira::{Endpoint, Jira, JiraError};
use crate::model::{Installation, Level, StatusMapping};
use crate::outbound::{self, Failure};
use crate::payload;
use crate::qsh;

/// Workflows asked for per page of the workflow search (Jira's largest page is 50).
pub const WORKFLOW_PAGE_SIZE: u32 = 50;
/// Pages of the workflow search one project's check reads at most; the workflows are asked for
/// by name, so one page is the rule and this only bounds a misbehaving site.
pub const MAX_WORKFLOW_PAGES: u32 = 20;

/// How one mapped status fares for one issue type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusCheck {
    /// It exists and every status of the issue type reaches it (or already counts as there).
    Ok,
    /// It is not among the issue type's statuses.
    MissingStatus,
    /// It exists, but these statuses have no path of at most `max-transition-hops` transitions
    /// to it, in the order Jira lists the issue type's statuses.
    UnreachableFrom(Vec<String>),
    /// Reachability is unknown: Jira refused this endpoint ([`Endpoint::as_str`]) to the app.
    UnknownScopes(String),
    /// Reachability is unknown: Jira names no workflow for the issue type, or not one it lists;
    /// its name when it named one.
    UnknownWorkflow(Option<String>),
}

/// One issue type of a mapped project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueTypeCheck {
    /// Jira's issue type id.
    pub issue_type_id: String,
    /// Its name.
    pub issue_type_name: String,
    /// The workflow that applies to it, when Jira named one.
    pub workflow: Option<String>,
    /// The status a resolved group maps to.
    pub resolved: StatusCheck,
    /// The status an unresolved group maps to.
    pub unresolved: StatusCheck,
}

/// What checking one mapped project found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectOutcome {
    /// Its issue types, in Jira's order.
    Checked(Vec<IssueTypeCheck>),
    /// Jira does not know the project (404).
    ProjectNotFound,
    /// Jira refused the app's credentials (401/403) for the project's statuses.
    Unauthorized,
    /// Jira's rate limit outlasted the retry budget; retry after this many seconds.
    RateLimited(u32),
    /// Anything else.
    Failed(Failure),
}

/// The check of one mapped project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectReport {
    /// The mapping checked.
    pub mapping: StatusMapping,
    /// What the check found.
    pub outcome: ProjectOutcome,
}

/// Why no check ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// No installation has the client key.
    UnknownInstallation,
}

/// An issue type and the statuses its issues may be in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueType {
    /// Issue type id.
    pub id: String,
    /// Issue type name.
    pub name: String,
    /// Status ids, in Jira's order.
    pub statuses: Vec<String>,
    /// `(status id, category key)` of the statuses whose category Jira named.
    pub categories: Vec<(String, String)>,
}

/// A workflow's transitions, as the status sync can take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    /// Its name, which the workflow scheme refers to it by.
    pub name: String,
    /// `(from, to)`: from these status ids (empty: from any status, a global transition) to
    /// this one. Initial transitions (issue creation) are left out: no issue can take them.
    pub transitions: Vec<(Vec<String>, String)>,
}

/// Which workflow each issue type of a project uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scheme {
    /// The workflow of issue types the scheme does not list.
    pub default_workflow: Option<String>,
    /// `(issue type id, workflow name)`.
    pub by_issue_type: Vec<(String, String)>,
}

impl Scheme {
    /// The workflow `issue_type` uses.
    pub fn workflow_of(&self, issue_type: &str) -> Option<&str> {
        self.by_issue_type
            .iter()
            .find(|(id, _)| id == issue_type)
            .map(|(_, name)| name.as_str())
            .or(self.default_workflow.as_deref())
    }
}

/// What the workflow endpoints told about a project.
enum Workflows {
    /// Jira refused this endpoint to the app (401/403).
    Refused(Endpoint),
    /// The project's scheme (`None`: Jira lists none for it) and the workflows it names.
    Known(Option<Scheme>, Vec<Workflow>),
}

/// Checks every project `client_key` maps, in the order of its mapping.
pub fn check(env: &mut impl Env, client_key: &str) -> Result<Vec<ProjectReport>, CheckError> {
    let Some(installation) = env.by_client_key(client_key) else {
        return Err(CheckError::UnknownInstallation);
    };
    let mut jira = Jira::new(env, &installation);
    Ok(installation
        .config
        .sync_status_forward
        .iter()
        .map(|mapping| ProjectReport {
            mapping: mapping.clone(),
            outcome: check_project(&mut jira, &installation, mapping),
        })
        .collect())
}

/// Checks one mapped project; every Jira failure is its outcome.
fn check_project<E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &Installation,
    mapping: &StatusMapping,
) -> ProjectOutcome {
    let project = mapping.project_id.as_str();
    let outcome = match project_issue_types(jira, project) {
        Ok(issue_types) => match workflows(jira, project, &issue_types) {
            Ok(workflows) => {
                ProjectOutcome::Checked(judge(installation, mapping, &issue_types, &workflows))
            }
            Err(e) => project_error(e),
        },
        Err(e) => project_error(e),
    };
    log_problems(jira.env(), project, mapping, &outcome);
    outcome
}

/// The outcome of a project whose check Jira failed.
fn project_error(e: JiraError) -> ProjectOutcome {
    match e {
        JiraError::Status {
            endpoint: Endpoint::ProjectStatuses,
            status: 404,
            ..
        } => ProjectOutcome::ProjectNotFound,
        JiraError::Status {
            status: 401 | 403, ..
        } => ProjectOutcome::Unauthorized,
        JiraError::RateLimited { retry_after, .. } => ProjectOutcome::RateLimited(retry_after),
        other => ProjectOutcome::Failed(outbound::failure(other)),
    }
}

/// `GET /rest/api/2/project/{id}/statuses`, parsed.
fn project_issue_types<E: Env>(
    jira: &mut Jira<'_, E>,
    project: &str,
) -> Result<Vec<IssueType>, JiraError> {
    let path = format!("/rest/api/2/project/{}/statuses", qsh::encode(project));
    let body = jira.get_json(Endpoint::ProjectStatuses, &path, &[], false)?;
    parse_issue_types(&body).ok_or(JiraError::BadResponse(Endpoint::ProjectStatuses))
}

/// The issue types of a project-statuses answer; `None` when it is not a list. Entries without
/// an id, and statuses without one, are skipped.
pub fn parse_issue_types(body: &Value) -> Option<Vec<IssueType>> {
    Some(
        body.as_array()?
            .iter()
            .filter_map(|entry| {
                let statuses = entry.get("statuses").and_then(Value::as_array);
                let statuses: Vec<&Value> = statuses.into_iter().flatten().collect();
                Some(IssueType {
                    id: payload::id(entry.get("id")?)?,
                    name: entry
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    statuses: statuses
                        .iter()
                        .filter_map(|s| payload::id(s.get("id")?))
                        .collect(),
                    categories: statuses
                        .iter()
                        .filter_map(|s| {
                            let id = payload::id(s.get("id")?)?;
                            let key = s.pointer("/statusCategory/key")?.as_str()?;
                            Some((id, key.to_owned()))
                        })
                        .collect(),
                })
            })
            .collect(),
    )
}

/// The project's workflow scheme and the workflows it names; a 401 or 403 from either endpoint
/// is [`Workflows::Refused`], any other failure the project's.
fn workflows<E: Env>(
    jira: &mut Jira<'_, E>,
    project: &str,
    issue_types: &[IssueType],
) -> Result<Workflows, JiraError> {
    let refused = |e: JiraError| match e {
        JiraError::Status {
            endpoint,
            status: 401 | 403,
            ..
        } => Ok(Workflows::Refused(endpoint)),
        other => Err(other),
    };
    let scheme = match jira.get_json(
        Endpoint::WorkflowScheme,
        "/rest/api/3/workflowscheme/project",
        &[("projectId", project)],
        false,
    ) {
        Ok(body) => {
            parse_scheme(&body, project).ok_or(JiraError::BadResponse(Endpoint::WorkflowScheme))?
        }
        Err(e) => return refused(e),
    };
    let Some(scheme) = scheme else {
        return Ok(Workflows::Known(None, Vec::new()));
    };
    let mut names: Vec<&str> = issue_types
        .iter()
        .filter_map(|t| scheme.workflow_of(&t.id))
        .collect();
    names.sort_unstable();
    names.dedup();
    match search_workflows(jira, &names) {
        Ok(found) => Ok(Workflows::Known(Some(scheme), found)),
        Err(e) => refused(e),
    }
}

/// The scheme of `project` in a workflow-scheme answer: `Some(None)` when the answer lists none
/// for it (e.g. a team-managed project), `None` when the answer is not the documented shape.
pub fn parse_scheme(body: &Value, project: &str) -> Option<Option<Scheme>> {
    let values = body.get("values")?.as_array()?;
    let entry = values.iter().find(|v| {
        v.get("projectIds")
            .and_then(Value::as_array)
            .is_some_and(|ids| {
                ids.iter()
                    .any(|id| payload::id(id).as_deref() == Some(project))
            })
    });
    let Some(scheme) = entry.and_then(|e| e.get("workflowScheme")) else {
        return Some(None);
    };
    let by_issue_type = scheme
        .get("issueTypeMappings")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(id, name)| Some((id.clone(), name.as_str()?.to_owned())))
        .collect();
    Some(Some(Scheme {
        default_workflow: scheme
            .get("defaultWorkflow")
            .and_then(Value::as_str)
            .map(str::to_owned),
        by_issue_type,
    }))
}

/// `GET /rest/api/3/workflow/search` for `names` with their transitions, page by page until Jira
/// says the last one came (at most [`MAX_WORKFLOW_PAGES`]).
fn search_workflows<E: Env>(
    jira: &mut Jira<'_, E>,
    names: &[&str],
) -> Result<Vec<Workflow>, JiraError> {
    let mut found = Vec::new();
    if names.is_empty() {
        return Ok(found);
    }
    let page_size = WORKFLOW_PAGE_SIZE.to_string();
    let mut start = 0usize;
    for _ in 0..MAX_WORKFLOW_PAGES {
        let start_at = start.to_string();
        let mut query: Vec<(&str, &str)> = names.iter().map(|n| ("workflowName", *n)).collect();
        query.extend([
            ("expand", "transitions,statuses"),
            ("startAt", start_at.as_str()),
            ("maxResults", page_size.as_str()),
        ]);
        let body = jira.get_json(
            Endpoint::WorkflowSearch,
            "/rest/api/3/workflow/search",
            &query,
            false,
        )?;
        let (page, last) =
            parse_workflows(&body).ok_or(JiraError::BadResponse(Endpoint::WorkflowSearch))?;
        let count = body["values"].as_array().map_or(0, Vec::len);
        found.extend(page);
        if last || count == 0 {
            break;
        }
        start += count;
    }
    Ok(found)
}

/// The workflows of one workflow-search page, and whether it is the last; `None` when the page
/// has no `values` list. A page without `isLast` counts as the last.
pub fn parse_workflows(body: &Value) -> Option<(Vec<Workflow>, bool)> {
    let values = body.get("values")?.as_array()?;
    let last = body.get("isLast").and_then(Value::as_bool).unwrap_or(true);
    let workflows = values
        .iter()
        .filter_map(|w| {
            let name = w.pointer("/id/name")?.as_str()?.to_owned();
            let transitions = w
                .get("transitions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|t| t.get("type").and_then(Value::as_str) != Some("initial"))
                .filter_map(|t| {
                    let to = t.get("to")?;
                    let to = payload::id(to).or_else(|| payload::id(to.get("id")?))?;
                    let from = t
                        .get("from")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(payload::id)
                        .collect();
                    Some((from, to))
                })
                .collect();
            Some(Workflow { name, transitions })
        })
        .collect();
    Some((workflows, last))
}

/// Each issue type's verdict on both mapped statuses.
fn judge(
    installation: &Installation,
    mapping: &StatusMapping,
    issue_types: &[IssueType],
    workflows: &Workflows,
) -> Vec<IssueTypeCheck> {
    let max_hops = outbound::max_hops(installation);
    let exact = installation.config.exact_status_mapping;
    issue_types
        .iter()
        .map(|issue_type| {
            let (workflow_name, workflow) = match workflows {
                Workflows::Refused(_) => (None, None),
                Workflows::Known(scheme, found) => {
                    let name = scheme.as_ref().and_then(|s| s.workflow_of(&issue_type.id));
                    (name, name.and_then(|n| found.iter().find(|w| w.name == n)))
                }
            };
            let verdict = |target: &str, resolved: bool| {
                if !issue_type.statuses.iter().any(|s| s == target) {
                    return StatusCheck::MissingStatus;
                }
                if let Workflows::Refused(endpoint) = workflows {
                    return StatusCheck::UnknownScopes(endpoint.as_str().to_owned());
                }
                let Some(workflow) = workflow else {
                    return StatusCheck::UnknownWorkflow(workflow_name.map(str::to_owned));
                };
                let stuck =
                    unreachable_from(workflow, issue_type, target, resolved, exact, max_hops);
                if stuck.is_empty() {
                    StatusCheck::Ok
                } else {
                    StatusCheck::UnreachableFrom(stuck)
                }
            };
            IssueTypeCheck {
                issue_type_id: issue_type.id.clone(),
                issue_type_name: issue_type.name.clone(),
                workflow: workflow_name.map(str::to_owned),
                resolved: verdict(&mapping.resolved_status, true),
                unresolved: verdict(&mapping.unresolved_status, false),
            }
        })
        .collect()
}

/// The statuses of `issue_type` from which the status sync cannot reach `target` in at most
/// `max_hops` transitions of `workflow`, as it walks (docs/behaviour.md#2.7): the target itself
/// and (unless `exact`) the statuses already on the target's side count as there, and a walk to
/// a status that is not `done` never passes through a `done` one. The shortest such path is
/// what counts; the walk picks its hops by category and can, in a rare workflow, take a longer
/// one.
pub fn unreachable_from(
    workflow: &Workflow,
    issue_type: &IssueType,
    target: &str,
    resolved: bool,
    exact: bool,
    max_hops: usize,
) -> Vec<String> {
    let statuses = &issue_type.statuses;
    let is_done = |id: &str| {
        issue_type
            .categories
            .iter()
            .any(|(s, c)| s == id && c == "done")
    };
    let target_done = is_done(target);
    // Distances to the target, by a breadth-first walk backwards along the transitions.
    let mut distance: Vec<Option<usize>> = statuses
        .iter()
        .map(|s| (s == target).then_some(0))
        .collect();
    let mut queue = VecDeque::from([target.to_owned()]);
    while let Some(status) = queue.pop_front() {
        let Some(d) = statuses
            .iter()
            .position(|s| *s == status)
            .and_then(|i| distance[i])
        else {
            continue;
        };
        if d >= max_hops {
            continue;
        }
        for (from, to) in &workflow.transitions {
            if *to != status {
                continue;
            }
            for (i, s) in statuses.iter().enumerate() {
                if distance[i].is_some() || !(from.is_empty() || from.contains(s)) {
                    continue;
                }
                distance[i] = Some(d + 1);
                // A start may be done; a status the walk would pass through may not, unless the
                // target is done too.
                if target_done || !is_done(s) {
                    queue.push_back(s.clone());
                }
            }
        }
    }
    statuses
        .iter()
        .zip(distance)
        .filter(|(s, d)| {
            d.is_none()
                && (exact
                    || outbound::on_the_targets_side(&issue_type.categories, s, resolved).is_none())
        })
        .map(|(s, _)| s.clone())
        .collect()
}

/// One warning per problem the check found, for hosts that alert on events.
fn log_problems(
    env: &mut impl Env,
    project: &str,
    mapping: &StatusMapping,
    outcome: &ProjectOutcome,
) {
    let problem = match outcome {
        ProjectOutcome::Checked(checks) => {
            for check in checks {
                for (target, verdict) in [
                    (&mapping.resolved_status, &check.resolved),
                    (&mapping.unresolved_status, &check.unresolved),
                ] {
                    let problem = match verdict {
                        StatusCheck::Ok => continue,
                        StatusCheck::MissingStatus => "missing-status",
                        StatusCheck::UnreachableFrom(_) => "unreachable-from",
                        StatusCheck::UnknownScopes(_) => "unknown-scopes",
                        StatusCheck::UnknownWorkflow(_) => "unknown-workflow",
                    };
                    env.log(
                        Level::Warn,
                        events::MAPPING_CHECK_PROBLEM,
                        &[
                            ("project_id", project),
                            ("issue_type", &check.issue_type_id),
                            ("target", target),
                            ("problem", problem),
                        ],
                    );
                }
            }
            return;
        }
        ProjectOutcome::ProjectNotFound => "project-not-found",
        ProjectOutcome::Unauthorized => "unauthorized",
        ProjectOutcome::RateLimited(_) => "rate-limited",
        ProjectOutcome::Failed(_) => "failed",
    };
    env.log(
        Level::Warn,
        events::MAPPING_CHECK_PROBLEM,
        &[
            ("project_id", project),
            ("issue_type", ""),
            ("target", ""),
            ("problem", problem),
        ],
    );
}

#[cfg(test)]
mod tests;
