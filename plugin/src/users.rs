//! Jira users' emails, including those hidden behind the email API (SPEC 1.4, 3.2, 5).

use serde_json::Value;

use crate::env::Env;
use crate::jira::{Jira, JiraError};
use crate::model::Level;

/// How long "this account hides its email" is remembered; shorter than positive entries so that
/// a user who later shows their email is picked up soon.
pub const HIDDEN_EMAIL_TTL_SECONDS: u32 = 60;

/// The email of `account_id` from the email API, through the cache; `None` if Jira has none.
pub fn account_email<E: Env>(
    jira: &mut Jira<'_, E>,
    account_id: &str,
) -> Result<Option<String>, JiraError> {
    let hidden_key = jira.fact_key("hidden-email", account_id);
    if jira.env().get(&hidden_key).is_some() {
        jira.env().log(
            Level::Debug,
            "jira.email-hidden-cached",
            &[("account_id", account_id)],
        );
        return Ok(None);
    }
    let body = jira.get_json(
        "user-email",
        "/rest/api/3/user/email",
        &[("accountId", account_id)],
        true,
    )?;
    let email = match body.get("email") {
        Some(Value::String(email)) if !email.is_empty() => Some(email.clone()),
        Some(Value::String(_) | Value::Null) | None => None,
        Some(_) => return Err(JiraError::BadResponse("user-email")),
    };
    if email.is_none() {
        jira.env().set(&hidden_key, "1", HIDDEN_EMAIL_TTL_SECONDS);
    }
    Ok(email)
}
