//! The component under a second runtime: jco transpiles it to JavaScript, `interop/replay.mjs`
//! runs every shared scenario under Node.js with the imports written in JS, and each trace must
//! equal the wasmtime harness's.

use std::path::PathBuf;
use std::process::Command;

use jira_sync_host::bundled_component;

use crate::{assert_peer_traces_equal, root};

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
    assert_peer_traces_equal("jco", |file| {
        let mut command = Command::new("node");
        command
            .arg(root().join("interop/replay.mjs"))
            .arg(&transpiled)
            .arg(file);
        command
    });
    std::fs::remove_dir_all(&transpiled).unwrap();
}
