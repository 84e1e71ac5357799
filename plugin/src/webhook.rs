//! The inbound `issue_updated` webhook (docs/behaviour.md#1).

use serde_json::{Value, json};

use crate::env::Env;
use crate::events;
use crate::jira::{Jira, JiraError};
use crate::jwt;
use crate::model::{
    AssignOutcome, Claim, Field, Installation, Level, StatusChange, UnassignOutcome,
    WebhookRequest, WebhookResponse, header,
};
use crate::payload::{self, Assignee, StatusItem, Update};
use crate::qsh;
use crate::statuses;
use crate::timestamp;
use crate::users;

/// The one path the guest answers, compared without its trailing `/`.
pub const WEBHOOK_PATH: &str = "/extensions/jira/issue-updated";

/// Seconds Jira is asked to wait before redelivering a delivery another call is handling.
const IN_PROGRESS_RETRY_AFTER: &str = "5";

/// How far past the clock skew an event's `updated` may lie in the future and still move a
/// watermark (docs/behaviour.md#7).
const FUTURE_TOLERANCE_MS: i64 = 5 * 60 * 1000;

/// Answers one delivery of Jira's `issue_updated` webhook: route, authenticate, dedupe, handle.
/// Every failure is an answer; a delivery is marked handled only once answered without a 5xx.
pub fn handle(env: &mut impl Env, request: &WebhookRequest) -> WebhookResponse {
    if request.path.trim_end_matches('/') != WEBHOOK_PATH {
        return answer(404, json!({"error": "not found"}));
    }
    if !request.method.eq_ignore_ascii_case("POST") {
        let mut response = answer(405, json!({"error": "method not allowed"}));
        response.headers.push(("Allow".into(), "POST".into()));
        return response;
    }
    let installation = match authenticate(env, request) {
        Ok(installation) => installation,
        Err(reason) => return answer(409, json!({"error": reason})),
    };
    let ck = installation.client_key.as_str();
    let delivery = header(&request.headers, "x-atlassian-webhook-identifier");
    if let Some(id) = delivery {
        match env.claim(ck, id) {
            Claim::Claimed => {}
            Claim::Handled => {
                env.log(Level::Info, events::WEBHOOK_DUPLICATE, &[("delivery", id)]);
                return empty(200);
            }
            Claim::InProgress => {
                env.log(
                    Level::Info,
                    events::WEBHOOK_IN_PROGRESS,
                    &[("delivery", id)],
                );
                let mut response = answer(503, json!({"error": "this delivery is being handled"}));
                response
                    .headers
                    .push(("Retry-After".into(), IN_PROGRESS_RETRY_AFTER.into()));
                return response;
            }
        }
    }
    let response = handle_verified(env, &installation, &request.body);
    // Only a handled delivery is recorded: after a 5xx, Jira's retry must run again (the host
    // releases the claim).
    if let Some(id) = delivery
        && response.status < 300
    {
        env.mark_handled(ck, id);
    }
    response
}

/// docs/behaviour.md#1.3 to docs/behaviour.md#1.7, and docs/behaviour.md#7, for a request whose
/// token verified: parse, drop a stale event, run the assignee and status steps, answer.
fn handle_verified(
    env: &mut impl Env,
    installation: &Installation,
    body: &[u8],
) -> WebhookResponse {
    let update = match parse_update(env, body) {
        Ok(update) => update,
        Err(response) => return response,
    };
    let ck = installation.client_key.as_str();
    let ordered_at = ordering_time(&update);
    let (update, fields) = match ordered_at {
        Some(at) => match drop_stale_fields(env, ck, update, at) {
            Some(fresh) => fresh,
            None => return empty(200),
        },
        None => (update, Vec::new()),
    };
    let key = update.issue_key.as_str();
    let errors = run_steps(env, installation, &update);
    for error in &errors {
        env.log(
            Level::Error,
            events::WEBHOOK_JIRA_ERROR,
            &[
                ("issue_key", key),
                ("client_key", ck),
                ("message", error.message),
                ("cause", &error.cause.to_string()),
            ],
        );
    }
    let fatal = errors.iter().any(|e| e.fatal);
    if !fatal
        && let Some(at) = ordered_at
        && !in_the_future(env, installation, &update, at)
    {
        for field in fields {
            env.set_last_applied(ck, key, field, at);
        }
    }
    errors_answer(&errors, fatal)
}

