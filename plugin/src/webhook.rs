//! Jira's inbound issue events (docs/behaviour.md#1): `issue_updated` and `issue_deleted`, as
//! Connect, OAuth 2.0 and admin webhooks deliver them (docs/behaviour.md#10).
//!
//! Three entry points share the same pieces: [`handle`] answers a delivery after doing all its
//! work; [`accept`] only verifies it and decides whether there is work, so that a host can answer
//! Jira at once and queue a [`Job`]; [`process`] then does that work.

use serde_json::{Value, json};

use crate::env::Env;
use crate::events;
use crate::jira::{Jira, JiraError};
use crate::jwt;
use crate::model::{
    Acceptance, AssignOutcome, Claim, Credentials, Field, HttpError, Installation, Job, JobOutcome,
    Level, StatusChange, UnassignOutcome, WebhookRequest, WebhookResponse, header,
};
use crate::payload::{self, Assignee, Event, StatusItem, Update};
use crate::qsh;
use crate::signature;
use crate::statuses;
use crate::timestamp;
use crate::users;

/// The path of Connect's webhooks, compared without its trailing `/`.
pub const WEBHOOK_PATH: &str = "/extensions/jira/issue-updated";

/// The path of an admin webhook of installation `{client-key}`: `ADMIN_WEBHOOK_PREFIX{client-key}`
/// (docs/behaviour.md#10.3).
pub const ADMIN_WEBHOOK_PREFIX: &str = "/webhooks/admin/";

/// The path of an OAuth 2.0 app's dynamic webhook for installation `{client-key}`:
/// `OAUTH_WEBHOOK_PREFIX{client-key}` (docs/behaviour.md#10.2).
pub const OAUTH_WEBHOOK_PREFIX: &str = "/webhooks/oauth/";

/// Seconds Jira is asked to wait (`Retry-After`) before redelivering a webhook that failed on a
/// transient Jira error other than a rate limit (docs/behaviour.md#1.6).
pub const TRANSIENT_RETRY_AFTER_SECONDS: u32 = 10;

/// Seconds Jira (or the host's queue) is asked to wait before running again a delivery another
/// call is handling.
const IN_PROGRESS_RETRY_AFTER_SECONDS: u32 = 5;

/// How far past the clock skew an event's `updated` may lie in the future and still move a
/// watermark (docs/behaviour.md#7).
const FUTURE_TOLERANCE_MS: i64 = 5 * 60 * 1000;

/// Answers one delivery of Jira's `issue_updated` webhook: route, authenticate, dedupe, handle.
/// Every failure is an answer; a delivery is marked handled only once answered below 300.
///
/// The synchronous path, [`accept`] and [`process`] in one call, for replays and for hosts
/// without a queue; unlike `accept`, it claims the delivery before it parses the body.
pub fn handle(env: &mut impl Env, request: &WebhookRequest) -> WebhookResponse {
    let installation = match verify(env, request) {
        Ok(installation) => installation,
        Err(response) => return response,
    };
    let delivery = header(&request.headers, "x-atlassian-webhook-identifier");
    if let Some(id) = delivery
        && let Some(taken) = claim(env, &installation.client_key, id)
    {
        return taken.response();
    }
    run(env, &installation, delivery, &request.body).into_response()
}

/// Verifies one delivery and decides whether it needs work (docs/behaviour.md#1): routes and
/// authenticates it as [`handle`] does, then parses its body ([`Acceptance::Answered`] 400 if
/// malformed, 200 if it has no changelog). Makes no Jira call, claims nothing and changes
/// nothing: the work is [`process`]'s.
pub fn accept(env: &mut impl Env, request: WebhookRequest) -> Acceptance {
    let installation = match verify(env, &request) {
        Ok(installation) => installation,
        Err(response) => return Acceptance::Answered(response),
    };
    if let Err(verdict) = parse_event(env, &request.body) {
        return Acceptance::Answered(verdict.into_response());
    }
    let delivery_id = header(&request.headers, "x-atlassian-webhook-identifier").map(str::to_owned);
    Acceptance::Queued(Job {
        client_key: installation.client_key,
        delivery_id,
        body: request.body,
    })
}

