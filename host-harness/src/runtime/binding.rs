//! Which installation a call is bound to, decided before the guest runs
//! (docs/behaviour.md#9): an outbound call to the installation its request names; a webhook to
//! the installation its route or credential names — an admin or OAuth webhook's path names it,
//! a Connect JWT's unverified `iss` does, and the guest then verifies either. A request without
//! a readable credential is bound to none, and the guest can then reach no installation's data
//! at all.

use jira_sync_plugin::jwt;
use jira_sync_plugin::model::header;
use jira_sync_plugin::webhook::Route;

use crate::wit::exports::jira_sync::plugin::webhook;

/// The client key a webhook's route or credential names, unverified.
pub fn webhook_tenant(request: &webhook::Request) -> Option<String> {
    match Route::of(&request.path)? {
        Route::Admin(client_key) | Route::Oauth(client_key) => Some(client_key),
        Route::Connect => credential_tenant(header(&request.headers, "authorization")?),
    }
}

/// The client key an `Authorization` value names, unverified: what a call with it would be bound
/// to.
fn credential_tenant(authorization: &str) -> Option<String> {
    // Read as the guest reads it: whitespace around the whole value does not count.
    let (_, token) = authorization.trim().split_once(' ')?;
    jwt::decode(token.trim()).ok().map(|token| token.iss)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(authorization: Option<&str>) -> webhook::Request {
        webhook::Request {
            method: "POST".into(),
            path: "/extensions/jira/issue-updated/".into(),
            query: String::new(),
            headers: authorization
                .map(|a| vec![("Authorization".into(), a.into())])
                .unwrap_or_default(),
            body: Vec::new(),
        }
    }

    /// A Connect token issued by `iss`.
    fn token(iss: &str) -> String {
        jwt::sign(
            &jwt::Claims {
                iss,
                iat: 0,
                exp: 10,
                qsh: "q",
            },
            "secret",
        )
    }

    #[test]
    fn a_webhook_is_bound_to_the_iss_of_its_token_or_to_nothing() {
        let token = token("jira:1c4");
        assert_eq!(
            webhook_tenant(&request(Some(&format!("JWT {token}")))).as_deref(),
            Some("jira:1c4")
        );
        assert_eq!(
            webhook_tenant(&request(Some(&format!("  JWT {token} ")))).as_deref(),
            Some("jira:1c4"),
            "read as the guest reads it"
        );
        assert_eq!(webhook_tenant(&request(None)), None);
        assert_eq!(webhook_tenant(&request(Some("JWT not-a-token"))), None);
        assert_eq!(webhook_tenant(&request(Some("JWT"))), None);
    }

    #[test]
    fn an_admin_or_oauth_webhook_is_bound_to_the_installation_its_path_names() {
        let token = token("jira:1c4");
        let mut admin = request(Some(&format!("JWT {token}")));
        admin.path = "/webhooks/admin/site%2D1".into();
        assert_eq!(
            webhook_tenant(&admin).as_deref(),
            Some("site-1"),
            "the path, not the token"
        );
        admin.path = "/webhooks/oauth/cloud-1/".into();
        assert_eq!(webhook_tenant(&admin).as_deref(), Some("cloud-1"));
        admin.path = "/elsewhere".into();
        assert_eq!(webhook_tenant(&admin), None, "no route, no installation");
    }
}
