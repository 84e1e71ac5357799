//! The server as an operator runs it: stalled clients hold at most a connection slot, a full
//! server says so with 503 and `Retry-After`, and shutdown lets work in flight finish.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use jira_sync_host::backends::{HttpLimits, RealHttp, SqliteStore};
use jira_sync_host::runtime::hostile_component;
use jira_sync_host::server::{CallEvent, Server, ServerConfig};
use jira_sync_host::signing::{SignOverrides, authorization};
use jira_sync_host::{InstallationSpec, Limits, Runtime};

use super::TempDb;

const PATH: &str = "/extensions/jira/issue-updated/";

/// A server in front of the hostile guest (which loops on command, and whose outbound status
/// sync always loops), installation `jira:1c4` with a CPU budget of `cpu_ms` and group 1
/// linked to `APP-1`.
fn hostile_server(name: &str, cpu_ms: u64, config: ServerConfig) -> (Server, TempDb) {
    let (server, db, _) = hostile_server_with_events(name, cpu_ms, config);
    (server, db)
}

/// [`hostile_server`], and the calls it makes.
fn hostile_server_with_events(
    name: &str,
    cpu_ms: u64,
    config: ServerConfig,
) -> (Server, TempDb, mpsc::Receiver<CallEvent>) {
    let db = TempDb::new(name);
    let store = Arc::new(SqliteStore::open(&db.0).unwrap());
    let mut spec = InstallationSpec::new("jira:1c4", "s3cret", "https://acme.example", "app");
    spec.limits = Limits {
        cpu_ms,
        ..Limits::default()
    };
    store.add_installation(&spec).unwrap();
    store.link("jira:1c4", "APP-1", &[1]).unwrap();
    let runtime = Arc::new(Runtime::load(&hostile_component()).unwrap());
    let http = Arc::new(RealHttp::new(HttpLimits::default()));
    let config = ServerConfig {
        listen: "127.0.0.1:0".into(),
        ..config
    };
    let (sender, events) = mpsc::channel();
    (
        Server::start(&config, runtime, store, http, Some(sender)).unwrap(),
        db,
        events,
    )
}

/// Asks the server to resolve group 1: a request that holds a worker for the whole outbound
/// call (the hostile guest loops until its CPU budget ends it).
fn resolve(url: &str) -> (u16, Option<String>) {
    answer(
        agent()
            .post(&format!("{url}/admin/groups/1/resolve"))
            .send(&b""[..])
            .unwrap(),
    )
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Only a guard against hanging forever: the old server never answered at all.
            .timeout_global(Some(Duration::from_secs(20)))
            .build(),
    )
}

/// A token naming installation `jira:1c4` (the hostile guest never verifies it).
fn token() -> String {
    authorization(
        "jira:1c4",
        "s3cret",
        1_700_000_000,
        ("POST", PATH, ""),
        &SignOverrides::default(),
    )
}

/// Posts a command to the hostile guest; status and `Retry-After`.
fn command(server: &Server, command: &str) -> (u16, Option<String>) {
    answer(
        agent()
            .post(&format!("{}{PATH}", server.url()))
            .header("Authorization", &token())
            .send(command.as_bytes())
            .unwrap(),
    )
}

/// Posts a command as delivery `id`, with `authorization`, for the installation `tenant` (the
/// hostile guest queues it for the installation its `X-Tenant` header names); the status.
fn delivery(server: &Server, authorization: &str, tenant: &str, id: &str, command: &str) -> u16 {
    agent()
        .post(&format!("{}{PATH}", server.url()))
        .header("Authorization", authorization)
        .header("X-Tenant", tenant)
        .header("X-Atlassian-Webhook-Identifier", id)
        .send(command.as_bytes())
        .unwrap()
        .status()
        .as_u16()
}

/// An answer's status and `Retry-After`.
fn answer(response: ureq::http::Response<ureq::Body>) -> (u16, Option<String>) {
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (response.status().as_u16(), retry)
}

/// A client that sends its headers, promises a body, and stalls.
fn stall(server: &Server) -> TcpStream {
    let address = server.url().trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .write_all(
            format!("POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n").as_bytes(),
        )
        .unwrap();
    stream
}

