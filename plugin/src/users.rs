//! Jira users' emails, including those hidden behind the email API (docs/behaviour.md#1.4,
//! docs/behaviour.md#3.2, docs/behaviour.md#5).

use serde_json::Value;

use crate::env::Env;
use crate::events;
use crate::jira::{Endpoint, Jira, JiraError};
use crate::model::Level;

/// How long "this account hides its email" is remembered; shorter than positive entries so that
/// a user who later shows their email is picked up soon.
pub const HIDDEN_EMAIL_TTL_SECONDS: u32 = 60;

/// Jira's email API: an account's email even when the user hides it (needs the email scope).
const EMAIL_API: &str = "/rest/api/3/user/email";

/// The email of `account_id` from the email API, through the cache; `None` if Jira has none.
pub fn account_email<E: Env>(
    jira: &mut Jira<'_, E>,
    account_id: &str,
) -> Result<Option<String>, JiraError> {
    match cached_account_email(jira, account_id) {
        Some(known) => Ok(known),
        None => fetch_account_email(jira, account_id),
    }
}

/// What the cache alone knows of `account_id`'s email: `Some(None)` while the "hides its email"
/// entry lives, `Some(Some(email))` for a cached email-API answer, `None` when only the email API
/// can tell.
pub fn cached_account_email<E: Env>(
    jira: &mut Jira<'_, E>,
    account_id: &str,
) -> Option<Option<String>> {
    let hidden_key = jira.fact_key("hidden-email", account_id);
    if jira.env().get(&hidden_key).is_some() {
        jira.env().log(
            Level::Debug,
            events::EMAIL_HIDDEN_CACHED,
            &[("account_id", account_id)],
        );
        return Some(None);
    }
    let cached = jira.cached_json(EMAIL_API, &[("accountId", account_id)])?;
    // Only an answer holding an email is ever cached; anything else is asked again.
    email_of(&cached).ok().flatten().map(Some)
}

/// Asks the email API for `account_id`'s email, without reading the cache; a found email is
/// cached, and so, for a shorter time, is "this account hides its email".
pub fn fetch_account_email<E: Env>(
    jira: &mut Jira<'_, E>,
    account_id: &str,
) -> Result<Option<String>, JiraError> {
    let body = jira.fetch_json_caching_if(
        Endpoint::UserEmail,
        EMAIL_API,
        &[("accountId", account_id)],
        |body| email_of(body).is_ok_and(|email| email.is_some()),
    )?;
    let email = email_of(&body)?;
    if email.is_none() {
        let hidden_key = jira.fact_key("hidden-email", account_id);
        jira.env().set(&hidden_key, "1", HIDDEN_EMAIL_TTL_SECONDS);
    }
    Ok(email)
}

/// The `email` of an email-API answer: `None` when null, empty or missing.
fn email_of(body: &Value) -> Result<Option<String>, JiraError> {
    match body.get("email") {
        Some(Value::String(email)) if !email.is_empty() => Ok(Some(email.clone())),
        Some(Value::String(_) | Value::Null) | None => Ok(None),
        Some(_) => Err(JiraError::BadResponse(Endpoint::UserEmail)),
    }
}