/// Runs a job [`accept`] queued (docs/behaviour.md#1): claims the delivery, drops stale fields,
/// runs the assignee and status steps, applies the effects and marks the delivery handled, as
/// [`handle`] does once the token verified; the ending is a [`JobOutcome`] instead of an answer.
/// Nothing is applied unless the outcome is [`JobOutcome::Done`].
pub fn process(env: &mut impl Env, job: &Job) -> JobOutcome {
    let delivery = job.delivery_id.as_deref();
    let Some(installation) = env.by_client_key(&job.client_key) else {
        env.log(
            Level::Warn,
            events::JOB_UNKNOWN_INSTALLATION,
            &[
                ("client_key", &job.client_key),
                ("delivery", delivery.unwrap_or_default()),
            ],
        );
        return JobOutcome::Failed("unknown installation".into());
    };
    if let Some(id) = delivery
        && let Some(taken) = claim(env, &installation.client_key, id)
    {
        return taken.outcome();
    }
    run(env, &installation, delivery, &job.body).into_outcome()
}

/// The routes of the webhooks, each with its way of proving a delivery (docs/behaviour.md#10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A Connect webhook: the installation is the `iss` of its JWT.
    Connect,
    /// An admin webhook of this installation (its client key, from the path).
    Admin(String),
    /// An OAuth 2.0 app's webhook for this installation (its client key, from the path).
    Oauth(String),
}

impl Route {
    /// The route of `path` (a trailing `/` does not count), if it is a webhook's.
    pub fn of(path: &str) -> Option<Route> {
        let path = path.trim_end_matches('/');
        if path == WEBHOOK_PATH {
            return Some(Route::Connect);
        }
        let client_key = |rest: &str| {
            let key = percent_encoding::percent_decode_str(rest)
                .decode_utf8()
                .ok()?;
            (!key.is_empty() && !key.contains('/')).then(|| key.into_owned())
        };
        if let Some(rest) = path.strip_prefix(ADMIN_WEBHOOK_PREFIX) {
            return client_key(rest).map(Route::Admin);
        }
        if let Some(rest) = path.strip_prefix(OAUTH_WEBHOOK_PREFIX) {
            return client_key(rest).map(Route::Oauth);
        }
        None
    }
}

/// docs/behaviour.md#1, checks 1 to 3: the path, the method, then the credential
/// ([`authenticate`]); `Err` is the answer (404, 405 with `Allow: POST`, 409).
fn verify(env: &mut impl Env, request: &WebhookRequest) -> Result<Installation, WebhookResponse> {
    let Some(route) = Route::of(&request.path) else {
        return Err(answer(404, json!({"error": "not found"})));
    };
    if !request.method.eq_ignore_ascii_case("POST") {
        let mut response = answer(405, json!({"error": "method not allowed"}));
        response.headers.push(("Allow".into(), "POST".into()));
        return Err(response);
    }
    let authenticated = match route {
        Route::Connect => authenticate(env, request),
        Route::Admin(client_key) => authenticate_admin(env, &client_key, request),
        Route::Oauth(client_key) => authenticate_oauth(env, &client_key, request),
    };
    authenticated.map_err(|reason| answer(409, json!({"error": reason})))
}

/// Why a delivery is not this call's to run (docs/behaviour.md#7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// It was handled before: acknowledged without effects.
    Handled,
    /// Another call is handling it right now: to be run again later.
    InProgress,
}

impl Taken {
    /// [`handle`]'s answer: 200 with an empty body, or 503 with `Retry-After`.
    fn response(self) -> WebhookResponse {
        match self {
            Taken::Handled => empty(200),
            Taken::InProgress => {
                let mut response = answer(503, json!({"error": "this delivery is being handled"}));
                response.headers.push((
                    "Retry-After".into(),
                    IN_PROGRESS_RETRY_AFTER_SECONDS.to_string(),
                ));
                response
            }
        }
    }

    /// [`process`]'s outcome: done, or retry after [`IN_PROGRESS_RETRY_AFTER_SECONDS`].
    fn outcome(self) -> JobOutcome {
        match self {
            Taken::Handled => JobOutcome::Done,
            Taken::InProgress => JobOutcome::RetryAfter(IN_PROGRESS_RETRY_AFTER_SECONDS),
        }
    }
}

/// Claims delivery `id` of installation `ck` (docs/behaviour.md#7); `Some`, logged, when this
/// call must not run it.
fn claim(env: &mut impl Env, ck: &str, id: &str) -> Option<Taken> {
    match env.claim(ck, id) {
        Claim::Claimed => None,
        Claim::Handled => {
            env.log(Level::Info, events::WEBHOOK_DUPLICATE, &[("delivery", id)]);
            Some(Taken::Handled)
        }
        Claim::InProgress => {
            env.log(
                Level::Info,
                events::WEBHOOK_IN_PROGRESS,
                &[("delivery", id)],
            );
            Some(Taken::InProgress)
        }
    }
}