fn status_line(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = [0u8; 12];
    let _ = stream.read(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn stalled_clients_do_not_freeze_the_server() {
    let (server, _db) = hostile_server(
        "stall",
        250,
        ServerConfig {
            workers: 2,
            body_timeout_ms: 1_000,
            ..ServerConfig::default()
        },
    );
    // Five times as many stalled bodies as workers: a thread per worker would be frozen.
    let mut stalled: Vec<TcpStream> = (0..10).map(|_| stall(&server)).collect();
    let health = agent()
        .get(&format!("{}/healthz", server.url()))
        .call()
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        command(&server, "assign").0,
        200,
        "a normal webhook is served"
    );
    // The stalled clients are told off once their body deadline passes.
    assert_eq!(status_line(&mut stalled[0]), "HTTP/1.1 408");
}

#[test]
fn a_body_over_the_bound_is_refused_413_and_leaves_the_server_serving() {
    let (server, _db) = hostile_server("too-large", 250, ServerConfig::default());
    let address = server.url().trim_start_matches("http://").to_owned();
    // Announced too large, none of it sent: refused at once, not after the body deadline
    // (10 s here, twice the read timeout below).
    let mut announced = TcpStream::connect(&address).unwrap();
    announced
        .write_all(
            format!("POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    announced
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = [0u8; 12];
    let read = announced.read(&mut answer).unwrap_or(0);
    assert_eq!(String::from_utf8_lossy(&answer[..read]), "HTTP/1.1 413");
    // Chunked, with no length announced: refused once the bound is passed. Small chunks, and
    // nothing after the one that passes it, so that the server has read all that was sent when
    // it closes (unread bytes would make it reset the connection, losing its answer).
    let mut chunked = TcpStream::connect(&address).unwrap();
    let chunk = vec![b'a'; 1024];
    let mut request =
        format!("POST {PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes();
    for _ in 0..1025 {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    chunked.write_all(&request).unwrap();
    assert_eq!(status_line(&mut chunked), "HTTP/1.1 413");
    assert_eq!(
        command(&server, "assign").0,
        200,
        "a normal webhook is served"
    );
}

#[test]
fn a_full_server_answers_503_with_retry_after() {
    let (server, _db) = hostile_server(
        "busy",
        400,
        ServerConfig {
            workers: 1,
            queue: 0,
            ..ServerConfig::default()
        },
    );
    let url = server.url();
    let answers: Vec<(u16, Option<String>)> = thread::scope(|scope| {
        let calls: Vec<_> = (0..4).map(|_| scope.spawn(|| resolve(&url))).collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert!(
        answers
            .iter()
            .any(|(s, r)| *s == 503 && r.as_deref() == Some("1")),
        "{answers:?}"
    );
    assert!(
        answers.iter().any(|(s, _)| *s == 200),
        "one ran: {answers:?}"
    );
}

#[test]
fn connections_over_the_cap_are_refused_at_once() {
    let (server, _db) = hostile_server(
        "cap",
        250,
        ServerConfig {
            max_connections: 2,
            ..ServerConfig::default()
        },
    );
    let _held: Vec<TcpStream> = (0..2).map(|_| stall(&server)).collect();
    thread::sleep(Duration::from_millis(200));
    let mut third = stall(&server);
    assert_eq!(status_line(&mut third), "HTTP/1.1 503");
    // A client that sends a whole body first still reads the answer, not a reset.
    let answer = agent()
        .post(&format!("{}{PATH}", server.url()))
        .send(&vec![b'x'; 200 * 1024][..])
        .map(|r| r.status().as_u16());
    assert_eq!(answer.ok(), Some(503));
}

#[test]
fn shutdown_lets_a_request_in_flight_finish() {
    let (server, _db) = hostile_server("shutdown", 300, ServerConfig::default());
    let url = server.url();
    let server_url = url.clone();
    let in_flight = thread::spawn(move || resolve(&server_url).0);
    thread::sleep(Duration::from_millis(100));
    server.shutdown();
    assert_eq!(in_flight.join().unwrap(), 200, "answered, not cut off");
    let address = url.trim_start_matches("http://").to_owned();
    assert!(TcpStream::connect(address).is_err(), "no longer accepting");
}

#[test]
fn metrics_count_webhooks_calls_jobs_and_limits() {
    let (server, _db) = hostile_server("metrics", 100, ServerConfig::default());
    assert_eq!(command(&server, "assign").0, 200);
    // Accepted at once; its job breaks the CPU limit in the background and waits for a retry.
    assert_eq!(command(&server, "loop").0, 200);
    assert!(server.wait_for_jobs(Duration::from_secs(20)));
    let expected = [
        "jira_sync_webhooks_total{status=\"200\"} 2",
        "jira_sync_component_calls_total{kind=\"accept\",outcome=\"ok\"} 2",
        "jira_sync_component_calls_total{kind=\"process\",outcome=\"ok\"} 1",
        "jira_sync_component_calls_total{kind=\"process\",outcome=\"limit\"} 1",
        "jira_sync_limits_hit_total{limit=\"cpu\"} 1",
        "jira_sync_component_call_seconds_count{kind=\"process\"} 2",
        // The failed job waits for its retry; the queue is measured every second.
        "jira_sync_queue_jobs 1",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = agent()
            .get(&format!("{}/metrics", server.url()))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let missing: Vec<&&str> = expected.iter().filter(|e| !text.contains(**e)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing:?} missing from:\n{text}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn one_installation_cannot_take_every_worker() {
    let (server, _db, events) = hostile_server_with_events(
        "fair",
        1_000,
        ServerConfig {
            workers: 8,
            ..ServerConfig::default()
        },
    );
    let other = authorization(
        "jira:other",
        "x",
        1_700_000_000,
        ("POST", PATH, ""),
        &SignOverrides::default(),
    );
    // Installation jira:1c4's site is slow: eight jobs that each compute for a second.
    for i in 0..8 {
        let status = delivery(&server, &token(), "jira:1c4", &format!("busy-{i}"), "loop");
        assert_eq!(status, 200, "answered before the work");
    }
    // Another installation's quick job arrives behind them.
    let status = delivery(&server, &other, "jira:other", "quick", "escape-secret");
    assert_eq!(status, 200);
    assert!(server.wait_for_jobs(Duration::from_secs(30)));
    let order: Vec<String> = events
        .try_iter()
        .filter(|e| e.trigger.starts_with("job "))
        .map(|e| e.trigger)
        .collect();
    let quick = order
        .iter()
        .position(|t| t.ends_with("quick"))
        .expect("the quick job ran");
    // jira:1c4 may hold two workers at once (a quarter of eight), so its jobs take four
    // seconds in pairs; the quick job runs beside them as soon as it arrives, seconds before
    // the last of them (without the shares it would wait for all eight).
    assert!(
        quick <= 5,
        "the quick job ran at position {quick}: {order:?}"
    );
}

#[test]
fn a_job_longer_than_its_lease_keeps_it_and_runs_once() {
    let (server, _db, events) = hostile_server_with_events(
        "lease",
        2_500,
        ServerConfig {
            job_lease_seconds: 2,
            ..ServerConfig::default()
        },
    );
    // The job computes for 2.5 s: its 2 s lease must be renewed while it runs (every second),
    // or the dispatcher (every second) would hand it to a second runner, and the first one's
    // outcome would be dropped as no longer its own.
    assert_eq!(delivery(&server, &token(), "jira:1c4", "long", "loop"), 200);
    // Until the attempt ended (its retry, 5 s later, is not due yet).
    assert!(server.wait_for_jobs(Duration::from_secs(60)));
    let runs: Vec<String> = events
        .try_iter()
        .filter(|e| e.trigger.ends_with("for webhook long"))
        .map(|e| format!("{} {}", e.trigger, e.result))
        .collect();
    // One attempt, ended by its CPU limit; its retry is not due for 5 s.
    assert_eq!(runs.len(), 1, "{runs:?}");
}
