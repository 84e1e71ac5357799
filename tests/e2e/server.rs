//! The server as an operator runs it: stalled clients hold at most a connection slot, a full
//! server says so with 503 and `Retry-After`, and shutdown lets work in flight finish.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use jira_sync_host::backends::{HttpLimits, RealHttp, SqliteStore};
use jira_sync_host::runtime::hostile_component;
use jira_sync_host::server::{Server, ServerConfig};
use jira_sync_host::signing::{SignOverrides, authorization};
use jira_sync_host::{InstallationSpec, Limits, Runtime};

use super::TempDb;

const PATH: &str = "/extensions/jira/issue-updated/";

/// A server in front of the hostile guest (which loops on command), installation `jira:1c4`
/// with a CPU budget of `cpu_ms`.
fn hostile_server(name: &str, cpu_ms: u64, config: ServerConfig) -> (Server, TempDb) {
    let db = TempDb::new(name);
    let store = Arc::new(SqliteStore::open(&db.0).unwrap());
    let mut spec = InstallationSpec::new("jira:1c4", "s3cret", "https://acme.example", "app");
    spec.limits = Limits {
        cpu_ms,
        ..Limits::default()
    };
    store.add_installation(&spec).unwrap();
    let runtime = Arc::new(Runtime::load(&hostile_component()).unwrap());
    let http = Arc::new(RealHttp::new(HttpLimits::default()));
    let config = ServerConfig {
        listen: "127.0.0.1:0".into(),
        ..config
    };
    (
        Server::start(&config, runtime, store, http, None).unwrap(),
        db,
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
    let response = agent()
        .post(&format!("{}{PATH}", server.url()))
        .header("Authorization", &token())
        .send(command.as_bytes())
        .unwrap();
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
    let answers: Vec<(u16, Option<String>)> = thread::scope(|scope| {
        let calls: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| command(&server, "loop")))
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert!(
        answers
            .iter()
            .any(|(s, r)| *s == 503 && r.as_deref() == Some("1")),
        "{answers:?}"
    );
    assert!(
        answers.iter().any(|(s, _)| *s == 500),
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
    let in_flight = thread::spawn(move || {
        agent()
            .post(&format!("{server_url}{PATH}"))
            .header("Authorization", &token())
            .send(&b"loop"[..])
            .map(|r| r.status().as_u16())
    });
    thread::sleep(Duration::from_millis(100));
    server.shutdown();
    assert_eq!(
        in_flight.join().unwrap().unwrap(),
        500,
        "answered, not cut off"
    );
    let address = url.trim_start_matches("http://").to_owned();
    assert!(TcpStream::connect(address).is_err(), "no longer accepting");
}

#[test]
fn metrics_count_webhooks_calls_and_limits() {
    let (server, _db) = hostile_server("metrics", 100, ServerConfig::default());
    assert_eq!(command(&server, "assign").0, 200);
    assert_eq!(command(&server, "loop").0, 500);
    let text = agent()
        .get(&format!("{}/metrics", server.url()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    for expected in [
        "jira_sync_webhooks_total{status=\"200\"} 1",
        "jira_sync_webhooks_total{status=\"500\"} 1",
        "jira_sync_component_calls_total{kind=\"webhook\",outcome=\"limit\"} 1",
        "jira_sync_limits_hit_total{limit=\"cpu\"} 1",
        "jira_sync_component_call_seconds_count{kind=\"webhook\"} 2",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
}

#[test]
fn one_installation_cannot_take_every_worker() {
    let (server, _db) = hostile_server(
        "fair",
        300,
        ServerConfig {
            workers: 2,
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
    let started = std::time::Instant::now();
    let (busy, quick) = thread::scope(|scope| {
        // Installation jira:1c4 sends four calls that each hold a worker for 300 ms of CPU.
        let busy: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    command(&server, "loop");
                    started.elapsed()
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(50));
        // Another installation's quick call arrives behind them.
        let quick = scope.spawn(|| {
            let status = agent()
                .post(&format!("{}{PATH}", server.url()))
                .header("Authorization", &other)
                .send(&b"escape-secret"[..])
                .unwrap()
                .status();
            (status.as_u16(), started.elapsed())
        });
        let busy: Vec<Duration> = busy.into_iter().map(|b| b.join().unwrap()).collect();
        (busy, quick.join().unwrap())
    });
    assert_eq!(quick.0, 200);
    // jira:1c4 may hold one of the two workers; the other serves the other installation at
    // once, before even the first of jira:1c4's calls is done.
    let first_busy = busy.iter().min().unwrap();
    assert!(
        quick.1 < *first_busy,
        "the other installation was served at {:?}, after jira:1c4's calls ({busy:?})",
        quick.1
    );
}
