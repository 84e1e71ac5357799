//! The simulated site as an OAuth 2.0 (3LO) app sees it (docs/behaviour.md#10.2): Atlassian's
//! token endpoint with rotating refresh tokens (`POST /oauth/token`; a refresh token works
//! once, and a used one is refused with `invalid_grant`), the dynamic webhook endpoints
//! (`POST /rest/api/3/webhook`, `PUT /rest/api/3/webhook/refresh`), the app's bearer access
//! token on every REST request instead of a Connect JWT, and deliveries signed as Jira signs an
//! OAuth app's (a bearer HS256 JWT under the client secret, `iss` = client id, no `qsh`).

use serde::Serialize;
use serde_json::{Value, json};

use super::jira_api::{Answer, Call, json_answer};
use super::{SimState, Simulator};
use crate::signing::{self, SignOverrides};

/// How long an access token lives, as Atlassian's do.
const EXPIRES_IN_SECONDS: u64 = 3600;
/// How long a dynamic webhook lives after its registration or extension.
const WEBHOOK_LIFETIME_MS: u64 = 30 * 86_400 * 1000;

/// A dynamic webhook the app registered.
#[derive(Debug, Clone, Serialize)]
pub struct SimWebhook {
    /// Its id.
    pub id: u64,
    /// Where its deliveries go.
    pub url: String,
    /// The events it is for.
    pub events: Vec<String>,
    /// Its JQL filter.
    pub jql: String,
    /// When it expires (Unix milliseconds).
    pub expires_ms: u64,
}

/// The OAuth app's side of the site, as the simulator holds it.
#[derive(Debug, Clone, Serialize)]
pub struct SimOauth {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    #[serde(skip)]
    pub client_secret: String,
    /// The one refresh token that works now.
    pub refresh_token: String,
    /// The one access token that works now, once a refresh granted one.
    pub access_token: Option<String>,
    /// When it expires (Unix milliseconds).
    pub access_expires_ms: u64,
    /// Refreshes granted.
    pub refreshes: u32,
    /// Refreshes refused with `invalid_grant` (a used or unknown refresh token).
    pub refused: u32,
    /// The registered webhooks.
    pub webhooks: Vec<SimWebhook>,
    /// `METHOD path` of every REST request the current access token authorised, in order.
    pub bearer_requests: Vec<String>,
    next_webhook_id: u64,
}

impl Simulator {
    /// Makes the site an OAuth 2.0 app's: from now on its REST API takes the app's bearer
    /// access token (and no Connect JWT), `refresh_token` is the one that works at its token
    /// endpoint, and its deliveries are signed with `client_secret`.
    pub fn make_oauth_site(&self, client_id: &str, client_secret: &str, refresh_token: &str) {
        self.shared.lock().oauth = Some(SimOauth {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            refresh_token: refresh_token.to_owned(),
            access_token: None,
            access_expires_ms: 0,
            refreshes: 0,
            refused: 0,
            webhooks: Vec::new(),
            bearer_requests: Vec::new(),
            next_webhook_id: 1000,
        });
    }

    /// Makes the site a Forge app's: from now on its REST API takes `Bearer <system_token>`,
    /// the app system token Forge hands the app with its invocations (and no Connect JWT).
    pub fn make_forge_site(&self, system_token: &str) {
        self.shared.lock().oauth = Some(SimOauth {
            client_id: "forge".to_owned(),
            client_secret: String::new(),
            // No refresh: Forge hands out system tokens itself.
            refresh_token: String::new(),
            access_token: Some(system_token.to_owned()),
            access_expires_ms: u64::MAX,
            refreshes: 0,
            refused: 0,
            webhooks: Vec::new(),
            bearer_requests: Vec::new(),
            next_webhook_id: 1000,
        });
    }

    /// The OAuth app's side of the site, if it is an OAuth app's.
    pub fn oauth(&self) -> Option<SimOauth> {
        self.shared.lock().oauth.clone()
    }
}

/// `POST /oauth/token`, if that is the call and the site is an OAuth app's.
pub(super) fn token_endpoint(state: &mut SimState, call: &Call<'_>) -> Option<Answer> {
    if (call.method, call.path) != ("POST", "/oauth/token") {
        return None;
    }
    let oauth = state.oauth.as_mut()?;
    let body: Value = serde_json::from_slice(call.body).unwrap_or(Value::Null);
    if body["grant_type"] != "refresh_token" {
        return Some(json_answer(400, json!({"error": "unsupported_grant_type"})));
    }
    if body["client_id"] != oauth.client_id.as_str()
        || body["client_secret"] != oauth.client_secret.as_str()
    {
        return Some(json_answer(
            401,
            json!({"error": "access_denied",
            "error_description": "Unauthorized"}),
        ));
    }
    if body["refresh_token"] != oauth.refresh_token.as_str() {
        oauth.refused += 1;
        // Atlassian's documented answer to a used, expired or unknown refresh token.
        return Some(json_answer(
            403,
            json!({"error": "invalid_grant",
                   "error_description": "Unknown or invalid refresh token."}),
        ));
    }
    oauth.refreshes += 1;
    let n = oauth.refreshes;
    oauth.refresh_token = format!("sim-refresh-{}-{n}", oauth.client_id);
    let access = format!("sim-access-{}-{n}", oauth.client_id);
    oauth.access_token = Some(access.clone());
    oauth.access_expires_ms = call.now_ms + EXPIRES_IN_SECONDS * 1000;
    Some(json_answer(
        200,
        json!({
            "access_token": access,
            "expires_in": EXPIRES_IN_SECONDS,
            "refresh_token": oauth.refresh_token,
            "token_type": "Bearer",
            "scope": "read:jira-work write:jira-work manage:jira-webhook offline_access",
        }),
    ))
}

