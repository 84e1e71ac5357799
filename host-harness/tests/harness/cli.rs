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
    assert_eq!(
        report["summary"]["mapping_check_problems"], 2,
        "the demo's broken mapping is found"
    );
    assert!(report["timeline"].as_array().unwrap().len() >= 8);

    let out = host().arg("demo").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("summary"), "{text}");
    assert!(text.contains("GET /rest/api/3/user/email"), "{text}");
    assert!(text.contains("UNREACHABLE from 10101"), "{text}");
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
    // Log lines of the start-up (e.g. the first pruning) may come before or after it.
    let mut line = String::new();
    while !line.contains("serving on ") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "serve ended before serving"
        );
    }
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

/// The simulator's demo site installed on a server of the test's (configured from `config` but
/// for its address), with its state in a directory removed on drop.
struct DemoSite {
    world: jira_sync_host::sim::SimWorld,
    sim: jira_sync_host::sim::Simulator,
    store: std::sync::Arc<jira_sync_host::backends::SqliteStore>,
    server: Option<jira_sync_host::server::Server>,
    dir: std::path::PathBuf,
}

impl DemoSite {
    fn start(name: &str, config: jira_sync_host::server::ServerConfig) -> Self {
        use std::sync::Arc;

        use jira_sync_host::backends::{HttpLimits, RealHttp, SqliteStore};
        use jira_sync_host::server::{Server, ServerConfig};
        use jira_sync_host::sim::{SimWorld, Simulator};
        use jira_sync_host::{Runtime, demo};

        let dir = std::env::temp_dir().join(format!("jira-sync-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let world = SimWorld::demo();
        let sim = Simulator::start(world.clone()).unwrap();
        let store = Arc::new(SqliteStore::open(&dir.join("state.db")).unwrap());
        store
            .add_installation(&demo::installation(&world, &sim.base_url()))
            .unwrap();
        let config = ServerConfig {
            listen: "127.0.0.1:0".into(),
            ..config
        };
        let server = Server::start(
            &config,
            Arc::new(Runtime::bundled().unwrap()),
            store.clone(),
            Arc::new(RealHttp::new(HttpLimits::default())),
            None,
        )
        .unwrap();
        DemoSite {
            world,
            sim,
            store,
            server: Some(server),
            dir,
        }
    }

    fn url(&self) -> String {
        self.server.as_ref().unwrap().url()
    }

    /// Stops the server (its state stays until drop).
    fn stop(&mut self) {
        self.server = None;
    }
}

impl Drop for DemoSite {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn group_waits_for_its_pushes_and_fails_when_one_fails() {
    use jira_sync_host::sim::Fault;

    let site = DemoSite::start("group", jira_sync_host::server::ServerConfig::default());
    site.store
        .link(&site.world.installation.client_key, "APP-123", &[1])
        .unwrap();
    let group = |action: &str| {
        host()
            .args(["group", "--server", &site.url(), action, "1"])
            .output()
            .unwrap()
    };
    let resolved = group("resolve");
    assert!(
        resolved.status.success(),
        "{}",
        String::from_utf8_lossy(&resolved.stderr)
    );
    site.sim.inject(Fault {
        method: "GET".into(),
        path_contains: "/rest/api/2/issue/APP-123".into(),
        status: 401,
        ..Fault::default()
    });
    let refused = group("unresolve");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("pushes failed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn check_prints_the_report_and_fails_while_a_mapping_is_broken() {
    use jira_sync_host::demo;
    use jira_sync_host::server::ServerConfig;

    let site = DemoSite::start(
        "check",
        ServerConfig {
            admin_token: Some("t0ken".into()),
            ..ServerConfig::default()
        },
    );
    let world = &site.world;
    let mut spec = demo::installation(world, &site.sim.base_url());
    let check = |json: bool| {
        let mut command = host();
        command.args(["check", "--server", &site.url(), "--token", "t0ken"]);
        if json {
            command.arg("--json");
        }
        command
            .arg(&world.installation.client_key)
            .output()
            .unwrap()
    };
    let broken = check(false);
    let text = String::from_utf8_lossy(&broken.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&broken.stderr).into_owned();
    assert!(!broken.status.success(), "{text}");
    assert!(
        stderr.contains("2 mapped status(es) need attention"),
        "{stderr}"
    );
    assert!(
        text.contains("Task (10001, workflow OPS workflow) resolved   MISSING"),
        "{text}"
    );
    assert!(text.contains("UNREACHABLE from 10101"), "{text}");

    spec.sync_status_forward.remove(demo::BROKEN_PROJECT);
    site.store.add_installation(&spec).unwrap();
    let sound = check(true);
    assert!(
        sound.status.success(),
        "{}",
        String::from_utf8_lossy(&sound.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&sound.stdout).unwrap();
    assert_eq!(answer["problems"], 0);
    assert_eq!(answer["projects"][0]["project_id"], "10000");
}

#[test]
fn record_switches_a_session_and_replay_fails_when_a_file_no_longer_matches() {
    use jira_sync_host::server::ServerConfig;

    let dir = std::env::temp_dir().join(format!("jira-sync-recordings-{}", std::process::id()));
    let mut site = DemoSite::start(
        "record",
        ServerConfig {
            admin_token: Some("t0ken".into()),
            recordings_dir: Some(dir.clone()),
            ..ServerConfig::default()
        },
    );
    let client_key = site.world.installation.client_key.clone();
    let url = site.url();
    let record = |args: &[&str]| {
        let out = host()
            .args(["record", "--server", &url, "--token", "t0ken"])
            .args(args)
            .arg(&client_key)
            .output()
            .unwrap();
        let answer = serde_json::from_slice::<serde_json::Value>(&out.stdout).ok();
        (out.status.success(), answer, out.stderr)
    };
    let (ok, started, _) = record(&["start", "--max-bytes", "100000", "--pseudonymise"]);
    assert!(ok);
    let started = started.unwrap();
    assert_eq!(started["recording"]["pseudonymise"], true);
    assert_eq!(started["recording"]["max_bytes"], 100_000);
    // One call to record: the mapping check.
    let check = host()
        .args(["check", "--server", &url, "--token", "t0ken"])
        .arg(&client_key)
        .output()
        .unwrap();
    assert!(!check.status.success(), "the demo's mapping is broken");
    let (ok, shown, _) = record(&["show"]);
    assert!(ok);
    assert_eq!(shown.unwrap()["recording"]["full"], false);
    let (ok, stopped, _) = record(&["stop"]);
    assert!(ok);
    let stopped = stopped.unwrap();
    assert_eq!(stopped["stopped"]["files"], 1);
    let (ok, _, stderr) = record(&["show"]);
    assert!(!ok, "no session after stop");
    assert!(String::from_utf8_lossy(&stderr).contains("404"));
    site.stop();

    let directory = std::path::PathBuf::from(stopped["stopped"]["directory"].as_str().unwrap());
    let file = directory.join("000001-check_mappings.json");
    let replay = |path: &std::path::Path| host().arg("replay").arg(path).output().unwrap();
    let replayed = replay(&file);
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    // Jira's answer changed: the replay no longer matches, and says where.
    let mut scenario: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    scenario["http"][0]["status"] = 500.into();
    let changed = dir.join("changed.json");
    std::fs::write(&changed, scenario.to_string()).unwrap();
    let replayed = replay(&changed);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!replayed.status.success());
    let stderr = String::from_utf8_lossy(&replayed.stderr);
    assert!(
        stderr.contains("the replay differs from the recording"),
        "{stderr}"
    );
}

/// A `serve` process of the test's: its URL (read from its "serving on" line) and its stderr,
/// drained into a buffer by a thread of its own (a full pipe would block its logging). Killed on
/// drop if the test did not stop it.
struct ServeProcess {
    child: std::process::Child,
    url: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    drain: Option<std::thread::JoinHandle<()>>,
}

impl ServeProcess {
    /// `serve` on a free loopback port with its state in `dir` (the database at `database`),
    /// holding a job for two seconds before another start may take it over; returns once it
    /// serves.
    fn start(dir: &std::path::Path, database: &std::path::Path) -> Self {
        use std::io::BufRead as _;
        use std::sync::{Arc, Mutex, mpsc};
        use std::time::Duration;

        let mut command = host();
        // Only the settings of this test: none from the environment it runs in.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("JIRA_SYNC_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--database"])
            .arg(database)
            .current_dir(dir)
            .env("JIRA_SYNC_DATA_DIR", dir)
            .env("JIRA_SYNC_JOB_LEASE_SECONDS", "2")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let log = Arc::new(Mutex::new(String::new()));
        let (serving, url) = mpsc::channel();
        let drain = {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in stderr.lines() {
                    let Ok(line) = line else { break };
                    if let Some((_, rest)) = line.split_once("serving on ") {
                        let url = rest.split_whitespace().next().unwrap_or_default();
                        let _ = serving.send(url.to_owned());
                    }
                    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                    log.push_str(&line);
                    log.push('\n');
                }
            })
        };
        let mut process = ServeProcess {
            child,
            url: String::new(),
            log,
            drain: Some(drain),
        };
        match url.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => process.url = url,
            Err(_) => panic!("serve did not start:\n{}", process.log()),
        }
        process
    }

    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// SIGKILL: the process dies at once, whatever it was doing. Returns its log.
    fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.finish()
    }

