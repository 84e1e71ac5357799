//! The component under a third runtime: the Python package in `python/` hosts it with
//! wasmtime-py. Its pytest suite runs here against the component built from this workspace,
//! and `python -m jira_sync.replay` plays every shared scenario with the imports written in
//! Python; each trace must equal the wasmtime harness's.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Once;

use jira_sync_host::runtime::hostile_component;
use jira_sync_host::{Scenario, bundled_component, replay};
use jira_sync_tests::runtime;
use serde_json::Value;

use crate::{first_difference, root, shared_scenarios};

/// The virtual environment's interpreter, with the package installed (editable) in it.
fn python() -> PathBuf {
    let python = root().join("python/.venv/bin/python");
    assert!(
        python.exists(),
        "the Python environment is missing: run `python3 -m venv python/.venv && \
         python/.venv/bin/pip install -e 'python[test]'` (scripts/test.sh does)"
    );
    python
}

/// Ships the component built from this workspace inside the package, as its package data
/// (gitignored): the editable install reads it from the source tree.
fn install_component() {
    static COPIED: Once = Once::new();
    COPIED.call_once(|| {
        let target = root().join("python/src/jira_sync/jira_sync_plugin.wasm");
        // Write then rename: a Python process never reads half a component.
        let partial = target.with_extension(format!("partial-{}", std::process::id()));
        std::fs::copy(bundled_component(), &partial).unwrap();
        std::fs::rename(&partial, &target).unwrap();
    });
}

#[test]
fn the_python_package_passes_its_pytest_suite() {
    let python = python();
    install_component();
    let out = Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .current_dir(root().join("python"))
        .env("JIRA_SYNC_HOSTILE_COMPONENT", hostile_component())
        .output()
        .expect("run pytest");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn python_traces_equal_wasmtime_traces_for_every_shared_scenario() {
    let python = python();
    install_component();
    let scenarios = shared_scenarios();
    assert!(
        scenarios.len() >= 10,
        "the shared set shrank: {scenarios:?}"
    );
    let mut differences = Vec::new();
    for file in &scenarios {
        let text = std::fs::read_to_string(file).unwrap();
        let scenario = Scenario::from_json(&text).unwrap();
        let ours = replay(runtime(), &scenario);
        let out = Command::new(&python)
            .args(["-m", "jira_sync.replay"])
            .arg(file)
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Value = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(difference) = first_difference("$", "python", &ours, &theirs) {
            differences.push(format!("{}: {difference}", file.display()));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
