//! An OAuth 2.0 app end to end (docs/behaviour.md#10.2): the server gets the installation's
//! access token from the simulator's token endpoint and registers its dynamic webhooks to its
//! own public URL; a status change in Jira arrives as an OAuth-signed delivery on
//! `/webhooks/oauth/{client-key}` and resolves the linked group; the component's requests to
//! the site carry the access token the server holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jira_sync_host::backends::{GroupStatus, HttpLimits, RealHttp, SqliteStore};
use jira_sync_host::demo;
use jira_sync_host::installation::CredentialSpec;
use jira_sync_host::server::{Server, ServerConfig};
use jira_sync_host::sim::{SimWorld, Simulator};
use serde_json::{Value, json};

use super::{ISSUE, TempDb, runtime};

const KEY: &str = "cloud-1";

/// Polls `done` every 20 ms until it holds, at most 20 seconds; whether it held.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn an_oauth_installation_is_kept_up_by_the_server_and_its_deliveries_resolve_groups() {
    let world = SimWorld::demo();
    let sim = Simulator::start(world.clone()).unwrap();
    sim.make_oauth_site("oauth-client", "It's a Secret to Everybody", "rt-0");
    let db = TempDb::new("oauth");
    let store = Arc::new(SqliteStore::open(&db.0).unwrap());
    let mut spec = demo::installation(&world, &sim.base_url());
    spec.client_key = KEY.into();
    spec.shared_secret.clear();
    spec.credentials = CredentialSpec::Oauth {
        client_id: "oauth-client".into(),
        client_secret: "It's a Secret to Everybody".into(),
        access_token: None,
        refresh_token: Some("rt-0".into()),
        access_expires_at: 0,
        webhook_ids: Vec::new(),
        webhooks_expire_at: 0,
        jql: Some("project = APP".into()),
    };
    store.add_installation(&spec).unwrap();
    store.link(KEY, ISSUE, &[1]).unwrap();

    // The public URL must be known before the server starts: a port picked now.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = ServerConfig {
        listen: address.to_string(),
        workers: 2,
        public_url: Some(format!("http://{address}")),
        oauth_token_url: format!("{}/oauth/token", sim.base_url()),
        oauth_interval_seconds: 1,
        ..ServerConfig::default()
    };
    let http = Arc::new(RealHttp::new(HttpLimits::default()));
    let server = Server::start(&config, runtime(), store.clone(), http, None).unwrap();

    assert!(
        eventually(|| sim.oauth().is_some_and(|o| !o.webhooks.is_empty())),
        "the server registered the webhooks"
    );
    let oauth = sim.oauth().unwrap();
    assert_eq!(oauth.refreshes, 1);
    assert_eq!(
        oauth.webhooks[0].url,
        format!("{}/webhooks/oauth/{KEY}", server.url())
    );
    assert!(
        eventually(|| {
            // Read at a time far ahead: listed whatever lease the server holds on it.
            let tokens = store.oauth_installations(u64::MAX >> 2).unwrap()[0]
                .oauth_tokens()
                .unwrap();
            tokens.webhook_ids == [oauth.webhooks[0].id]
        }),
        "the webhooks' ids are stored"
    );

    // Someone moves the issue to Done in Jira: two transitions, two OAuth-signed deliveries.
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let control = |path: &str, body: Value| {
        agent
            .post(&format!("{}/_sim/{path}", sim.base_url()))
            .send(body.to_string().as_bytes())
            .unwrap()
            .status()
            .as_u16()
    };
    for transition in ["11", "21"] {
        assert_eq!(
            control(
                &format!("issues/{ISSUE}/transitions"),
                json!({"transition": {"id": transition}})
            ),
            204
        );
    }
    let settle = || {
        assert!(
            sim.wait_idle(Duration::from_secs(20)),
            "deliveries answered"
        );
        assert!(server.wait_for_jobs(Duration::from_secs(20)), "jobs done");
    };
    settle();
    let deliveries = sim.deliveries();
    assert_eq!(deliveries.len(), 2);
    assert!(
        deliveries.iter().all(|d| d.status == Some(200)),
        "the OAuth deliveries verified: {deliveries:?}"
    );
    assert_eq!(
        store.group(1).unwrap().unwrap().status,
        GroupStatus::Resolved,
        "Done in Jira resolved the linked group"
    );

    // The platform reopens the group: the component asks the site, with the server's token.
    let reopened = agent
        .post(&format!("{}/admin/groups/1/unresolve", server.url()))
        .send(&b""[..])
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(reopened, 200);
    settle();
    assert_eq!(sim.issue(ISSUE).unwrap().status, "3", "moved back in Jira");
    let oauth = sim.oauth().unwrap();
    assert!(
        oauth
            .bearer_requests
            .iter()
            .any(|r| r == &format!("POST /rest/api/2/issue/{ISSUE}/transitions")),
        "the component's transition carried the access token: {:?}",
        oauth.bearer_requests
    );
    assert!(
        sim.exchanges().iter().all(|e| e.auth_error.is_none()),
        "every request to the site was authorised: {:?}",
        sim.exchanges()
    );
    assert_eq!(oauth.refused, 0);
}