    /// SIGTERM, then waits for a clean exit. Returns its log.
    fn terminate(mut self) -> String {
        let signalled = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(signalled.success());
        let status = self.child.wait().unwrap();
        let log = self.finish();
        assert!(status.success(), "{status:?}:\n{log}");
        assert!(log.contains("shutting down"), "{log}");
        log
    }

    fn finish(&mut self) -> String {
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        self.log()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A temporary directory, removed on drop (also when the test fails).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `method path` with a JSON body on `base`: the status and the JSON answered.
fn call_json(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(60)))
            .build(),
    );
    let url = format!("{base}{path}");
    let mut response = if method == "GET" {
        let mut request = agent.get(&url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.call()
    } else {
        let mut request = agent.post(&url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = body.map(ToString::to_string).unwrap_or_default();
        request.send(body.as_bytes())
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let answer = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
    };
    (status, answer)
}

/// Polls `done` every 200 ms until it holds or `deadline` passed; whether it held.
fn eventually(deadline: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = std::time::Instant::now();
    loop {
        if done() {
            return true;
        }
        if started.elapsed() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn a_server_killed_with_work_queued_finishes_it_after_a_restart() {
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use jira_sync_host::backends::SqliteStore;
    use jira_sync_host::demo;
    use jira_sync_host::signing::{SignOverrides, authorization};
    use jira_sync_host::sim::{Fault, SimWorld, Simulator};
    use serde_json::json;

    const WEBHOOK: &str = "/extensions/jira/issue-updated/";
    const EMAIL_API: &str = "/rest/api/3/user/email";
    const DELIVERY: &str = "restart-1";
    /// How long Jira takes to reveal the email before the kill: far longer than the test needs
    /// to kill the server while the lookup is in flight.
    const EMAIL_DELAY: Duration = Duration::from_secs(20);
    // Generous: a debug build on a loaded two-core machine.
    const DEADLINE: Duration = Duration::from_secs(30);

    let dir =
        TempDir(std::env::temp_dir().join(format!("jira-sync-restart-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    let database = dir.0.join("state.db");

    // Ada (account 5f1a) hides her email: the webhook's work needs Jira's email API.
    let world = SimWorld::demo();
    let ada = world.users.iter().find(|u| u.hide_email).unwrap().clone();
    let sim = Simulator::start(world.clone()).unwrap();
    let email_lookups = |sim: &Simulator| {
        sim.exchanges()
            .into_iter()
            .filter(|e| e.path == EMAIL_API)
            .collect::<Vec<_>>()
    };

    let first = ServeProcess::start(&dir.0, &database);
    let admin =
        |server: &ServeProcess, method: &str, path: &str, body: Option<serde_json::Value>| {
            call_json(&server.url, method, path, &[], body.as_ref())
        };
    let installation = serde_json::to_value(demo::installation(&world, &sim.base_url())).unwrap();
    for (path, body) in [
        ("/admin/installations", installation),
        (
            "/admin/links",
            json!({"client_key": world.installation.client_key, "issue_key": "APP-123", "groups": [1]}),
        ),
        ("/admin/users", json!({"id": 7, "email": ada.email})),
    ] {
        let (status, answer) = admin(&first, "POST", path, Some(body));
        assert_eq!(status, 200, "{path}: {answer}");
    }

    // The first lookup of Ada's email hangs (and would fail) long after the kill.
    sim.inject(Fault {
        method: "GET".into(),
        path_contains: EMAIL_API.into(),
        status: 503,
        delay_ms: EMAIL_DELAY.as_millis() as u64,
        times: 1,
        ..Fault::default()
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = authorization(
        &world.installation.client_key,
        &world.installation.shared_secret,
        now,
        ("POST", WEBHOOK, ""),
        &SignOverrides::default(),
    );
    let assigned_to_ada = json!({
        "webhookEvent": "jira:issue_updated",
        "timestamp": 1_767_225_601_000_i64,
        "changelog": {"id": "1", "items": [{"field": "assignee", "fieldId": "assignee", "to": ada.account_id}]},
        "issue": {"id": "10001", "key": "APP-123", "fields": {
            "assignee": {"accountId": ada.account_id, "displayName": ada.display_name},
            "updated": "2026-01-01T00:00:01.000+0000",
            "project": {"id": "10000"},
        }},
    });
    let sent = Instant::now();
    let (status, answer) = call_json(
        &first.url,
        "POST",
        WEBHOOK,
        &[
            ("Authorization", &token),
            ("Content-Type", "application/json"),
            ("X-Atlassian-Webhook-Identifier", DELIVERY),
        ],
        Some(&assigned_to_ada),
    );
    assert_eq!(status, 200, "{answer}");
    assert!(
        sent.elapsed() < EMAIL_DELAY,
        "the webhook was answered only after Jira's slow answer"
    );
    // Its job is in flight: it asked Jira for the email, and waits.
    assert!(
        eventually(DEADLINE, || !email_lookups(&sim).is_empty()),
        "the job never asked for the email:\n{}",
        first.log()
    );

    // The platform resolves the group while Jira's transitions fail: the push stays pending.
    sim.inject(Fault {
        method: "POST".into(),
        path_contains: "/rest/api/2/issue/APP-123/transitions".into(),
        status: 503,
        times: 1,
        ..Fault::default()
    });
    let (status, answer) = admin(&first, "POST", "/admin/groups/1/resolve", None);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"][0]["sync"]["state"], "pending", "{answer}");

    // kill -9 with the job running and the push pending.
    let first_log = first.kill();
    let lookups = email_lookups(&sim);
    assert_eq!(lookups.len(), 1, "{lookups:?}\n{first_log}");
    assert!(
        sim.exchanges()
            .iter()
            .any(|e| e.path.ends_with("/transitions") && e.fault == Some(503)),
        "the push never met the failing transitions:\n{first_log}"
    );
    let assignee_before = {
        let store = SqliteStore::open(&database).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(
            store.queue_backlog(now).unwrap().0,
            1,
            "the job is recorded:\n{first_log}"
        );
        assert!(store.failed_jobs(10).unwrap().is_empty());
        assert!(
            !store
                .handled(&world.installation.client_key, DELIVERY)
                .unwrap()
        );
        let pushes = store.pushes_of_group(1).unwrap();
        assert_eq!(pushes.len(), 1, "{pushes:?}");
        assert_eq!(pushes[0].state, "pending", "{pushes:?}");
        assert_eq!(pushes[0].push, json!({"resolved": true}));
        store.group(1).unwrap().unwrap().assignee
    };
    assert_eq!(assignee_before, None, "nothing was applied before the kill");
    assert_eq!(sim.issue("APP-123").unwrap().status, "1");

    // Both faults are spent: Jira answers normally now. The restart finishes both.
    let second = ServeProcess::start(&dir.0, &database);
    let mut last = (json!(null), json!(null));
    let finished = eventually(DEADLINE, || {
        let (_, group) = admin(&second, "GET", "/admin/groups/1", None);
        let (_, syncs) = admin(&second, "GET", "/admin/groups/1/syncs", None);
        let done = group["assignee"] == 7
            && syncs["syncs"][0]["state"] == "done"
            && sim.issue("APP-123").unwrap().status == "10101";
        last = (group, syncs);
        done
    });
    assert!(
        finished,
        "after the restart: group {} syncs {}\nJira's issue: {:?}\nfirst server:\n{first_log}\nsecond \
         server:\n{}",
        last.0,
        last.1,
        sim.issue("APP-123"),
        second.log()
    );
    let second_log = second.terminate();

    // Exactly once: one more email lookup (answered), the delivery handled, no job left.
    let lookups = email_lookups(&sim);
    assert_eq!(lookups.len(), 2, "{lookups:?}\n{second_log}");
    assert_eq!(lookups[1].status, 200, "{lookups:?}");
    let store = SqliteStore::open(&database).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(store.queue_backlog(now).unwrap().0, 0, "{second_log}");
    assert!(store.failed_jobs(10).unwrap().is_empty());
    assert!(
        store
            .handled(&world.installation.client_key, DELIVERY)
            .unwrap()
    );
    let pushes = store.pushes_of_group(1).unwrap();
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(pushes[0].state, "done", "{pushes:?}");
    assert_eq!(store.group(1).unwrap().unwrap().assignee, Some(7));
}
