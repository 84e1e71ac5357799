//! Atlassian's handshakes over loopback through `serve` (docs/behaviour.md#10.1,
//! docs/behaviour.md#10.4): the simulator installs and uninstalls a Connect app with signed
//! lifecycle callbacks, and invokes a Forge app with invocation tokens and a system token; the
//! keys come from the simulator's key server and JWKS.

use std::sync::Arc;
use std::time::Duration;

use jira_sync_host::backends::{HttpLimits, RealHttp, SqliteStore};
use jira_sync_host::installation::CredentialSpec;
use jira_sync_host::server::{Server, ServerConfig};
use jira_sync_host::sim::install::{ConnectInstall, ForgeInvocation, LifecycleRequest};
use jira_sync_host::sim::{SimWorld, Simulator, Webhook};
use jira_sync_host::{InstallationSpec, Runtime, bundled_component};
use serde_json::{Value, json};

use super::TempDb;

const ISSUE: &str = "APP-123";
const ARI: &str = "ari:cloud:ecosystem::app/0b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3";
const INSTALLATION: &str = "ari:cloud:ecosystem::installation/5e6f7a8b";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn spec(store: &SqliteStore, client_key: &str) -> Option<InstallationSpec> {
    store.installation_spec(client_key).unwrap()
}

/// A server whose handshakes verify with the simulator's keys, on an empty database.
fn server(name: &str, sim: &Simulator, config: ServerConfig) -> (Server, Arc<SqliteStore>, TempDb) {
    let db = TempDb::new(name);
    let store = Arc::new(SqliteStore::open(&db.0).unwrap());
    let config = ServerConfig {
        listen: "127.0.0.1:0".into(),
        workers: 2,
        connect_key_server: sim.connect_keys_url(),
        forge_jwks_url: sim.forge_jwks_url(),
        ..config
    };
    let runtime = Arc::new(Runtime::load(&bundled_component()).unwrap());
    let http = Arc::new(RealHttp::new(HttpLimits::default()));
    let server = Server::start(&config, runtime, store.clone(), http, None).unwrap();
    (server, store, db)
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    )
}

/// Sends a lifecycle callback to the server at `server_url` (the request may have been made for
/// another app); the status.
fn post_lifecycle(server_url: &str, request: &LifecycleRequest) -> u16 {
    let mut post = agent().post(format!("{server_url}{}", request.path));
    for (name, value) in &request.headers {
        post = post.header(name.as_str(), value.as_str());
    }
    post.send(&request.body[..]).unwrap().status().as_u16()
}

