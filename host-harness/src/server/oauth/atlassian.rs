//! The three requests of an OAuth 2.0 installation's upkeep, and how their answers are read:
//! the refresh at Atlassian's token endpoint, and the registration and extension of its dynamic
//! webhooks on the site (docs/behaviour.md#10.2). Answers are read tolerantly (missing or extra
//! fields, numbers as strings); no token ever goes into an error.

use serde_json::{Value, json};

use crate::backends::{HttpBackend, OutboundRequest, OutboundResponse};

/// The events the dynamic webhooks are registered for: what the guest handles
/// (docs/behaviour.md#1, #1.8).
pub const EVENTS: [&str; 2] = ["jira:issue_updated", "jira:issue_deleted"];

/// How long Jira keeps a dynamic webhook after its registration or extension, when an answer
/// does not say: 30 days.
pub const WEBHOOK_LIFETIME_SECONDS: u64 = 30 * 86_400;

/// An access token's lifetime when the token endpoint does not say (Atlassian's is an hour).
const DEFAULT_EXPIRES_IN: u64 = 3600;

/// Why a request of the upkeep failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The token endpoint refused the refresh token (`invalid_grant`): it expired, was used
    /// already, or the grant was revoked. Retrying cannot help; someone must authorise the app
    /// on the site again.
    #[error(
        "the refresh token was refused (invalid_grant: {0}): the app must be authorised again \
         on the site, and the installation added with the new refresh token"
    )]
    InvalidGrant(String),
    /// Atlassian or Jira could not be reached, or answered something else than expected.
    #[error("{0}")]
    Unavailable(String),
}

/// What the token endpoint granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The new access token.
    pub access_token: String,
    /// Its lifetime, in seconds.
    pub expires_in: u64,
    /// The new refresh token (rotation); `None` when the answer had none, and the old one
    /// stays.
    pub refresh_token: Option<String>,
}

async fn send(
    http: &dyn HttpBackend,
    method: &'static str,
    url: &str,
    bearer: Option<&str>,
    body: &Value,
) -> Result<OutboundResponse, Failure> {
    let mut headers = vec![
        ("Content-Type".to_owned(), "application/json".to_owned()),
        ("Accept".to_owned(), "application/json".to_owned()),
    ];
    if let Some(token) = bearer {
        headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
    }
    http.send(OutboundRequest {
        method,
        url: url.to_owned(),
        headers,
        body: Some(body.to_string().into_bytes()),
    })
    .await
    .map_err(|e| Failure::Unavailable(format!("{method} {url}: {e:?}")))
}

/// A number that may come as a string.
fn number(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

/// What an error answer says, for a log line: its OAuth `error` and `error_description`, or
/// Jira's `errorMessages`, never the whole body (which a proxy may fill with anything).
fn reason(response: &OutboundResponse) -> String {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let mut parts: Vec<String> = ["error", "error_description"]
        .iter()
        .filter_map(|field| body[*field].as_str().map(str::to_owned))
        .collect();
    parts.extend(
        body["errorMessages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(str::to_owned)),
    );
    let said = if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join("; "))
    };
    format!("HTTP {}{said}", response.status)
}

/// Exchanges `refresh_token` for a new access token (and, Atlassian rotating them, a new
/// refresh token) at `token_url`.
pub async fn refresh(
    http: &dyn HttpBackend,
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    refresh_token: &str,
) -> Result<Grant, Failure> {
    let body = json!({
        "grant_type": "refresh_token",
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": refresh_token,
    });
    let response = send(http, "POST", token_url, None, &body).await?;
    let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    // Atlassian answers a dead refresh token 403 (its documentation) or 400 (OAuth's RFC 6749):
    // the error code decides, whatever the status.
    if answer["error"].as_str() == Some("invalid_grant") {
        let description = answer["error_description"]
            .as_str()
            .unwrap_or("no description");
        return Err(Failure::InvalidGrant(description.to_owned()));
    }
    if response.status != 200 {
        return Err(Failure::Unavailable(format!(
            "the token endpoint answered {}",
            reason(&response)
        )));
    }
    let access_token = answer["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Failure::Unavailable("the token endpoint's answer has no access_token".into())
        })?;
    Ok(Grant {
        access_token: access_token.to_owned(),
        expires_in: number(&answer["expires_in"]).unwrap_or(DEFAULT_EXPIRES_IN),
        refresh_token: answer["refresh_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
    })
}

