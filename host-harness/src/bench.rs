//! `jira-sync-host bench`: the component against the same core called natively, measured in one
//! run on this machine (medians of batches, so that a noisy neighbour spoils one batch, not all).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::backends::{Backends, ManualClock, MemoryCache, MemoryPlatform};
use crate::bindings::exports::jira_sync::plugin::webhook;
use crate::native::NativeEnv;
use crate::runtime::{Allocation, Runtime};
use crate::scenario::{HttpStub, InstallationSpec, SignOverrides};
use crate::scripted::ScriptedHttp;
use crate::signing;

const NOW: u64 = 1_700_000_000;
const PATH: &str = "/extensions/jira/issue-updated/";

/// A platform (installation `jira:1c4`, APP-123 linked to groups 1 and 2, user 7
/// `ada@example.com`), Jira's status list and email API, and three signed webhooks.
pub struct Fixture {
    pub platform: Arc<MemoryPlatform>,
    pub backends: Backends,
    pub webhooks: Vec<(&'static str, webhook::Request)>,
}

impl Fixture {
    pub fn new() -> Self {
        let platform = Arc::new(MemoryPlatform::default());
        let spec: InstallationSpec = serde_json::from_value(json!({
            "client_key": "jira:1c4", "shared_secret": "s3cret", "use_email_scope": true,
            "base_url": "https://acme.atlassian.net", "app_key": "acme-platform.jira"
        }))
        .expect("a valid installation");
        platform.add_installation(spec.to_installation());
        platform.link("jira:1c4", "APP-123", &[1, 2]);
        platform.add_user("ada@example.com", 7);
        let stubs: Vec<HttpStub> = serde_json::from_value(json!([
            {"method": "GET", "path": "/rest/api/2/status", "repeat": true,
             "body": [{"id": "3", "statusCategory": {"key": "indeterminate"}},
                      {"id": "10101", "statusCategory": {"key": "done"}}]},
            {"method": "GET", "path": "/rest/api/3/user/email", "query": {"accountId": "5f1a"},
             "repeat": true, "body": {"accountId": "5f1a", "email": "ada@example.com"}}
        ]))
        .expect("valid stubs");
        let backends = Backends {
            http: Arc::new(ScriptedHttp::new(stubs)),
            cache: Arc::new(MemoryCache::default()),
            platform: platform.clone(),
            deliveries: platform.clone(),
            clock: Arc::new(ManualClock::new(NOW)),
        };
        let hook = |body: serde_json::Value| webhook::Request {
            method: "POST".into(),
            path: PATH.into(),
            query: String::new(),
            headers: vec![(
                "Authorization".into(),
                signing::authorization(
                    "jira:1c4",
                    "s3cret",
                    NOW,
                    ("POST", PATH, ""),
                    &SignOverrides::default(),
                ),
            )],
            body: body.to_string().into_bytes(),
        };
        let assignee = |assignee: serde_json::Value| {
            hook(json!({"changelog": {"items": [{"field": "assignee"}]},
                        "issue": {"key": "APP-123", "fields": {"assignee": assignee}}}))
        };
        let webhooks = vec![
            (
                "assignee, visible email",
                assignee(json!({"accountId": "5f1a", "emailAddress": "ada@example.com"})),
            ),
            (
                "assignee, hidden email, warm cache",
                assignee(json!({"accountId": "5f1a"})),
            ),
            (
                "status change",
                hook(
                    json!({"changelog": {"items": [{"field": "status", "from": "3", "to": "10101"}]},
                            "issue": {"key": "APP-123", "fields": {}}}),
                ),
            ),
        ];
        Fixture {
            platform,
            backends,
            webhooks,
        }
    }

    /// The webhook through the native core.
    pub fn native(&self, request: &webhook::Request) -> u16 {
        let request = jira_sync_plugin::model::WebhookRequest {
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
        };
        let mut env = NativeEnv {
            backends: &self.backends,
            logs: Vec::new(),
        };
        jira_sync_plugin::webhook::handle(&mut env, &request).status
    }