/// The update in `body`; `Err` is the answer when there is nothing to do (no changelog, 200) or
/// the body is malformed (400).
fn parse_update(env: &mut impl Env, body: &[u8]) -> Result<Update, WebhookResponse> {
    match payload::parse(body) {
        Ok(Some(update)) => Ok(update),
        Ok(None) => {
            env.log(Level::Info, events::MISSING_CHANGELOG, &[]);
            Err(empty(200))
        }
        Err(reason) => {
            env.log(
                Level::Warn,
                events::WEBHOOK_BAD_PAYLOAD,
                &[("reason", &reason)],
            );
            Err(answer(400, json!({"error": reason})))
        }
    }
}

/// The event's `issue.fields.updated` in Unix ms, when the event changes something applied in
/// order (the assignee or the status) and the timestamp parses (docs/behaviour.md#7).
fn ordering_time(update: &Update) -> Option<i64> {
    let ordered = update.assignee_changed || update.status.is_some();
    let updated = update.updated.as_deref().and_then(timestamp::parse_millis);
    updated.filter(|_| ordered)
}

/// The update without the fields for which it is stale, and the fields it still orders; `None`
/// when it is stale for every field it changes (docs/behaviour.md#7). Each field has its own
/// watermark: a late assignee change still applies after a newer status change.
fn drop_stale_fields(
    env: &mut impl Env,
    ck: &str,
    mut update: Update,
    at: i64,
) -> Option<(Update, Vec<Field>)> {
    let mut fresh = Vec::new();
    if update.assignee_changed {
        if is_stale(env, ck, &update, Field::Assignee, at) {
            update.assignee_changed = false;
        } else {
            fresh.push(Field::Assignee);
        }
    }
    if update.status.is_some() {
        if is_stale(env, ck, &update, Field::Status, at) {
            update.status = None;
        } else {
            fresh.push(Field::Status);
        }
    }
    (!fresh.is_empty()).then_some((update, fresh))
}

/// Whether an event updated `at` is older than the last one applied to this field of its
/// issue; logged if so.
fn is_stale(env: &mut impl Env, ck: &str, update: &Update, field: Field, at: i64) -> bool {
    let key = update.issue_key.as_str();
    let Some(last) = env.last_applied(ck, key, field) else {
        return false;
    };
    if at >= last {
        return false;
    }
    env.log(
        Level::Info,
        events::STALE_EVENT,
        &[
            ("issue_key", key),
            ("field", field.as_str()),
            ("updated", update.updated.as_deref().unwrap_or_default()),
            ("last_applied_ms", &last.to_string()),
        ],
    );
    true
}

/// Whether `at` lies further ahead of the host's clock than the installation's skew plus
/// [`FUTURE_TOLERANCE_MS`]: such an event is applied but moves no watermark, so that one bad
/// timestamp cannot block an issue; logged if so.
fn in_the_future(
    env: &mut impl Env,
    installation: &Installation,
    update: &Update,
    at: i64,
) -> bool {
    let now_ms = i64::try_from(env.now())
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    let skew_ms = i64::from(installation.config.clock_skew_seconds).saturating_mul(1000);
    if at
        <= now_ms
            .saturating_add(skew_ms)
            .saturating_add(FUTURE_TOLERANCE_MS)
    {
        return false;
    }
    env.log(
        Level::Warn,
        events::FUTURE_TIMESTAMP,
        &[
            ("issue_key", update.issue_key.as_str()),
            ("updated", update.updated.as_deref().unwrap_or_default()),
        ],
    );
    true
}

/// Runs the assignee step, then the status step; the errors of those that failed, in that order.
fn run_steps<E: Env>(env: &mut E, installation: &Installation, update: &Update) -> Vec<StepError> {
    let mut jira = Jira::new(env, installation);
    let mut errors = Vec::new();
    if let Err(e) = assignee_step(&mut jira, installation, update) {
        errors.push(e);
    }
    if let Err(e) = status_step(&mut jira, installation, update) {
        errors.push(e);
    }
    errors
}

/// 200 when every step succeeded; otherwise the steps' messages, with a 500 if one was fatal so
/// that Jira retries.
fn errors_answer(errors: &[StepError], fatal: bool) -> WebhookResponse {
    if errors.is_empty() {
        return empty(200);
    }
    let messages: Vec<&str> = errors.iter().map(|e| e.message).collect();
    answer(
        if fatal { 500 } else { 200 },
        json!({"error_message": messages[0], "errors": messages}),
    )
}

