//! The sandbox holds against a hostile guest: every misdeed ends in a typed error or a refusal,
//! leaves no partial effect, and the next call on the same runtime succeeds.

use std::sync::{Arc, OnceLock};

use jira_sync_host::backends::HttpStub;
use jira_sync_host::backends::ScriptedHttp;
use jira_sync_host::backends::{
    Backends, Field, GroupStatus, ManualClock, MemoryCache, MemoryPlatform,
};
use jira_sync_host::runtime::hostile_component;
use jira_sync_host::{Call, Runtime};
use jira_sync_host::{CallError, LimitExceeded, Limits};
use jira_sync_host::{Installation, InstallationSpec};
use jira_sync_host::{outbound, webhook};
use serde_json::json;

fn hostile() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::load(&hostile_component()).expect("load the hostile guest"))
}

/// Tight limits, so that each misdeed is stopped quickly.
fn limits() -> Limits {
    Limits {
        memory_bytes: 8 * 1024 * 1024,
        cpu_ms: 50,
        http_calls: 5,
        log_lines: 100,
        ..Limits::default()
    }
}

struct World {
    platform: Arc<MemoryPlatform>,
    http: Arc<ScriptedHttp>,
    backends: Backends,
}

fn world() -> World {
    let platform = Arc::new(MemoryPlatform::default());
    let spec: InstallationSpec = serde_json::from_value(json!({
        "client_key": "jira:1c4", "shared_secret": "s3cret",
        "base_url": "https://acme.atlassian.net", "app_key": "acme-platform.jira"
    }))
    .unwrap();
    platform.add_installation(Installation::from(&spec));
    platform.set_limits("jira:1c4", limits());
    platform.link("jira:1c4", "APP-123", &[1]);
    platform.add_user("ada@example.com", 7);
    let stub: HttpStub = serde_json::from_value(json!({
        "method": "GET", "path": "/rest/api/2/status", "repeat": true, "body": []
    }))
    .unwrap();
    let http = Arc::new(ScriptedHttp::new(vec![stub]));
    let backends = Backends {
        http: http.clone(),
        cache: Arc::new(MemoryCache::default()),
        platform: platform.clone(),
        clock: Arc::new(ManualClock::new(1_700_000_000)),
    };
    World {
        platform,
        http,
        backends,
    }
}

/// An `Authorization` header whose token names `client_key`: the host binds the call to it
/// (the hostile guest never verifies it).
fn credential(client_key: &str) -> (String, String) {
    let authorization = jira_sync_host::signing::authorization(
        client_key,
        "any",
        1_700_000_000,
        ("POST", PATH, ""),
        &Default::default(),
    );
    ("Authorization".into(), authorization)
}

const PATH: &str = "/extensions/jira/issue-updated/";

fn command_as(world: &World, client_key: &str, command: &str) -> Call<webhook::Response> {
    hostile().blocking().webhook(
        &world.backends,
        &webhook::Request {
            method: "POST".into(),
            path: PATH.into(),
            query: String::new(),
            headers: vec![credential(client_key)],
            body: command.as_bytes().to_vec(),
        },
    )
}

fn command(world: &World, command: &str) -> Call<webhook::Response> {
    command_as(world, "jira:1c4", command)
}

/// `misdeed` breaks `limit`; the next call on the same runtime works.
fn contained(misdeed: &str, limit: LimitExceeded) {
    let world = world();
    let call = command(&world, misdeed);
    assert_eq!(
        call.result.err(),
        Some(CallError::Limit(limit)),
        "{misdeed}"
    );
    let next = command(&world, "assign");
    assert_eq!(next.result.unwrap().status, 200, "after {misdeed}");
    assert_eq!(world.platform.group(1).unwrap().assignee, Some(7));
}

#[test]
fn an_endless_loop_is_stopped_by_the_cpu_limit() {
    contained("loop", LimitExceeded::Cpu);
}

#[test]
fn unbounded_allocation_is_stopped_by_the_memory_limit() {
    contained("alloc", LimitExceeded::Memory);
}

#[test]
fn an_http_flood_is_stopped_by_the_call_limit() {
    contained("http-flood", LimitExceeded::HttpCalls);
}

