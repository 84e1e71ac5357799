//! `jira-sync-host load`: measures a `serve` process from the outside, as an operator's load
//! would reach it over loopback. Each run starts the server binary (this one, or another given
//! with `--server-bin`, e.g. an older build, for a before/after in one run) on a fresh data
//! directory, sets it up through the admin API, drives it, and reads its peak memory from
//! `/proc`:
//!
//! - `webhooks`: signed webhooks with full effects (each assigns a group), from many
//!   connections at once; answered per second, and done (effects committed) per second; on one
//!   server with its own SQLite file, or on several sharing a PostgreSQL schema (and a Redis
//!   cache) of the run's own, the webhooks spread round robin over them;
//! - `syncs`: outbound syncs issued at once against a simulated Jira answering every call after
//!   a delay, while another installation's webhooks probe how fast the server still answers;
//! - `stall`: connections that send headers and stall, and how much they delay a normal
//!   webhook.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::demo;
use crate::installation::InstallationSpec;
use crate::server::without_password;
use crate::signing::{SignOverrides, authorization};
use crate::sim::world::SimIssue;
use crate::sim::{SimWorld, Simulator};

const PATH: &str = "/extensions/jira/issue-updated/";
const SECRET: &str = "load-secret";

/// A `serve` process on a free loopback port and a data directory of its own; stopped (and
/// its directory removed) on drop.
pub struct ServeProcess {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl ServeProcess {
    /// Starts `binary serve` with these `JIRA_SYNC_*` settings and waits for `/healthz`.
    pub fn start(binary: &Path, settings: &[(&str, String)]) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir =
            std::env::temp_dir().join(format!("jira-sync-load-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("JIRA_SYNC_DATA_DIR", &dir)
            .env("JIRA_SYNC_DATABASE", dir.join("jira-sync.db"))
            .env("JIRA_SYNC_CACHE_DIR", dir.join("cache"))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            // Errors only (RUST_LOG): kept so that a server that fails to start says why.
            .stderr(std::fs::File::create(dir.join("serve.log"))?);
        for (key, value) in settings {
            command.env(format!("JIRA_SYNC_{}", key.to_uppercase()), value);
        }
        let child = command
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let mut server = ServeProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while ureq::get(&format!("{}/healthz", server.url))
            .call()
            .is_err()
        {
            // A server that cannot start (an unreachable database, a bad setting) exits: say
            // so at once, with its words, rather than after the deadline.
            if let Ok(Some(status)) = server.child.try_wait() {
                bail!(
                    "{} exited ({status}) before serving: {}",
                    binary.display(),
                    server.log().trim()
                );
            }
            if Instant::now() > deadline {
                bail!("{} did not answer /healthz within 60 s", binary.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// What the server wrote on stderr so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    /// The server's peak resident memory so far, in MiB (`VmHWM`).
    pub fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    fn admin(&self, path: &str, body: &Value) -> anyhow::Result<()> {
        let status = ureq::post(&format!("{}{path}", self.url))
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
            .with_context(|| format!("POST {path}"))?
            .status();
        if !status.is_success() {
            bail!("POST {path}: {status}");
        }
        Ok(())
    }

    /// Records every call of installation `client_key` (docs/behaviour.md#12), up to 1 GiB.
    fn record(&self, client_key: &str) -> anyhow::Result<()> {
        let path = format!("/admin/installations/{client_key}/recording");
        let status = ureq::put(&format!("{}{path}", self.url))
            .send(json!({"max_bytes": 1u64 << 30}).to_string().as_bytes())
            .with_context(|| format!("PUT {path}"))?
            .status();
        if !status.is_success() {
            bail!("PUT {path}: {status}");
        }
        Ok(())
    }

    /// Component calls that did a webhook's work so far (`process`, or the old server's
    /// synchronous `webhook`), from `/metrics`.
    fn work_done(&self) -> u64 {
        self.metric(&[
            "jira_sync_component_calls_total{kind=\"process\"",
            "jira_sync_component_calls_total{kind=\"webhook\"",
        ])
    }

    /// Statements the server sent to PostgreSQL so far (0 with SQLite).
    fn database_statements(&self) -> u64 {
        self.metric(&["jira_sync_database_statements "])
    }

    /// The sum of the server's metric lines that start with one of `lines`.
    fn metric(&self, lines: &[&str]) -> u64 {
        let Ok(mut response) = ureq::get(&format!("{}/metrics", self.url)).call() else {
            return 0;
        };
        let text = response.body_mut().read_to_string().unwrap_or_default();
        text.lines()
            .filter(|l| lines.iter().any(|start| l.starts_with(start)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A signed delivery `id` for installation `client_key` that assigns issue `issue`'s groups to
/// the user with `email` (shown in the payload: no Jira call), updated at `updated_ms`.
fn assign_webhook(
    client_key: &str,
    id: &str,
    issue: &str,
    email: &str,
    updated_ms: i64,
) -> Webhook {
    let seconds = updated_ms / 1000;
    let updated = format!(
        "2026-01-01T{:02}:{:02}:{:02}.{:03}+0000",
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
        updated_ms % 1000
    );
    let body = json!({
        "webhookEvent": "jira:issue_updated",
        "timestamp": 1_767_225_600_000i64 + updated_ms,
        "changelog": {"id": "1", "items": [{"field": "assignee", "fieldId": "assignee", "to": email}]},
        "issue": {"id": "1", "key": issue, "fields": {
            "assignee": {"accountId": email, "displayName": email, "emailAddress": email},
            "updated": updated,
            "project": {"id": "10000"},
        }},
    });
    Webhook {
        id: id.to_owned(),
        authorization: authorization(
            client_key,
            SECRET,
            now(),
            ("POST", PATH, ""),
            &SignOverrides::default(),
        ),
        body: body.to_string().into_bytes(),
    }
}

struct Webhook {
    id: String,
    authorization: String,
    body: Vec<u8>,
}

async fn post(client: &reqwest::Client, url: &str, webhook: &Webhook) -> Option<u16> {
    client
        .post(format!("{url}{PATH}"))
        .header("Authorization", &webhook.authorization)
        .header("X-Atlassian-Webhook-Identifier", &webhook.id)
        .header("Content-Type", "application/json")
        .body(webhook.body.clone())
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("start the load generator's runtime")
}

/// Sets up `installations` installations, each with `issues` linked issues (group per issue),
/// and two users.
fn set_up(server: &ServeProcess, installations: usize, issues: usize) -> anyhow::Result<()> {
    for k in 0..installations {
        let spec = InstallationSpec::new(
            &format!("load-{k}"),
            SECRET,
            "http://127.0.0.1:9",
            "load.app",
        );
        server.admin("/admin/installations", &serde_json::to_value(&spec)?)?;
        for i in 0..issues {
            server.admin(
                "/admin/links",
                &json!({"client_key": format!("load-{k}"), "issue_key": format!("LOAD-{i}"),
                        "groups": [(k * issues + i + 1) as u64]}),
            )?;
        }
    }
    for (id, email) in [(1, "u1@example.com"), (2, "u2@example.com")] {
        server.admin("/admin/users", &json!({"id": id, "email": email}))?;
    }
    Ok(())
}

/// The servers of a `load webhooks` run and what they share.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// `serve` processes to start (at least one); the webhooks go to them round robin.
    pub servers: usize,
    /// A `postgres://` URL every server shares (the run works in a fresh schema of its own,
    /// dropped at the end); `None`: each server has a SQLite file of its own.
    pub database: Option<String>,
    /// A `redis://` URL every server shares as the guest's cache (under a fresh key prefix,
    /// deleted at the end); `None`: each server caches in its own memory.
    pub cache: Option<String>,
    /// Every server records every call as a scenario file (docs/behaviour.md#12), to measure
    /// what recording costs.
    pub record: bool,
}

/// `load webhooks`: `count` signed webhooks with full effects over `connections` connections,
/// spread over the cluster's servers. With one server and no `database` this is the measure
/// it always was (one SQLite file, the same requests in the same order).
pub fn webhooks(
    binary: &Path,
    count: usize,
    connections: usize,
    cluster: &Cluster,
) -> anyhow::Result<Value> {
    let (installations, issues) = (4, 50);
    let servers = cluster.servers;
    if servers == 0 {
        bail!("--servers 0: nothing to measure");
    }
    if connections < servers {
        bail!("{connections} connections cannot reach {servers} servers: give each one at least");
    }
    // Declared before the servers, so dropped after them: nothing still writes to the schema
    // or the prefix when they go.
    let schema = cluster
        .database
        .as_deref()
        .map(PgSchema::create)
        .transpose()?;
    let prefix = cluster.cache.as_deref().map(RedisPrefix::new);
    let mut settings = Vec::new();
    if let Some(schema) = &schema {
        settings.push(("database", schema.url()));
    }
    if let Some(prefix) = &prefix {
        settings.push(("cache", prefix.url.clone()));
        settings.push(("cache_prefix", prefix.prefix.clone()));
    }
    let fleet = (0..servers)
        .map(|_| ServeProcess::start(binary, &settings))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // A shared store is set up once, through any server; SQLite files one by one.
    let set_up_through = if schema.is_some() {
        &fleet[..1]
    } else {
        &fleet[..]
    };
    for server in set_up_through {
        set_up(server, installations, issues)?;
    }
    if cluster.record {
        for server in &fleet {
            for k in 0..installations {
                server.record(&format!("load-{k}"))?;
            }
        }
    }
    let webhooks: Vec<Webhook> = (0..count)
        .map(|i| {
            let k = i % installations;
            let issue = format!("LOAD-{}", (i / installations) % issues);
            let email = if i % 2 == 0 {
                "u1@example.com"
            } else {
                "u2@example.com"
            };
            assign_webhook(
                &format!("load-{k}"),
                &format!("load-{i}"),
                &issue,
                email,
                i as i64,
            )
        })
        .collect();
    let webhooks = Arc::new(webhooks);
    let runtime = client_runtime()?;
    let started = Instant::now();
    // Round robin as a load balancer with kept-alive connections does it: each connection
    // belongs to one server (so `connections` is the total, as with one server), and server
    // `s` is sent webhooks `s`, `s + servers`, ... in order, by its own connections.
    let statuses: Vec<(usize, Option<u16>)> = runtime.block_on(async {
        let client = reqwest::Client::new();
        let next: Arc<Vec<std::sync::atomic::AtomicUsize>> = Arc::new(
            (0..servers)
                .map(std::sync::atomic::AtomicUsize::new)
                .collect(),
        );
        let mut senders = tokio::task::JoinSet::new();
        for c in 0..connections {
            let s = c % servers;
            let (client, next, webhooks, url) = (
                client.clone(),
                next.clone(),
                webhooks.clone(),
                fleet[s].url.clone(),
            );
            senders.spawn(async move {
                let mut answered = Vec::new();
                loop {
                    let i = next[s].fetch_add(servers, std::sync::atomic::Ordering::Relaxed);
                    let Some(webhook) = webhooks.get(i) else {
                        return answered;
                    };
                    answered.push((s, post(&client, &url, webhook).await));
                }
            });
        }
        let mut all = Vec::new();
        while let Some(Ok(answered)) = senders.join_next().await {
            all.extend(answered);
        }
        all
    });
    let answered = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    while work_done(&fleet, schema.as_ref()) < count as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let done = started.elapsed();
    let statements: u64 = fleet.iter().map(ServeProcess::database_statements).sum();
    let ok = statuses.iter().filter(|(_, s)| *s == Some(200)).count();
    let mut errors = serde_json::Map::new();
    for (_, status) in statuses.iter().filter(|(_, s)| *s != Some(200)) {
        let key = status.map_or_else(|| "no answer".to_owned(), |s| s.to_string());
        let seen = errors.entry(key).or_insert(json!(0));
        *seen = json!(seen.as_u64().unwrap_or(0) + 1);
    }
    let per_server: Vec<usize> = (0..servers)
        .map(|s| {
            statuses
                .iter()
                .filter(|(at, status)| *at == s && *status == Some(200))
                .count()
        })
        .collect();
    let rss: Vec<Option<f64>> = fleet.iter().map(ServeProcess::peak_rss_mib).collect();
    Ok(json!({
        "servers": servers,
        "database": if schema.is_some() { "postgres" } else { "sqlite" },
        "cache": if prefix.is_some() { "redis" } else { "memory" },
        "recording": cluster.record,
        "webhooks": count,
        "connections": connections,
        "answered_200": ok,
        "answered_200_per_server": per_server,
        "errors": count - ok,
        "errors_by_status": errors,
        "answered_per_second": (count as f64 / answered.as_secs_f64()).round(),
        "work_done": work_done(&fleet, schema.as_ref()),
        "done_per_second": (count as f64 / done.as_secs_f64()).round(),
        // Setup and the servers' idle polling included: a few dozen statements in all.
        "database_statements_per_webhook": (statements as f64 / count as f64 * 10.0).round() / 10.0,
        // The largest server's; each one's in `peak_rss_mib_per_server`.
        "peak_rss_mib": rss.iter().flatten().copied().reduce(f64::max),
        "peak_rss_mib_per_server": rss,
    }))
}

/// Webhooks whose work is done so far. On a shared PostgreSQL schema: the deliveries its log
/// marks handled, each once whichever server ran it (a server's `/metrics` count only its own
/// calls, and a job retried after a failure would count twice). On SQLite files of their own:
/// each server's `process` calls, summed (with one server, the measure as it always was).
fn work_done(fleet: &[ServeProcess], schema: Option<&PgSchema>) -> u64 {
    match schema {
        Some(schema) => schema.handled().unwrap_or(0),
        None => fleet.iter().map(ServeProcess::work_done).sum(),
    }
}

/// A name no other run uses (process id and the time in nanoseconds).
fn unique_name(kind: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("jira_sync_load_{kind}_{}_{nanos}", std::process::id())
}

/// A PostgreSQL schema of one run's own, so that runs never see each other's rows and a run
/// leaves nothing behind: the servers work in it through `search_path` (their migrations
/// create the tables there), and it is dropped with everything in it on drop. One connection
/// of its own, on a runtime of its own, reads the delivery log while the run waits for the
/// work (a connection per look would add load to the database being measured).
struct PgSchema {
    base: String,
    name: String,
    client: tokio_postgres::Client,
    runtime: tokio::runtime::Runtime,
}

impl PgSchema {
    fn create(base: &str) -> anyhow::Result<Self> {
        if !(base.starts_with("postgres://") || base.starts_with("postgresql://")) {
            bail!("--database {base:?}: only a postgres:// URL (without it, SQLite files)");
        }
        if base.contains("options=") {
            bail!("--database: the URL already sets `options`; the run sets its own search_path");
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("start a runtime for PostgreSQL")?;
        let name = unique_name("pg");
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(base, tokio_postgres::NoTls)
                .await
                .with_context(|| {
                format!("connect to PostgreSQL at {}", without_password(base))
            })?;
            tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE SCHEMA {name}"))
                .await
                .with_context(|| format!("create the schema {name}"))?;
            anyhow::Ok(client)
        })?;
        Ok(PgSchema {
            base: base.to_owned(),
            name,
            client,
            runtime,
        })
    }

    /// The URL of the schema: every connection opened with it works inside it.
    fn url(&self) -> String {
        let separator = if self.base.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.base, self.name
        )
    }

    /// Deliveries handled so far.
    fn handled(&self) -> anyhow::Result<u64> {
        let sql = format!("SELECT COUNT(*) FROM {}.deliveries", self.name);
        let row = self.runtime.block_on(self.client.query_one(&sql, &[]))?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        if let Err(e) = self.runtime.block_on(self.client.batch_execute(&sql)) {
            eprintln!("jira-sync-host: could not drop schema {}: {e}", self.name);
        }
    }
}

/// A Redis key prefix of one run's own; every key under it is deleted on drop.
struct RedisPrefix {
    url: String,
    prefix: String,
}

impl RedisPrefix {
    fn new(url: &str) -> Self {
        RedisPrefix {
            url: url.to_owned(),
            prefix: format!("{}:", unique_name("cache")),
        }
    }

    fn delete_keys(&self) -> redis::RedisResult<()> {
        let mut connection = redis::Client::open(self.url.as_str())?.get_connection()?;
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query(&mut connection)?;
            if !keys.is_empty() {
                redis::cmd("DEL").arg(keys).query::<()>(&mut connection)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        if let Err(e) = self.delete_keys() {
            eprintln!(
                "jira-sync-host: could not delete the keys under {}: {e}",
                self.prefix
            );
        }
    }
}

/// Each probe's answer time and status, as the probing task records them.
type Probes = Arc<std::sync::Mutex<Vec<(Duration, Option<u16>)>>>;

/// Another installation's webhook every 50 ms, each answer's latency and status recorded.
async fn probe(client: reqwest::Client, url: String, probes: Probes) {
    for i in 0.. {
        let webhook = assign_webhook(
            "load-0",
            &format!("probe-{i}"),
            "LOAD-0",
            "u1@example.com",
            i,
        );
        let sent = Instant::now();
        let status = post(&client, &url, &webhook).await;
        probes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((sent.elapsed(), status));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn probe_summary(probes: &[(Duration, Option<u16>)]) -> Value {
    let mut latencies: Vec<f64> = probes
        .iter()
        .map(|(d, _)| d.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .map(|ms| (ms * 10.0).round() / 10.0)
    };
    json!({
        "webhooks": probes.len(),
        "answered_200": probes.iter().filter(|(_, s)| *s == Some(200)).count(),
        "p50_ms": at(0.5),
        "max_ms": at(1.0),
    })
}

/// `load stall`: a normal webhook's answer time before and while `stalled` connections hold
/// headers that promise a body they never send.
pub fn stall(binary: &Path, stalled: usize) -> anyhow::Result<Value> {
    let server = ServeProcess::start(binary, &[])?;
    set_up(&server, 1, 1)?;
    let runtime = client_runtime()?;
    let url = server.url.clone();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let measure = |label: &'static str| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let probes = Arc::new(std::sync::Mutex::new(Vec::new()));
                let probing = tokio::spawn(probe(client, url, probes.clone()));
                tokio::time::sleep(Duration::from_secs(3)).await;
                probing.abort();
                let probes = probes.lock().unwrap_or_else(|p| p.into_inner()).clone();
                (label, probe_summary(&probes))
            }
        };
        let before = measure("before").await;
        let address = url.trim_start_matches("http://").to_owned();
        let mut held = Vec::new();
        for _ in 0..stalled {
            if let Ok(mut stream) = tokio::net::TcpStream::connect(&address).await {
                let head =
                    format!("POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n");
                let _ = stream.write_all(head.as_bytes()).await;
                held.push(stream);
            }
        }
        let during = measure("during").await;
        drop(held);
        anyhow::Ok(json!({
            "stalled_connections": stalled,
            before.0: before.1,
            during.0: during.1,
        }))
    })
}

/// `load syncs`: `count` outbound syncs issued at once, Jira answering every call after
/// `latency`; another installation's webhook probes the server every 50 ms meanwhile.
pub fn syncs(
    binary: &Path,
    count: usize,
    latency: Duration,
    settings: &[(&str, String)],
) -> anyhow::Result<Value> {
    let mut world = SimWorld::demo();
    world.issues = (0..count)
        .map(|i| SimIssue {
            id: format!("{}", 20_000 + i),
            key: format!("APP-{}", 1_000 + i),
            former_keys: Vec::new(),
            project_id: "10000".into(),
            // In Progress: one hop to Done, so a sync is three Jira calls (read the issue, read
            // its transitions, post one) and takes three latencies at least.
            status: "3".into(),
            assignee: None,
            updated_ms: 0,
        })
        .collect();
    let sim = Simulator::start(world.clone())?;
    sim.set_latency(latency);
    let server = ServeProcess::start(binary, settings)?;
    server.admin(
        "/admin/installations",
        &serde_json::to_value(demo::installation(&world, &sim.base_url()))?,
    )?;
    for i in 0..count {
        server.admin(
            "/admin/links",
            &json!({"client_key": world.installation.client_key,
                    "issue_key": format!("APP-{}", 1_000 + i), "groups": [i as u64 + 1]}),
        )?;
    }
    set_up(&server, 1, 1)?;
    let runtime = client_runtime()?;
    let url = server.url.clone();
    let (elapsed, outcomes, probes) = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        let started = Instant::now();
        let mut syncs = tokio::task::JoinSet::new();
        for group in 1..=count {
            let (client, url) = (client.clone(), url.clone());
            syncs.spawn(async move {
                let answer = client
                    .post(format!("{url}/admin/groups/{group}/resolve"))
                    .send()
                    .await
                    .ok()?;
                let body = answer.bytes().await.ok()?;
                serde_json::from_slice::<Value>(&body).ok()
            });
        }
        let probes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let probing = tokio::spawn(probe(client.clone(), url.clone(), probes.clone()));
        let mut outcomes = Vec::new();
        while let Some(joined) = syncs.join_next().await {
            outcomes.push(joined.ok().flatten());
        }
        let elapsed = started.elapsed();
        probing.abort();
        let probes = std::mem::take(&mut *probes.lock().unwrap_or_else(|p| p.into_inner()));
        anyhow::Ok((elapsed, outcomes, probes))
    })?;
    let transitioned = outcomes
        .iter()
        .flatten()
        .filter(|o| o["results"][0]["outcome"]["type"] == "transitioned")
        .count();
    let others: Vec<&Value> = outcomes
        .iter()
        .flatten()
        .filter(|o| o["results"][0]["outcome"]["type"] != "transitioned")
        .take(3)
        .collect();
    Ok(json!({
        "syncs": count,
        "jira_requests_served": sim.exchanges().len(),
        "not_transitioned_examples": others,
        "unanswered": outcomes.iter().filter(|o| o.is_none()).count(),
        "jira_latency_ms": latency.as_millis() as u64,
        "all_answered_within_ms": elapsed.as_millis() as u64,
        "transitioned": transitioned,
        "peak_rss_mib": server.peak_rss_mib(),
        "probe": probe_summary(&probes),
    }))
}