/// docs/behaviour.md#1.1 and docs/behaviour.md#1.2: token, installation, algorithm, signature,
/// expiry, qsh; in that order.
fn authenticate(env: &mut impl Env, request: &WebhookRequest) -> Result<Installation, String> {
    let Some(authorization) = header(&request.headers, "authorization") else {
        return Err(reject(
            env,
            "no-header",
            "missing Authorization header".into(),
        ));
    };
    let Some((_, token)) = authorization.split_once(' ') else {
        return Err(reject(
            env,
            "no-token",
            "Authorization header has no token after a space".into(),
        ));
    };
    let token = token.trim();
    let unverified = jwt::decode(token).map_err(|e| reject(env, e.code(), e.to_string()))?;
    let Some(installation) = env.by_client_key(&unverified.iss) else {
        env.log(
            Level::Warn,
            events::WEBHOOK_UNKNOWN_INSTALLATION,
            &[("iss", &unverified.iss)],
        );
        return Err("unknown installation".into());
    };
    let now = env.now();
    let accepted = qsh::accepted_qshs(&request.method, &request.path, &request.query);
    if let Err(e) = unverified.verify(
        &installation.shared_secret,
        now,
        u64::from(installation.config.clock_skew_seconds),
        &accepted,
    ) {
        return Err(reject(env, e.code(), e.to_string()));
    }
    Ok(installation)
}

/// Logs an authentication failure under its stable `code`; returns `reason` for the answer.
fn reject(env: &mut impl Env, code: &str, reason: String) -> String {
    env.log(
        Level::Warn,
        events::WEBHOOK_AUTH_FAILED,
        &[("reason", code), ("detail", &reason)],
    );
    reason
}

/// A failure of one step while handling a verified webhook (docs/behaviour.md#1.6).
struct StepError {
    message: &'static str,
    fatal: bool,
    cause: JiraError,
}

/// The Jira reads a webhook step can fail on; each has its own messages for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The email API, for an assignee who hides their email.
    Email,
    /// The status list, for the `done` category.
    Statuses,
}

impl Step {
    /// The step's messages when Jira is unreachable, when it refuses, and for anything else.
    fn messages(self) -> [&'static str; 3] {
        match self {
            Step::Email => [
                "Cannot reach host to get email.",
                "User lacks permissions to get email.",
                "Error getting email from Jira.",
            ],
            Step::Statuses => [
                "Cannot reach host to get statuses.",
                "User lacks permissions to get statuses.",
                "Error getting statuses from Jira.",
            ],
        }
    }

    /// `cause` as this step's error. Only an unexpected failure is fatal (a 500, so that Jira
    /// retries); an unreachable or refusing Jira would fail the retry the same way.
    fn error(self, cause: JiraError) -> StepError {
        let [unreachable, refused, other] = self.messages();
        let (message, fatal) = match &cause {
            JiraError::Status {
                status: 500 | 503, ..
            }
            | JiraError::Http(_) => (unreachable, false),
            JiraError::Status {
                status: 403 | 404, ..
            } => (refused, false),
            _ => (other, true),
        };
        StepError {
            message,
            fatal,
            cause,
        }
    }
}

/// The assignee step, unless the changelog has no assignee item or the sync is off.
fn assignee_step<E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &Installation,
    update: &Update,
) -> Result<(), StepError> {
    let key = update.issue_key.as_str();
    if !update.assignee_changed {
        jira.env().log(
            Level::Info,
            events::ASSIGNEE_NOT_IN_CHANGELOG,
            &[("issue_key", key)],
        );
        Ok(())
    } else if !installation.config.sync_reverse_assignment {
        jira.env().log(
            Level::Info,
            events::ASSIGNEE_SYNC_DISABLED,
            &[("issue_key", key)],
        );
        Ok(())
    } else {
        sync_assignee(jira, installation, update)
    }
}

/// The status step, unless the changelog has no status item or the sync is off.
fn status_step<E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &Installation,
    update: &Update,
) -> Result<(), StepError> {
    let key = update.issue_key.as_str();
    match &update.status {
        None => {
            jira.env().log(
                Level::Info,
                events::HANDLE_STATUS_CHANGE_UNCHANGED,
                &[("issue_key", key)],
            );
            Ok(())
        }
        Some(_) if !installation.config.sync_status_reverse => {
            jira.env().log(
                Level::Info,
                events::STATUS_SYNC_DISABLED,
                &[("issue_key", key)],
            );
            Ok(())
        }
        Some(item) => sync_status(jira, installation, key, item),
    }
}