/// Does the work on a verified delivery this call holds (or that has no id), then marks it
/// handled if the work is done.
fn run(
    env: &mut impl Env,
    installation: &Installation,
    delivery: Option<&str>,
    body: &[u8],
) -> Verdict {
    let verdict = handle_verified(env, installation, body);
    // Only a handled delivery is recorded: after a 400 or a 5xx, Jira's retry (or the host's
    // queue) must run it again (the host releases the claim).
    if let Some(id) = delivery
        && let Verdict::Done(_) = verdict
    {
        env.mark_handled(&installation.client_key, id);
    }
    verdict
}

/// How the work on a verified delivery ended (docs/behaviour.md#1.3, docs/behaviour.md#1.6):
/// [`handle`]'s answer, or [`process`]'s outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Done: the effects were applied, or there was nothing to apply (no changelog, a stale
    /// event), or only permanent failures; answered with this, below 300. The delivery counts as
    /// handled.
    Done(WebhookResponse),
    /// The body is malformed, for this reason: answered 400; nothing applied.
    Malformed(String),
    /// A transient failure: answered with `response`, a 503 whose `Retry-After` is
    /// `retry_after`; nothing applied.
    Transient {
        /// Seconds to wait before running the delivery again.
        retry_after: u32,
        /// The 503.
        response: WebhookResponse,
    },
    /// An unexpected failure: answered with `response`, a 500 whose `error_message` is
    /// `message`; nothing applied.
    Unexpected {
        /// The first failed step's message.
        message: &'static str,
        /// The 500.
        response: WebhookResponse,
    },
}

impl Verdict {
    /// The answer for Jira.
    fn into_response(self) -> WebhookResponse {
        match self {
            Verdict::Done(response)
            | Verdict::Transient { response, .. }
            | Verdict::Unexpected { response, .. } => response,
            Verdict::Malformed(reason) => answer(400, json!({"error": reason})),
        }
    }

    /// The job's outcome for the host's queue.
    fn into_outcome(self) -> JobOutcome {
        match self {
            Verdict::Done(_) => JobOutcome::Done,
            Verdict::Malformed(reason) => JobOutcome::Failed(format!("malformed body: {reason}")),
            Verdict::Transient { retry_after, .. } => JobOutcome::RetryAfter(retry_after),
            Verdict::Unexpected { message, .. } => JobOutcome::Failed(message.into()),
        }
    }
}

/// docs/behaviour.md#1.3 to docs/behaviour.md#1.7, and docs/behaviour.md#7, for a request whose
/// token verified: parse, drop a stale event, run the assignee and status steps, apply.
fn handle_verified(env: &mut impl Env, installation: &Installation, body: &[u8]) -> Verdict {
    let update = match parse_event(env, body) {
        Ok(Event::Updated(update)) => update,
        Ok(Event::Deleted { issue_key }) => return deleted(env, installation, &issue_key),
        Err(verdict) => return verdict,
    };
    let ck = installation.client_key.as_str();
    let ordered_at = ordering_time(&update);
    let (update, fields) = match ordered_at {
        Some(at) => drop_stale_fields(env, ck, update, at),
        None => (update, Vec::new()),
    };
    if ordered_at.is_some() && fields.is_empty() {
        // Stale for every field it changes; a move it records still happened.
        follow_move(env, ck, &update);
        return Verdict::Done(empty(200));
    }
    let key = update.issue_key.as_str();
    let (effects, errors) = run_steps(env, installation, &update);
    for error in &errors {
        env.log(
            Level::Error,
            events::WEBHOOK_JIRA_ERROR,
            &[
                ("issue_key", key),
                ("client_key", ck),
                ("message", error.message),
                ("cause", &error.cause.to_string()),
                ("kind", error.severity.as_str()),
            ],
        );
    }
    let verdict = errors_verdict(&errors);
    // A transient or unexpected failure (a 5xx answer) applies nothing and moves no watermark,
    // so that Jira's redelivery (or the host's queue) runs the whole webhook again
    // (docs/behaviour.md#1.6).
    if !matches!(verdict, Verdict::Done(_)) {
        return verdict;
    }
    // The links move first: the steps' changes are to the groups linked under either key.
    follow_move(env, ck, &update);
    for effect in effects {
        apply(env, installation, key, effect);
    }
    if let Some(at) = ordered_at
        && !in_the_future(env, installation, &update, at)
    {
        for field in fields {
            env.set_last_applied(ck, key, field, at);
        }
    }
    verdict
}

