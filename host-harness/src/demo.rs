//! `jira-sync-host demo`: the seed's round trip over real sockets, between the Jira simulator and
//! the webhook server, with a timeline of everything that crossed the sandbox.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::backends::{HttpLimits, RealHttp, SqliteStore};
use crate::installation::{InstallationSpec, StatusPair};
use crate::runtime::Runtime;
use crate::server::{CallEvent, Server, ServerConfig};
use crate::sim::{SimDelivery, SimExchange, SimWorld, Simulator};

const ISSUE: &str = "APP-123";
const GROUP: u64 = 1;
const ADA: u64 = 7;
/// The simulator's project whose mapping the demo breaks on purpose (OPS).
pub const BROKEN_PROJECT: &str = "10010";
/// How long the demo waits for Jira's webhooks to be delivered and handled.
const SETTLE: Duration = Duration::from_secs(20);

/// One line of the timeline.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// Milliseconds since the demo started.
    pub at_ms: u64,
    /// `platform`, `component` or `jira`.
    pub actor: &'static str,
    /// What happened.
    pub what: String,
    /// Details: HTTP exchanges, host calls, decisions.
    pub details: Vec<String>,
}

/// What the demo shows: the timeline, and a summary of the counts that matter.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Everything that happened, in time order.
    pub timeline: Vec<Entry>,
    /// Requests to Jira by endpoint, webhooks, cache hits, and the final state on both sides.
    pub summary: Value,
}

/// The installation the demo's platform holds for the simulator's site.
pub fn installation(world: &SimWorld, base_url: &str) -> InstallationSpec {
    let mut spec = InstallationSpec::new(
        &world.installation.client_key,
        &world.installation.shared_secret,
        base_url,
        &world.installation.app_key,
    );
    spec.use_email_scope = true;
    spec.sync_status_forward = BTreeMap::from([
        (
            "10000".to_owned(),
            StatusPair {
                resolved: "10101".into(),
                unresolved: "3".into(),
            },
        ),
        // Deliberately broken, for the mapping check: OPS has no Won't Do (10102), and its
        // Done (10101) has no way back to In Progress (3).
        (
            BROKEN_PROJECT.to_owned(),
            StatusPair {
                resolved: "10102".into(),
                unresolved: "3".into(),
            },
        ),
    ]);
    spec
}

/// Where and how the demo records its installation's calls (docs/behaviour.md#12).
#[derive(Debug, Clone)]
pub struct Recording {
    /// The server's `recordings_dir`.
    pub directory: PathBuf,
    /// Replace emails, account ids and display names by pseudonyms.
    pub pseudonymise: bool,
}

/// Plays the round trip and returns its timeline and summary; leaves nothing running. With
/// `record`, every component call of the demo's installation is also written as a scenario.
pub fn run(runtime: Arc<Runtime>, record: Option<&Recording>) -> anyhow::Result<Report> {
    let started = Instant::now();
    let world = SimWorld::demo();
    let sim = Simulator::start(world.clone())?;
    let db = std::env::temp_dir().join(format!(
        "jira-sync-demo-{}-{}.db",
        std::process::id(),
        started.elapsed().as_nanos()
    ));
    let result = play(runtime, &world, &sim, &db, started, record);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    result
}

/// The demo's platform: a server in front of the component, its SQLite state, and what it
/// reports of every component call.
struct DemoPlatform {
    server: Server,
    store: Arc<SqliteStore>,
    events: mpsc::Receiver<CallEvent>,
    agent: ureq::Agent,
}

/// The timeline as the demo narrates it.
struct Timeline {
    started: Instant,
    entries: Vec<Entry>,
}

impl Timeline {
    fn say(&mut self, actor: &'static str, what: String) {
        self.entries.push(Entry {
            at_ms: self.started.elapsed().as_millis() as u64,
            actor,
            what,
            details: Vec::new(),
        });
    }
}