/// docs/behaviour.md#1.4: only `issue.fields.assignee` is read.
fn sync_assignee<E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &Installation,
    update: &Update,
) -> Result<(), StepError> {
    let ck = installation.client_key.as_str();
    let key = update.issue_key.as_str();
    let Some(assignee) = &update.assignee else {
        unassign_groups(jira, ck, key);
        return Ok(());
    };
    let Some(email) = assignee_email(jira, installation, assignee)? else {
        jira.env().log(
            Level::Warn,
            events::MISSING_ASSIGNEE_EMAIL,
            &[
                ("issue_key", key),
                ("account_id", assignee.account_id.as_deref().unwrap_or("")),
            ],
        );
        return Ok(());
    };
    let (event, count) = match jira.env().assign(ck, key, &email) {
        AssignOutcome::Assigned(n) => (events::ASSIGNEE_SYNCED, n),
        AssignOutcome::NoUserWithEmail => (events::ASSIGNEE_NOT_FOUND, 0),
        AssignOutcome::NoLinkedGroups => (events::NO_LINKED_GROUPS, 0),
    };
    log_groups(jira, event, key, count);
    Ok(())
}

/// The Jira issue lost its assignee: unassign the linked groups.
fn unassign_groups<E: Env>(jira: &mut Jira<'_, E>, ck: &str, key: &str) {
    let (event, count) = match jira.env().unassign(ck, key) {
        UnassignOutcome::Unassigned(n) => (events::ASSIGNEE_CLEARED, n),
        UnassignOutcome::NoLinkedGroups => (events::NO_LINKED_GROUPS, 0),
    };
    log_groups(jira, event, key, count);
}

/// The assignee's email: from the payload, else from the email API when the installation has
/// the email scope and the payload names the account.
fn assignee_email<E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &Installation,
    assignee: &Assignee,
) -> Result<Option<String>, StepError> {
    if assignee.email.is_some() || !installation.config.use_email_scope {
        return Ok(assignee.email.clone());
    }
    let Some(account_id) = &assignee.account_id else {
        return Ok(None);
    };
    users::account_email(jira, account_id).map_err(|e| Step::Email.error(e))
}

/// Logs what the host did to the issue's linked groups: `event` and how many groups changed.
fn log_groups<E: Env>(jira: &mut Jira<'_, E>, event: &str, key: &str, count: u32) {
    jira.env().log(
        Level::Info,
        event,
        &[("issue_key", key), ("groups", &count.to_string())],
    );
}

/// docs/behaviour.md#1.5: resolve or unresolve by the `done` status category.
fn sync_status<E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &Installation,
    key: &str,
    item: &StatusItem,
) -> Result<(), StepError> {
    let done = statuses::done(jira).map_err(|e| Step::Statuses.error(e))?;
    let is_done = |id: &Option<String>| id.as_ref().is_some_and(|id| done.contains(id));
    let (from_done, to_done) = (is_done(&item.from), is_done(&item.to));
    let ck = installation.client_key.as_str();
    let (event, outcome) = if to_done && !from_done {
        let strategy = installation.config.resolution_strategy;
        (
            events::STATUS_SYNC_RESOLVED,
            jira.env().resolve(ck, key, strategy),
        )
    } else if from_done && !to_done {
        (
            events::STATUS_SYNC_UNRESOLVED,
            jira.env().unresolve(ck, key),
        )
    } else {
        jira.env().log(
            Level::Info,
            events::STATUS_SYNC_NOOP,
            &[
                ("issue_key", key),
                ("from", item.from.as_deref().unwrap_or("")),
                ("to", item.to.as_deref().unwrap_or("")),
            ],
        );
        return Ok(());
    };
    let (event, count) = match outcome {
        StatusChange::Changed(n) => (event, n),
        StatusChange::NoLinkedGroups => (events::NO_LINKED_GROUPS, 0),
    };
    log_groups(jira, event, key, count);
    Ok(())
}

/// A JSON answer.
fn answer(status: u16, body: Value) -> WebhookResponse {
    WebhookResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

/// An answer without a body.
fn empty(status: u16) -> WebhookResponse {
    WebhookResponse {
        status,
        headers: Vec::new(),
        body: Vec::new(),
    }
}
