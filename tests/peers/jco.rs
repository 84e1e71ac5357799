//! The component under a second runtime: jco transpiles it to JavaScript, `interop/replay.mjs`
//! runs every shared scenario under Node.js with the imports written in JS, and each trace must
//! equal the wasmtime harness's.

use std::path::PathBuf;
use std::process::Command;

use jira_sync_host::{Scenario, bundled_component, replay};
use jira_sync_tests::runtime;
use serde_json::Value;

use crate::{first_difference, root, shared_scenarios};

fn transpile() -> PathBuf {
    let jco = root().join("interop/node_modules/.bin/jco");
    assert!(
        jco.exists(),
        "jco is not installed: run `npm ci --prefix interop` (scripts/test.sh does)"
    );
    let out = std::env::temp_dir().join(format!("jira-sync-jco-{}", std::process::id()));
    let status = Command::new(jco)
        .arg("transpile")
        .arg(bundled_component())
        .arg("-o")
        .arg(&out)
        .args(["--instantiation", "async", "--no-wasi-shim", "--quiet"])
        .status()
        .expect("run jco");
    assert!(status.success(), "jco transpile failed");
    // jco emits ES modules.
    std::fs::write(out.join("package.json"), r#"{"type": "module"}"#).unwrap();
    out
}

#[test]
fn jco_traces_equal_wasmtime_traces_for_every_shared_scenario() {
    let transpiled = transpile();
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
        let out = Command::new("node")
            .arg(root().join("interop/replay.mjs"))
            .arg(&transpiled)
            .arg(file)
            .output()
            .expect("run node");
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Value = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(difference) = first_difference("$", "jco", &ours, &theirs) {
            differences.push(format!("{}: {difference}", file.display()));
        }
    }
    std::fs::remove_dir_all(&transpiled).unwrap();
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
