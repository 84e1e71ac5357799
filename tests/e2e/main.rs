//! End to end over loopback: the Jira simulator, the webhook server with its SQLite state, and
//! the component between them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jira_sync_host::backends::SqliteStore;
use jira_sync_host::backends::{Effect, GroupStatus};
use jira_sync_host::backends::{HttpLimits, RealHttp};
use jira_sync_host::demo;
use jira_sync_host::server::{Server, ServerConfig};
use jira_sync_host::sim::{Fault, SimWorld, Simulator, Webhook};
use jira_sync_host::{Runtime, bundled_component};
use serde_json::{Value, json};

mod check;
mod dialects;
mod handshakes;
mod oauth;
mod outbox;
mod races;
mod recording;
mod server;
mod sim_dialects;

const ISSUE: &str = "APP-123";

fn runtime() -> Arc<Runtime> {
    Arc::new(Runtime::load(&bundled_component()).expect("load the component"))
}

/// A temporary SQLite file, removed on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> Self {
        TempDb(std::env::temp_dir().join(format!("jira-sync-e2e-{name}-{}.db", std::process::id())))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

struct Stack {
    sim: Simulator,
    server: Option<Server>,
    store: Arc<SqliteStore>,
    runtime: Arc<Runtime>,
    db: TempDb,
}

impl Stack {
    fn new(name: &str) -> Self {
        let db = TempDb::new(name);
        let world = SimWorld::demo();
        let sim = Simulator::start(world.clone()).unwrap();
        let store = Arc::new(SqliteStore::open(&db.0).unwrap());
        store
            .add_installation(&demo::installation(&world, &sim.base_url()))
            .unwrap();
        store
            .link(&world.installation.client_key, ISSUE, &[1])
            .unwrap();
        store.add_user(7, "ada@example.com").unwrap();
        store.add_user(8, "bob@example.com").unwrap();
        let mut stack = Stack {
            sim,
            server: None,
            store,
            runtime: runtime(),
            db,
        };
        stack.start_server();
        stack
    }

    fn start_server(&mut self) {
        self.start_server_with(ServerConfig::default());
    }

    /// Starts a server configured from `config` but for its address and workers.
    fn start_server_with(&mut self, config: ServerConfig) {
        let config = ServerConfig {
            listen: "127.0.0.1:0".into(),
            workers: 2,
            ..config
        };
        let http = Arc::new(RealHttp::new(HttpLimits::default()));
        let server = Server::start(
            &config,
            self.runtime.clone(),
            self.store.clone(),
            http,
            None,
        )
        .unwrap();
        self.sim
            .set_webhook_url(&format!("{}/extensions/jira/issue-updated/", server.url()));
        self.server = Some(server);
    }

    /// Stops the server and starts another on the same database file, with no memory of the
    /// first but what SQLite kept.
    fn restart_server(&mut self) {
        self.server = None;
        self.store = Arc::new(SqliteStore::open(&self.db.0).unwrap());
        self.start_server();
    }

    fn admin(&self, path: &str, body: &str) -> Value {
        let url = format!("{}{path}", self.server.as_ref().unwrap().url());
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        );
        let body = agent
            .post(&url)
            .send(body.as_bytes())
            .unwrap()
            .body_mut()
            .read_to_vec()
            .unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    /// Waits until the simulator's webhooks are answered and the server's jobs are done.
    fn settle(&self) {
        assert!(
            self.sim.wait_idle(Duration::from_secs(20)),
            "webhooks were not answered"
        );
        assert!(
            self.server
                .as_ref()
                .unwrap()
                .wait_for_jobs(Duration::from_secs(20)),
            "the webhooks' jobs did not finish"
        );
    }

    fn send(&self, id: &str, body: Value) {
        self.sim.send(Webhook {
            id: id.to_owned(),
            body,
            authorization: None,
        });
        self.settle();
    }

    fn last_delivery_status(&self) -> Option<u16> {
        self.sim.deliveries().last().and_then(|d| d.status)
    }

    /// Jira's body for an assignee change to `account` with this `updated` time.
    fn assignee_body(&self, account: &str, updated: &str) -> Value {
        let mut body = self
            .sim
            .webhook_body(
                ISSUE,
                json!([{"field": "assignee", "fieldId": "assignee", "to": account}]),
            )
            .unwrap();
        let user = if account == "5f1a" {
            json!({"accountId": "5f1a", "displayName": "Ada Byron"})
        } else {
            json!({"accountId": account, "displayName": "Bob", "emailAddress": "Bob@example.com"})
        };
        body["issue"]["fields"]["assignee"] = user;
        body["issue"]["fields"]["updated"] = json!(updated);
        body
    }

