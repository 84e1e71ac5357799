//! `jira-sync-host demo`: the seed's round trip over real sockets, between the Jira simulator and
//! the webhook server, with a timeline of everything that crossed the sandbox.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::backends::Platform;
use crate::limits::Limits;
use crate::real_http::{HttpLimits, RealHttp};
use crate::runtime::Runtime;
use crate::scenario::{InstallationSpec, RetrySpec, StatusPair, Strategy};
use crate::server::{CallEvent, Server, ServerConfig};
use crate::sim::{SimWorld, Simulator};
use crate::store::SqliteStore;

const ISSUE: &str = "APP-123";
const GROUP: u64 = 1;
const ADA: u64 = 7;
/// How long the demo waits for Jira's webhooks to be delivered and handled.
const SETTLE: Duration = Duration::from_secs(20);

/// One line of the timeline.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// Milliseconds since the demo started.
    pub at_ms: u64,
    /// `platform`, `component` or `jira`.
    pub actor: &'static str,
    pub what: String,
    /// Details: HTTP exchanges, host calls, decisions.
    pub details: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub timeline: Vec<Entry>,
    pub summary: Value,
}

/// The installation the demo's platform holds for the simulator's site.
pub fn installation(world: &SimWorld, base_url: &str) -> InstallationSpec {
    InstallationSpec {
        client_key: world.installation.client_key.clone(),
        shared_secret: world.installation.shared_secret.clone(),
        base_url: base_url.to_owned(),
        app_key: world.installation.app_key.clone(),
        use_email_scope: true,
        sync_status_forward: BTreeMap::from([(
            "10000".to_owned(),
            StatusPair {
                resolved: "10101".into(),
                unresolved: "3".into(),
            },
        )]),
        sync_status_reverse: true,
        sync_forward_assignment: true,
        sync_reverse_assignment: true,
        resolution_strategy: Strategy::Resolve,
        max_transition_hops: 5,
        retry: RetrySpec::default(),
        clock_skew_seconds: 0,
        limits: Limits::default(),
    }
}

/// Plays the round trip and returns its timeline and summary; leaves nothing running.
pub fn run(runtime: Arc<Runtime>) -> anyhow::Result<Report> {
    let started = Instant::now();
    let world = SimWorld::demo();
    let sim = Simulator::start(world.clone())?;
    let db = std::env::temp_dir().join(format!(
        "jira-sync-demo-{}-{}.db",
        std::process::id(),
        started.elapsed().as_nanos()
    ));
    let result = play(runtime, &world, &sim, &db, started);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    result
}

fn play(
    runtime: Arc<Runtime>,
    world: &SimWorld,
    sim: &Simulator,
    db: &std::path::Path,
    started: Instant,
) -> anyhow::Result<Report> {
    let store = Arc::new(SqliteStore::open(db)?);
    let (events, received) = mpsc::channel();
    let config = ServerConfig {
        listen: "127.0.0.1:0".into(),
        database: db.to_owned(),
        workers: 2,
        ..ServerConfig::default()
    };
    let http = Arc::new(RealHttp::new(HttpLimits::default()));
    let server = Server::start(&config, runtime, store.clone(), http, Some(events))?;
    store.add_installation(&installation(world, &sim.base_url()))?;
    store.link(&world.installation.client_key, ISSUE, &[GROUP])?;
    store.add_user(ADA, "ada@example.com")?;
    sim.set_webhook_url(&format!("{}/extensions/jira/issue-updated/", server.url()));

    let mut timeline = Vec::new();
    let say = |timeline: &mut Vec<Entry>, actor, what: String| {
        timeline.push(Entry {
            at_ms: started.elapsed().as_millis() as u64,
            actor,
            what,
            details: Vec::new(),
        });
    };
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );

    say(
        &mut timeline,
        "platform",
        format!("resolves group {GROUP} (linked to {ISSUE}, which is Open in Jira)"),
    );
    let answer = agent
        .post(&format!("{}/admin/groups/{GROUP}/resolve", server.url()))
        .send(&b""[..])
        .context("ask the server to resolve the group")?
        .body_mut()
        .read_to_vec()
        .context("read the server's answer")?;
    let answer: Value = serde_json::from_slice(&answer).context("the server's answer")?;
    settle(sim)?;

    say(
        &mut timeline,
        "jira",
        format!("someone assigns {ISSUE} to Ada Byron, who hides her email"),
    );
    sim.assign(ISSUE, Some("5f1a"))?;
    settle(sim)?;

    say(
        &mut timeline,
        "jira",
        format!("{ISSUE} is unassigned, then assigned to Ada again"),
    );
    sim.assign(ISSUE, None)?;
    sim.assign(ISSUE, Some("5f1a"))?;
    settle(sim)?;
    drop(server);

    let calls: Vec<CallEvent> = received.try_iter().collect();
    let jira_requests = sim.exchanges();
    let deliveries = sim.deliveries();
    for call in &calls {
        timeline.push(call_entry(call, started));
    }
    for delivery in &deliveries {
        timeline.push(Entry {
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
        });
    }
    timeline.sort_by_key(|e| e.at_ms);

    let mut by_endpoint: BTreeMap<String, u32> = BTreeMap::new();
    for exchange in &jira_requests {
        *by_endpoint
            .entry(format!("{} {}", exchange.method, exchange.path))
            .or_default() += 1;
    }
    let group = store.group(GROUP);
    let issue = sim.issue(ISSUE);
    let cache_hits: u32 = calls.iter().map(|c| c.record.cache.hits).sum();
    let summary = json!({
        "outbound_resolve": answer["results"][0]["outcome"],
        "jira_requests": jira_requests.len(),
        "jira_requests_by_endpoint": by_endpoint,
        "jira_requests_refused": jira_requests.iter().filter(|e| e.auth_error.is_some()).count(),
        "webhooks_delivered": deliveries.len(),
        "webhooks_answered_200": deliveries.iter().filter(|d| d.status == Some(200)).count(),
        "email_api_calls": jira_requests.iter().filter(|e| e.path == "/rest/api/3/user/email").count(),
        "cache_hits": cache_hits,
        "component_calls": calls.len(),
        "group": group,
        "jira_issue": issue.map(|i| json!({"status": i.status, "assignee": i.assignee})),
        "elapsed_ms": started.elapsed().as_millis() as u64,
    });
    Ok(Report { timeline, summary })
}

/// Waits until Jira's queued webhooks were all answered.
fn settle(sim: &Simulator) -> anyhow::Result<()> {
    if !sim.wait_idle(SETTLE) {
        bail!("Jira's webhooks were not answered within {SETTLE:?}");
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
