//! The upkeep against the simulator's token endpoint and webhook API, over real HTTP, with a
//! SQLite store; time is passed in, so that hours and days go by at once.

use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::backends::{HttpLimits, RealHttp, SqliteStore};
use crate::sim::{SimWorld, Simulator};

const KEY: &str = "cloud-1";
const DAY: u64 = 86_400;

struct Site {
    sim: Simulator,
    store: Arc<SqliteStore>,
    file: PathBuf,
}

impl Drop for Site {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.file.display()));
        }
    }
}

fn now() -> u64 {
    super::super::outbox::now()
}

fn installation(base_url: &str, refresh_token: &str) -> InstallationSpec {
    let mut spec = InstallationSpec::new(KEY, "", base_url, "app");
    spec.credentials = CredentialSpec::Oauth {
        client_id: "client".into(),
        client_secret: "It's a Secret to Everybody".into(),
        access_token: None,
        refresh_token: Some(refresh_token.into()),
        access_expires_at: 0,
        webhook_ids: Vec::new(),
        webhooks_expire_at: 0,
        jql: Some("project = APP".into()),
    };
    spec
}

impl Site {
    fn new(name: &str) -> Self {
        let sim = Simulator::start(SimWorld::demo()).unwrap();
        sim.make_oauth_site("client", "It's a Secret to Everybody", "rt-0");
        let file =
            std::env::temp_dir().join(format!("jira-sync-oauth-{name}-{}.db", std::process::id()));
        let store = Arc::new(SqliteStore::open(&file).unwrap());
        store
            .add_installation(&installation(&sim.base_url(), "rt-0"))
            .unwrap();
        Site { sim, store, file }
    }

    fn settings(&self) -> OauthSettings {
        OauthSettings {
            token_url: format!("{}/oauth/token", self.sim.base_url()),
            public_url: Some("https://sync.example/".into()),
            default_jql: None,
            lease_seconds: 120,
        }
    }

    fn upkeep(&self, settings: OauthSettings) -> OauthUpkeep {
        OauthUpkeep::new(
            self.store.clone(),
            Arc::new(RealHttp::new(HttpLimits::default())),
            settings,
        )
    }

    fn tokens(&self) -> OauthTokens {
        // Listed whatever lease or backoff holds it: a year on.
        self.store.oauth_installations(now() + 365 * DAY).unwrap()[0]
            .oauth_tokens()
            .unwrap()
    }
}

