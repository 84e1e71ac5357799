//! Platform -> Jira: status transitions (docs/behaviour.md#2) and assignee (docs/behaviour.md#3).

use serde_json::{Value, json};

use crate::env::Env;
use crate::events;
use crate::jira::{Endpoint, Jira, JiraError};
use crate::model::{HttpError, Installation, Level, Method};
use crate::payload;
use crate::qsh;
use crate::statuses;
use crate::users;

/// Whatever the configuration says, a status sync never takes more transitions than this.
pub const MAX_HOPS_CEILING: usize = 20;

/// The message for people when Jira refuses (401) to set the assignee.
pub const ASSIGN_UNAUTHORIZED: &str = "Insufficient permissions to assign user to the Jira issue.";
/// The message for people when an assignee sync fails any other way.
pub const ASSIGN_FAILED: &str = "There was an error assigning the issue.";

/// A group's new state, to mirror on its linked Jira issue's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRequest {
    /// The installation, by client key.
    pub client_key: String,
    /// The linked Jira issue.
    pub issue_key: String,
    /// True when the group was resolved, false when it was unresolved.
    pub resolved: bool,
    /// Plan only: read the issue and transitions, POST nothing.
    pub dry_run: bool,
    /// The group's new status came from this installation's own webhook
    /// (docs/behaviour.md#2.4): pushing it back would loop.
    pub from_this_installation: bool,
}

/// Why an outbound call failed without a more specific outcome; for machines, not people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No installation has the request's client key.
    UnknownInstallation,
    /// The HTTP import gave no response.
    Http(HttpError),
    /// Jira answered a 5xx status.
    ServerError(u16),
    /// Jira answered a status the flow does not expect.
    UnexpectedStatus(u16),
    /// Jira's body was not the expected JSON, or too large; names the endpoint
    /// ([`Endpoint::as_str`]).
    BadResponse(String),
}

/// What a status sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusOutcome {
    /// These transitions were POSTed, in order (for a dry run: would be, first hop only).
    Transitioned(Vec<String>),
    /// The issue already has the target status, or (unless the installation asks for exact
    /// mapping) a status on the target's side: done for a resolved group, not done otherwise.
    Unchanged,
    /// The issue's project has no status mapping.
    NotMapped,
    /// Not pushed: the change came from this installation's own webhook, so Jira has it already.
    SkippedLoop,
    /// The target cannot be reached from the current status within the hop budget.
    Unreachable {
        /// The target status id.
        target: String,
        /// The transitions taken before the walk stopped, in order.
        transitions: Vec<String>,
        /// The status ids met along the way, the starting one first.
        statuses_seen: Vec<String>,
    },
    /// Jira does not know the issue (404 on the issue).
    IssueNotFound,
    /// Jira refused the app's credentials (401/403).
    Unauthorized,
    /// Jira rejected the transition (400); its error messages as one line.
    Rejected(String),
    /// Jira's rate limit outlasted the retry budget; retry after this many seconds.
    RateLimited(u32),
    /// Anything else.
    Failed(Failure),
}

/// Whom the Jira issue should be assigned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeTarget {
    /// The platform user's verified emails; the first one matching an assignable Jira user wins.
    Emails(Vec<String>),
    /// Nobody.
    Unassign,
}

/// A group's new assignee, to mirror on its linked Jira issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssigneeRequest {
    /// The installation, by client key.
    pub client_key: String,
    /// The linked Jira issue.
    pub issue_key: String,
    /// The new assignee.
    pub target: AssigneeTarget,
    /// The assignment came from this installation's own webhook (docs/behaviour.md#3.5).
    pub from_this_installation: bool,
}

/// What an assignee sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeOutcome {
    /// Assigned to this Jira account id.
    Assigned(String),
    /// The issue is unassigned.
    Unassigned,
    /// No assignable Jira user has any of the emails.
    NoMatchingUser,
    /// The request carried no email.
    NoVerifiedEmail,
    /// Not pushed: the assignment came from this installation, and pushing it back would loop.
    SkippedLoop,
    /// Forward assignment sync is off for this installation.
    Disabled,
    /// Jira refused (401); the message is for people ([`ASSIGN_UNAUTHORIZED`]).
    Unauthorized(String),
    /// Any other error; the message is for people ([`ASSIGN_FAILED`]), the failure for machines.
    Failed(String, Failure),
}

/// One entry of `GET .../transitions` that has a `to`.
#[derive(Debug, Clone)]
struct Transition {
    id: String,
    to: String,
    to_category: Option<String>,
}

