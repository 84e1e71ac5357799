//! The simulated site as an admin webhook's app sees it (docs/behaviour.md#10.3): an account's
//! email and API token as Basic auth on every REST request instead of a Connect JWT, and
//! deliveries proved by `X-Hub-Signature` (an HMAC-SHA256 of the body under the webhook's
//! secret) instead of an `Authorization` header.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jira_sync_plugin::signature;

use super::jira_api::Call;
use super::{SimState, Simulator, Webhook};

/// The admin webhook's side of the site, as the simulator holds it.
#[derive(Debug, Clone)]
pub(crate) struct SimAdmin {
    email: String,
    api_token: String,
    secret: String,
}

impl Simulator {
    /// Makes the site an admin webhook's: from now on its REST API takes only
    /// `Basic base64(email:api_token)` (and no Connect JWT or bearer token), and its deliveries
    /// carry `X-Hub-Signature` under `webhook_secret` and no `Authorization`.
    pub fn make_admin_site(&self, email: &str, api_token: &str, webhook_secret: &str) {
        self.shared.lock().admin = Some(SimAdmin {
            email: email.to_owned(),
            api_token: api_token.to_owned(),
            secret: webhook_secret.to_owned(),
        });
    }
}

/// The account's Basic auth on a REST request of an admin webhook's site; `None` when the site
/// is not one (another dialect's proof is checked instead).
pub(super) fn verify(state: &SimState, call: &Call<'_>) -> Option<Result<(), String>> {
    let admin = state.admin.as_ref()?;
    let given = call
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.as_str());
    let Some(given) = given else {
        return Some(Err("no Authorization header".into()));
    };
    // The scheme is case-insensitive (RFC 9110); the credentials are not.
    let credentials = given
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, encoded)| STANDARD.decode(encoded.trim()).ok());
    let expected = format!("{}:{}", admin.email, admin.api_token);
    Some(match credentials {
        None => Err("Authorization is not Basic".into()),
        Some(c) if c == expected.as_bytes() => Ok(()),
        Some(_) => Err("wrong email or API token".into()),
    })
}

/// The `X-Hub-Signature` of a delivery of `body` (the exact bytes sent), if the site is an
/// admin webhook's: the one the test gave in `webhook.authorization` (to forge or tamper), else
/// the valid one.
pub(super) fn delivery_signature(
    state: &SimState,
    webhook: &Webhook,
    body: &[u8],
) -> Option<String> {
    let admin = state.admin.as_ref()?;
    Some(
        webhook
            .authorization
            .clone()
            .unwrap_or_else(|| signature::sign(&admin.secret, body)),
    )
}
