//! The real HTTP backend against a one-shot loopback server: answers, limits and failures.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use jira_sync_host::HttpError;
use jira_sync_host::backends::{HttpBackend, HttpResult, OutboundRequest};
use jira_sync_host::backends::{HttpLimits, RealHttp};

/// Serves one connection with `response` after `delay`; returns the URL and the request seen.
fn serve_once(response: Vec<u8>, delay: Duration) -> (String, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&seen).into_owned();
        let wanted = text
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(|v| v.trim().parse::<usize>().unwrap())
            })
            .unwrap_or(0);
        let head_len = text.find("\r\n\r\n").map_or(seen.len(), |i| i + 4);
        while seen.len() < head_len + wanted {
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        thread::sleep(delay);
        let _ = stream.write_all(&response);
        String::from_utf8_lossy(&seen).into_owned()
    });
    (url, handle)
}

fn response(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nRetry-After: 7\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn request(method: &'static str, url: String, body: Option<&str>) -> OutboundRequest {
    OutboundRequest {
        method,
        url,
        headers: vec![("Authorization".into(), "JWT abc".into())],
        body: body.map(|b| b.as_bytes().to_vec()),
    }
}

/// The backend, driven to completion on the test's thread.
struct Blocking(RealHttp);

impl Blocking {
    fn send(&self, request: &OutboundRequest) -> HttpResult {
        pollster::block_on(self.0.send(request.clone()))
    }
}

fn backend(timeout_ms: u64, max: u64) -> Blocking {
    Blocking(RealHttp::new(HttpLimits {
        timeout: Duration::from_millis(timeout_ms),
        max_response_bytes: max,
    }))
}

#[test]
fn sends_headers_and_body_and_returns_status_headers_and_body() {
    let (url, server) = serve_once(
        response("429 Too Many Requests", r#"{"a":1}"#),
        Duration::ZERO,
    );
    let answer = backend(5_000, 1024)
        .send(&request(
            "PUT",
            format!("{url}/rest/api/2/issue/A-1/assignee"),
            Some(r#"{"accountId":null}"#),
        ))
        .unwrap();
    assert_eq!(answer.status, 429, "a 429 is a response, not an error");
    assert_eq!(answer.body, br#"{"a":1}"#);
    assert!(
        answer
            .headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("retry-after") && v == "7")
    );
    let seen = server.join().unwrap();
    assert!(
        seen.starts_with("PUT /rest/api/2/issue/A-1/assignee HTTP/1.1"),
        "{seen}"
    );
    assert!(
        seen.to_ascii_lowercase().contains("authorization: jwt abc"),
        "{seen}"
    );
    assert!(seen.ends_with(r#"{"accountId":null}"#), "{seen}");
}

#[test]
fn oversized_bodies_are_refused() {
    let big = "x".repeat(4096);
    let (url, server) = serve_once(response("200 OK", &big), Duration::ZERO);
    let err = backend(5_000, 1024)
        .send(&request("GET", format!("{url}/big"), None))
        .unwrap_err();
    assert!(matches!(err, HttpError::ResponseTooLarge(1024)), "{err:?}");
    server.join().unwrap();
}

#[test]
fn slow_answers_time_out() {
    let (url, server) = serve_once(response("200 OK", "{}"), Duration::from_millis(1500));
    let err = backend(200, 1024)
        .send(&request("GET", format!("{url}/slow"), None))
        .unwrap_err();
    assert!(matches!(err, HttpError::Timeout), "{err:?}");
    server.join().unwrap();
}

#[test]
fn refused_connections_are_connection_errors() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = backend(2_000, 1024)
        .send(&request("GET", format!("http://127.0.0.1:{port}/"), None))
        .unwrap_err();
    assert!(matches!(err, HttpError::Connection(_)), "{err:?}");
}

#[test]
fn redirects_are_not_followed() {
    let redirect = b"HTTP/1.1 302 Found\r\nLocation: http://example.invalid/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec();
    let (url, server) = serve_once(redirect, Duration::ZERO);
    let answer = backend(2_000, 1024)
        .send(&request("GET", format!("{url}/r"), None))
        .unwrap();
    assert_eq!(answer.status, 302);
    server.join().unwrap();
}