/// Moves the issue towards the status its project maps the group's new state to, one transition
/// at a time (docs/behaviour.md#2).
pub fn sync_status(env: &mut impl Env, request: &StatusRequest) -> StatusOutcome {
    let Some(installation) = env.by_client_key(&request.client_key) else {
        return StatusOutcome::Failed(Failure::UnknownInstallation);
    };
    if request.from_this_installation {
        env.log(
            Level::Info,
            events::SYNC_STATUS_OUTBOUND_SKIPPED_LOOP,
            &[("issue_key", &request.issue_key)],
        );
        return StatusOutcome::SkippedLoop;
    }
    let mut jira = Jira::new(env, &installation);
    let max_hops = max_hops(&installation);
    match sync_issue_status(&mut jira, &installation, request, max_hops) {
        Ok(outcome) => outcome,
        Err(e) => status_error(e),
    }
}

/// The transitions one status sync of `installation` may take: its setting, within
/// 1..=[`MAX_HOPS_CEILING`].
pub(crate) fn max_hops(installation: &Installation) -> usize {
    (installation.config.max_transition_hops as usize).clamp(1, MAX_HOPS_CEILING)
}

/// Reads the issue, picks the status its project maps to, and walks there unless it is already
/// there, or (unless the installation asks for exact mapping) already on the target's side.
fn sync_issue_status<E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &Installation,
    request: &StatusRequest,
    max_hops: usize,
) -> Result<StatusOutcome, JiraError> {
    let key = request.issue_key.as_str();
    let issue_path = format!("/rest/api/2/issue/{}", qsh::encode(key));
    let (project, current) = read_issue(jira, &issue_path)?;
    let Some(target) = mapped_target(jira, installation, request, &project) else {
        return Ok(StatusOutcome::NotMapped);
    };
    if current == *target {
        jira.env().log(
            Level::Info,
            events::SYNC_STATUS_OUTBOUND_UNCHANGED,
            &[("issue_key", key), ("status", target)],
        );
        return Ok(StatusOutcome::Unchanged);
    }
    let mut walk = Walk::new(request, target, &issue_path, current, max_hops);
    if !installation.config.exact_status_mapping {
        let categories = statuses::categories(jira)?;
        if let Some(category) = on_the_targets_side(&categories, &walk.visited[0], request.resolved)
        {
            jira.env().log(
                Level::Info,
                events::SYNC_STATUS_OUTBOUND_SAME_CATEGORY,
                &[
                    ("issue_key", key),
                    ("status", &walk.visited[0]),
                    ("target", target),
                    ("category", category),
                ],
            );
            return Ok(StatusOutcome::Unchanged);
        }
        walk.know_categories(&categories);
    }
    walk.run(jira)
}

/// The category of `current` when it already lies on the side of the group's new state: `done`
/// for a resolved group, any other category for an unresolved one (docs/behaviour.md#2.4).
/// `None` when it does not, or when the status list does not know `current`.
pub(crate) fn on_the_targets_side<'c>(
    categories: &'c [(String, String)],
    current: &str,
    resolved: bool,
) -> Option<&'c str> {
    let (_, category) = categories.iter().find(|(id, _)| id == current)?;
    ((category == "done") == resolved).then_some(category.as_str())
}

/// The issue's project id and current status id.
fn read_issue<E: Env>(
    jira: &mut Jira<'_, E>,
    issue_path: &str,
) -> Result<(String, String), JiraError> {
    let issue = jira.get_json(Endpoint::Issue, issue_path, &[], false)?;
    match (
        issue.pointer("/fields/project/id").and_then(payload::id),
        issue.pointer("/fields/status/id").and_then(payload::id),
    ) {
        (Some(project), Some(current)) => Ok((project, current)),
        _ => Err(JiraError::BadResponse(Endpoint::Issue)),
    }
}

/// The status the group's new state maps to in `project`; `None`, logged, when the installation
/// maps no status for that project.
fn mapped_target<'i, E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &'i Installation,
    request: &StatusRequest,
    project: &str,
) -> Option<&'i String> {
    let Some(mapping) = installation
        .config
        .sync_status_forward
        .iter()
        .find(|m| m.project_id == project)
    else {
        jira.env().log(
            Level::Info,
            events::EXTERNAL_PROJECT_NOT_FOUND,
            &[("issue_key", &request.issue_key), ("project_id", project)],
        );
        return None;
    };
    Some(if request.resolved {
        &mapping.resolved_status
    } else {
        &mapping.unresolved_status
    })
}

