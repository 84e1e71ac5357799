//! Three `serve` processes as one deployment (docs/decisions/0009): one PostgreSQL schema and
//! one Redis key prefix shared by all three, webhooks spread across them by a load generator,
//! and one of them killed with SIGKILL while it holds work. What a single-server test cannot
//! show: that servers which share a store never apply a delivery twice, never let an older
//! event overwrite a newer one, and finish what a dead peer left behind once its leases end.
//!
//! How "exactly once" is observed: the test adds triggers to its own schema (after the
//! servers' migrations made the tables) that record every committed change of a group's
//! assignee and every watermark move. A delivery applied twice would leave two rows for its
//! group even though both write the same value; a watermark moved backwards would leave a row
//! whose new time is below its old one. Rolled-back transactions leave no rows, so the rows
//! are exactly the effects that were applied.
//!
//! What the victim holds when it dies: jobs whose email lookups hang in Jira, and pushes whose
//! first attempt hangs on Jira's first read, all running under leases of `LEASE_SECONDS` (set
//! short for the test) that the survivors take over once they end.
//!
//! Needs PostgreSQL and Redis (README, "Two commands"); `scripts/test.sh` skips it with
//! `JIRA_SYNC_TEST_SERVICES=none` (its name holds `multinode`).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jira_sync_host::demo;
use jira_sync_host::signing::{SignOverrides, authorization};
use jira_sync_host::sim::world::{SimIssue, SimUser};
use jira_sync_host::sim::{Fault, SimWorld, Simulator};
use serde_json::{Value, json};

const WEBHOOK: &str = "/extensions/jira/issue-updated/";
const EMAIL_API: &str = "/rest/api/3/user/email";
/// Short, so that the survivors take the dead server's jobs over within the test; long enough
/// that a live server on a loaded two-core machine renews its leases (every half lease) in time.
const LEASE_SECONDS: u64 = 4;
/// Deliveries that each assign a group of their own (the payload shows the email: no Jira
/// call), half before the kill and half after.
const DISTINCT: usize = 240;
/// Deliveries sent to the victim only whose work waits on Jira's email API when it dies.
const SLOW: usize = 8;
/// How long Jira takes to answer those lookups (with a 503) to the victim: far longer than the
/// test needs to kill it while they are in flight. Not longer: the simulator's drop waits for
/// its delayed answers.
const SLOW_LOOKUP: Duration = Duration::from_secs(10);
/// Deliveries each sent to all three servers at once, `DUPLICATE_ROUNDS` times, then once
/// more after the kill.
const DUPLICATES: usize = 16;
const DUPLICATE_ROUNDS: usize = 3;
/// Pairs of an older and a newer event of one issue, each pair sent to two servers at once.
const CONTESTED_ROUNDS: usize = 8;
/// Outbound syncs the victim records (and fails once) just before it dies.
const PUSHES: u64 = 3;
/// Concurrent senders of the distinct deliveries.
const SENDERS: usize = 12;
/// Generous: a debug build on a loaded two-core machine. Polls end as soon as they hold.
const DEADLINE: Duration = Duration::from_secs(60);
/// Index of the server that is killed.
const VICTIM: usize = 2;

const HOT_ISSUE: &str = "HOT-1";
const HOT_GROUP: u64 = 4000;
/// `issue.fields.updated` of contested event `e` is 10:00:00 + e seconds on 2026-01-01.
const HOT_BASE_MS: i64 = 36_000_000;

fn distinct_group(i: usize) -> u64 {
    1000 + i as u64
}
fn slow_group(i: usize) -> u64 {
    2000 + i as u64
}
fn duplicate_group(j: usize) -> u64 {
    3000 + j as u64
}
fn push_group(k: u64) -> u64 {
    5000 + k
}
/// The platform user (and shown email) of contested event `e`: a higher id is a newer event.
fn hot_user(e: usize) -> u64 {
    300 + e as u64
}
/// The platform user of slow delivery `i` (email `slow{i}@example.com`, hidden in Jira).
fn slow_user(i: usize) -> u64 {
    200 + i as u64
}
/// The contested issue's late event, older than every other: it must change nothing.
const LATE_USER: u64 = 299;
/// 2026-01-01T00:00:00Z: the day every event's `updated` falls on.
const JAN_1_2026_MS: i64 = 1_767_225_600_000;

