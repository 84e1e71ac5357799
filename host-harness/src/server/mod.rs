//! `jira-sync-host serve`: Jira's webhooks over real HTTP into the component, and an admin API
//! through which the platform resolves, unresolves and assigns its groups (the outbound sync).
//!
//! - `config.rs`: the TOML configuration;
//! - `admin.rs`: the admin API and the outbound pushes it triggers.
//!
//! The server sits on top of the runtime; nothing below it knows it exists.

mod admin;
mod config;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::backends::{Backends, HttpBackend, MemoryCache, SqliteStore, SystemClock};
use crate::http_io;
use crate::imports::record::{CallRecord, body_value};
use crate::runtime::Runtime;
use crate::wit::exports::jira_sync::plugin::webhook;

pub use config::ServerConfig;

/// Largest webhook or admin body the server reads.
pub const MAX_REQUEST_BYTES: u64 = 1024 * 1024;

/// One call into the component, as the server saw it.
#[derive(Debug, Clone)]
pub struct CallEvent {
    /// When the call started.
    pub at: Instant,
    /// How long the call took.
    pub elapsed: Duration,
    /// What caused the call, e.g. `webhook sim-3` or `resolve group 1`.
    pub trigger: String,
    /// The webhook's answer or the outbound call's outcome.
    pub result: Value,
    /// Everything the call did through the imports.
    pub record: CallRecord,
}

struct Context {
    runtime: Arc<Runtime>,
    backends: Backends,
    store: Arc<SqliteStore>,
    events: Option<Mutex<Sender<CallEvent>>>,
    admin_token: Option<String>,
}

/// A running server; stops and joins its workers on drop.
pub struct Server {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts serving on `config.listen` (port 0 picks a free one).
    pub fn start(
        config: &ServerConfig,
        runtime: Arc<Runtime>,
        store: Arc<SqliteStore>,
        http: Arc<dyn HttpBackend>,
        events: Option<Sender<CallEvent>>,
    ) -> anyhow::Result<Self> {
        config.check()?;
        let server = tiny_http::Server::http(&config.listen)
            .map_err(|e| anyhow::anyhow!("listen on {}: {e}", config.listen))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| anyhow::anyhow!("{} is not an IP address", config.listen))?;
        let backends = Backends {
            http,
            cache: Arc::new(MemoryCache::default()),
            platform: store.clone(),
            clock: Arc::new(SystemClock {
                max_sleep: Duration::from_secs(config.max_sleep_seconds),
            }),
        };
        let context = Arc::new(Context {
            runtime,
            backends,
            store,
            events: events.map(Mutex::new),
            admin_token: config.admin_token.clone(),
        });
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..config.workers)
            .map(|_| {
                let (server, context, stop) = (server.clone(), context.clone(), stop.clone());
                thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        match server.recv() {
                            Ok(request) => respond(&context, request),
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        Ok(Server {
            addr,
            server,
            stop,
            threads,
        })
    }

    /// The server's base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for _ in &self.threads {
            self.server.unblock();
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn respond(context: &Context, mut request: tiny_http::Request) {
    let incoming = http_io::read(&mut request, MAX_REQUEST_BYTES);
    let json_reply = |status: u16, answer: Value| {
        (
            status,
            vec![("Content-Type".to_owned(), "application/json".to_owned())],
            answer.to_string().into_bytes(),
        )
    };
    let path = incoming.path.as_str();
    let (status, headers, body) = if incoming.unreadable {
        json_reply(400, json!({"error": "could not read the request body"}))
    } else if incoming.too_large {
        json_reply(413, json!({"error": "request body too large"}))
    } else if path.starts_with("/extensions/jira/") {
        let request = webhook::Request {
            method: incoming.method.clone(),
            path: incoming.path.clone(),
            query: incoming.query.clone(),
            headers: incoming.headers.clone(),
            body: incoming.body.clone(),
        };
        let response = handle_webhook(context, &request);
        (response.status, response.headers, response.body)
    } else if path.starts_with("/admin/") {
        if admin::allowed(context, &incoming.headers) {
            let (status, answer) = admin::handle(context, &incoming.method, path, &incoming.body);
            json_reply(status, answer)
        } else {
            json_reply(401, json!({"error": "the admin API needs the admin token"}))
        }
    } else if path == "/healthz" {
        json_reply(200, json!({"ok": true}))
    } else {
        json_reply(404, json!({"error": "not found"}))
    };
    http_io::reply(request, status, headers, body);
}

/// Logs the call (and the guest's own log lines) for operators, and hands it to the listener.
fn emit(context: &Context, trigger: String, started: Instant, result: Value, record: CallRecord) {
    tracing::info!(
        target: "jira_sync::server",
        %trigger,
        elapsed_us = started.elapsed().as_micros() as u64,
        http = record.http.len(),
        %result,
        "component call"
    );
    for refusal in &record.refusals {
        tracing::warn!(target: "jira_sync::sandbox", %trigger, %refusal, "refused");
    }
    for line in &record.logs {
        let fields = Value::Object(line.fields.clone());
        match line.level {
            "error" => tracing::error!(target: "jira_sync::guest", event = %line.event, %fields),
            "warn" => tracing::warn!(target: "jira_sync::guest", event = %line.event, %fields),
            "info" => tracing::info!(target: "jira_sync::guest", event = %line.event, %fields),
            _ => tracing::debug!(target: "jira_sync::guest", event = %line.event, %fields),
        }
    }
    if let Some(events) = &context.events
        && let Ok(events) = events.lock()
    {
        let _ = events.send(CallEvent {
            at: started,
            elapsed: started.elapsed(),
            trigger,
            result,
            record,
        });
    }
}

fn handle_webhook(context: &Context, request: &webhook::Request) -> webhook::Response {
    let started = Instant::now();
    let call = context.runtime.webhook(&context.backends, request);
    let delivery = request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-atlassian-webhook-identifier"))
        .map_or("without identifier", |(_, v)| v.as_str());
    let response = call.result.unwrap_or_else(|trap| webhook::Response {
        status: 500,
        headers: Vec::new(),
        body: json!({"error": format!("the component failed: {trap}")})
            .to_string()
            .into_bytes(),
    });
    emit(
        context,
        format!("webhook {delivery}"),
        started,
        json!({"status": response.status, "body": body_value(&response.body)}),
        call.record,
    );
    response
}