/// A walk from the issue's current status towards `target`: each hop reads the transitions Jira
/// offers now and takes one, for at most `max_hops` transitions (docs/behaviour.md#2.7).
struct Walk<'r> {
    key: &'r str,
    target: &'r str,
    transitions_path: String,
    max_hops: usize,
    dry_run: bool,
    /// The statuses the issue has been in, the current one last; the walk never re-enters them.
    visited: Vec<String>,
    /// Every status met so far, as the start or a transition's destination, in order.
    seen: Vec<String>,
    /// The ids of the transitions taken so far, in order.
    taken: Vec<String>,
    /// The target's category rank, read from the status list once, when a detour first needs it.
    target_rank: Option<u8>,
}

impl<'r> Walk<'r> {
    fn new(
        request: &'r StatusRequest,
        target: &'r str,
        issue_path: &str,
        current: String,
        max_hops: usize,
    ) -> Self {
        Walk {
            key: &request.issue_key,
            target,
            transitions_path: format!("{issue_path}/transitions"),
            max_hops,
            dry_run: request.dry_run,
            visited: vec![current.clone()],
            seen: vec![current],
            taken: Vec::new(),
            target_rank: None,
        }
    }

    /// Hops until the target is reached, the walk is stuck or out of hops, or Jira fails.
    fn run<E: Env>(mut self, jira: &mut Jira<'_, E>) -> Result<StatusOutcome, JiraError> {
        loop {
            let transitions = transitions(jira, &self.transitions_path)?;
            self.note_seen(&transitions);
            let Some(next) = self.choose(jira, &transitions)? else {
                return Ok(self.unreachable(jira));
            };
            if self.dry_run {
                return Ok(self.plan_only(jira, next));
            }
            self.take(jira, next)?;
            if next.to == self.target {
                return Ok(StatusOutcome::Transitioned(self.taken));
            }
            self.visited.push(next.to.clone());
        }
    }

    /// Takes the target's category rank from a status list already read, so that the walk does
    /// not read it again.
    fn know_categories(&mut self, categories: &[(String, String)]) {
        self.target_rank = Some(target_rank(categories, self.target));
    }

    fn note_seen(&mut self, transitions: &[Transition]) {
        for t in transitions {
            if !self.seen.contains(&t.to) {
                self.seen.push(t.to.clone());
            }
        }
    }

    /// The transition to take: straight to the target when Jira offers it, else (while hops
    /// remain) the best detour by [`next_hop`]; `None` when there is neither.
    fn choose<'t, E: Env>(
        &mut self,
        jira: &mut Jira<'_, E>,
        transitions: &'t [Transition],
    ) -> Result<Option<&'t Transition>, JiraError> {
        if let Some(direct) = transitions.iter().find(|t| t.to == self.target) {
            return Ok(Some(direct));
        }
        if self.taken.len() + 1 >= self.max_hops {
            return Ok(None);
        }
        let rank = self.target_rank(jira)?;
        Ok(next_hop(transitions, &self.visited, rank))
    }

    fn target_rank<E: Env>(&mut self, jira: &mut Jira<'_, E>) -> Result<u8, JiraError> {
        if let Some(rank) = self.target_rank {
            return Ok(rank);
        }
        let categories = statuses::categories(jira)?;
        Ok(*self
            .target_rank
            .insert(target_rank(&categories, self.target)))
    }

    /// A dry run's answer: the first transition the walk would take, logged and not POSTed.
    fn plan_only<E: Env>(&self, jira: &mut Jira<'_, E>, next: &Transition) -> StatusOutcome {
        jira.env().log(
            Level::Info,
            events::SYNC_STATUS_OUTBOUND_DRY_RUN,
            &[
                ("issue_key", self.key),
                ("transition", &next.id),
                ("to", &next.to),
            ],
        );
        StatusOutcome::Transitioned(vec![next.id.clone()])
    }

    /// POSTs `next`. The outcome of a failure only names the failure, so a failure after earlier
    /// hops also logs where the walk left the issue.
    fn take<E: Env>(&mut self, jira: &mut Jira<'_, E>, next: &Transition) -> Result<(), JiraError> {
        let body = json!({"transition": {"id": next.id}});
        let posted = jira.send(
            Endpoint::Transition,
            Method::Post,
            &self.transitions_path,
            &[],
            Some(&body),
        );
        if let Err(e) = posted {
            if !self.taken.is_empty() {
                jira.env().log(
                    Level::Warn,
                    events::SYNC_STATUS_OUTBOUND_STOPPED_MIDWAY,
                    &[
                        ("issue_key", self.key),
                        ("transitions", &self.taken.join(",")),
                        ("status", self.visited.last().map_or("", String::as_str)),
                    ],
                );
            }
            return Err(e);
        }
        jira.env().log(
            Level::Info,
            events::SYNC_STATUS_OUTBOUND_TRANSITIONED,
            &[
                ("issue_key", self.key),
                ("transition", &next.id),
                ("to", &next.to),
            ],
        );
        self.taken.push(next.id.clone());
        Ok(())
    }

    fn unreachable<E: Env>(self, jira: &mut Jira<'_, E>) -> StatusOutcome {
        jira.env().log(
            Level::Warn,
            events::STATUS_SYNC_FAIL,
            &[
                ("issue_key", self.key),
                ("target", self.target),
                ("transitions", &self.taken.join(",")),
            ],
        );
        StatusOutcome::Unreachable {
            target: self.target.to_owned(),
            transitions: self.taken,
            statuses_seen: self.seen,
        }
    }
}