fn postgres_url() -> String {
    std::env::var("JIRA_SYNC_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn redis_url() -> String {
    std::env::var("JIRA_SYNC_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A name no other test run uses.
fn unique(kind: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("js_multinode_{kind}_{}_{nanos}", std::process::id())
}

async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {url} is not reachable ({e}): start it, or point \
                 JIRA_SYNC_TEST_POSTGRES at one (README, \"Two commands\")"
            )
        });
    tokio::spawn(connection);
    client
}

/// Runs `work` on a runtime of its own on a thread of its own: usable from drops, which may
/// run while the test's runtime is busy or unwinding.
fn on_own_runtime<T: Send>(work: impl Future<Output = T> + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(work)
            })
            .join()
            .unwrap()
    })
}

/// The test's own schema in the test PostgreSQL, dropped with everything in it (tables,
/// triggers) when this goes, also when the test panicked.
struct PgSchema(String);

impl PgSchema {
    fn new() -> Self {
        let name = unique("pg");
        let sql = format!("CREATE SCHEMA {name}");
        on_own_runtime(async { pg_connect(&postgres_url()).await.batch_execute(&sql).await })
            .expect("create the test's schema");
        PgSchema(name)
    }

    /// The URL every server is given: its connections all work inside the schema.
    fn url(&self) -> String {
        let base = postgres_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        format!("{base}{separator}options=-c%20search_path%3D{}", self.0)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0);
        on_own_runtime(async {
            if let Ok((client, connection)) =
                tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await
            {
                tokio::spawn(connection);
                let _ = client.batch_execute(&sql).await;
            }
        });
    }
}

/// The test's own key prefix in the test Redis; its keys are deleted when this goes.
struct RedisPrefix(String);

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let Ok(mut connection) =
            redis::Client::open(redis_url()).and_then(|client| client.get_connection())
        else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.0))
            .query(&mut connection)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut connection);
        }
    }
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `serve` process of the test's, its stderr in a file (read for its URL and, when the test
/// fails, for what it said). Killed on drop if still running.
struct Serve {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Serve {
    /// Starts `serve` on a free loopback port with its own data directory under `dir`, the
    /// compiled component shared through `cache_dir`, and `settings` as `JIRA_SYNC_*`
    /// variables (and none from the environment the test runs in).
    fn spawn(name: &str, dir: &Path, cache_dir: &Path, settings: &[(&str, String)]) -> Self {
        let data = dir.join(name);
        std::fs::create_dir_all(&data).unwrap();
        let log = dir.join(format!("{name}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_jira-sync-host"));
        for (variable, _) in std::env::vars_os() {
            if variable.to_string_lossy().starts_with("JIRA_SYNC_") {
                command.env_remove(variable);
            }
        }
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(&data)
            .env("JIRA_SYNC_DATA_DIR", &data)
            .env("JIRA_SYNC_CACHE_DIR", cache_dir)
            .env("RUST_LOG", "warn,jira_sync=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (key, value) in settings {
            command.env(format!("JIRA_SYNC_{}", key.to_uppercase()), value);
        }
        Serve {
            child: command.spawn().unwrap(),
            url: String::new(),
            log,
        }
    }