/// The event in `body` (docs/behaviour.md#1.3); `Err`, logged, when there is nothing to do (an
/// update without a changelog: done, answered 200) or the body is malformed (answered 400).
fn parse_event(env: &mut impl Env, body: &[u8]) -> Result<Event, Verdict> {
    match payload::parse(body) {
        Ok(Some(event)) => Ok(event),
        Ok(None) => {
            env.log(Level::Info, events::MISSING_CHANGELOG, &[]);
            Err(Verdict::Done(empty(200)))
        }
        Err(reason) => {
            env.log(
                Level::Warn,
                events::WEBHOOK_BAD_PAYLOAD,
                &[("reason", &reason)],
            );
            Err(Verdict::Malformed(reason))
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

/// The update without the fields for which it is stale, and the fields it still orders, none
/// when it is stale for every field it changes (docs/behaviour.md#7). Each field has its own
/// watermark: a late assignee change still applies after a newer status change.
fn drop_stale_fields(
    env: &mut impl Env,
    ck: &str,
    mut update: Update,
    at: i64,
) -> (Update, Vec<Field>) {
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
    (update, fresh)
}

/// Whether an event updated `at` is older than the last one applied to this field of its
/// issue, under its key or, for a move, its old key (whose watermarks the move carries over);
/// logged if so.
fn is_stale(env: &mut impl Env, ck: &str, update: &Update, field: Field, at: i64) -> bool {
    let key = update.issue_key.as_str();
    let keys = std::iter::once(key).chain(update.moved_from.as_deref());
    let Some(last) = keys.filter_map(|k| env.last_applied(ck, k, field)).max() else {
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

/// docs/behaviour.md#1.8: Jira deleted the issue; its links go (the groups stay).
fn deleted(env: &mut impl Env, installation: &Installation, key: &str) -> Verdict {
    let groups = env.remove_links(&installation.client_key, key);
    env.log(
        Level::Info,
        events::ISSUE_DELETED,
        &[("issue_key", key), ("groups", &groups.to_string())],
    );
    Verdict::Done(empty(200))
}

/// docs/behaviour.md#1.8: when the update moved the issue, its links and watermarks follow it to
/// its new key, with the call's effects.
fn follow_move(env: &mut impl Env, ck: &str, update: &Update) {
    let Some(from) = update.moved_from.as_deref() else {
        return;
    };
    let to = update.issue_key.as_str();
    let groups = env.rename_links(ck, from, to);
    env.log(
        Level::Info,
        events::ISSUE_MOVED,
        &[
            ("from", from),
            ("issue_key", to),
            ("groups", &groups.to_string()),
        ],
    );
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

/// Runs the assignee step, then the status step, both always (docs/behaviour.md#1.6): what they
/// decided to do to the platform's groups, in that order, and the errors of those that failed.
/// Nothing is applied here: see [`apply`].
fn run_steps<E: Env>(
    env: &mut E,
    installation: &Installation,
    update: &Update,
) -> (Vec<Effect>, Vec<StepError>) {
    let mut jira = Jira::for_webhook(env, installation);
    let mut effects = Vec::new();
    let mut errors = Vec::new();
    for step in [assignee_step, status_step] {
        match step(&mut jira, installation, update) {
            Ok(effect) => effects.extend(effect),
            Err(e) => errors.push(e),
        }
    }
    (effects, errors)
}

/// Done, answered 200, when every step succeeded; otherwise the steps' messages, answered 500 if
/// a failure was unexpected, else 503 with `Retry-After` if one was transient, else 200 (done)
/// (docs/behaviour.md#1.6).
fn errors_verdict(errors: &[StepError]) -> Verdict {
    if errors.is_empty() {
        return Verdict::Done(empty(200));
    }
    let messages: Vec<&str> = errors.iter().map(|e| e.message).collect();
    let body = json!({"error_message": messages[0], "errors": messages});
    if errors.iter().any(|e| e.severity == Severity::Unexpected) {
        return Verdict::Unexpected {
            message: messages[0],
            response: answer(500, body),
        };
    }
    let retry_after = errors
        .iter()
        .filter_map(|e| match e.severity {
            Severity::Transient { retry_after } => Some(retry_after),
            _ => None,
        })
        .max();
    let Some(retry_after) = retry_after else {
        return Verdict::Done(answer(200, body));
    };
    let mut response = answer(503, body);
    response
        .headers
        .push(("Retry-After".into(), retry_after.to_string()));
    Verdict::Transient {
        retry_after,
        response,
    }
}

/// docs/behaviour.md#1.1 and docs/behaviour.md#1.2, a Connect webhook: header, token,
/// installation (a Connect one), algorithm, signature, expiry, qsh, age; in that order.
fn authenticate(env: &mut impl Env, request: &WebhookRequest) -> Result<Installation, String> {
    let unverified = bearer(env, request)?;
    let installation = installation(env, &unverified.iss, "iss")?;
    let Credentials::Connect(secret) = &installation.credentials else {
        return Err(wrong_kind(env, &installation, "Connect"));
    };
    let accepted = qsh::accepted_qshs(&request.method, &request.path, &request.query);
    check_token(env, &installation, &unverified, secret, Some(&accepted))?;
    Ok(installation)
}

/// docs/behaviour.md#10.2, an OAuth 2.0 app's webhook for the installation the path names:
/// header, token, installation (an OAuth one), issuer (the app's client id), algorithm,
/// signature, expiry, age. The token has no qsh.
fn authenticate_oauth(
    env: &mut impl Env,
    client_key: &str,
    request: &WebhookRequest,
) -> Result<Installation, String> {
    let unverified = bearer(env, request)?;
    let installation = installation(env, client_key, "client_key")?;
    let Credentials::Oauth(app) = &installation.credentials else {
        return Err(wrong_kind(env, &installation, "OAuth 2.0"));
    };
    if unverified.iss != app.client_id {
        return Err(reject(
            env,
            "wrong-issuer",
            format!(
                "token issuer `{}` is not the app's client id",
                unverified.iss
            ),
        ));
    }
    check_token(env, &installation, &unverified, &app.client_secret, None)?;
    Ok(installation)
}

/// docs/behaviour.md#10.3, an admin webhook for the installation the path names: installation
/// (an admin webhook one), then `X-Hub-Signature` over the raw body, compared in constant time.
/// The signature has no timestamp: dedupe and the watermarks are the replay defence.
fn authenticate_admin(
    env: &mut impl Env,
    client_key: &str,
    request: &WebhookRequest,
) -> Result<Installation, String> {
    let installation = installation(env, client_key, "client_key")?;
    let Credentials::AdminWebhook(secret) = &installation.credentials else {
        return Err(wrong_kind(env, &installation, "admin webhook"));
    };
    let Some(value) = header(&request.headers, signature::HEADER) else {
        return Err(reject(
            env,
            "no-signature",
            format!("missing {} header", signature::HEADER),
        ));
    };
    if let Err(e) = signature::verify(secret, &request.body, value) {
        return Err(reject(env, e.code(), e.to_string()));
    }
    Ok(installation)
}

/// The request's token (docs/behaviour.md#1.1), decoded but not verified; `Err`, logged, when
/// there is none or it is malformed.
fn bearer<'r>(
    env: &mut impl Env,
    request: &'r WebhookRequest,
) -> Result<jwt::Unverified<'r>, String> {
    let Some(authorization) = header(&request.headers, "authorization") else {
        return Err(reject(
            env,
            "no-header",
            "missing Authorization header".into(),
        ));
    };
    let token = credential(authorization).map_err(|(code, why)| reject(env, code, why.into()))?;
    jwt::decode(token).map_err(|e| reject(env, e.code(), e.to_string()))
}

/// The installation `client_key` names; `Err`, logged (the key under `field`: the token's `iss`,
/// or the path's `client_key`), when the host has none.
fn installation(env: &mut impl Env, client_key: &str, field: &str) -> Result<Installation, String> {
    match env.by_client_key(client_key) {
        Some(installation) => Ok(installation),
        None => {
            env.log(
                Level::Warn,
                events::WEBHOOK_UNKNOWN_INSTALLATION,
                &[(field, client_key)],
            );
            Err("unknown installation".into())
        }
    }
}

/// A delivery on a route of another kind than the installation's credentials: refused, so that
/// no secret verifies a kind of proof it was not issued for.
fn wrong_kind(env: &mut impl Env, installation: &Installation, route: &str) -> String {
    reject(
        env,
        "wrong-kind",
        format!(
            "a {route} delivery for an installation whose credentials are {}",
            installation.credentials.kind()
        ),
    )
}

/// An HS256 token's algorithm, signature, expiry, qsh (when `accepted_qsh` is given) and age,
/// under the installation's clock skew and token lifetime (docs/behaviour.md#1.2).
fn check_token(
    env: &mut impl Env,
    installation: &Installation,
    token: &jwt::Unverified<'_>,
    secret: &str,
    accepted_qsh: Option<&[String]>,
) -> Result<(), String> {
    let now = env.now();
    let config = &installation.config;
    let skew = u64::from(config.clock_skew_seconds);
    token
        .verify(secret, now, skew, accepted_qsh)
        .and_then(|()| token.check_age(now, skew, u64::from(config.max_token_lifetime_seconds)))
        .map_err(|e| reject(env, e.code(), e.to_string()))
}

/// The token of an `Authorization` value (docs/behaviour.md#1.1): the scheme `JWT` or `Bearer`
/// in any case, one space, then the token, which holds no whitespace; whitespace around the whole
/// value is ignored, as HTTP does. `Err` is the log code and the reason.
fn credential(authorization: &str) -> Result<&str, (&'static str, &'static str)> {
    let Some((scheme, token)) = authorization.trim().split_once(' ') else {
        return Err((
            "no-token",
            "Authorization header has no token after a space",
        ));
    };
    if !scheme.eq_ignore_ascii_case("JWT") && !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(("bad-scheme", "Authorization scheme must be JWT or Bearer"));
    }
    if token.is_empty() || token.contains(|c: char| c.is_ascii_whitespace()) {
        return Err((
            "no-token",
            "Authorization header must be the scheme, one space and the token",
        ));
    }
    Ok(token)
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
    severity: Severity,
    cause: JiraError,
}

/// What a step's failure means for the delivery (docs/behaviour.md#1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    /// Retrying cannot help (Jira refuses, or the sandbox does): answered 200, handled.
    Permanent,
    /// Jira may answer later (5xx, no answer, a rate limit past the webhook's wait budget):
    /// answered 503 with `Retry-After` this many seconds, nothing applied, so that Jira
    /// redelivers.
    Transient {
        /// Seconds for `Retry-After`.
        retry_after: u32,
    },
    /// Anything else (401, a body of the wrong shape, ...): answered 500, nothing applied.
    Unexpected,
}

impl Severity {
    /// The severity's name in `jira.webhook.jira-error`'s `kind` field.
    fn as_str(self) -> &'static str {
        match self {
            Severity::Permanent => "permanent",
            Severity::Transient { .. } => "transient",
            Severity::Unexpected => "unexpected",
        }
    }
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

    /// `cause` as this step's error, classified as in docs/behaviour.md#1.6.
    fn error(self, cause: JiraError) -> StepError {
        let [unreachable, refused, other] = self.messages();
        let transient = Severity::Transient {
            retry_after: TRANSIENT_RETRY_AFTER_SECONDS,
        };
        let (message, severity) = match &cause {
            JiraError::Status {
                status: 403 | 404, ..
            } => (refused, Severity::Permanent),
            JiraError::Status {
                status: 500..=599, ..
            }
            | JiraError::Http(HttpError::Timeout | HttpError::Connection(_)) => {
                (unreachable, transient)
            }
            // Refused by the sandbox, an invalid request, or a body over the host's limit: the
            // same again on a retry.
            JiraError::Http(_) => (unreachable, Severity::Permanent),
            JiraError::RateLimited { retry_after, .. } => (
                other,
                Severity::Transient {
                    retry_after: (*retry_after).max(1),
                },
            ),
            _ => (other, Severity::Unexpected),
        };
        StepError {
            message,
            severity,
            cause,
        }
    }
}

/// What a step decided to do to the issue's linked groups; applied only once every step has
/// run and the answer is below 300 (docs/behaviour.md#1.6).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Effect {
    /// Assign them to the platform user with this email.
    Assign(String),
    /// Unassign them.
    Unassign,
    /// Resolve them with the installation's strategy.
    Resolve,
    /// Unresolve them.
    Unresolve,
}

