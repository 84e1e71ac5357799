//! Races through the real server over loopback: many copies of one delivery at once, and an
//! older and a newer event for one issue at once, the older slowed down by Jira. Each round
//! repeats enough times to catch the race on a host that checks, then acts
//! (docs/behaviour.md#7).

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use jira_sync_host::backends::{HttpLimits, RealHttp, SqliteStore};
use jira_sync_host::demo;
use jira_sync_host::server::{CallEvent, Server, ServerConfig};
use jira_sync_host::signing::{SignOverrides, authorization};
use jira_sync_host::sim::world::SimUser;
use jira_sync_host::sim::{Fault, SimWorld, Simulator};
use serde_json::{Value, json};

use super::{ISSUE, TempDb, runtime};

const PATH: &str = "/extensions/jira/issue-updated/";
const ROUNDS: usize = 5;

/// A site with one hidden-email user per round (so that no round is answered from the cache),
/// and a server with enough workers to run every copy at once.
struct Race {
    sim: Simulator,
    server: Server,
    store: Arc<SqliteStore>,
    events: std::sync::Mutex<mpsc::Receiver<CallEvent>>,
    world: SimWorld,
    _db: TempDb,
}

fn hidden(round: usize) -> (String, String) {
    (format!("h{round}"), format!("hidden{round}@example.com"))
}

impl Race {
    fn new(name: &str) -> Self {
        let db = TempDb::new(name);
        let mut world = SimWorld::demo();
        for round in 0..ROUNDS {
            let (account, email) = hidden(round);
            world.users.push(SimUser {
                account_id: account,
                display_name: format!("Hidden {round}"),
                email,
                hide_email: true,
            });
        }
        let sim = Simulator::start(world.clone()).unwrap();
        let store = Arc::new(SqliteStore::open(&db.0).unwrap());
        store
            .add_installation(&demo::installation(&world, &sim.base_url()))
            .unwrap();
        store
            .link(&world.installation.client_key, ISSUE, &[1])
            .unwrap();
        store.add_user(8, "bob@example.com").unwrap();
        for round in 0..ROUNDS {
            store
                .add_user(100 + round as u64, &hidden(round).1)
                .unwrap();
        }
        let (sender, events) = mpsc::channel();
        let config = ServerConfig {
            listen: "127.0.0.1:0".into(),
            workers: 8,
            ..ServerConfig::default()
        };
        let http = Arc::new(RealHttp::new(HttpLimits::default()));
        let server = Server::start(&config, runtime(), store.clone(), http, Some(sender)).unwrap();
        Race {
            sim,
            server,
            store,
            events: std::sync::Mutex::new(events),
            world,
            _db: db,
        }
    }

    /// Jira answers the next email lookup of `round`'s user, slowly.
    fn slow_email_api(&self, round: usize, delay_ms: u64) {
        let (account, email) = hidden(round);
        self.sim.inject(Fault {
            method: "GET".into(),
            path_contains: "/rest/api/3/user/email".into(),
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: json!({"accountId": account, "email": email}).to_string(),
            delay_ms,
            times: 1,
        });
    }

    /// An assignee change to `account` (with `email` visible when given), `updated` at `ms`.
    fn assignee_body(&self, account: &str, email: Option<&str>, ms: i64) -> Value {
        let mut user = json!({"accountId": account, "displayName": account});
        if let Some(email) = email {
            user["emailAddress"] = json!(email);
        }
        json!({
            "webhookEvent": "jira:issue_updated",
            "timestamp": 1_767_225_600_000 + ms,
            "changelog": {"id": "1", "items": [{"field": "assignee", "fieldId": "assignee", "to": account}]},
            "issue": {"id": "10001", "key": ISSUE, "fields": {
                "assignee": user,
                "updated": format_updated(ms),
                "project": {"id": "10000"},
            }},
        })
    }