/// The app's bearer access token on a REST request of an OAuth app's site; `None` when the
/// site is a Connect app's (its JWTs are checked instead).
pub(super) fn verify(state: &mut SimState, call: &Call<'_>) -> Option<Result<(), String>> {
    let oauth = state.oauth.as_mut()?;
    let given = call
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.as_str());
    Some(
        match (
            given.and_then(|v| v.strip_prefix("Bearer ")),
            &oauth.access_token,
        ) {
            (None, _) => Err("no bearer access token".into()),
            (Some(token), Some(current)) if token == current => {
                if call.now_ms >= oauth.access_expires_ms {
                    Err("the access token expired".into())
                } else {
                    oauth
                        .bearer_requests
                        .push(format!("{} {}", call.method, call.path));
                    Ok(())
                }
            }
            (Some(_), _) => Err("not the current access token".into()),
        },
    )
}

/// The dynamic webhook endpoints, if that is the call and the site is an OAuth app's.
pub(super) fn webhooks(state: &mut SimState, call: &Call<'_>) -> Option<Answer> {
    let body: Value = serde_json::from_slice(call.body).unwrap_or(Value::Null);
    match (call.method, call.path) {
        ("POST", "/rest/api/3/webhook") => {
            let url = body["url"].as_str().filter(|u| !u.is_empty());
            let asked = body["webhooks"].as_array().filter(|w| !w.is_empty());
            let (Some(url), Some(asked)) = (url, asked) else {
                return Some(json_answer(
                    400,
                    json!({"errorMessages": ["url and webhooks are required."]}),
                ));
            };
            let oauth = state.oauth.as_mut()?;
            let mut results = Vec::new();
            for webhook in asked {
                let jql = webhook["jqlFilter"].as_str().unwrap_or_default();
                if let Some(why) = unsupported_jql(jql) {
                    results.push(json!({"errors": [why]}));
                    continue;
                }
                let id = oauth.next_webhook_id;
                oauth.next_webhook_id += 1;
                oauth.webhooks.push(SimWebhook {
                    id,
                    url: url.to_owned(),
                    events: webhook["events"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|e| e.as_str().map(str::to_owned))
                        .collect(),
                    jql: jql.to_owned(),
                    expires_ms: call.now_ms + WEBHOOK_LIFETIME_MS,
                });
                results.push(json!({"createdWebhookId": id}));
            }
            // One URL per app: the site's deliveries go there now.
            state.webhook_url = Some(url.to_owned());
            Some(json_answer(
                200,
                json!({"webhookRegistrationResult": results}),
            ))
        }
        ("PUT", "/rest/api/3/webhook/refresh") => {
            let oauth = state.oauth.as_mut()?;
            let ids: Vec<u64> = body["webhookIds"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .collect();
            if ids.is_empty()
                || ids
                    .iter()
                    .any(|id| !oauth.webhooks.iter().any(|w| w.id == *id))
            {
                return Some(json_answer(
                    400,
                    json!({"errorMessages": ["Webhooks not found or not registered by the app."]}),
                ));
            }
            let until = call.now_ms + WEBHOOK_LIFETIME_MS;
            for webhook in oauth.webhooks.iter_mut().filter(|w| ids.contains(&w.id)) {
                webhook.expires_ms = until;
            }
            Some(json_answer(
                200,
                json!({"expirationDate": jira_date(until)}),
            ))
        }
        _ => None,
    }
}

/// Why Jira would refuse `jql` as a webhook's filter: it takes only `=`, `!=`, `IN` and
/// `NOT IN` on a few fields. A rough check: the operators it refuses most often.
fn unsupported_jql(jql: &str) -> Option<String> {
    let upper = jql.to_ascii_uppercase();
    if jql.trim().is_empty() {
        return Some("The JQL filter is required.".into());
    }
    [" IS ", "~", "ORDER BY", " WAS ", " CHANGED"]
        .iter()
        .find(|op| upper.contains(*op))
        .map(|op| format!("Invalid JQL: the operator {} is not supported.", op.trim()))
}

/// A time as Jira writes dates: `2019-06-01T12:42:30.000+0000`.
fn jira_date(ms: u64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// The `Authorization` of a delivery to an OAuth app, if the site is an OAuth app's.
pub(super) fn delivery_authorization(state: &SimState, now: u64) -> Option<String> {
    let oauth = state.oauth.as_ref()?;
    Some(signing::authorization(
        &oauth.client_id,
        &oauth.client_secret,
        now,
        ("POST", "", ""),
        &SignOverrides {
            scheme: Some("Bearer".into()),
            omit: vec!["qsh".into()],
            ..SignOverrides::default()
        },
    ))
}