    fn group(&self) -> jira_sync_host::backends::Group {
        self.store.group(1).unwrap().unwrap()
    }
}

#[test]
fn the_seed_round_trip() {
    let report = demo::run(runtime(), None).unwrap();
    let s = &report.summary;
    assert_eq!(
        s["outbound_resolve"],
        json!({"type": "transitioned", "transitions": ["11", "21"]}),
        "Open -> In Progress -> Done: two hops"
    );
    assert_eq!(
        s["jira_issue"],
        json!({"status": "10101", "assignee": "5f1a"})
    );
    assert_eq!(s["group"], json!({"status": "resolved", "assignee": 7}));
    assert_eq!(
        s["email_api_calls"], 1,
        "the second assignment used the cache"
    );
    assert_eq!(s["jira_requests_refused"], 0, "every request verified");
    assert_eq!(s["webhooks_delivered"], s["webhooks_answered_200"]);
    assert_eq!(s["webhooks_delivered"], 5);
    let echo = report
        .timeline
        .iter()
        .find(|e| e.what.contains("for webhook sim-2"))
        .unwrap();
    assert!(
        echo.details.iter().any(|d| d.contains("(0 changed)")),
        "the echo of our own transition changes nothing: {echo:?}"
    );
}

#[test]
fn a_rate_limited_transition_succeeds_after_retry_after() {
    let stack = Stack::new("rate-limit");
    stack.sim.inject(Fault {
        method: "POST".into(),
        path_contains: "/transitions".into(),
        status: 429,
        headers: vec![
            ("Retry-After".into(), "1".into()),
            ("RateLimit-Reason".into(), "jira-per-issue-on-write".into()),
        ],
        ..Fault::default()
    });
    let answer = stack.admin("/admin/groups/1/resolve", "");
    stack.settle();
    assert_eq!(
        answer["results"][0]["outcome"],
        json!({"type": "transitioned", "transitions": ["11", "21"]})
    );
    let posts: Vec<u16> = stack
        .sim
        .exchanges()
        .iter()
        .filter(|e| e.method == "POST")
        .map(|e| e.status)
        .collect();
    assert_eq!(posts, [429, 204, 204]);
    assert_eq!(stack.sim.issue(ISSUE).unwrap().status, "10101");
}

#[test]
fn a_redelivered_webhook_has_no_second_effect() {
    let stack = Stack::new("redelivery");
    let body = stack.assignee_body("5f1a", "2024-01-01T00:00:00.000+0000");
    stack.send("delivery-1", body.clone());
    assert_eq!(stack.group().assignee, Some(7));
    stack
        .store
        .commit(&[Effect::Assignee {
            issue: ("jira:1c4".into(), "APP-1".into()),
            group: 1,
            user: Some(99),
        }])
        .unwrap();
    stack.send("delivery-1", body);
    assert_eq!(stack.last_delivery_status(), Some(200));
    assert_eq!(
        stack.group().assignee,
        Some(99),
        "the redelivery changed nothing"
    );
}

#[test]
fn an_out_of_order_pair_keeps_the_newer_event() {
    let stack = Stack::new("ordering");
    stack.send(
        "newer",
        stack.assignee_body("deadbeef123", "2024-01-01T00:00:02.000+0000"),
    );
    stack.send(
        "older",
        stack.assignee_body("5f1a", "2024-01-01T00:00:01.000+0000"),
    );
    assert_eq!(stack.last_delivery_status(), Some(200));
    assert_eq!(
        stack.group().assignee,
        Some(8),
        "Bob's newer assignment stays"
    );
}