/// POSTs a Forge event with this invocation token (and system token) to the server.
fn post_forge(server: &Server, token: &str, system_token: Option<&str>, event: &Value) -> u16 {
    let mut post = agent()
        .post(format!("{}/forge/events", server.url()))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json");
    if let Some(system_token) = system_token {
        post = post.header("x-forge-oauth-system", system_token);
    }
    post.send(event.to_string().as_bytes())
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn a_connect_app_is_installed_used_uninstalled_and_reinstalled_by_signed_callbacks() {
    let world = SimWorld::demo();
    let sim = Simulator::start(world.clone()).unwrap();
    let site = &world.installation;
    let config = ServerConfig {
        app_key: site.app_key.clone(),
        ..ServerConfig::default()
    };
    let (server, store, _db) = server("connect-lifecycle", &sim, config);
    let url = server.url();

    let descriptor = agent()
        .get(format!("{url}/atlassian-connect.json"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_vec()
        .unwrap();
    let descriptor: Value = serde_json::from_slice(&descriptor).unwrap();
    assert_eq!(descriptor["baseUrl"], json!(url));
    assert_eq!(descriptor["key"], json!(site.app_key));
    assert_eq!(
        descriptor["lifecycle"]["installed"],
        "/atlassian-connect/installed"
    );

    let install = |app_base_url: &str, secret: &str| ConnectInstall {
        app_base_url: app_base_url.to_owned(),
        app_key: site.app_key.clone(),
        client_key: site.client_key.clone(),
        shared_secret: secret.to_owned(),
        site_base_url: sim.base_url(),
    };
    // Made for another app: its audience and qsh are not this server's.
    let elsewhere = install("https://other-app.example", &site.shared_secret).installed(now());
    assert_eq!(post_lifecycle(&url, &elsewhere), 401);
    let mut unsigned = install(&url, &site.shared_secret).installed(now());
    unsigned.headers.retain(|(name, _)| name != "Authorization");
    assert_eq!(post_lifecycle(&url, &unsigned), 401);
    assert!(
        spec(&store, &site.client_key).is_none(),
        "refused: nothing stored"
    );

    assert_eq!(
        post_lifecycle(&url, &install(&url, &site.shared_secret).installed(now())),
        204
    );
    let stored = spec(&store, &site.client_key).unwrap();
    assert_eq!(stored.shared_secret, site.shared_secret);
    assert_eq!(stored.base_url, sim.base_url());
    assert!(stored.credentials.is_connect() && !stored.uninstalled);

    // The installation the handshake made verifies the site's webhooks.
    store.link(&site.client_key, ISSUE, &[1]).unwrap();
    store.add_user(8, "bob@example.com").unwrap();
    sim.set_webhook_url(&format!("{url}/extensions/jira/issue-updated/"));
    let assign_bob = |id: &str| {
        let mut body = sim
            .webhook_body(
                ISSUE,
                json!([{"field": "assignee", "fieldId": "assignee", "to": "bob"}]),
            )
            .unwrap();
        body["issue"]["fields"]["assignee"] =
            json!({"accountId": "bob", "emailAddress": "bob@example.com"});
        sim.send(Webhook {
            id: id.to_owned(),
            body,
            authorization: None,
        });
        assert!(sim.wait_idle(Duration::from_secs(20)));
        assert!(server.wait_for_jobs(Duration::from_secs(20)));
        sim.deliveries().last().and_then(|d| d.status)
    };
    assert_eq!(assign_bob("after-install"), Some(200));
    assert_eq!(store.group(1).unwrap().unwrap().assignee, Some(8));

    assert_eq!(
        post_lifecycle(&url, &install(&url, "").uninstalled(now())),
        204
    );
    assert!(spec(&store, &site.client_key).unwrap().uninstalled);
    assert!(store.installation(&site.client_key).unwrap().is_none());
    assert_eq!(
        assign_bob("after-uninstall"),
        Some(409),
        "an uninstalled site's deliveries are refused"
    );

    assert_eq!(
        post_lifecycle(&url, &install(&url, "a-new-secret").installed(now())),
        204
    );
    let reinstalled = spec(&store, &site.client_key).unwrap();
    assert_eq!(reinstalled.shared_secret, "a-new-secret");
    assert!(!reinstalled.uninstalled);
    assert_eq!(
        store.linked_groups(&site.client_key, ISSUE).unwrap(),
        [1],
        "links stay for a reinstall"
    );
}

#[test]
fn a_forge_app_s_events_are_verified_queued_and_synced_with_its_system_token() {
    let world = SimWorld::demo();
    let sim = Simulator::start(world.clone()).unwrap();
    sim.make_forge_site("system-token-1");
    let config = ServerConfig {
        forge_app_ari: Some(ARI.into()),
        ..ServerConfig::default()
    };
    let (server, store, _db) = server("forge", &sim, config);
    let invocation = |ari: &str| ForgeInvocation {
        app_ari: ari.to_owned(),
        installation_id: INSTALLATION.to_owned(),
        api_base_url: sim.base_url(),
        cloud_id: Some("cloud-1".into()),
    };
    let installed = json!({"eventType": "avi:forge:installed:app", "context": {}});
    let token = invocation(ARI).token(now());

    let another_app = invocation("ari:cloud:ecosystem::app/another").token(now());
    assert_eq!(post_forge(&server, &another_app, None, &installed), 401);
    assert_eq!(post_forge(&server, "not-a-token", None, &installed), 401);
    assert!(
        spec(&store, INSTALLATION).is_none(),
        "refused: nothing stored"
    );

    assert_eq!(
        post_forge(&server, &token, Some("system-token-1"), &installed),
        200
    );
    let stored = spec(&store, INSTALLATION).unwrap();
    assert_eq!(stored.base_url, sim.base_url());
    assert_eq!(
        stored.credentials,
        CredentialSpec::Forge {
            access_token: Some("system-token-1".into())
        }
    );

    // Jira moved APP-123 into a done status: the component reads the statuses with the system
    // token the host adds, and the linked group is resolved.
    store.link(INSTALLATION, ISSUE, &[1]).unwrap();
    let updated = json!({"eventType": "avi:jira:updated:issue", "atlassianId": "5f1a",
        "issue": {"id": "10001", "key": ISSUE,
                  "fields": {"updated": "2024-01-01T00:00:00.000+0000"}},
        "changelog": {"id": "77", "items": [
            {"field": "status", "fieldId": "status", "from": "3", "to": "10101"}]}});
    assert_eq!(post_forge(&server, &token, None, &updated), 200);
    assert!(server.wait_for_jobs(Duration::from_secs(20)));
    assert_eq!(
        store.group(1).unwrap().unwrap().status,
        jira_sync_host::backends::GroupStatus::Resolved
    );
    let forge_site = sim.oauth().unwrap();
    assert!(
        forge_site
            .bearer_requests
            .contains(&"GET /rest/api/2/status".to_owned()),
        "{:?}",
        forge_site.bearer_requests
    );
    assert!(store.handled(INSTALLATION, "forge:10001:77").unwrap());

    // Forge's retry of the same event is a duplicate; a deletion removes the links.
    assert_eq!(post_forge(&server, &token, None, &updated), 200);
    let deleted = json!({"eventType": "avi:jira:deleted:issue",
        "issue": {"id": "10001", "key": ISSUE, "fields": {}}});
    assert_eq!(post_forge(&server, &token, None, &deleted), 200);
    assert!(server.wait_for_jobs(Duration::from_secs(20)));
    assert!(store.linked_groups(INSTALLATION, ISSUE).unwrap().is_empty());
    assert_eq!(
        forge_site.bearer_requests.len(),
        sim.oauth().unwrap().bearer_requests.len(),
        "neither the duplicate nor the deletion called Jira"
    );
}