    /// The webhook through a fresh instance of the component.
    pub fn wasm(&self, runtime: &Runtime, request: &webhook::Request) -> u16 {
        runtime
            .webhook(&self.backends, request)
            .result
            .map_or(0, |r| r.status)
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

/// Median time per iteration over `batches` batches of `per_batch` runs of `f`.
pub fn median(batches: usize, per_batch: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..per_batch.min(200) {
        f();
    }
    let mut times: Vec<Duration> = (0..batches)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            start.elapsed() / per_batch as u32
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub what: String,
    pub value: String,
    pub target: String,
    pub met: Option<bool>,
}

fn row(what: impl Into<String>, value: String, target: &str, met: Option<bool>) -> Row {
    Row {
        what: what.into(),
        value,
        target: target.to_owned(),
        met,
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Measures everything BENCHMARKS.md reports, with `iterations` runs per batch.
pub fn run(component: &Path, iterations: usize) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let size = std::fs::metadata(component)?.len();
    rows.push(row(
        "component size",
        format!("{:.1} KB", size as f64 / 1000.0),
        "≤ 300 KB",
        Some(size <= 300_000),
    ));

    let started = Instant::now();
    let runtime = Runtime::load(component)?;
    let compile = started.elapsed();
    let cache = std::env::temp_dir().join(format!("jira-sync-bench-{}", std::process::id()));
    drop(Runtime::load_cached(component, &cache)?);
    let load = median(5, 1, || {
        drop(Runtime::load_cached(component, &cache).expect("load the artefact"));
    });
    std::fs::remove_dir_all(&cache)?;
    rows.push(row(
        "start: compile the component",
        format!("{:.1} ms", compile.as_secs_f64() * 1e3),
        "",
        None,
    ));
    rows.push(row(
        "start: load the precompiled artefact",
        format!(
            "{:.2} ms ({:.0}× faster)",
            load.as_secs_f64() * 1e3,
            compile.as_secs_f64() / load.as_secs_f64()
        ),
        "≤ 10 ms",
        Some(load <= Duration::from_millis(10)),
    ));

    let fixture = Fixture::new();
    let batches = 9;
    let on_demand = Runtime::load_with(component, Allocation::OnDemand)?;
    for (allocator, runtime) in [("on-demand", &on_demand), ("pooling", &runtime)] {
        let instantiate = median(batches, iterations, || {
            runtime
                .instantiate_and_drop(&fixture.backends)
                .expect("instantiate");
        });
        rows.push(row(
            format!("instantiate + drop ({allocator})"),
            format!("{:.1} µs", micros(instantiate)),
            "≤ 10 µs",
            Some(instantiate <= Duration::from_micros(10)),
        ));
    }

    for (name, request) in &fixture.webhooks {
        assert_eq!(fixture.wasm(&runtime, request), 200, "{name} through wasm");
        assert_eq!(fixture.native(request), 200, "{name} natively");
        let native = median(batches, iterations, || {
            fixture.native(request);
        });
        for (allocator, runtime) in [("on-demand", &on_demand), ("pooling", &runtime)] {
            let wasm = median(batches, iterations, || {
                fixture.wasm(runtime, request);
            });
            let ratio = wasm.as_secs_f64() / native.as_secs_f64();
            rows.push(row(
                format!("webhook: {name} ({allocator})"),
                format!(
                    "{:.1} µs wasm / {:.1} µs native = {ratio:.2}×",
                    micros(wasm),
                    micros(native)
                ),
                "≤ 2×",
                Some(ratio <= 2.0),
            ));
        }
    }

    // Where a webhook's cost goes: the same sandbox with less guest work.
    let (_, signed) = &fixture.webhooks[0];
    let unsigned = webhook::Request {
        headers: Vec::new(),
        ..signed.clone()
    };
    let no_changelog = webhook::Request {
        body: b"{}".to_vec(),
        ..signed.clone()
    };
    for (name, request, status) in [
        ("no token, answered 409", &unsigned, 409),
        ("token verified, no changelog", &no_changelog, 200),
    ] {
        assert_eq!(
            fixture.wasm(&runtime, request),
            status,
            "{name} through wasm"
        );
        assert_eq!(fixture.native(request), status, "{name} natively");
        let wasm = median(batches, iterations, || {
            fixture.wasm(&runtime, request);
        });
        let native = median(batches, iterations, || {
            fixture.native(request);
        });
        rows.push(row(
            format!("breakdown: {name} (pooling)"),
            format!(
                "{:.1} µs wasm / {:.1} µs native = {:.2}×",
                micros(wasm),
                micros(native),
                wasm.as_secs_f64() / native.as_secs_f64()
            ),
            "",
            None,
        ));
    }

    let runtime = Arc::new(runtime);
    let fixture = Arc::new(fixture);
    for threads in [1, 2] {
        let per_thread = iterations * 3;
        let started = Instant::now();
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (runtime, fixture) = (runtime.clone(), fixture.clone());
                std::thread::spawn(move || {
                    for i in 0..per_thread {
                        let (_, request) = &fixture.webhooks[i % fixture.webhooks.len()];
                        fixture.wasm(&runtime, request);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("a bench thread");
        }
        let rate = (threads * per_thread) as f64 / started.elapsed().as_secs_f64();
        rows.push(row(
            format!("throughput, {threads} thread(s), pooling"),
            format!("{rate:.0} webhooks/s"),
            if threads == 2 { "≥ 20,000/s" } else { "" },
            (threads == 2).then_some(rate >= 20_000.0),
        ));
    }
    Ok(rows)
}

/// The rows as a Markdown table.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::from("| measure | result | target | met |\n|---|---|---|---|\n");
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "no",
            None => "",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {met} |\n",
            r.what, r.value, r.target
        ));
    }
    out
}