#[test]
fn state_survives_a_server_restart() {
    let mut stack = Stack::new("restart");
    let body = stack.assignee_body("5f1a", "2024-01-01T00:00:00.000+0000");
    stack.send("before-restart", body.clone());
    stack.restart_server();
    assert_eq!(stack.group().assignee, Some(7));
    stack
        .store
        .commit(&[Effect::Assignee {
            issue: ("jira:1c4".into(), "APP-1".into()),
            group: 1,
            user: Some(99),
        }])
        .unwrap();
    stack.send("before-restart", body);
    assert_eq!(
        stack.group().assignee,
        Some(99),
        "the delivery log survived the restart"
    );
    stack.send(
        "stale",
        stack.assignee_body("5f1a", "2023-12-31T00:00:00.000+0000"),
    );
    assert_eq!(
        stack.group().assignee,
        Some(99),
        "the ordering watermark survived"
    );
    let answer = stack.admin("/admin/groups/1/resolve", "");
    stack.settle();
    assert_eq!(answer["results"][0]["outcome"]["type"], "transitioned");
    assert_eq!(stack.group().status, GroupStatus::Resolved);
}

#[test]
fn a_tampered_webhook_is_409_without_effect() {
    let stack = Stack::new("tampered");
    stack.sim.assign(ISSUE, Some("5f1a")).unwrap();
    stack.settle();
    assert_eq!(stack.group().assignee, Some(7));
    stack
        .store
        .commit(&[Effect::Assignee {
            issue: ("jira:1c4".into(), "APP-1".into()),
            group: 1,
            user: None,
        }])
        .unwrap();
    let body = stack.assignee_body("deadbeef123", "2025-01-01T00:00:00.000+0000");
    let valid = jira_sync_host::signing::authorization(
        "jira:demo-site",
        "demo-shared-secret",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        ("POST", "/extensions/jira/issue-updated/", ""),
        &Default::default(),
    );
    let mut tampered = valid.into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    stack.sim.send(Webhook {
        id: "tampered".into(),
        body,
        authorization: Some(String::from_utf8(tampered).unwrap()),
    });
    stack.settle();
    assert_eq!(stack.last_delivery_status(), Some(409));
    assert_eq!(stack.group().assignee, None);
}

#[test]
fn people_in_jira_drive_the_platform_through_the_simulator_control_api() {
    let stack = Stack::new("control");
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let control = |path: &str, body: Value| {
        agent
            .post(&format!("{}/_sim/{path}", stack.sim.base_url()))
            .send(body.to_string().as_bytes())
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        control(
            "issues/APP-123/transitions",
            json!({"transition": {"id": "11"}})
        ),
        204
    );
    assert_eq!(
        control(
            "issues/APP-123/transitions",
            json!({"transition": {"id": "21"}})
        ),
        204
    );
    stack.settle();
    assert_eq!(
        stack.group().status,
        GroupStatus::Resolved,
        "Done in Jira resolves the group"
    );
    assert_eq!(
        control(
            "issues/APP-123/transitions",
            json!({"transition": {"id": "99"}})
        ),
        400,
        "a transition that is not open is refused like Jira does"
    );
    assert_eq!(
        control(
            "issues/APP-123/assignee",
            json!({"accountId": "deadbeef123"})
        ),
        204
    );
    stack.settle();
    assert_eq!(
        stack.group().assignee,
        Some(8),
        "Bob's visible email matched user 8"
    );
    assert!(
        stack
            .sim
            .exchanges()
            .iter()
            .all(|e| !e.path.starts_with("/_sim/")),
        "control calls are not counted as the app's requests"
    );
}

#[test]
fn the_admin_api_can_require_a_token() {
    let db = TempDb::new("admin-token");
    let store = Arc::new(SqliteStore::open(&db.0).unwrap());
    let config = ServerConfig {
        listen: "127.0.0.1:0".into(),
        admin_token: Some("let-me-in".into()),
        ..ServerConfig::default()
    };
    let http = Arc::new(RealHttp::new(HttpLimits::default()));
    let server = Server::start(&config, runtime(), store, http, None).unwrap();
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let user = json!({"id": 1, "email": "a@example.com"}).to_string();
    let url = format!("{}/admin/users", server.url());
    let status = |request: ureq::RequestBuilder<ureq::typestate::WithBody>| {
        request.send(user.as_bytes()).unwrap().status().as_u16()
    };
    assert_eq!(status(agent.post(&url)), 401);
    assert_eq!(
        status(agent.post(&url).header("Authorization", "Bearer guess")),
        401
    );
    assert_eq!(
        status(agent.post(&url).header("Authorization", "Bearer let-me-in")),
        200
    );
    assert_eq!(
        status(agent.post(&url).header("Authorization", "bearer let-me-in")),
        200,
        "the scheme is case-insensitive"
    );
}
