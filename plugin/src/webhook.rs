//! The inbound `issue_updated` webhook (SPEC section 1).

use serde_json::{Value, json};

use crate::env::Env;
use crate::jira::{Jira, JiraError};
use crate::jwt;
use crate::model::{
    AssignOutcome, Installation, Level, StatusChange, UnassignOutcome, WebhookRequest,
    WebhookResponse, header,
};
use crate::payload::{self, StatusItem, Update};
use crate::qsh;
use crate::statuses;
use crate::timestamp;
use crate::users;

pub const WEBHOOK_PATH: &str = "/extensions/jira/issue-updated";

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
    if let Some(id) = delivery
        && env.seen(ck, id)
    {
        env.log(Level::Info, "jira.webhook.duplicate", &[("delivery", id)]);
        return empty(200);
    }
    let response = handle_verified(env, &installation, &request.body);
    // Only a handled delivery counts as seen: after a 500, Jira's retry must run again.
    if let Some(id) = delivery
        && response.status < 300
    {
        env.mark_seen(ck, id);
    }
    response
}

/// SPEC 1.3-1.7 and 7, for a request whose token verified.
fn handle_verified(
    env: &mut impl Env,
    installation: &Installation,
    body: &[u8],
) -> WebhookResponse {
    let update = match payload::parse(body) {
        Ok(Some(update)) => update,
        Ok(None) => {
            env.log(Level::Info, "jira.missing-changelog", &[]);
            return empty(200);
        }
        Err(reason) => {
            env.log(
                Level::Warn,
                "jira.webhook.bad-payload",
                &[("reason", &reason)],
            );
            return answer(400, json!({"error": reason}));
        }
    };
    let key = update.issue_key.as_str();
    let ck = installation.client_key.as_str();
    let ordered = update.assignee_changed || update.status.is_some();
    let updated = update.updated.as_deref().and_then(timestamp::parse_millis);
    if ordered
        && let Some(at) = updated
        && let Some(last) = env.last_applied(ck, key)
        && at < last
    {
        env.log(
            Level::Info,
            "jira.stale-event",
            &[
                ("issue_key", key),
                ("updated", update.updated.as_deref().unwrap_or_default()),
                ("last_applied_ms", &last.to_string()),
            ],
        );
        return empty(200);
    }

    let mut errors = Vec::new();
    let mut jira = Jira::new(env, installation);
    if !update.assignee_changed {
        jira.env().log(
            Level::Info,
            "jira.assignee-not-in-changelog",
            &[("issue_key", key)],
        );
    } else if !installation.config.sync_reverse_assignment {
        jira.env().log(
            Level::Info,
            "jira.assignee-sync-disabled",
            &[("issue_key", key)],
        );
    } else if let Err(e) = sync_assignee(&mut jira, installation, &update) {
        errors.push(e);
    }

    match &update.status {
        None => jira.env().log(
            Level::Info,
            "jira.handle_status_change.unchanged",
            &[("issue_key", key)],
        ),
        Some(_) if !installation.config.sync_status_reverse => jira.env().log(
            Level::Info,
            "jira.status-sync-disabled",
            &[("issue_key", key)],
        ),
        Some(item) => {
            if let Err(e) = sync_status(&mut jira, installation, key, item) {
                errors.push(e);
            }
        }
    }

    for error in &errors {
        jira.env().log(
            Level::Error,
            "jira.webhook.jira-error",
            &[
                ("issue_key", key),
                ("client_key", ck),
                ("message", error.message),
                ("cause", &error.cause.to_string()),
            ],
        );
    }
    let fatal = errors.iter().any(|e| e.fatal);
    if ordered
        && !fatal
        && let Some(at) = updated
    {
        env.set_last_applied(ck, key, at);
    }
    if errors.is_empty() {
        return empty(200);
    }
    let messages: Vec<&str> = errors.iter().map(|e| e.message).collect();
    answer(
        if fatal { 500 } else { 200 },
        json!({"error_message": messages[0], "errors": messages}),
    )
}

/// SPEC 1.1-1.2: token, installation, algorithm, signature, expiry, qsh; in that order.
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
            "jira.webhook.unknown-installation",
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

fn reject(env: &mut impl Env, code: &str, reason: String) -> String {
    env.log(
        Level::Warn,
        "jira.webhook.auth-failed",
        &[("reason", code), ("detail", &reason)],
    );
    reason
}