fn play(
    runtime: Arc<Runtime>,
    world: &SimWorld,
    sim: &Simulator,
    db: &std::path::Path,
    started: Instant,
    record: Option<&Recording>,
) -> anyhow::Result<Report> {
    let platform = start_platform(runtime, sim, db, record)?;
    let mut timeline = Timeline {
        started,
        entries: Vec::new(),
    };
    let installed = install_app(&platform, &mut timeline, world, sim)?;
    let client_key = &world.installation.client_key;
    if let Some(record) = record {
        recording(&platform, &mut timeline, client_key, "PUT", record)?;
    }
    let mapping_check = check_mappings(&platform, &mut timeline, client_key)?;
    let resolved = resolve_group(&platform, &mut timeline, sim)?;
    assign_in_jira(&mut timeline, sim, &platform.server)?;
    let recorded = match record {
        Some(record) => recording(&platform, &mut timeline, client_key, "DELETE", record)?,
        None => Value::Null,
    };
    let DemoPlatform {
        server,
        store,
        events,
        ..
    } = platform;
    drop(server);
    let calls: Vec<CallEvent> = events.try_iter().collect();
    let (jira_requests, deliveries) = (sim.exchanges(), sim.deliveries());
    let timeline = merge_timeline(timeline, &calls, sim, &deliveries);
    let summary = json!({
        "installed_by": installed,
        "mapping_check_problems": mapping_check["problems"],
        "mapping_check": mapping_check["projects"],
        "outbound_resolve": resolved["results"][0]["outcome"],
        "jira_requests": jira_requests.len(),
        "jira_requests_by_endpoint": by_endpoint(&jira_requests),
        "jira_requests_refused": jira_requests.iter().filter(|e| e.auth_error.is_some()).count(),
        "webhooks_delivered": deliveries.len(),
        "webhooks_answered_200": deliveries.iter().filter(|d| d.status == Some(200)).count(),
        "email_api_calls": jira_requests.iter().filter(|e| e.path == "/rest/api/3/user/email").count(),
        "cache_hits": calls.iter().map(|c| c.record.cache.hits).sum::<u32>(),
        "component_calls": calls.len(),
        "group": store.group(GROUP)?,
        "jira_issue": sim.issue(ISSUE).map(|i| json!({"status": i.status, "assignee": i.assignee})),
        "elapsed_ms": started.elapsed().as_millis() as u64,
    });
    let mut summary = summary;
    if !recorded.is_null() {
        summary["recorded"] = recorded["stopped"].clone();
    }
    Ok(Report { timeline, summary })
}

/// Starts the server on a free loopback port, verifying Connect's lifecycle callbacks with the
/// simulator's install keys, and points the simulator's webhooks at it.
fn start_platform(
    runtime: Arc<Runtime>,
    sim: &Simulator,
    db: &std::path::Path,
    record: Option<&Recording>,
) -> anyhow::Result<DemoPlatform> {
    let store = Arc::new(SqliteStore::open(db)?);
    let (events, received) = mpsc::channel();
    let config = ServerConfig {
        listen: "127.0.0.1:0".into(),
        workers: 2,
        connect_key_server: sim.connect_keys_url(),
        recordings_dir: record.map(|r| r.directory.clone()),
        ..ServerConfig::default()
    };
    let http = Arc::new(RealHttp::new(HttpLimits::default()));
    let server = Server::start(&config, runtime, store.clone(), http, Some(events))?;
    sim.set_webhook_url(&format!("{}/extensions/jira/issue-updated/", server.url()));
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    Ok(DemoPlatform {
        server,
        store,
        events: received,
        agent,
    })
}

/// The prologue: Jira installs the app with Connect's signed `installed` callback (the server
/// verifies it with the key the simulator's key server publishes and stores the installation),
/// then the platform sets what to sync for it, links its group and knows its user. What the
/// summary says installed the app.
fn install_app(
    platform: &DemoPlatform,
    timeline: &mut Timeline,
    world: &SimWorld,
    sim: &Simulator,
) -> anyhow::Result<Value> {
    let site = &world.installation;
    let request = crate::sim::install::ConnectInstall {
        app_base_url: platform.server.url(),
        app_key: site.app_key.clone(),
        client_key: site.client_key.clone(),
        shared_secret: site.shared_secret.clone(),
        site_base_url: sim.base_url(),
    }
    .installed(crate::sim::now_ms() / 1000);
    timeline.say(
        "jira",
        format!(
            "installs the app: POST {} (RS256, key {})",
            request.path,
            crate::sim::install::CONNECT_KID
        ),
    );
    let mut post = platform.agent.post(&request.url);
    for (name, value) in &request.headers {
        post = post.header(name.as_str(), value.as_str());
    }
    let status = post
        .send(&request.body[..])
        .context("post the installed callback")?
        .status()
        .as_u16();
    if status != 204 {
        bail!("the server answered the installed callback {status}");
    }
    let Some(mut spec) = platform.store.installation_spec(&site.client_key)? else {
        bail!("the installed callback stored no installation");
    };
    timeline.say(
        "platform",
        format!(
            "stored installation {} of {} from the verified callback; sets what to sync",
            spec.client_key, spec.base_url
        ),
    );
    let settings = installation(world, &spec.base_url);
    spec.use_email_scope = settings.use_email_scope;
    spec.sync_status_forward = settings.sync_status_forward;
    platform.store.add_installation(&spec)?;
    platform.store.link(&site.client_key, ISSUE, &[GROUP])?;
    platform.store.add_user(ADA, "ada@example.com")?;
    Ok(json!({"connect_lifecycle": status}))
}

