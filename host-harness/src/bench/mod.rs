//! `jira-sync-host bench`: the component against the same core called natively, measured in one
//! run on this machine (medians of batches, so that a noisy neighbour spoils one batch, not all).
//!
//! - `fixture.rs`: the platform, Jira's answers and the webhooks measured;
//! - `native.rs`: the core called natively over the same backends, the baseline.

mod fixture;
mod native;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::runtime::{Allocation, Runtime};
use crate::wit::exports::jira_sync::plugin::webhook;

pub use fixture::Fixture;

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

/// One line of the benchmark's table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What was measured.
    pub what: String,
    /// The measurement.
    pub value: String,
    /// The target, if there is one.
    pub target: String,
    /// Whether the target was met.
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

/// The parts of the benchmark, in the order `run` measures them; `--only` picks one, e.g. to
/// profile one loop alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// Component size, compile and artefact load.
    Startup,
    /// Creating and dropping a store and an instance.
    Instantiate,
    /// Each fixture webhook, wasm against native.
    Webhooks,
    /// A webhook refused before any work (no token).
    NoToken,
    /// A webhook whose token is verified, with no changelog to act on.
    Verified,
    /// Webhooks per second on one and two threads.
    Throughput,
}

/// Measures everything BENCHMARKS.md reports (or only `only`), with `iterations` runs per batch.
pub fn run(component: &[u8], iterations: usize, only: Option<Section>) -> anyhow::Result<Vec<Row>> {
    let wanted = |section| only.is_none_or(|only| only == section);
    let mut rows = Vec::new();
    if wanted(Section::Startup) {
        rows.push(size_row(component));
        rows.extend(startup_rows(component)?);
    }
    let runtime = Runtime::from_bytes(component, Allocation::default())?;
    let fixture = Fixture::new();
    if wanted(Section::Instantiate) || wanted(Section::Webhooks) {
        let on_demand = Runtime::from_bytes(component, Allocation::OnDemand)?;
        let runtimes = [("on-demand", &on_demand), ("pooling", &runtime)];
        if wanted(Section::Instantiate) {
            rows.extend(instantiate_rows(&fixture, &runtimes, iterations));
        }
        if wanted(Section::Webhooks) {
            rows.extend(webhook_rows(&fixture, &runtimes, iterations));
        }
    }
    let breakdown = [Section::NoToken, Section::Verified];
    rows.extend(breakdown_rows(
        &fixture,
        &runtime,
        iterations,
        &breakdown.map(wanted),
    ));
    if wanted(Section::Throughput) {
        rows.extend(throughput_rows(Arc::new(runtime), iterations));
    }
    Ok(rows)
}

/// Batches per median: odd, so that the median is one of them.
const BATCHES: usize = 9;

fn size_row(component: &[u8]) -> Row {
    let size = component.len();
    row(
        "component size",
        format!("{:.1} KB", size as f64 / 1000.0),
        "≤ 300 KB",
        Some(size <= 300_000),
    )
}

/// Compiling the component against loading its precompiled artefact.
fn startup_rows(component: &[u8]) -> anyhow::Result<Vec<Row>> {
    let started = Instant::now();
    drop(Runtime::from_bytes(component, Allocation::default())?);
    let compile = started.elapsed();
    let cache = std::env::temp_dir().join(format!("jira-sync-bench-{}", std::process::id()));
    drop(Runtime::cached(component, &cache)?);
    let load = median(5, 1, || {
        drop(Runtime::cached(component, &cache).expect("load the artefact"));
    });
    std::fs::remove_dir_all(&cache)?;
    Ok(vec![
        row(
            "start: compile the component",
            format!("{:.1} ms", compile.as_secs_f64() * 1e3),
            "",
            None,
        ),
        row(
            "start: load the precompiled artefact",
            format!(
                "{:.2} ms ({:.0}× faster)",
                load.as_secs_f64() * 1e3,
                compile.as_secs_f64() / load.as_secs_f64()
            ),
            "≤ 10 ms",
            Some(load <= Duration::from_millis(10)),
        ),
    ])
}

