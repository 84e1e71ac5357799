//! Two servers sharing one PostgreSQL keep one OAuth installation up at once, against the
//! simulator's token endpoint, which rotates refresh tokens and refuses a used one: a refresh
//! that raced another would show as `invalid_grant` (docs/behaviour.md#10.2).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jira_sync_host::backends::{HttpLimits, RealHttp, Store};
use jira_sync_host::installation::{CredentialSpec, InstallationSpec};
use jira_sync_host::server::{OauthSettings, OauthUpkeep};
use jira_sync_host::sim::{SimWorld, Simulator};

use crate::PgSchema;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_refresh_an_oauth_installation_once_per_due_period() {
    let schema = PgSchema::new().await;
    let sim = Simulator::start(SimWorld::demo()).unwrap();
    sim.make_oauth_site("client", "cs", "rt-0");
    // A slow token endpoint: the rounds overlap while a refresh is in flight.
    sim.set_latency(Duration::from_millis(50));
    let mut spec = InstallationSpec::new("cloud-1", "", &sim.base_url(), "app");
    spec.credentials = CredentialSpec::Oauth {
        client_id: "client".into(),
        client_secret: "cs".into(),
        access_token: None,
        refresh_token: Some("rt-0".into()),
        access_expires_at: 0,
        webhook_ids: Vec::new(),
        webhooks_expire_at: 0,
        jql: None,
    };
    let stores = [schema.store().await, schema.store().await];
    stores[0].add_installation(&spec).await.unwrap();
    let settings = OauthSettings {
        token_url: format!("{}/oauth/token", sim.base_url()),
        public_url: None,
        default_jql: None,
        lease_seconds: 120,
    };
    let servers = stores.clone().map(|store| {
        Arc::new(OauthUpkeep::new(
            store,
            Arc::new(RealHttp::new(HttpLimits::default())),
            settings.clone(),
        ))
    });
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for period in 0..4u32 {
        // Each hour the token is due again; each server runs four rounds at once.
        let at = start + u64::from(period) * 3600;
        let mut rounds = tokio::task::JoinSet::new();
        for server in &servers {
            for _ in 0..4 {
                let server = server.clone();
                rounds.spawn(async move { server.round(at).await });
            }
        }
        let mut refreshed = 0;
        while let Some(outcomes) = rounds.join_next().await {
            for outcome in outcomes.unwrap() {
                let upkept = outcome.result.expect("no round fails");
                refreshed += usize::from(upkept.refreshed);
            }
        }
        let oauth = sim.oauth().unwrap();
        assert_eq!(refreshed, 1, "one refresh in period {period}");
        assert_eq!(oauth.refreshes, period + 1);
        assert_eq!(oauth.refused, 0, "no refresh token was used twice");
        for store in &stores {
            let stored = store.oauth_installations(at + 3600 * 24).await.unwrap()[0]
                .oauth_tokens()
                .unwrap();
            assert_eq!(
                stored.refresh_token.as_deref(),
                Some(oauth.refresh_token.as_str()),
                "every server reads the newest refresh token"
            );
            assert_eq!(stored.access_token, oauth.access_token);
        }
    }
}