/// Switches recording of the installation's calls on (`PUT`) or off (`DELETE`) through the
/// admin API; the server's answer.
fn recording(
    platform: &DemoPlatform,
    timeline: &mut Timeline,
    client_key: &str,
    method: &str,
    record: &Recording,
) -> anyhow::Result<Value> {
    let url = format!(
        "{}/admin/installations/{}/recording",
        platform.server.url(),
        jira_sync_plugin::qsh::encode(client_key)
    );
    let mut response = if method == "PUT" {
        platform
            .agent
            .put(&url)
            .header("Content-Type", "application/json")
            .send(json!({"pseudonymise": record.pseudonymise}).to_string())
    } else {
        platform.agent.delete(&url).call()
    }
    .context("switch the recording")?;
    let status = response.status().as_u16();
    let answer = response
        .body_mut()
        .read_to_vec()
        .context("read the server's answer")?;
    let answer: Value = serde_json::from_slice(&answer).context("the server's answer")?;
    if status != 200 {
        bail!("the server answered {status} to {method} {url}: {answer}");
    }
    let session = answer.get("recording").or_else(|| answer.get("stopped"));
    let directory = session.map_or(Value::Null, |s| s["directory"].clone());
    timeline.say(
        "platform",
        match method {
            "PUT" => format!("records every call of {client_key} as a scenario in {directory}"),
            _ => format!(
                "stops recording: {} scenario files in {directory}",
                session.map_or(Value::Null, |s| s["files"].clone())
            ),
        },
    );
    Ok(answer)
}

/// The platform checks the installation's mappings before anything is synced: the APP project's
/// is sound, the OPS project's broken on purpose. The admin API's answer.
fn check_mappings(
    platform: &DemoPlatform,
    timeline: &mut Timeline,
    client_key: &str,
) -> anyhow::Result<Value> {
    timeline.say(
        "platform",
        "checks the status mappings against Jira's workflows".to_owned(),
    );
    let answer = platform
        .agent
        .get(&format!(
            "{}/admin/installations/{}/check",
            platform.server.url(),
            jira_sync_plugin::qsh::encode(client_key)
        ))
        .call()
        .context("ask the server to check the mappings")?
        .body_mut()
        .read_to_vec()
        .context("read the server's answer")?;
    let answer: Value = serde_json::from_slice(&answer).context("the server's answer")?;
    if answer.get("problems").is_none() {
        bail!("the mapping check failed: {answer}");
    }
    let report = crate::server::check::render(&answer);
    let mut lines = report.lines();
    timeline.say("platform", lines.next().unwrap_or_default().to_owned());
    if let Some(entry) = timeline.entries.last_mut() {
        entry.details = lines.map(str::to_owned).collect();
    }
    Ok(answer)
}

/// Act one: the platform resolves the group, and the component walks the Jira issue to Done.
fn resolve_group(
    platform: &DemoPlatform,
    timeline: &mut Timeline,
    sim: &Simulator,
) -> anyhow::Result<Value> {
    timeline.say(
        "platform",
        format!("resolves group {GROUP} (linked to {ISSUE}, which is Open in Jira)"),
    );
    let answer = platform
        .agent
        .post(&format!(
            "{}/admin/groups/{GROUP}/resolve",
            platform.server.url()
        ))
        .send(&b""[..])
        .context("ask the server to resolve the group")?
        .body_mut()
        .read_to_vec()
        .context("read the server's answer")?;
    let answer: Value = serde_json::from_slice(&answer).context("the server's answer")?;
    settle(sim, &platform.server)?;
    Ok(answer)
}

