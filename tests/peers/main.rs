//! Tests against peers nobody here wrote, run under Node.js from `interop/`: Atlassian's
//! `atlassian-jwt` (`jwt`), the component transpiled by jco (`jco`), RS256 tokens signed by
//! jose (`rs256`), and admin webhooks' signatures made by `@octokit/webhooks-methods` (`hub`);
//! and the component hosted from Python by wasmtime-py (`python`, the package in `python/`).

mod hub;
mod jco;
mod jwt;
mod python;
mod rs256;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use jira_sync_host::{Scenario, replay};
use jira_sync_tests::runtime;
use serde_json::Value;

/// The workspace's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every scenario file of `examples/` and `tests/scenarios/`: the set every runtime replays.
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

/// Replays every shared scenario with the wasmtime harness and with `peer`, whose `command`
/// replays the scenario file it is given and prints its trace as JSON; fails with the first
/// difference of each scenario whose traces differ.
fn assert_peer_traces_equal(peer: &str, mut command: impl FnMut(&Path) -> Command) {
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
        let out = command(file)
            .output()
            .unwrap_or_else(|e| panic!("run {peer}: {e}"));
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Value = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(difference) = first_difference("$", peer, &ours, &theirs) {
            differences.push(format!("{}: {difference}", file.display()));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// The first place where the wasmtime harness's trace `a` and `peer`'s trace `b` differ, as a
/// JSON path.
fn first_difference(path: &str, peer: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                first_difference(
                    &format!("{path}.{k}"),
                    peer,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (a, b))| first_difference(&format!("{path}[{i}]"), peer, a, b)),
        _ if a == b => None,
        _ => Some(format!("{path}: wasmtime {a} vs {peer} {b}")),
    }
}

/// `interop/`, where the Node.js peers live.
fn interop_dir() -> PathBuf {
    root().join("interop")
}

/// Runs `node interop/SCRIPT MODE FILE` with `cases` written to FILE, and reads what it prints.
/// `package` is the npm package the script needs, checked first so that a missing install says
/// how to fix it.
fn node(script: &str, mode: &str, package: &str, cases: &[Value]) -> Value {
    let dir = interop_dir();
    assert!(
        dir.join("node_modules").join(package).exists(),
        "{package} is not installed: run `npm ci --prefix interop` (scripts/test.sh does)"
    );
    // One file per call: the tests of this binary run at once, in one process.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let file = std::env::temp_dir().join(format!(
        "jira-sync-interop-{mode}-{}-{}.json",
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&file, serde_json::to_vec(cases).unwrap()).unwrap();
    let out = Command::new("node")
        .arg(dir.join(script))
        .arg(mode)
        .arg(&file)
        .output()
        .expect("run node (Node.js must be installed)");
    std::fs::remove_file(&file).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