/// Registers the dynamic webhooks of the site at `base_url` for `EVENTS` on issues matching
/// `jql`, delivered to `url`; their ids.
pub async fn register_webhooks(
    http: &dyn HttpBackend,
    base_url: &str,
    access_token: &str,
    url: &str,
    jql: &str,
) -> Result<Vec<u64>, Failure> {
    let body = json!({
        "url": url,
        "webhooks": [{"events": EVENTS, "jqlFilter": jql}],
    });
    let endpoint = format!("{}/rest/api/3/webhook", base_url.trim_end_matches('/'));
    let response = send(http, "POST", &endpoint, Some(access_token), &body).await?;
    if !(200..300).contains(&response.status) {
        return Err(Failure::Unavailable(format!(
            "registering the webhooks: Jira answered {}",
            reason(&response)
        )));
    }
    let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let results = answer["webhookRegistrationResult"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ids: Vec<u64> = results
        .iter()
        .filter_map(|r| number(&r["createdWebhookId"]))
        .collect();
    let errors: Vec<String> = results
        .iter()
        .flat_map(|r| r["errors"].as_array().cloned().unwrap_or_default())
        .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
        .collect();
    if ids.is_empty() {
        return Err(Failure::Unavailable(format!(
            "registering the webhooks: Jira created none{}",
            if errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", errors.join("; "))
            }
        )));
    }
    Ok(ids)
}

/// What extending the webhooks came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extended {
    /// They now expire at this time (Unix seconds).
    Until(u64),
    /// Jira no longer knows them (they expired or were deleted): register them again.
    Gone,
}

/// Extends the webhooks `ids` of the site at `base_url` by Jira's 30 days, from `now`.
pub async fn extend_webhooks(
    http: &dyn HttpBackend,
    base_url: &str,
    access_token: &str,
    ids: &[u64],
    now: u64,
) -> Result<Extended, Failure> {
    let endpoint = format!(
        "{}/rest/api/3/webhook/refresh",
        base_url.trim_end_matches('/')
    );
    let body = json!({"webhookIds": ids});
    let response = send(http, "PUT", &endpoint, Some(access_token), &body).await?;
    match response.status {
        200..=299 => {
            let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
            Ok(Extended::Until(
                expiration(&answer["expirationDate"]).unwrap_or(now + WEBHOOK_LIFETIME_SECONDS),
            ))
        }
        // Jira refuses ids it does not know (expired or deleted webhooks).
        400 | 404 => Ok(Extended::Gone),
        _ => Err(Failure::Unavailable(format!(
            "extending the webhooks: Jira answered {}",
            reason(&response)
        ))),
    }
}

/// An `expirationDate` as Unix seconds: the REST reference's example is a date
/// (`2019-06-01T12:42:30.000+0000`), its schema an integer of milliseconds; either is read.
pub fn expiration(value: &Value) -> Option<u64> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    if let Some(ms) = number(value) {
        return Some(ms / 1000);
    }
    let text = value.as_str()?;
    let jira = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond][offset_hour sign:mandatory][offset_minute]"
    );
    let at = time::OffsetDateTime::parse(text, jira)
        .or_else(|_| time::OffsetDateTime::parse(text, &Rfc3339))
        .ok()?;
    u64::try_from(at.unix_timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiration_date_is_read_as_a_date_or_as_milliseconds() {
        assert_eq!(
            expiration(&json!("2019-06-01T12:42:30.000+0000")),
            Some(1_559_392_950)
        );
        assert_eq!(
            expiration(&json!("2019-06-01T14:42:30.000+0200")),
            Some(1_559_392_950)
        );
        assert_eq!(
            expiration(&json!("2019-06-01T12:42:30Z")),
            Some(1_559_392_950)
        );
        assert_eq!(
            expiration(&json!(1_559_392_950_000u64)),
            Some(1_559_392_950)
        );
        assert_eq!(expiration(&json!("1559392950000")), Some(1_559_392_950));
        assert_eq!(expiration(&json!("next month")), None);
        assert_eq!(expiration(&Value::Null), None);
    }

    #[test]
    fn an_error_answer_is_reported_by_its_codes_not_its_body() {
        let response = OutboundResponse {
            status: 403,
            headers: Vec::new(),
            body: br#"{"error":"unauthorized_client","error_description":"no","extra":"x"}"#
                .to_vec(),
        };
        assert_eq!(reason(&response), "HTTP 403: unauthorized_client; no");
        let html = OutboundResponse {
            status: 502,
            headers: Vec::new(),
            body: b"<html>bad gateway</html>".to_vec(),
        };
        assert_eq!(reason(&html), "HTTP 502");
    }
}
