//! Tests against peers nobody here wrote, run under Node.js from `interop/`: Atlassian's
//! `atlassian-jwt` (`jwt`), the component transpiled by jco (`jco`), RS256 tokens signed by
//! jose (`rs256`), and admin webhooks' signatures made by `@octokit/webhooks-methods` (`hub`).

mod hub;
mod jco;
mod jwt;
mod rs256;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// `interop/`, where the Node.js peers live.
fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop")
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
