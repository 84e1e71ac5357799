//! Criterion benchmarks: each webhook through a fresh sandboxed instance and through the native
//! core, in the same run, so that their ratio is meaningful; plus the fixed costs.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jira_sync_host::bench::Fixture;
use jira_sync_host::{Runtime, bundled_component};

fn webhooks(c: &mut Criterion) {
    let runtime = Runtime::load(&bundled_component()).expect("load the component");
    let fixture = Fixture::new();
    for (name, request) in &fixture.webhooks {
        let mut group = c.benchmark_group(*name);
        group.bench_function("wasm, fresh instance", |b| {
            b.iter(|| black_box(fixture.wasm(&runtime, request)))
        });
        group.bench_function("native core", |b| {
            b.iter(|| black_box(fixture.native(request)))
        });
        group.finish();
    }
    c.bench_function("instantiate + drop", |b| {
        b.iter(|| runtime.blocking().instantiate_and_drop(&fixture.backends))
    });
}

fn startup(c: &mut Criterion) {
    let component = bundled_component();
    let cache = std::env::temp_dir().join(format!("jira-sync-criterion-{}", std::process::id()));
    drop(Runtime::load_cached(&component, &cache).expect("write the artefact"));
    let mut group = c.benchmark_group("start");
    group.sample_size(10);
    group.bench_function("compile the component", |b| {
        b.iter(|| Runtime::load(&component))
    });
    group.bench_function("load the precompiled artefact", |b| {
        b.iter(|| Runtime::load_cached(&component, &cache))
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&cache);
}

criterion_group!(benches, webhooks, startup);
criterion_main!(benches);
