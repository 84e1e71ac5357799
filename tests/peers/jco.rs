//! The component under a second runtime: jco transpiles it to JavaScript, `interop/replay.mjs`
//! runs every shared scenario under Node.js with the imports written in JS, and each trace must
//! equal the wasmtime harness's.

use std::path::{Path, PathBuf};
use std::process::Command;

use jira_sync_host::{Scenario, bundled_component, replay};
use jira_sync_tests::runtime;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every scenario file of `examples/` and `tests/scenarios/`.
fn shared_scenarios() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["examples", "tests/scenarios"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(root().join(dir)).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

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

/// The first place where two traces differ, as a JSON path.
fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                first_difference(
                    &format!("{path}.{k}"),
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (a, b))| first_difference(&format!("{path}[{i}]"), a, b)),
        _ if a == b => None,
        _ => Some(format!("{path}: wasmtime {a} vs jco {b}")),
    }
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
        if let Some(difference) = first_difference("$", &ours, &theirs) {
            differences.push(format!("{}: {difference}", file.display()));
        }
    }
    std::fs::remove_dir_all(&transpiled).unwrap();
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