fn done(outcomes: &[Outcome]) -> Vec<Upkept> {
    outcomes
        .iter()
        .map(|o| o.result.clone().expect("the upkeep succeeds"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_installation_gets_a_token_and_webhooks_then_each_again_when_due() {
    let site = Site::new("due");
    let upkeep = site.upkeep(site.settings());
    let start = now();
    let first = done(&upkeep.round(start).await);
    assert_eq!(
        first,
        [Upkept {
            refreshed: true,
            webhooks_registered: true,
            ..Upkept::default()
        }]
    );
    let oauth = site.sim.oauth().unwrap();
    let tokens = site.tokens();
    assert_eq!(tokens.access_token, oauth.access_token, "the granted token");
    assert_eq!(
        tokens.refresh_token.as_deref(),
        Some(oauth.refresh_token.as_str()),
        "the rotated refresh token is the one stored"
    );
    assert_eq!(tokens.access_expires_at, start + 3600);
    assert_eq!(oauth.webhooks.len(), 1);
    let webhook = &oauth.webhooks[0];
    assert_eq!(tokens.webhook_ids, [webhook.id]);
    assert_eq!(webhook.url, "https://sync.example/webhooks/oauth/cloud-1");
    assert_eq!(webhook.jql, "project = APP");
    assert_eq!(webhook.events, ["jira:issue_updated", "jira:issue_deleted"]);
    assert!(
        oauth
            .bearer_requests
            .contains(&"POST /rest/api/3/webhook".to_owned()),
        "registered with the new access token: {:?}",
        oauth.bearer_requests
    );
    assert_eq!(
        crate::backends::Platform::outbound_authorization(&*site.store, KEY)
            .await
            .unwrap(),
        Some(format!("Bearer {}", tokens.access_token.unwrap())),
        "the guest's requests carry it"
    );

    assert!(
        upkeep.round(start + 60).await.is_empty(),
        "nothing is due: nothing is leased or sent"
    );
    let refreshed = done(&upkeep.round(start + 3600 - 299).await);
    assert_eq!(
        refreshed,
        [Upkept {
            refreshed: true,
            ..Upkept::default()
        }],
        "five minutes before it expires, the token is refreshed; the webhooks are not due"
    );
    assert_eq!(site.sim.oauth().unwrap().refreshes, 2);

    let later = start + 26 * DAY;
    let extended = done(&upkeep.round(later).await);
    assert_eq!(
        extended,
        [Upkept {
            refreshed: true,
            webhooks_extended: true,
            ..Upkept::default()
        }]
    );
    let oauth = site.sim.oauth().unwrap();
    assert_eq!(oauth.webhooks.len(), 1, "extended, not registered again");
    assert_eq!(
        site.tokens().webhooks_expire_at,
        oauth.webhooks[0].expires_ms / 1000,
        "the expiration Jira answered"
    );
    assert_eq!(oauth.refused, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_token_needs_reauthorisation_and_backs_off() {
    let site = Site::new("refused");
    site.store
        .add_installation(&installation(&site.sim.base_url(), "rt-used"))
        .unwrap();
    let upkeep = site.upkeep(site.settings());
    let start = now();
    let outcomes = upkeep.round(start).await;
    let error = outcomes[0].result.clone().unwrap_err();
    assert!(
        matches!(error, UpkeepError::Request(Failure::InvalidGrant(ref why)) if why == "Unknown or invalid refresh token."),
        "{error:?}"
    );
    assert!(error.to_string().contains("authorised again"), "{error}");
    assert!(
        !error.to_string().contains("rt-used"),
        "no token in the message"
    );
    assert!(
        upkeep.round(start + 59).await.is_empty(),
        "held back after a failure"
    );
    assert_eq!(upkeep.round(start + 60).await.len(), 1, "tried again");
    assert!(
        upkeep.round(start + 60 + 119).await.is_empty(),
        "the wait doubles"
    );
    assert_eq!(site.sim.oauth().unwrap().refused, 2);

    // Someone authorised the app again: the new refresh token is used at once.
    site.store
        .add_installation(&installation(&site.sim.base_url(), "rt-0"))
        .unwrap();
    let fixed = done(&upkeep.round(start + 61).await);
    assert!(fixed[0].refreshed && fixed[0].webhooks_registered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_token_endpoint_is_retried_later_and_keeps_the_refresh_token() {
    let site = Site::new("unreachable");
    let down = site.upkeep(OauthSettings {
        token_url: "http://127.0.0.1:9/oauth/token".into(),
        ..site.settings()
    });
    let start = now();
    let outcomes = down.round(start).await;
    assert!(
        matches!(
            outcomes[0].result,
            Err(UpkeepError::Request(Failure::Unavailable(_)))
        ),
        "{outcomes:?}"
    );
    assert_eq!(site.tokens().refresh_token.as_deref(), Some("rt-0"));
    let up = site.upkeep(site.settings());
    assert!(up.round(start + 30).await.is_empty(), "held back");
    assert!(done(&up.round(start + 60).await)[0].refreshed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_jira_no_longer_knows_are_registered_again() {
    let site = Site::new("gone");
    let upkeep = site.upkeep(site.settings());
    let start = now();
    upkeep.round(start).await;
    let mut tokens = site.tokens();
    let current = tokens.refresh_token.clone();
    tokens.webhook_ids = vec![1];
    tokens.webhooks_expire_at = start + DAY;
    assert!(
        site.store
            .save_oauth_tokens(KEY, current.as_deref(), &tokens)
            .unwrap()
    );
    let again = done(&upkeep.round(start + 1).await);
    assert_eq!(
        again,
        [Upkept {
            webhooks_registered: true,
            ..Upkept::default()
        }]
    );
    let oauth = site.sim.oauth().unwrap();
    assert_eq!(site.tokens().webhook_ids, [oauth.webhooks[1].id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_public_url_or_a_jql_only_the_token_is_kept_up() {
    let site = Site::new("no-url");
    let upkeep = site.upkeep(OauthSettings {
        public_url: None,
        ..site.settings()
    });
    let outcomes = done(&upkeep.round(now()).await);
    assert_eq!(
        outcomes,
        [Upkept {
            refreshed: true,
            ..Upkept::default()
        }]
    );
    assert!(site.sim.oauth().unwrap().webhooks.is_empty());

    let mut spec = installation(
        &site.sim.base_url(),
        &site.sim.oauth().unwrap().refresh_token,
    );
    if let CredentialSpec::Oauth { jql, .. } = &mut spec.credentials {
        *jql = None;
    }
    site.store.add_installation(&spec).unwrap();
    let no_jql = site.upkeep(site.settings());
    assert!(
        done(&no_jql.round(now()).await)
            .iter()
            .all(|u| !u.webhooks_registered),
        "no filter: no webhooks"
    );
    let with_default = site.upkeep(OauthSettings {
        default_jql: Some("project IN (APP)".into()),
        ..site.settings()
    });
    assert!(done(&with_default.round(now()).await)[0].webhooks_registered);
    assert_eq!(
        site.sim.oauth().unwrap().webhooks[0].jql,
        "project IN (APP)"
    );
}

#[test]
fn the_wait_after_failures_doubles_up_to_an_hour() {
    assert_eq!(
        (1..=8).map(backoff).collect::<Vec<_>>(),
        [60, 120, 240, 480, 960, 1920, 3600, 3600]
    );
    assert_eq!(backoff(u32::MAX), 3600);
}