/// A failure of one step while handling a verified webhook (SPEC 1.6).
struct StepError {
    message: &'static str,
    fatal: bool,
    cause: JiraError,
}

fn step_error(cause: JiraError, what: &'static str) -> StepError {
    let (message, fatal) = match (&cause, what) {
        (
            JiraError::Status {
                status: 500 | 503, ..
            }
            | JiraError::Http(_),
            "email",
        ) => ("Cannot reach host to get email.", false),
        (
            JiraError::Status {
                status: 403 | 404, ..
            },
            "email",
        ) => ("User lacks permissions to get email.", false),
        (
            JiraError::Status {
                status: 500 | 503, ..
            }
            | JiraError::Http(_),
            _,
        ) => ("Cannot reach host to get statuses.", false),
        (
            JiraError::Status {
                status: 403 | 404, ..
            },
            _,
        ) => ("User lacks permissions to get statuses.", false),
        (_, "email") => ("Error getting email from Jira.", true),
        _ => ("Error getting statuses from Jira.", true),
    };
    StepError {
        message,
        fatal,
        cause,
    }
}

/// SPEC 1.4: only `issue.fields.assignee` is read.
fn sync_assignee<E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &Installation,
    update: &Update,
) -> Result<(), StepError> {
    let ck = installation.client_key.as_str();
    let key = update.issue_key.as_str();
    let Some(assignee) = &update.assignee else {
        let outcome = jira.env().unassign(ck, key);
        let (event, count) = match outcome {
            UnassignOutcome::Unassigned(n) => ("jira.assignee-cleared", n),
            UnassignOutcome::NoLinkedGroups => ("jira.no-linked-groups", 0),
        };
        jira.env().log(
            Level::Info,
            event,
            &[("issue_key", key), ("groups", &count.to_string())],
        );
        return Ok(());
    };
    let mut email: Option<String> = assignee.email.clone();
    if email.is_none()
        && installation.config.use_email_scope
        && let Some(account_id) = &assignee.account_id
    {
        email = users::account_email(jira, account_id).map_err(|e| step_error(e, "email"))?;
    }
    let Some(email) = email else {
        jira.env().log(
            Level::Warn,
            "jira.missing-assignee-email",
            &[
                ("issue_key", key),
                ("account_id", assignee.account_id.as_deref().unwrap_or("")),
            ],
        );
        return Ok(());
    };
    let (level, event, count) = match jira.env().assign(ck, key, &email) {
        AssignOutcome::Assigned(n) => (Level::Info, "jira.assignee-synced", n),
        AssignOutcome::NoUserWithEmail => (Level::Info, "jira.assignee-not-found", 0),
        AssignOutcome::NoLinkedGroups => (Level::Info, "jira.no-linked-groups", 0),
    };
    jira.env().log(
        level,
        event,
        &[("issue_key", key), ("groups", &count.to_string())],
    );
    Ok(())
}

/// SPEC 1.5: resolve or unresolve by the `done` status category.
fn sync_status<E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &Installation,
    key: &str,
    item: &StatusItem,
) -> Result<(), StepError> {
    let done = statuses::done(jira).map_err(|e| step_error(e, "statuses"))?;
    let is_done = |id: &Option<String>| id.as_ref().is_some_and(|id| done.contains(id));
    let (from_done, to_done) = (is_done(&item.from), is_done(&item.to));
    let ck = installation.client_key.as_str();
    let (event, outcome) = if to_done && !from_done {
        let strategy = installation.config.resolution_strategy;
        (
            "jira.status-sync.resolved",
            jira.env().resolve(ck, key, strategy),
        )
    } else if from_done && !to_done {
        ("jira.status-sync.unresolved", jira.env().unresolve(ck, key))
    } else {
        jira.env().log(
            Level::Info,
            "jira.status-sync.noop",
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
        StatusChange::NoLinkedGroups => ("jira.no-linked-groups", 0),
    };
    jira.env().log(
        Level::Info,
        event,
        &[("issue_key", key), ("groups", &count.to_string())],
    );
    Ok(())
}

fn answer(status: u16, body: Value) -> WebhookResponse {
    WebhookResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn empty(status: u16) -> WebhookResponse {
    WebhookResponse {
        status,
        headers: Vec::new(),
        body: Vec::new(),
    }
}