/// Acts two and three: someone assigns the issue in Jira to a user who hides her email, then
/// does it again (answered from the cache).
fn assign_in_jira(timeline: &mut Timeline, sim: &Simulator, server: &Server) -> anyhow::Result<()> {
    timeline.say(
        "jira",
        format!("someone assigns {ISSUE} to Ada Byron, who hides her email"),
    );
    sim.assign(ISSUE, Some("5f1a"))?;
    settle(sim, server)?;
    timeline.say(
        "jira",
        format!("{ISSUE} is unassigned, then assigned to Ada again"),
    );
    sim.assign(ISSUE, None)?;
    sim.assign(ISSUE, Some("5f1a"))?;
    settle(sim, server)
}

/// The narrated acts, every component call and every webhook delivery, in time order.
fn merge_timeline(
    timeline: Timeline,
    calls: &[CallEvent],
    sim: &Simulator,
    deliveries: &[SimDelivery],
) -> Vec<Entry> {
    let Timeline {
        started,
        mut entries,
    } = timeline;
    entries.extend(calls.iter().map(|call| call_entry(call, started)));
    entries.extend(deliveries.iter().map(|delivery| Entry {
        at_ms: offset(sim.started(), started) + delivery.at_ms,
        actor: "jira",
        what: format!(
            "webhook {} ({}) delivered in {} ms, answered {}",
            delivery.id,
            delivery.fields.join(", "),
            delivery.elapsed_ms,
            delivery
                .status
                .map_or_else(|| "nothing".to_owned(), |s| s.to_string())
        ),
        details: Vec::new(),
    }));
    entries.sort_by_key(|e| e.at_ms);
    entries
}

fn by_endpoint(requests: &[SimExchange]) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for exchange in requests {
        *counts
            .entry(format!("{} {}", exchange.method, exchange.path))
            .or_default() += 1;
    }
    counts
}

/// Waits until Jira's queued webhooks were all answered and their work done.
fn settle(sim: &Simulator, server: &Server) -> anyhow::Result<()> {
    if !sim.wait_idle(SETTLE) {
        bail!("Jira's webhooks were not answered within {SETTLE:?}");
    }
    if !server.wait_for_jobs(SETTLE) {
        bail!("the webhooks' work was not done within {SETTLE:?}");
    }
    Ok(())
}

fn offset(later: Instant, earlier: Instant) -> u64 {
    later.saturating_duration_since(earlier).as_millis() as u64
}

fn call_entry(call: &CallEvent, demo_started: Instant) -> Entry {
    let mut details = Vec::new();
    for exchange in &call.record.http {
        let path = exchange
            .url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or(&exchange.url);
        let answer = exchange.status.map_or_else(
            || exchange.error.clone().unwrap_or_default(),
            |s| s.to_string(),
        );
        details.push(format!("→ jira: {} {path} → {answer}", exchange.method));
    }
    for a in &call.record.assignments {
        details.push(format!(
            "⇒ platform: {} groups {:?}{}",
            a.result,
            a.groups,
            a.email
                .as_deref()
                .map_or_else(String::new, |e| format!(" for {e}"))
        ));
    }
    for r in &call.record.resolutions {
        details.push(format!(
            "⇒ platform: {} groups {:?} ({} changed)",
            r.action, r.groups, r.changed
        ));
    }
    for line in &call.record.logs {
        let fields: Vec<String> = line
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        details.push(format!("· {} {}", line.event, fields.join(" ")));
    }
    let cache = &call.record.cache;
    if cache.hits + cache.misses + cache.sets > 0 {
        details.push(format!(
            "· cache: {} hits, {} misses, {} sets",
            cache.hits, cache.misses, cache.sets
        ));
    }
    Entry {
        at_ms: offset(call.at, demo_started),
        actor: "component",
        what: format!(
            "{} ({} µs) → {}",
            call.trigger,
            call.elapsed.as_micros(),
            call.result
        ),
        details,
    }
}

/// The report as text for a person.
pub fn render(report: &Report) -> String {
    let mut out = String::from("jira-sync demo: the seed's round trip over loopback\n\n");
    for entry in &report.timeline {
        out.push_str(&format!(
            "[{:>6} ms] {:<9} {}\n",
            entry.at_ms, entry.actor, entry.what
        ));
        for detail in &entry.details {
            out.push_str(&format!("{:>20}{detail}\n", ""));
        }
    }
    out.push_str("\nsummary\n");
    if let Value::Object(summary) = &report.summary {
        for (key, value) in summary {
            out.push_str(&format!("  {key:<28} {value}\n"));
        }
    }
    out
}