    /// Waits until the server says where it serves.
    fn wait_serving(&mut self) {
        let started = Instant::now();
        loop {
            let log = self.log();
            if let Some((_, rest)) = log.split_once("serving on ") {
                self.url = rest.split_whitespace().next().unwrap().to_owned();
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("serve exited ({status}) before serving:\n{log}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "serve did not start:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// The last lines of its log, for a failure message.
    fn tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGKILL (what `Child::kill` sends on Unix): the process dies at once, whatever it held.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A signed delivery, ready to send to any server.
#[derive(Clone)]
struct Delivery {
    id: String,
    authorization: String,
    body: String,
}

/// Delivery `id`: issue `issue` was assigned to `assignee` (Jira's user JSON) at `updated_ms`
/// past midnight, 2026-01-01 (in the past, so that the watermark moves).
fn delivery(world: &SimWorld, id: &str, issue: &str, assignee: Value, updated_ms: i64) -> Delivery {
    let seconds = updated_ms / 1000;
    let updated = format!(
        "2026-01-01T{:02}:{:02}:{:02}.{:03}+0000",
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
        updated_ms % 1000
    );
    let to = assignee["accountId"].clone();
    let body = json!({
        "webhookEvent": "jira:issue_updated",
        "timestamp": JAN_1_2026_MS + updated_ms,
        "changelog": {"id": "1", "items": [{"field": "assignee", "fieldId": "assignee", "to": to}]},
        "issue": {"id": "1", "key": issue, "fields": {
            "assignee": assignee,
            "updated": updated,
            "project": {"id": "10000"},
        }},
    });
    Delivery {
        id: id.to_owned(),
        authorization: authorization(
            &world.installation.client_key,
            &world.installation.shared_secret,
            unix_now(),
            ("POST", WEBHOOK, ""),
            &SignOverrides::default(),
        ),
        body: body.to_string(),
    }
}

/// Jira's JSON for a user who shows `email`.
fn shown(account: &str, email: &str) -> Value {
    json!({"accountId": account, "displayName": account, "emailAddress": email})
}

/// The status one server answered `delivery` with; `None` when it could not be reached.
async fn post(client: &reqwest::Client, url: &str, delivery: &Delivery) -> Option<u16> {
    client
        .post(format!("{url}{WEBHOOK}"))
        .header("Authorization", &delivery.authorization)
        .header("X-Atlassian-Webhook-Identifier", &delivery.id)
        .header("Content-Type", "application/json")
        .body(delivery.body.clone())
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// Everything the test sends and what it must leave behind.
struct Plan {
    /// Admin calls that set the platform up (installation, links, users).
    setup: Vec<(&'static str, Value)>,
    /// Each assigns a group of its own; the payload shows the email (no Jira call).
    distinct: Vec<Delivery>,
    /// Each sent to all three servers at once, several times.
    duplicates: Arc<Vec<Delivery>>,
    /// Sent to the victim only; each needs Jira's email API (the assignee hides the email).
    slow: Vec<Delivery>,
    /// Contested pairs (older, newer) of `HOT_ISSUE`, before and after the kill.
    hot_before: Vec<(Delivery, Delivery)>,
    hot_after: Vec<(Delivery, Delivery)>,
    /// A contested event older than every other, sent last: it must change nothing.
    late: Delivery,
    /// Group → the assignee it must end with.
    expected: BTreeMap<u64, u64>,
}

impl Plan {
    fn new(world: &SimWorld, jira: &str) -> Self {
        let client_key = &world.installation.client_key;
        let mut setup = vec![
            (
                "/admin/installations",
                serde_json::to_value(demo::installation(world, jira)).unwrap(),
            ),
            ("/admin/users", json!({"id": 1, "email": "u1@example.com"})),
            ("/admin/users", json!({"id": 2, "email": "u2@example.com"})),
            (
                "/admin/users",
                json!({"id": LATE_USER, "email": "hot-late@example.com"}),
            ),
        ];
        let mut link = |issue: String, group: u64| {
            setup.push((
                "/admin/links",
                json!({"client_key": client_key, "issue_key": issue, "groups": [group]}),
            ));
        };
        link(HOT_ISSUE.to_owned(), HOT_GROUP);
        (0..DISTINCT).for_each(|i| link(format!("LOAD-{i}"), distinct_group(i)));
        (0..DUPLICATES).for_each(|j| link(format!("DUP-{j}"), duplicate_group(j)));
        (0..SLOW).for_each(|i| link(format!("SLOW-{i}"), slow_group(i)));
        (1..=PUSHES).for_each(|k| link(format!("OUT-{k}"), push_group(k)));
        setup.extend((0..SLOW).map(|i| {
            (
                "/admin/users",
                json!({"id": slow_user(i), "email": format!("slow{i}@example.com")}),
            )
        }));
        setup.extend((0..CONTESTED_ROUNDS * 2).map(|e| {
            (
                "/admin/users",
                json!({"id": hot_user(e), "email": format!("hot{e}@example.com")}),
            )
        }));

        let mut expected = BTreeMap::new();
        // Users 1 and 2 in turn, shown in the payload.
        let mut assign = |id: String, issue: String, group: u64, n: usize, updated_ms: i64| {
            let user = 1 + (n % 2) as u64;
            expected.insert(group, user);
            let email = format!("u{user}@example.com");
            delivery(
                world,
                &id,
                &issue,
                shown(&format!("acc-u{user}"), &email),
                updated_ms,
            )
        };
        let distinct = (0..DISTINCT)
            .map(|i| {
                assign(
                    format!("load-{i}"),
                    format!("LOAD-{i}"),
                    distinct_group(i),
                    i,
                    1_000 + i as i64,
                )
            })
            .collect();
        let duplicates = (0..DUPLICATES)
            .map(|j| {
                assign(
                    format!("dup-{j}"),
                    format!("DUP-{j}"),
                    duplicate_group(j),
                    j,
                    2_000,
                )
            })
            .collect();
        let slow = (0..SLOW)
            .map(|i| {
                expected.insert(slow_group(i), slow_user(i));
                let hidden =
                    json!({"accountId": format!("slow-{i}"), "displayName": format!("Slow {i}")});
                delivery(
                    world,
                    &format!("slow-{i}"),
                    &format!("SLOW-{i}"),
                    hidden,
                    3_000,
                )
            })
            .collect();
        // Event e assigns user `hot_user(e)` at HOT_BASE_MS + e s: a later event, a higher id.
        let event = |e: usize| {
            delivery(
                world,
                &format!("hot-{e}"),
                HOT_ISSUE,
                shown(&format!("acc-hot{e}"), &format!("hot{e}@example.com")),
                HOT_BASE_MS + e as i64 * 1000,
            )
        };
        let pairs = |rounds: std::ops::Range<usize>| -> Vec<_> {
            rounds.map(|r| (event(2 * r), event(2 * r + 1))).collect()
        };
        expected.insert(HOT_GROUP, hot_user(CONTESTED_ROUNDS * 2 - 1));
        Plan {
            setup,
            distinct,
            duplicates: Arc::new(duplicates),
            slow,
            hot_before: pairs(0..CONTESTED_ROUNDS / 2),
            hot_after: pairs(CONTESTED_ROUNDS / 2..CONTESTED_ROUNDS),
            late: delivery(
                world,
                "hot-late",
                HOT_ISSUE,
                shown("acc-late", "hot-late@example.com"),
                HOT_BASE_MS - 1000,
            ),
            expected,
        }
    }

    /// Every delivery id the servers must end up marking handled.
    fn deliveries(&self) -> usize {
        DISTINCT + SLOW + DUPLICATES + CONTESTED_ROUNDS * 2 + 1
    }
}

/// What one phase of the load sends, all of it at once.
struct Phase {
    /// Over `SENDERS` connections, delivery `load-i` first to server `i % 3`; each one taken
    /// counts in `progress`.
    distinct: Vec<Delivery>,
    progress: Arc<AtomicUsize>,
    /// Every copy to all three servers at once, `rounds` times over.
    duplicates: Arc<Vec<Delivery>>,
    rounds: usize,
    /// Each pair at once, to two different servers (older first to `a`, newer to `b`).
    hot: Vec<(Delivery, Delivery, usize, usize)>,
}

/// What the load generator saw.
#[derive(Default)]
struct Sent {
    /// Deliveries no server took.
    lost: Vec<String>,
    /// Answers other than 200 from the servers that stay up, to copies of one delivery sent to
    /// all three at once.
    copies_not_200: Vec<(String, usize, Option<u16>)>,
}

impl Sent {
    fn add(&mut self, other: Sent) {
        self.lost.extend(other.lost);
        self.copies_not_200.extend(other.copies_not_200);
    }
}

/// The load generator: Jira, for all three servers.
#[derive(Clone)]
struct Load {
    client: reqwest::Client,
    urls: Arc<Vec<String>>,
    /// Deliveries that one server failed to take and that went to the next.
    failovers: Arc<AtomicUsize>,
}

impl Load {
    /// Sends `delivery` as Jira does: to server `first`, and, until one answers 200, again to
    /// the next (a load balancer routing Jira's retry elsewhere). Whether one took it.
    async fn deliver(&self, first: usize, delivery: &Delivery) -> bool {
        for attempt in 0..self.urls.len() * 3 {
            let server = (first + attempt) % self.urls.len();
            if post(&self.client, &self.urls[server], delivery).await == Some(200) {
                return true;
            }
            self.failovers.fetch_add(1, Ordering::Relaxed);
        }
        false
    }

    async fn send(self, phase: Phase) -> Sent {
        let distinct = Arc::new(phase.distinct);
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..SENDERS {
            let (load, distinct, next, progress) = (
                self.clone(),
                distinct.clone(),
                next.clone(),
                phase.progress.clone(),
            );
            tasks.spawn(async move {
                let mut sent = Sent::default();
                while let Some(d) = distinct.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let i: usize = d.id.trim_start_matches("load-").parse().unwrap();
                    if !load.deliver(i % 3, d).await {
                        sent.lost.push(d.id.clone());
                    }
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                sent
            });
        }
        let load = self.clone();
        tasks.spawn(async move {
            let mut sent = Sent::default();
            for _ in 0..phase.rounds {
                for d in phase.duplicates.iter() {
                    let (client, urls) = (&load.client, &load.urls);
                    let (a, b, c) = tokio::join!(
                        post(client, &urls[0], d),
                        post(client, &urls[1], d),
                        post(client, &urls[2], d),
                    );
                    for (server, status) in [(0, a), (1, b), (2, c)] {
                        if server != VICTIM && status != Some(200) {
                            sent.copies_not_200.push((d.id.clone(), server, status));
                        }
                    }
                    if [a, b, c].iter().all(|s| *s != Some(200)) {
                        sent.lost.push(d.id.clone());
                    }
                }
            }
            sent
        });
        let load = self.clone();
        tasks.spawn(async move {
            let mut sent = Sent::default();
            for (older, newer, a, b) in &phase.hot {
                let (x, y) = tokio::join!(load.deliver(*a, older), load.deliver(*b, newer));
                for (taken, d) in [(x, older), (y, newer)] {
                    if !taken {
                        sent.lost.push(d.id.clone());
                    }
                }
            }
            sent
        });
        let mut all = Sent::default();
        while let Some(sent) = tasks.join_next().await {
            all.add(sent.unwrap());
        }
        all
    }
}

/// Polls `done` every 200 ms until it holds or `DEADLINE` passed; whether it held.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if done() {
            return true;
        }
        if started.elapsed() > DEADLINE {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Records, in the schema, every committed change of a group's assignee (with the time it was
/// made) and every watermark move: the test's evidence of what was applied and in what order.
/// The functions keep the schema they were made in (`SET search_path FROM CURRENT`), whatever
/// session fires them.
const AUDIT: &str = "
    CREATE TABLE test_assignee_writes (
        seq BIGSERIAL PRIMARY KEY,
        group_id BIGINT NOT NULL,
        assignee BIGINT,
        at DOUBLE PRECISION NOT NULL DEFAULT EXTRACT(EPOCH FROM clock_timestamp())
    );
    CREATE TABLE test_watermark_moves (
        issue_key TEXT NOT NULL,
        field TEXT NOT NULL,
        old_ms BIGINT NOT NULL,
        new_ms BIGINT NOT NULL
    );
    CREATE FUNCTION test_audit_assignee() RETURNS trigger LANGUAGE plpgsql
        SET search_path FROM CURRENT AS $$
    BEGIN
        INSERT INTO test_assignee_writes (group_id, assignee) VALUES (NEW.id, NEW.assignee);
        RETURN NEW;
    END $$;
    CREATE FUNCTION test_audit_watermark() RETURNS trigger LANGUAGE plpgsql
        SET search_path FROM CURRENT AS $$
    BEGIN
        INSERT INTO test_watermark_moves VALUES
            (NEW.issue_key, NEW.field, OLD.updated_ms, NEW.updated_ms);
        RETURN NEW;
    END $$;
    CREATE TRIGGER test_audit_assignee AFTER UPDATE OF assignee ON groups
        FOR EACH ROW EXECUTE FUNCTION test_audit_assignee();
    CREATE TRIGGER test_audit_watermark AFTER UPDATE ON watermarks
        FOR EACH ROW EXECUTE FUNCTION test_audit_watermark();
";

/// The test's own connection to its schema, for reading the final state.
struct Db<'r> {
    runtime: &'r tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Db<'_> {
    fn rows(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        self.runtime
            .block_on(self.client.query(sql, &[]))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Delivery id → lease of the slow jobs.
    fn slow_leases(&self) -> BTreeMap<String, (String, i64)> {
        self.rows(
            "SELECT delivery_id, state, lease_until FROM jobs WHERE delivery_id LIKE 'slow-%'",
        )
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
    }

    /// (state, attempts) of every push, in order.
    fn pushes(&self) -> Vec<(String, i32)> {
        self.rows("SELECT state, attempts FROM outbox ORDER BY id")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    /// Group → every assignee written to it, in commit order, with the time of each write.
    fn assignee_writes(&self) -> BTreeMap<u64, Vec<(u64, f64)>> {
        let mut by_group: BTreeMap<u64, Vec<(u64, f64)>> = BTreeMap::new();
        for row in self.rows("SELECT group_id, assignee, at FROM test_assignee_writes ORDER BY seq")
        {
            by_group
                .entry(row.get::<_, i64>(0) as u64)
                .or_default()
                .push((row.get::<_, i64>(1) as u64, row.get(2)));
        }
        by_group
    }
}

/// Jira's site: the demo's, plus the users whose emails only the email API reveals (one per
/// slow delivery, so that no lookup is answered from another's cache entry) and the issues the
/// victim's pushes resolve (In Progress: one transition to Done).
fn world() -> SimWorld {
    let mut world = SimWorld::demo();
    world.users.extend((0..SLOW).map(|i| SimUser {
        account_id: format!("slow-{i}"),
        display_name: format!("Slow {i}"),
        email: format!("slow{i}@example.com"),
        hide_email: true,
    }));
    world.issues.extend((1..=PUSHES).map(|k| SimIssue {
        id: format!("{}", 30_000 + k),
        key: format!("OUT-{k}"),
        former_keys: Vec::new(),
        project_id: "10000".into(),
        status: "3".into(),
        assignee: None,
        updated_ms: 0,
    }));
    world
}

/// `POST path` with a JSON body on `base`: the status and the JSON answered.
fn admin(base: &str, path: &str, body: &Value) -> (u16, Value) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    );
    let mut response = agent
        .post(&format!("{base}{path}"))
        .header("Content-Type", "application/json")
        .send(body.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("POST {base}{path}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, answer)
}

/// The last lines of every server's log, for a failure message.
fn logs(servers: &[Serve]) -> String {
    servers
        .iter()
        .enumerate()
        .map(|(i, s)| format!("--- server {i} ---\n{}", s.tail()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The email API's requests so far (their queries: `accountId=...`).
fn email_lookups(sim: &Simulator) -> Vec<String> {
    sim.exchanges()
        .into_iter()
        .filter(|e| e.path == EMAIL_API)
        .map(|e| e.query)
        .collect()
}

#[test]
fn multinode_servers_sharing_postgres_apply_each_delivery_once_and_finish_a_killed_peers_work() {
    let started = Instant::now();
    // Guards first: dropped last, after the servers are dead, also on panic.
    let schema = PgSchema::new();
    let prefix = RedisPrefix(format!("{}:", unique("redis")));
    let dir = TempDir(std::env::temp_dir().join(unique("dir")));
    std::fs::create_dir_all(&dir.0).unwrap();

    let world = world();
    let sim = Simulator::start(world.clone()).unwrap();
    let settings = [
        ("database", schema.url()),
        ("cache", redis_url()),
        ("cache_prefix", prefix.0.clone()),
        ("job_lease_seconds", LEASE_SECONDS.to_string()),
    ];
    let cache_dir = dir.0.join("compiled");
    // The first compiles the component (and migrates the schema); the others load its artefact.
    let mut servers = vec![Serve::spawn("a", &dir.0, &cache_dir, &settings)];
    servers[0].wait_serving();
    servers.push(Serve::spawn("b", &dir.0, &cache_dir, &settings));
    servers.push(Serve::spawn("c", &dir.0, &cache_dir, &settings));
    servers[1].wait_serving();
    servers[2].wait_serving();
    let urls: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.url.clone()).collect());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = Db {
        runtime: &runtime,
        client: runtime.block_on(pg_connect(&schema.url())),
    };
    runtime
        .block_on(db.client.batch_execute(AUDIT))
        .expect("add the audit triggers");

    // The platform, set up once through one server: the store is shared.
    let plan = Plan::new(&world, &sim.base_url());
    for (path, body) in &plan.setup {
        let (status, answer) = admin(&urls[0], path, body);
        assert_eq!(status, 200, "{path} {body}: {answer}");
    }
    let load = Load {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        urls: urls.clone(),
        failovers: Arc::new(AtomicUsize::new(0)),
    };
    let (first_half, second_half) = plan.distinct.split_at(DISTINCT / 2);

    // Phase A: half the distinct deliveries over all three servers, every duplicate to all
    // three at once (several times), the older contested pairs, each pair to two servers.
    let sent_a = runtime.block_on(
        load.clone().send(Phase {
            distinct: first_half.to_vec(),
            progress: Arc::new(AtomicUsize::new(0)),
            duplicates: plan.duplicates.clone(),
            rounds: DUPLICATE_ROUNDS,
            hot: (plan.hot_before.iter().enumerate())
                .map(|(r, (older, newer))| (older.clone(), newer.clone(), r % 3, (r + 1) % 3))
                .collect(),
        }),
    );

    // The victim takes work that waits on a slow Jira: the email lookups of the slow
    // deliveries hang (and would then fail) long past the kill.
    sim.inject(Fault {
        method: "GET".into(),
        path_contains: EMAIL_API.into(),
        status: 503,
        delay_ms: SLOW_LOOKUP.as_millis() as u64,
        times: SLOW as u32,
        ..Fault::default()
    });
    for d in &plan.slow {
        let status = runtime.block_on(post(&load.client, &urls[VICTIM], d));
        assert_eq!(status, Some(200), "{}\n{}", d.id, logs(&servers));
    }
    assert!(
        eventually(|| email_lookups(&sim).len() >= SLOW),
        "the victim's jobs never asked for the emails: {:?}\n{}",
        email_lookups(&sim),
        logs(&servers)
    );
    // In the store, the victim holds every slow job under a live lease.
    let held = db.slow_leases();
    assert_eq!(held.len(), SLOW, "{held:?}");
    for (state, lease_until) in held.values() {
        assert_eq!(state, "running", "{held:?}");
        assert!(*lease_until >= unix_now() as i64, "{held:?}");
    }

    // Phase B, in the background: the other half (a third of it meant for the victim first),
    // every duplicate once more to all three, the newer contested pairs between the two
    // survivors, then the late event. The victim dies while it runs: its connections break
    // mid-request, and what it did not take goes to the next server.
    let progress = Arc::new(AtomicUsize::new(0));
    let mut hot_after: Vec<_> = (plan.hot_after.iter().enumerate())
        .map(|(r, (older, newer))| (older.clone(), newer.clone(), r % 2, (r + 1) % 2))
        .collect();
    hot_after.push((plan.late.clone(), plan.late.clone(), 0, 1));
    let phase_b = runtime.spawn(load.clone().send(Phase {
        distinct: second_half.to_vec(),
        progress: progress.clone(),
        duplicates: plan.duplicates.clone(),
        rounds: 1,
        hot: hot_after,
    }));
    assert!(
        eventually(|| progress.load(Ordering::Relaxed) >= second_half.len() / 4),
        "phase B does not progress\n{}",
        logs(&servers)
    );

    // The platform resolves groups through the victim while Jira hangs on the first read of
    // each linked issue: each push is recorded and its first attempt holds it, running under
    // the victim's lease, when the victim dies (its admin requests then break).
    let mut resolves = Vec::new();
    for k in 1..=PUSHES {
        sim.inject(Fault {
            method: "GET".into(),
            path_contains: format!("/rest/api/2/issue/OUT-{k}"),
            status: 503,
            delay_ms: SLOW_LOOKUP.as_millis() as u64,
            times: 1,
            ..Fault::default()
        });
        let url = urls[VICTIM].clone();
        resolves.push(std::thread::spawn(move || {
            let agent = ureq::Agent::new_with_config(
                ureq::Agent::config_builder()
                    .timeout_global(Some(SLOW_LOOKUP * 2))
                    .build(),
            );
            // The victim dies before it answers: the outcome is read from the store.
            let _ = agent
                .post(&format!("{url}/admin/groups/{}/resolve", push_group(k)))
                .header("Content-Type", "application/json")
                .send("null");
        }));
    }
    // Each first attempt's read has reached Jira (the simulator records a request as it
    // arrives, before the delay), so the fault is spent on the victim.
    let hanging_reads = || {
        sim.exchanges()
            .iter()
            .filter(|e| e.method == "GET" && e.path.starts_with("/rest/api/2/issue/OUT-"))
            .filter(|e| e.fault.is_some())
            .count()
    };
    assert!(
        eventually(|| hanging_reads() == PUSHES as usize),
        "the victim's pushes never reached Jira: {:?}\n{}",
        db.pushes(),
        logs(&servers)
    );

    // kill -9, with the slow jobs running, their lookups in flight, the pushes' first attempts
    // in flight, and phase B's requests coming in.
    servers[VICTIM].kill();
    let killed = started.elapsed();
    let sent_at_kill = progress.load(Ordering::Relaxed);
    // The leases as the victim last renewed them: no survivor may run these jobs before.
    let leases = db.slow_leases();
    assert_eq!(leases.len(), SLOW, "{leases:?}");
    assert_eq!(
        db.pushes(),
        vec![("running".to_owned(), 1); PUSHES as usize],
        "the victim's pushes at its death"
    );
    for resolve in resolves {
        let _ = resolve.join();
    }

    let sent_b = runtime.block_on(phase_b).unwrap();
    for sent in [&sent_a, &sent_b] {
        assert!(sent.lost.is_empty(), "no server took {:?}", sent.lost);
        assert!(
            sent.copies_not_200.is_empty(),
            "a surviving server refused a copy: {:?}",
            sent.copies_not_200
        );
    }

    // Everything drains: every delivery handled, no job waiting or running, every push done.
    let done = vec![plan.deliveries() as i64, 0, 0, 0];
    let mut last = Vec::new();
    let drained = eventually(|| {
        let row = &db.rows(
            "SELECT (SELECT COUNT(*) FROM deliveries),
                    (SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')),
                    (SELECT COUNT(*) FROM jobs WHERE state = 'failed'),
                    (SELECT COUNT(*) FROM outbox WHERE state <> 'done')",
        )[0];
        last = (0..4).map(|i| row.get::<_, i64>(i)).collect();
        // A failed job never drains: stop at once.
        last == done || last[2] > 0
    });
    let drained_at = started.elapsed();
    assert!(
        drained && last == done,
        "[handled, jobs waiting or running, jobs failed, pushes not done] = {last:?}, expected \
         {done:?}\n{}",
        logs(&servers)
    );

    // Exactly once: each delivery's group was written once, with its user (the copies of a
    // duplicate added nothing); the contested group's writes came in event order (an older
    // event never landed after a newer one), ending with the newest; the late one wrote nothing.
    let writes = db.assignee_writes();
    for (group, user) in &plan.expected {
        let users: Vec<u64> = writes
            .get(group)
            .into_iter()
            .flatten()
            .map(|(u, _)| *u)
            .collect();
        if *group == HOT_GROUP {
            assert!(
                users.is_sorted_by(|a, b| a < b),
                "an older event was applied after a newer one: {users:?}"
            );
            assert_eq!(users.last(), Some(user), "{users:?}");
            assert!(
                !users.contains(&LATE_USER),
                "the late event applied: {users:?}"
            );
        } else {
            assert_eq!(users, [*user], "group {group}: written {users:?}");
        }
    }
    let assigned: BTreeMap<u64, u64> = db
        .rows("SELECT id, assignee FROM groups WHERE assignee IS NOT NULL")
        .iter()
        .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64))
        .collect();
    assert_eq!(assigned, plan.expected);

    // No watermark ever moved backwards (and the contested one did move, so this looked at
    // something); it ends at the newest event.
    let backwards: Vec<(String, String, i64, i64)> = db
        .rows("SELECT * FROM test_watermark_moves WHERE new_ms < old_ms")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert!(
        backwards.is_empty(),
        "watermarks moved backwards (issue, field, from, to): {backwards:?}"
    );
    let moves = db.rows(&format!(
        "SELECT new_ms FROM test_watermark_moves WHERE issue_key = '{HOT_ISSUE}'"
    ));
    assert!(!moves.is_empty(), "the contested watermark never moved");
    let watermark: i64 = db.rows(&format!(
        "SELECT updated_ms FROM watermarks WHERE issue_key = '{HOT_ISSUE}' AND field = 'assignee'"
    ))[0]
        .get(0);
    let newest = CONTESTED_ROUNDS as i64 * 2 - 1;
    assert_eq!(watermark, JAN_1_2026_MS + HOT_BASE_MS + newest * 1000);

    // The victim's jobs were finished by one survivor each, and only after their leases ran
    // out: one more email lookup per account (the victim's never came back; a second
    // takeover would have asked again), and the group written no earlier than the lease.
    let lookups = email_lookups(&sim);
    for i in 0..SLOW {
        let account = format!("accountId=slow-{i}");
        let asked = lookups.iter().filter(|q| q.contains(&account)).count();
        assert_eq!(asked, 2, "{account}: {lookups:?}");
        let (_, lease) = &leases[&format!("slow-{i}")];
        let (_, at) = writes[&slow_group(i)][0];
        assert!(
            at >= *lease as f64,
            "slow-{i} applied at {at}, inside the victim's lease (until {lease})"
        );
    }

    // The victim's pushes, caught mid-attempt, were taken over by a survivor once their lease
    // ended, once: a second attempt each, done, and one transition each in Jira.
    assert_eq!(db.pushes(), vec![("done".to_owned(), 2); PUSHES as usize]);
    let exchanges = sim.exchanges();
    for k in 1..=PUSHES {
        let path = format!("/rest/api/2/issue/OUT-{k}/transitions");
        let posts = exchanges
            .iter()
            .filter(|e| e.method == "POST" && e.path == path)
            .count();
        assert_eq!(posts, 1, "{path}");
        assert_eq!(sim.issue(&format!("OUT-{k}")).unwrap().status, "10101");
    }

    eprintln!(
        "multinode: {} deliveries ({} copies of duplicates), {} failovers to another server; \
         victim killed at {killed:?} after {sent_at_kill} of phase B's {} distinct deliveries, \
         everything drained at {drained_at:?}, checked at {:?}",
        plan.deliveries(),
        DUPLICATES * 3 * (DUPLICATE_ROUNDS + 1),
        load.failovers.load(Ordering::Relaxed),
        second_half.len(),
        started.elapsed()
    );
    drop(servers);
}
