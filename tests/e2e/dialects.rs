//! Admin and OAuth 2.0 webhooks over loopback through `serve` (docs/behaviour.md#10): the
//! installation is the one the path names, the proof is checked by the component, and a refused
//! delivery changes nothing.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac as _;
use jira_sync_host::backends::{HttpLimits, RealHttp, SqliteStore};
use jira_sync_host::installation::CredentialSpec;
use jira_sync_host::server::{Server, ServerConfig};
use jira_sync_host::{InstallationSpec, Runtime, bundled_component};
use jira_sync_plugin::signature;
use serde_json::json;

use super::TempDb;

pub(super) const HOOK_SECRET: &str = "It's a Secret to Everybody";
pub(super) const CLIENT_ID: &str = "oauth-client-id";
pub(super) const CLIENT_SECRET: &str = "oauth-client-secret";

/// A server with an admin webhook site (`site-admin`, group 1 on `ADM-1`) and an OAuth one
/// (`cloud-1`, group 2 on `OA-1`), both reaching an unroutable site: the deliveries below need
/// no Jira call.
fn server(name: &str) -> (Server, Arc<SqliteStore>, TempDb) {
    server_with(name, ServerConfig::default())
}

/// [`server`], configured from `config` but for its address and workers.
pub(super) fn server_with(name: &str, config: ServerConfig) -> (Server, Arc<SqliteStore>, TempDb) {
    let db = TempDb::new(name);
    let store = Arc::new(SqliteStore::open(&db.0).unwrap());
    let mut admin = InstallationSpec::new("site-admin", "", "https://acme.invalid", "app");
    admin.credentials = CredentialSpec::AdminWebhook {
        secret: HOOK_SECRET.into(),
        email: "bot@example.com".into(),
        api_token: "api-token".into(),
    };
    let mut oauth = InstallationSpec::new("cloud-1", "", "https://api.invalid/ex/jira/c1", "app");
    // A token valid for a day: the server's upkeep has nothing to refresh.
    oauth.credentials = CredentialSpec::Oauth {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        access_token: Some("access-token".into()),
        refresh_token: None,
        access_expires_at: unix_now() + 86_400,
        webhook_ids: Vec::new(),
        webhooks_expire_at: 0,
        jql: None,
    };
    for spec in [&admin, &oauth] {
        spec.check().unwrap();
        store.add_installation(spec).unwrap();
    }
    store.link("site-admin", "ADM-1", &[1]).unwrap();
    store.link("cloud-1", "OA-1", &[2]).unwrap();
    store.add_user(7, "ada@example.com").unwrap();
    let config = ServerConfig {
        listen: "127.0.0.1:0".into(),
        workers: 2,
        ..config
    };
    let runtime = Arc::new(Runtime::load(&bundled_component()).unwrap());
    let http = Arc::new(RealHttp::new(HttpLimits::default()));
    let server = Server::start(&config, runtime, store.clone(), http, None).unwrap();
    (server, store, db)
}

/// Ada, whose email is visible, became the assignee of `key`.
pub(super) fn assigned_to_ada(key: &str) -> Vec<u8> {
    json!({"webhookEvent": "jira:issue_updated",
        "changelog": {"items": [{"field": "assignee", "fieldId": "assignee", "to": "5f1a"}]},
        "issue": {"id": "1", "key": key, "fields": {
            "assignee": {"accountId": "5f1a", "emailAddress": "ada@example.com"}}}})
    .to_string()
    .into_bytes()
}

/// POSTs `body` to the server's `path` with these headers; the status.
pub(super) fn post(server: &Server, path: &str, headers: &[(&str, String)], body: &[u8]) -> u16 {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let mut request = agent.post(format!("{}{path}", server.url()));
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    request.send(body).unwrap().status().as_u16()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token of the OAuth app's shape: `iss`, `iat`, `exp`, no qsh.
pub(super) fn oauth_token(iss: &str, secret: &str, exp_in: i64) -> String {
    let now = unix_now() as i64;
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
    let claims = URL_SAFE_NO_PAD
        .encode(json!({"iss": iss, "iat": now - 5, "exp": now + exp_in}).to_string());
    let input = format!("{header}.{claims}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn assignee(store: &SqliteStore, group: u64) -> Option<u64> {
    store.group(group).unwrap().unwrap().assignee
}

#[test]
fn an_admin_webhook_with_its_hub_signature_is_applied_and_a_forged_one_is_not() {
    let (server, store, _db) = server("admin-webhook");
    let body = assigned_to_ada("ADM-1");
    let path = "/webhooks/admin/site-admin";
    let forged = [
        ("X-Hub-Signature", signature::sign("not the secret", &body)),
        ("X-Atlassian-Webhook-Identifier", "forged-1".to_owned()),
    ];
    assert_eq!(post(&server, path, &forged, &body), 409);
    let unsigned = [("X-Atlassian-Webhook-Identifier", "forged-2".to_owned())];
    assert_eq!(post(&server, path, &unsigned, &body), 409);
    let elsewhere = [("X-Hub-Signature", signature::sign(HOOK_SECRET, &body))];
    assert_eq!(
        post(&server, "/webhooks/admin/cloud-1", &elsewhere, &body),
        409,
        "the OAuth site does not take an HMAC"
    );
    assert!(server.wait_for_jobs(std::time::Duration::from_secs(20)));
    assert_eq!(
        assignee(&store, 1),
        None,
        "refused deliveries change nothing"
    );

    let signed = [
        ("X-Hub-Signature", signature::sign(HOOK_SECRET, &body)),
        ("X-Atlassian-Webhook-Identifier", "hook-1".to_owned()),
    ];
    assert_eq!(post(&server, path, &signed, &body), 200);
    assert!(server.wait_for_jobs(std::time::Duration::from_secs(20)));
    assert_eq!(assignee(&store, 1), Some(7));
    assert!(store.handled("site-admin", "hook-1").unwrap());
}

#[test]
fn an_oauth_webhook_with_its_client_secret_token_is_applied_and_a_forged_one_is_not() {
    let (server, store, _db) = server("oauth-webhook");
    let body = assigned_to_ada("OA-1");
    let path = "/webhooks/oauth/cloud-1";
    let bearer = |token: String| {
        vec![
            ("Authorization", format!("Bearer {token}")),
            ("X-Atlassian-Webhook-Identifier", "oa-1".to_owned()),
        ]
    };
    for (why, headers) in [
        (
            "another secret",
            bearer(oauth_token(CLIENT_ID, "guess", 60)),
        ),
        (
            "another app",
            bearer(oauth_token("other-app", CLIENT_SECRET, 60)),
        ),
        ("expired", bearer(oauth_token(CLIENT_ID, CLIENT_SECRET, -1))),
    ] {
        assert_eq!(post(&server, path, &headers, &body), 409, "{why}");
    }
    assert!(server.wait_for_jobs(std::time::Duration::from_secs(20)));
    assert_eq!(
        assignee(&store, 2),
        None,
        "refused deliveries change nothing"
    );

    let headers = bearer(oauth_token(CLIENT_ID, CLIENT_SECRET, 60));
    assert_eq!(post(&server, path, &headers, &body), 200);
    assert!(server.wait_for_jobs(std::time::Duration::from_secs(20)));
    assert_eq!(assignee(&store, 2), Some(7));
    assert_eq!(
        assignee(&store, 1),
        None,
        "the other site's groups are untouched"
    );
    assert!(store.handled("cloud-1", "oa-1").unwrap());
}