    /// Posts `body` as delivery `id`, signed like Jira; returns the status answered.
    fn post(&self, id: &str, body: &Value) -> u16 {
        let installation = &self.world.installation;
        let token = authorization(
            &installation.client_key,
            &installation.shared_secret,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            ("POST", PATH, ""),
            &SignOverrides::default(),
        );
        ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        )
        .post(&format!("{}{PATH}", self.server.url()))
        .header("Authorization", &token)
        .header("X-Atlassian-Webhook-Identifier", id)
        .send(body.to_string().as_bytes())
        .unwrap()
        .status()
        .as_u16()
    }

    /// Waits until the accepted webhooks' jobs are done.
    fn settle(&self) {
        assert!(
            self.server.wait_for_jobs(Duration::from_secs(20)),
            "the jobs did not finish"
        );
    }

    /// The calls since the last look that assigned a group.
    fn calls_that_assigned(&self) -> usize {
        self.events
            .lock()
            .unwrap()
            .try_iter()
            .filter(|e| !e.record.assignments.is_empty())
            .count()
    }

    fn assignee(&self) -> Option<u64> {
        self.store.group(1).unwrap().unwrap().assignee
    }

    fn email_lookups(&self) -> usize {
        self.sim
            .exchanges()
            .iter()
            .filter(|e| e.path == "/rest/api/3/user/email")
            .count()
    }
}

/// `issue.fields.updated` in Jira's format: `ms` milliseconds after 2026-01-01T00:00:00Z, within
/// the day.
fn format_updated(ms: i64) -> String {
    let (s, ms) = (ms / 1000, ms % 1000);
    format!(
        "2026-01-01T{:02}:{:02}:{:02}.{ms:03}+0000",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

#[test]
fn eight_copies_of_one_delivery_at_once_are_handled_once() {
    let race = Race::new("copies");
    for round in 0..ROUNDS {
        let (account, _) = hidden(round);
        let body = race.assignee_body(&account, None, round as i64 * 1000);
        let id = format!("copies-{round}");
        // Jira is slow to reveal the email: every copy is in flight at once.
        race.slow_email_api(round, 300);
        let before = race.email_lookups();
        let statuses: Vec<u16> = thread::scope(|scope| {
            let copies: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| race.post(&id, &body)))
                .collect();
            copies.into_iter().map(|c| c.join().unwrap()).collect()
        });
        race.settle();
        let processed = race.calls_that_assigned();
        assert_eq!(processed, 1, "round {round}: answers {statuses:?}");
        assert_eq!(
            race.email_lookups() - before,
            1,
            "round {round}: one call to Jira"
        );
        assert_eq!(race.assignee(), Some(100 + round as u64), "round {round}");
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 503),
            "round {round}: {statuses:?}"
        );
        // Copies that arrive after it was handled are acknowledged without effect.
        assert_eq!(race.post(&id, &body), 200);
        race.settle();
        let again = race.calls_that_assigned();
        assert_eq!(again, 0, "round {round}: the late copy changed nothing");
    }
}

#[test]
fn an_older_event_slowed_by_jira_never_lands_after_a_newer_one() {
    let race = Race::new("order");
    for round in 0..ROUNDS {
        let base = round as i64 * 10_000;
        let (account, _) = hidden(round);
        let older = race.assignee_body(&account, None, base);
        let newer = race.assignee_body("bob", Some("bob@example.com"), base + 1000);
        race.slow_email_api(round, 400);
        thread::scope(|scope| {
            let slow = scope.spawn(|| race.post(&format!("older-{round}"), &older));
            thread::sleep(Duration::from_millis(100));
            let fast = scope.spawn(|| race.post(&format!("newer-{round}"), &newer));
            assert_eq!(fast.join().unwrap(), 200);
            assert_eq!(slow.join().unwrap(), 200);
        });
        race.settle();
        assert_eq!(
            race.assignee(),
            Some(8),
            "round {round}: the newer event's assignee stays"
        );
        let _ = race.events.lock().unwrap().try_iter().count();
    }
}