/// Asks the host for `effect` on the issue's linked groups, and logs what it did.
fn apply(env: &mut impl Env, installation: &Installation, key: &str, effect: Effect) {
    let ck = installation.client_key.as_str();
    let (event, count) = match effect {
        Effect::Assign(email) => match env.assign(ck, key, &email) {
            AssignOutcome::Assigned(n) => (events::ASSIGNEE_SYNCED, n),
            AssignOutcome::NoUserWithEmail => (events::ASSIGNEE_NOT_FOUND, 0),
            AssignOutcome::NoLinkedGroups => (events::NO_LINKED_GROUPS, 0),
        },
        Effect::Unassign => match env.unassign(ck, key) {
            UnassignOutcome::Unassigned(n) => (events::ASSIGNEE_CLEARED, n),
            UnassignOutcome::NoLinkedGroups => (events::NO_LINKED_GROUPS, 0),
        },
        Effect::Resolve => {
            let strategy = installation.config.resolution_strategy;
            status_changed(env.resolve(ck, key, strategy), events::STATUS_SYNC_RESOLVED)
        }
        Effect::Unresolve => status_changed(env.unresolve(ck, key), events::STATUS_SYNC_UNRESOLVED),
    };
    env.log(
        Level::Info,
        event,
        &[("issue_key", key), ("groups", &count.to_string())],
    );
}

