//! The component under a third runtime: the Python package in `python/` hosts it with
//! wasmtime-py. Its pytest suite runs here against the component built from this workspace,
//! and `python -m jira_sync.replay` plays every shared scenario with the imports written in
//! Python; each trace must equal the wasmtime harness's.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Once;

use jira_sync_host::bundled_component;
use jira_sync_host::runtime::hostile_component;

use crate::{assert_peer_traces_equal, root};

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
    assert_peer_traces_equal("python", |file| {
        let mut command = Command::new(&python);
        command.args(["-m", "jira_sync.replay"]).arg(file);
        command
    });
}