/// The fixed cost of a sandboxed call, per allocator.
fn instantiate_rows(
    fixture: &Fixture,
    runtimes: &[(&str, &Runtime)],
    iterations: usize,
) -> Vec<Row> {
    runtimes
        .iter()
        .map(|(allocator, runtime)| {
            let instantiate = median(BATCHES, iterations, || {
                runtime
                    .blocking()
                    .instantiate_and_drop(&fixture.backends)
                    .expect("instantiate");
            });
            row(
                format!("instantiate + drop ({allocator})"),
                format!("{:.1} µs", micros(instantiate)),
                "≤ 3 µs",
                Some(instantiate <= Duration::from_micros(3)),
            )
        })
        .collect()
}

/// Each fixture webhook through the component against the same core called natively.
fn webhook_rows(fixture: &Fixture, runtimes: &[(&str, &Runtime)], iterations: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    for (name, request) in &fixture.webhooks {
        assert_eq!(
            fixture.wasm(runtimes[0].1, request),
            200,
            "{name} through wasm"
        );
        assert_eq!(fixture.native(request), 200, "{name} natively");
        let native = median(BATCHES, iterations, || {
            fixture.native(request);
        });
        for (allocator, runtime) in runtimes {
            let wasm = median(BATCHES, iterations, || {
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
                "≤ 3×",
                Some(ratio <= 3.0),
            ));
        }
    }
    rows
}

/// Where a webhook's cost goes: the same sandbox with less guest work.
fn breakdown_rows(
    fixture: &Fixture,
    runtime: &Runtime,
    iterations: usize,
    wanted: &[bool; 2],
) -> Vec<Row> {
    let (_, signed) = &fixture.webhooks[0];
    let unsigned = webhook::Request {
        headers: Vec::new(),
        ..signed.clone()
    };
    let no_changelog = webhook::Request {
        body: b"{}".to_vec(),
        ..signed.clone()
    };
    let mut rows = Vec::new();
    let cases = [
        ("no token, answered 409", &unsigned, 409),
        ("token verified, no changelog", &no_changelog, 200),
    ];
    for (_, (name, request, status)) in wanted.iter().zip(cases).filter(|(w, _)| **w) {
        assert_eq!(
            fixture.wasm(runtime, request),
            status,
            "{name} through wasm"
        );
        assert_eq!(fixture.native(request), status, "{name} natively");
        let wasm = median(BATCHES, iterations, || {
            fixture.wasm(runtime, request);
        });
        let native = median(BATCHES, iterations, || {
            fixture.native(request);
        });
        // Only the refused webhook has a target: it is the whole fixed cost of a call.
        let target = (status == 409).then_some(Duration::from_micros(6));
        rows.push(row(
            format!("breakdown: {name} (pooling)"),
            format!(
                "{:.1} µs wasm / {:.1} µs native = {:.2}×",
                micros(wasm),
                micros(native),
                wasm.as_secs_f64() / native.as_secs_f64()
            ),
            if target.is_some() { "≤ 6 µs" } else { "" },
            target.map(|t| wasm <= t),
        ));
    }
    rows
}

/// Webhooks per second on one and two threads sharing one runtime, each thread with backends
/// of its own (as a platform with concurrent stores would have), so that what is measured is
/// how the sandbox scales, not the fixture's locks.
fn throughput_rows(runtime: Arc<Runtime>, iterations: usize) -> Vec<Row> {
    let per_thread = iterations * 3;
    let rate = |threads: usize| {
        let fixtures: Vec<Fixture> = (0..threads).map(|_| Fixture::new()).collect();
        let started = Instant::now();
        std::thread::scope(|scope| {
            for fixture in &fixtures {
                let runtime = &runtime;
                scope.spawn(move || {
                    for i in 0..per_thread {
                        let (_, request) = &fixture.webhooks[i % fixture.webhooks.len()];
                        fixture.wasm(runtime, request);
                    }
                });
            }
        });
        (threads * per_thread) as f64 / started.elapsed().as_secs_f64()
    };
    let one = rate(1);
    let two = rate(2);
    let scaling = two / one;
    vec![
        row(
            "throughput, 1 thread, pooling",
            format!("{one:.0} webhooks/s"),
            "",
            None,
        ),
        row(
            "throughput, 2 threads, pooling",
            format!("{two:.0} webhooks/s = {scaling:.2}× 1 thread"),
            "≥ 1.8× 1 thread",
            Some(scaling >= 1.8),
        ),
    ]
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