/// The event and group count to log for a resolve or unresolve that answered `outcome`.
fn status_changed(outcome: StatusChange, event: &'static str) -> (&'static str, u32) {
    match outcome {
        StatusChange::Changed(n) => (event, n),
        StatusChange::NoLinkedGroups => (events::NO_LINKED_GROUPS, 0),
    }
}

/// The assignee step, unless the changelog has no assignee item or the sync is off.
fn assignee_step<E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &Installation,
    update: &Update,
) -> Result<Option<Effect>, StepError> {
    let key = update.issue_key.as_str();
    if !update.assignee_changed {
        jira.env().log(
            Level::Info,
            events::ASSIGNEE_NOT_IN_CHANGELOG,
            &[("issue_key", key)],
        );
        Ok(None)
    } else if !installation.config.sync_reverse_assignment {
        jira.env().log(
            Level::Info,
            events::ASSIGNEE_SYNC_DISABLED,
            &[("issue_key", key)],
        );
        Ok(None)
    } else {
        sync_assignee(jira, installation, update)
    }
}

/// The status step, unless the changelog has no status item or the sync is off.
fn status_step<E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &Installation,
    update: &Update,
) -> Result<Option<Effect>, StepError> {
    let key = update.issue_key.as_str();
    match &update.status {
        None => {
            jira.env().log(
                Level::Info,
                events::HANDLE_STATUS_CHANGE_UNCHANGED,
                &[("issue_key", key)],
            );
            Ok(None)
        }
        Some(_) if !installation.config.sync_status_reverse => {
            jira.env().log(
                Level::Info,
                events::STATUS_SYNC_DISABLED,
                &[("issue_key", key)],
            );
            Ok(None)
        }
        Some(item) => sync_status(jira, key, item),
    }
}

/// docs/behaviour.md#1.4: only `issue.fields.assignee` is read.
fn sync_assignee<E: Env>(
    jira: &mut Jira<'_, E>,
    installation: &Installation,
    update: &Update,
) -> Result<Option<Effect>, StepError> {
    let key = update.issue_key.as_str();
    let Some(assignee) = &update.assignee else {
        return Ok(Some(Effect::Unassign));
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
        return Ok(None);
    };
    Ok(Some(Effect::Assign(email)))
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

/// docs/behaviour.md#1.5: resolve or unresolve by the `done` status category.
fn sync_status<E: Env>(
    jira: &mut Jira<'_, E>,
    key: &str,
    item: &StatusItem,
) -> Result<Option<Effect>, StepError> {
    let done = statuses::done(jira).map_err(|e| Step::Statuses.error(e))?;
    let is_done = |id: &Option<String>| id.as_ref().is_some_and(|id| done.contains(id));
    let (from_done, to_done) = (is_done(&item.from), is_done(&item.to));
    if to_done && !from_done {
        Ok(Some(Effect::Resolve))
    } else if from_done && !to_done {
        Ok(Some(Effect::Unresolve))
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
        Ok(None)
    }
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

#[cfg(test)]
pub(crate) mod tests;
