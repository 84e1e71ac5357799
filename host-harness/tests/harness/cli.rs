//! The `jira-sync-host` command line: exit codes and messages.

use std::process::Command;

fn host() -> Command {
    Command::new(env!("CARGO_BIN_EXE_jira-sync-host"))
}

fn example(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

#[test]
fn replay_prints_a_json_trace_of_the_example() {
    let out = host()
        .arg("replay")
        .arg(example("hidden-email.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &trace["steps"][0];
    assert_eq!(first["response"]["status"], 200);
    assert!(
        first["http"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/rest/api/3/user/email?accountId=5f1a")
    );
    assert_eq!(trace["groups"]["1"]["assignee"], 7);
    assert_eq!(trace["unmatched_http"], serde_json::json!([]));
}

#[test]
fn a_bad_scenario_file_fails_with_a_clear_message() {
    let dir = std::env::temp_dir().join(format!("jira-sync-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"now": 1, "steps": [{"teleport": {}}]}"#).unwrap();
    let out = host().arg("replay").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a valid scenario"), "{stderr}");
    assert!(out.stdout.is_empty());

    let out = host()
        .arg("replay")
        .arg(dir.join("missing.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("read "));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn imports_lists_only_our_package() {
    let out = host().arg("imports").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().count() >= 7);
    assert!(
        text.lines().all(|l| l.starts_with("jira-sync:plugin/")),
        "{text}"
    );
}

#[test]
fn demo_plays_the_round_trip_and_exits() {
    let out = host().args(["demo", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["group"]["status"], "resolved");
    assert_eq!(report["summary"]["jira_issue"]["status"], "10101");
    assert!(report["timeline"].as_array().unwrap().len() >= 8);

    let out = host().arg("demo").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("summary"), "{text}");
    assert!(text.contains("GET /rest/api/3/user/email"), "{text}");
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = std::env::temp_dir().join(format!("jira-sync-sigterm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = host()
        .args(["serve", "--listen", "127.0.0.1:0", "--database"])
        .arg(dir.join("state.db"))
        .current_dir(&dir)
        .env("JIRA_SYNC_DATA_DIR", &dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("serving on http://127.0.0.1:"), "{line}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "{status:?}: {rest}");
    assert!(rest.contains("shutting down"), "{rest}");
}

#[test]
fn a_copied_binary_runs_the_demo_outside_the_checkout() {
    let dir = std::env::temp_dir().join(format!("jira-sync-installed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join("jira-sync-host");
    std::fs::copy(env!("CARGO_BIN_EXE_jira-sync-host"), &binary).unwrap();
    let out = Command::new(&binary)
        .args(["demo", "--json"])
        .current_dir(&dir)
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["summary"]["webhooks_answered_200"],
        report["summary"]["webhooks_delivered"]
    );
    assert_eq!(report["summary"]["group"]["assignee"], 7);
}

#[test]
fn group_waits_for_its_pushes_and_fails_when_one_fails() {
    use std::sync::Arc;

    use jira_sync_host::backends::{HttpLimits, RealHttp, SqliteStore};
    use jira_sync_host::server::{Server, ServerConfig};
    use jira_sync_host::sim::{Fault, SimWorld, Simulator};
    use jira_sync_host::{Runtime, demo};

    let dir = std::env::temp_dir().join(format!("jira-sync-group-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let world = SimWorld::demo();
    let sim = Simulator::start(world.clone()).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.join("state.db")).unwrap());
    store
        .add_installation(&demo::installation(&world, &sim.base_url()))
        .unwrap();
    store
        .link(&world.installation.client_key, "APP-123", &[1])
        .unwrap();
    let config = ServerConfig {
        listen: "127.0.0.1:0".into(),
        ..ServerConfig::default()
    };
    let server = Server::start(
        &config,
        Arc::new(Runtime::bundled().unwrap()),
        store,
        Arc::new(RealHttp::new(HttpLimits::default())),
        None,
    )
    .unwrap();
    let group = |action: &str| {
        host()
            .args(["group", "--server", &server.url(), action, "1"])
            .output()
            .unwrap()
    };
    let resolved = group("resolve");
    assert!(
        resolved.status.success(),
        "{}",
        String::from_utf8_lossy(&resolved.stderr)
    );
    sim.inject(Fault {
        method: "GET".into(),
        path_contains: "/rest/api/2/issue/APP-123".into(),
        status: 401,
        ..Fault::default()
    });
    let refused = group("unresolve");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("pushes failed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