#[test]
fn a_log_flood_is_stopped_by_the_log_limit() {
    contained("log-flood", LimitExceeded::Log);
}

#[test]
fn an_oversized_answer_is_refused() {
    contained("huge-response", LimitExceeded::WebhookResponse);
}

#[test]
fn a_panic_traps_the_instance_not_the_host() {
    let world = world();
    let call = command(&world, "panic");
    match call.result {
        Err(CallError::Trap(message)) => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(command(&world, "assign").result.unwrap().status, 200);
}

#[test]
fn a_foreign_host_is_never_reached() {
    let world = world();
    let call = command(&world, "http-foreign");
    let body = String::from_utf8(call.result.unwrap().body).unwrap();
    assert!(body.starts_with("refused: Error::Denied"), "{body}");
    let error = call.record.http[0].error.as_deref().unwrap();
    assert!(
        error.starts_with("denied: https://evil.example is not"),
        "{error}"
    );
    assert!(
        world.http.unmatched().is_empty(),
        "the request never left the sandbox"
    );
}

#[test]
fn a_call_that_breaks_a_limit_leaves_no_partial_effect() {
    let world = world();
    let call = command(&world, "assign-then-loop");
    assert_eq!(
        call.result.err(),
        Some(CallError::Limit(LimitExceeded::Cpu))
    );
    assert_eq!(call.record.assignments.len(), 1, "it did try");
    assert_eq!(
        world.platform.group(1).unwrap().assignee,
        None,
        "but nothing was applied"
    );
}

#[test]
fn outbound_calls_are_bounded_too() {
    let world = world();
    let call = hostile().blocking().sync_status(
        &world.backends,
        &outbound::StatusRequest {
            client_key: "jira:1c4".into(),
            issue_key: "APP-123".into(),
            resolved: true,
            dry_run: false,
            source: outbound::AssignmentSource::Platform,
        },
    );
    assert_eq!(
        call.result.err(),
        Some(CallError::Limit(LimitExceeded::Cpu))
    );
}

#[test]
fn a_mapping_check_is_bounded_too() {
    let world = world();
    let call = hostile()
        .blocking()
        .check_mappings(&world.backends, "jira:1c4");
    assert_eq!(
        call.result.err(),
        Some(CallError::Limit(LimitExceeded::Cpu))
    );
}

#[test]
fn parallel_misdeeds_do_not_disturb_each_other() {
    let world = Arc::new(world());
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let world = world.clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    let misdeed = ["loop", "alloc", "panic", "log-flood"][i];
                    assert!(command(&world, misdeed).result.is_err());
                    assert_eq!(command(&world, "assign").result.unwrap().status, 200);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn a_job_that_breaks_a_limit_fails_alone_and_the_server_keeps_serving() {
    use jira_sync_host::backends::SqliteStore;
    use jira_sync_host::backends::{HttpLimits, RealHttp};
    use jira_sync_host::server::{Server, ServerConfig};

    let db = std::env::temp_dir().join(format!("jira-sync-sandbox-{}.db", std::process::id()));
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    let mut spec: InstallationSpec = serde_json::from_value(json!({
        "client_key": "jira:1c4", "shared_secret": "s3cret",
        "base_url": "https://acme.atlassian.net", "app_key": "acme-platform.jira"
    }))
    .unwrap();
    spec.limits = limits();
    store.add_installation(&spec).unwrap();
    store.link("jira:1c4", "APP-123", &[1]).unwrap();
    store.add_user(7, "ada@example.com").unwrap();
    let config = ServerConfig {
        listen: "127.0.0.1:0".into(),
        ..ServerConfig::default()
    };
    let runtime = Arc::new(Runtime::load(&hostile_component()).unwrap());
    let http = Arc::new(RealHttp::new(HttpLimits::default()));
    let server = Server::start(&config, runtime, store.clone(), http, None).unwrap();
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let (name, value) = credential("jira:1c4");
    let post = |body: &str| {
        agent
            .post(&format!("{}/extensions/jira/issue-updated/", server.url()))
            .header(&name, &value)
            .send(body.as_bytes())
            .unwrap()
            .status()
            .as_u16()
    };
    // Every delivery is answered at once; the work runs (and fails) in the background.
    assert_eq!(post("loop"), 200);
    assert_eq!(post("alloc"), 200);
    assert_eq!(post("assign"), 200);
    // A job for another installation than the token's is refused before it is queued.
    assert_eq!(post("foreign-job"), 500);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let metrics = || {
        agent
            .get(&format!("{}/metrics", server.url()))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    let ended_by = |text: &str, limit: &str| {
        text.lines().any(|line| {
            line.starts_with("jira_sync_limits_hit_total")
                && line.contains(&format!("limit=\"{limit}\""))
        })
    };
    loop {
        let text = metrics();
        if store.group(1).unwrap().unwrap().assignee == Some(7)
            && ended_by(&text, "cpu")
            && ended_by(&text, "memory")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the jobs did not end as expected:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(server);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

/// A second tenant with a secret, a linked group, and a site of its own.
fn with_other_tenant(world: &World) {
    let spec = InstallationSpec::new(
        "jira:other",
        "other-secret",
        "https://other.example",
        "acme-platform.jira",
    );
    world.platform.add_installation(Installation::from(&spec));
    world.platform.link("jira:other", "OTHER-1", &[9]);
}

/// Runs a platform read to completion.
fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// The call's answer as text, and the host's refusals.
fn said(call: Call<webhook::Response>) -> (String, Vec<String>) {
    let response = call
        .result
        .expect("the escape attempt is answered, not trapped");
    (
        String::from_utf8_lossy(&response.body).into_owned(),
        call.record.refusals,
    )
}

#[test]
fn another_tenant_s_secret_is_out_of_reach() {
    let world = world();
    with_other_tenant(&world);
    let (answer, refusals) = said(command(&world, "escape-secret"));
    assert_eq!(answer, "secret: None");
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(refusals[0].contains("`jira:other`"), "{refusals:?}");
}

#[test]
fn another_tenant_s_groups_are_out_of_reach() {
    let world = world();
    with_other_tenant(&world);
    let (answer, refusals) = said(command(&world, "escape-groups"));
    assert_eq!(
        answer,
        "groups: StatusOutcome::NoLinkedGroups AssignOutcome::NoLinkedGroups"
    );
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    let group = world.platform.group(9).unwrap();
    assert_eq!(
        (group.status, group.assignee),
        (GroupStatus::Unresolved, None)
    );
}

#[test]
fn another_tenant_s_links_are_out_of_reach() {
    let world = world();
    with_other_tenant(&world);
    let (answer, refusals) = said(command(&world, "escape-links"));
    assert_eq!(answer, "links: 0 0");
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(
        refusals.iter().all(|r| r.contains("`jira:other`")),
        "{refusals:?}"
    );
    let links = |key| {
        let platform: &dyn jira_sync_host::backends::Platform = &*world.platform;
        block_on(platform.linked_groups("jira:other", key)).unwrap()
    };
    assert_eq!(links("OTHER-1"), [9]);
    assert!(links("MINE-1").is_empty());
}

#[test]
fn another_tenant_s_deliveries_are_out_of_reach() {
    let world = world();
    with_other_tenant(&world);
    let (answer, refusals) = said(command(&world, "escape-deliveries"));
    assert_eq!(answer, "deliveries: ClaimOutcome::Handled None");
    assert_eq!(refusals.len(), 4, "{refusals:?}");
    assert!(!world.platform.handled("jira:other", "d-other"));
    for field in Field::ALL {
        assert_eq!(
            world.platform.watermark("jira:other", "OTHER-1", field),
            None
        );
    }
}

#[test]
fn another_tenant_s_cache_entries_are_out_of_reach() {
    let world = world();
    with_other_tenant(&world);
    let (answer, _) = said(command_as(&world, "jira:other", "cache-set"));
    assert_eq!(answer, "set");
    let (answer, _) = said(command_as(&world, "jira:other", "escape-cache"));
    assert_eq!(
        answer, "cache: Some(\"other's value\")",
        "the owner reads its entry"
    );
    let (answer, _) = said(command(&world, "escape-cache"));
    assert_eq!(answer, "cache: None", "another tenant does not");
}

#[test]
fn another_tenant_s_site_is_out_of_reach() {
    let world = world();
    with_other_tenant(&world);
    let (answer, _) = said(command(&world, "escape-site"));
    assert!(answer.starts_with("site: Err(Error::Denied("), "{answer}");
    assert!(world.http.unmatched().is_empty(), "nothing left the host");
}

#[test]
fn a_call_without_a_credential_reaches_no_installation() {
    let world = world();
    let call = hostile().blocking().webhook(
        &world.backends,
        &webhook::Request {
            method: "POST".into(),
            path: PATH.into(),
            query: String::new(),
            headers: Vec::new(),
            body: b"assign".to_vec(),
        },
    );
    let response = call.result.unwrap();
    assert_eq!(response.status, 500, "its lookup of jira:1c4 was refused");
    assert_eq!(call.record.refusals.len(), 1);
}

#[test]
fn a_wait_past_the_deadline_ends_the_call() {
    // The replay clock sleeps instantly: the deadline counts the seconds asked for.
    contained("sleep", LimitExceeded::Deadline);
}

#[test]
fn a_call_that_outlives_its_wall_clock_deadline_is_ended() {
    let world = world();
    world.platform.set_limits(
        "jira:1c4",
        Limits {
            cpu_ms: 60_000,
            wall_ms: 100,
            ..limits()
        },
    );
    let call = command(&world, "loop");
    assert_eq!(
        call.result.unwrap_err(),
        CallError::Limit(LimitExceeded::Deadline)
    );
}

#[test]
fn the_cpu_budget_counts_cpu_not_waiting_for_a_core() {
    use jira_sync_host::bench::Fixture;
    use std::sync::atomic::{AtomicBool, Ordering};
    // A webhook costs well under a millisecond of guest CPU; 5 ms holds however busy the machine
    // is. Measured as wall time, calls descheduled behind the spinners broke it (see below).
    let fixture = Arc::new(Fixture::new());
    fixture.platform.set_limits(
        "jira:1c4",
        Limits {
            cpu_ms: 5,
            ..Limits::default()
        },
    );
    let runtime = jira_sync_tests::runtime();
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..6)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            })
        })
        .collect();
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let fixture = fixture.clone();
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                for i in 0..60 {
                    let (_, request) = &fixture.webhooks[i % fixture.webhooks.len()];
                    let call = runtime.blocking().webhook(&fixture.backends, request);
                    if let Err(e) = call.result {
                        failures.push(e.to_string());
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = callers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    stop.store(true, Ordering::Relaxed);
    for spinner in spinners {
        spinner.join().unwrap();
    }
    // Measured as wall time, about one call in six is preempted mid-call and waits behind five
    // other threads for far longer than 5 ms. Counted as CPU, a rare call still passes the
    // budget on a loaded debug build (page faults of a fresh instance are its thread's CPU
    // time): 1 of 240 was seen once in many runs. Two in 240 tells the two apart.
    assert!(
        failures.len() <= 2,
        "{} of 240 failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
}

#[test]
fn a_server_that_could_not_honour_its_workers_refuses_to_start() {
    use jira_sync_host::backends::{HttpLimits, RealHttp, SqliteStore};
    use jira_sync_host::server::{Server, ServerConfig};
    let db = std::env::temp_dir().join(format!("jira-sync-workers-{}.db", std::process::id()));
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    for (workers, why) in [
        (0, "choose 1 to 4096"),
        (4097, "choose 1 to 4096"),
        // More than the runtime's pool holds.
        (257, "pool has 256 slots"),
    ] {
        let config = ServerConfig {
            listen: "127.0.0.1:0".into(),
            workers,
            ..ServerConfig::default()
        };
        let http = Arc::new(RealHttp::new(HttpLimits::default()));
        let refused = Server::start(&config, hostile_runtime(), store.clone(), http, None);
        let message = format!("{:#}", refused.err().expect("refused at start"));
        assert!(message.contains(why), "{message}");
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

fn hostile_runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| Arc::new(Runtime::load(&hostile_component()).unwrap()))
        .clone()
}