/// The rank of `target`'s category in `categories` (a status missing from the list ranks as
/// `indeterminate`).
fn target_rank(categories: &[(String, String)], target: &str) -> u8 {
    let category = categories
        .iter()
        .find(|(id, _)| id == target)
        .map(|(_, c)| c.as_str());
    statuses::category_rank(category)
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

/// The transitions Jira offers from the issue's current status; entries without a `to` are skipped.
fn transitions<E: Env>(jira: &mut Jira<'_, E>, path: &str) -> Result<Vec<Transition>, JiraError> {
    let body = jira.get_json(Endpoint::Transitions, path, &[], false)?;
    let list = body
        .get("transitions")
        .and_then(Value::as_array)
        .ok_or(JiraError::BadResponse(Endpoint::Transitions))?;
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

/// The status-sync outcome for a Jira error: the cases the WIT names, else [`failure`].
fn status_error(e: JiraError) -> StatusOutcome {
    match e {
        JiraError::Status {
            endpoint: Endpoint::Issue,
            status: 404,
            ..
        } => StatusOutcome::IssueNotFound,
        JiraError::Status {
            status: 401 | 403, ..
        } => StatusOutcome::Unauthorized,
        JiraError::Status {
            endpoint: Endpoint::Transition,
            status: 400,
            body,
        } => StatusOutcome::Rejected(jira_messages(&body)),
        JiraError::RateLimited { retry_after, .. } => StatusOutcome::RateLimited(retry_after),
        other => StatusOutcome::Failed(failure(other)),
    }
}

/// The machine-readable failure for a Jira error no outcome names more precisely.
pub(crate) fn failure(e: JiraError) -> Failure {
    match e {
        JiraError::Http(e) => Failure::Http(e),
        JiraError::Status { status, .. } if status >= 500 => Failure::ServerError(status),
        JiraError::Status { status, .. } => Failure::UnexpectedStatus(status),
        JiraError::RateLimited { .. } => Failure::UnexpectedStatus(429),
        JiraError::BadResponse(endpoint) | JiraError::TooLarge(endpoint) => {
            Failure::BadResponse(endpoint.as_str().to_owned())
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

/// Sets the Jira issue's assignee to the Jira user with one of the platform user's emails, or
/// clears it (docs/behaviour.md#3).
pub fn sync_assignee(env: &mut impl Env, request: &AssigneeRequest) -> AssigneeOutcome {
    let Some(installation) = env.by_client_key(&request.client_key) else {
        return AssigneeOutcome::Failed(ASSIGN_FAILED.to_owned(), Failure::UnknownInstallation);
    };
    let key = request.issue_key.as_str();
    if !installation.config.sync_forward_assignment {
        env.log(
            Level::Info,
            events::ASSIGNEE_SYNC_DISABLED,
            &[("issue_key", key)],
        );
        return AssigneeOutcome::Disabled;
    }
    if request.from_this_installation {
        env.log(
            Level::Info,
            events::ASSIGNEE_LOOP_SKIPPED,
            &[("issue_key", key)],
        );
        return AssigneeOutcome::SkippedLoop;
    }
    let mut jira = Jira::new(env, &installation);
    match target_account(&mut jira, &installation, key, &request.target) {
        Ok(account) => push_assignee(&mut jira, key, account),
        Err(outcome) => outcome,
    }
}

/// The Jira account to assign, `None` to unassign; `Err` is the final outcome when no account
/// can be found or Jira failed.
fn target_account<E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &Installation,
    key: &str,
    target: &AssigneeTarget,
) -> Result<Option<String>, AssigneeOutcome> {
    match target {
        AssigneeTarget::Unassign => Ok(None),
        AssigneeTarget::Emails(emails) if emails.is_empty() => {
            jira.env().log(
                Level::Info,
                events::ASSIGNEE_NO_VERIFIED_EMAIL,
                &[("issue_key", key)],
            );
            Err(AssigneeOutcome::NoVerifiedEmail)
        }
        AssigneeTarget::Emails(emails) => match find_user(jira, installation, key, emails) {
            Ok(Some(account)) => Ok(Some(account)),
            Ok(None) => {
                jira.env().log(
                    Level::Info,
                    events::ASSIGNEE_NOT_FOUND,
                    &[("issue_key", key)],
                );
                Err(AssigneeOutcome::NoMatchingUser)
            }
            Err(e) => Err(assign_error(e)),
        },
    }
}

/// PUTs `account` (`null` for `None`) as the issue's assignee.
fn push_assignee<E: Env>(
    jira: &mut Jira<'_, E>,
    key: &str,
    account: Option<String>,
) -> AssigneeOutcome {
    let path = format!("/rest/api/2/issue/{}/assignee", qsh::encode(key));
    let body = json!({ "accountId": account });
    if let Err(e) = jira.send(Endpoint::Assignee, Method::Put, &path, &[], Some(&body)) {
        return assign_error(e);
    }
    jira.env().log(
        Level::Info,
        events::ASSIGNEE_PUSHED,
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
///
/// At most `max-email-lookups` hidden emails are asked of the email API in one search
/// (docs/behaviour.md#3.2); answers the cache holds cost nothing. Candidates past that budget are
/// skipped, and a search that finds no match after skipping some logs how many.
fn find_user<E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &Installation,
    key: &str,
    emails: &[String],
) -> Result<Option<String>, JiraError> {
    let mut lookups = EmailLookups {
        left: installation.config.max_email_lookups,
        skipped: 0,
    };
    for email in emails {
        let users = jira.get_json(
            Endpoint::AssignableSearch,
            "/rest/api/2/user/assignable/search",
            &[("issueKey", key), ("query", email)],
            true,
        )?;
        let users = users
            .as_array()
            .ok_or(JiraError::BadResponse(Endpoint::AssignableSearch))?;
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
                None if installation.config.use_email_scope => lookups.email(jira, &account)?,
                None => None,
            };
            if found.is_some_and(|found| found.eq_ignore_ascii_case(email)) {
                return Ok(Some(account));
            }
        }
    }
    if lookups.skipped > 0 {
        jira.env().log(
            Level::Warn,
            events::ASSIGNEE_SEARCH_LOOKUPS_EXHAUSTED,
            &[
                ("issue_key", key),
                ("skipped", &lookups.skipped.to_string()),
                (
                    "max_email_lookups",
                    &installation.config.max_email_lookups.to_string(),
                ),
            ],
        );
    }
    Ok(None)
}

/// One search's budget of email API lookups.
struct EmailLookups {
    /// Lookups the search may still send.
    left: u32,
    /// Hidden emails not looked up because the budget was spent.
    skipped: u32,
}

impl EmailLookups {
    /// `account`'s hidden email: from the cache, else from the email API while the budget
    /// lasts; `None` once it is spent (the candidate is counted as skipped).
    fn email<E: Env>(
        &mut self,
        jira: &mut Jira<'_, E>,
        account: &str,
    ) -> Result<Option<String>, JiraError> {
        if let Some(known) = users::cached_account_email(jira, account) {
            return Ok(known);
        }
        if self.left == 0 {
            self.skipped += 1;
            return Ok(None);
        }
        self.left -= 1;
        users::fetch_account_email(jira, account)
    }
}

/// The assignee-sync outcome for a Jira error: a 401 is `unauthorized`, the rest `failed`.
fn assign_error(e: JiraError) -> AssigneeOutcome {
    match e {
        JiraError::Status { status: 401, .. } => {
            AssigneeOutcome::Unauthorized(ASSIGN_UNAUTHORIZED.to_owned())
        }
        other => AssigneeOutcome::Failed(ASSIGN_FAILED.to_owned(), failure(other)),
    }
}
