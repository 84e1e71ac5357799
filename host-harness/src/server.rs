//! `jira-sync-host serve`: Jira's webhooks over real HTTP into the component, and an admin API
//! through which the platform resolves, unresolves and assigns its groups (the outbound sync).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::backends::{Backends, GroupStatus, HttpBackend, MemoryCache, Platform, SystemClock};
use crate::bindings::exports::jira_sync::plugin::{outbound, webhook};
use crate::host::{CallRecord, body_value};
use crate::incoming;
use crate::outcome;
use crate::runtime::Runtime;
use crate::scenario::InstallationSpec;
use crate::store::SqliteStore;

/// Largest webhook or admin body the server reads.
pub const MAX_REQUEST_BYTES: u64 = 1024 * 1024;

/// `serve`'s configuration (a TOML file; every key optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// The SQLite file that keeps the server's state.
    pub database: PathBuf,
    /// A component other than the bundled one.
    pub component: Option<PathBuf>,
    /// Threads serving requests (each call gets its own instance).
    pub workers: usize,
    /// Timeout of one request to Jira.
    pub http_timeout_ms: u64,
    /// Largest Jira response body accepted.
    pub max_response_bytes: u64,
    /// Longest single `Retry-After` wait the host honours.
    pub max_sleep_seconds: u64,
    /// Where the precompiled component is kept between starts.
    pub cache_dir: PathBuf,
    /// When set, `/admin/*` requires `Authorization: Bearer <admin_token>`.
    pub admin_token: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            database: "jira-sync.db".into(),
            component: None,
            workers: 4,
            http_timeout_ms: 10_000,
            max_response_bytes: 1024 * 1024,
            max_sleep_seconds: 30,
            cache_dir: "jira-sync-cache".into(),
            admin_token: None,
        }
    }
}

impl ServerConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{} is not a valid config", path.display()))
    }
}

/// One call into the component, as the server saw it.
#[derive(Debug, Clone)]
pub struct CallEvent {
    /// When the call started.
    pub at: Instant,
    pub elapsed: Duration,
    /// What caused the call, e.g. `webhook sim-3` or `resolve group 1`.
    pub trigger: String,
    /// The webhook's answer or the outbound call's outcome.
    pub result: Value,
    pub record: CallRecord,
}

struct Context {
    runtime: Arc<Runtime>,
    backends: Backends,
    store: Arc<SqliteStore>,
    events: Option<Mutex<Sender<CallEvent>>>,
    admin_token: Option<String>,
}

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
            deliveries: store.clone(),
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
        let threads = (0..config.workers.max(1))
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
    let incoming = incoming::read(&mut request, MAX_REQUEST_BYTES);
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
        if admin_allowed(context, &incoming.headers) {
            let (status, answer) = admin(context, &incoming.method, path, &incoming.body);
            json_reply(status, answer)
        } else {
            json_reply(401, json!({"error": "the admin API needs the admin token"}))
        }
    } else if path == "/healthz" {
        json_reply(200, json!({"ok": true}))
    } else {
        json_reply(404, json!({"error": "not found"}))
    };
    incoming::reply(request, status, headers, body);
}

fn admin_allowed(context: &Context, headers: &[(String, String)]) -> bool {
    let Some(token) = &context.admin_token else {
        return true;
    };
    headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("authorization")
            && value.strip_prefix("Bearer ") == Some(token.as_str())
    })
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    client_key: String,
    issue_key: String,
    groups: Vec<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    id: u64,
    email: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    user: u64,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, (u16, Value)> {
    serde_json::from_slice(body).map_err(|e| (400, json!({"error": e.to_string()})))
}

/// The platform's side: set up installations, links and users; change groups and push the
/// change to every linked Jira issue.
fn admin(context: &Context, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let stored = |result: anyhow::Result<()>| match result {
        Ok(()) => (200, json!({"ok": true})),
        Err(e) => (500, json!({"error": format!("{e:#}")})),
    };
    let result = match (method, &segments[..]) {
        ("POST", ["admin", "installations"]) => parse::<InstallationSpec>(body)
            .map(|spec| stored(context.store.add_installation(&spec))),
        ("POST", ["admin", "links"]) => parse::<LinkBody>(body).map(|link| {
            stored(
                context
                    .store
                    .link(&link.client_key, &link.issue_key, &link.groups),
            )
        }),
        ("POST", ["admin", "users"]) => {
            parse::<UserBody>(body).map(|user| stored(context.store.add_user(user.id, &user.email)))
        }
        (_, ["admin", "groups", id, action @ ..]) => match id.parse::<u64>() {
            Ok(group) if context.store.group(group).is_some() => {
                group_action(context, method, group, action, body)
            }
            _ => Ok((404, json!({"error": format!("no group {id}")}))),
        },
        _ => Ok((404, json!({"error": "no such admin endpoint"}))),
    };
    result.unwrap_or_else(|error| error)
}

fn group_action(
    context: &Context,
    method: &str,
    group: u64,
    action: &[&str],
    body: &[u8],
) -> Result<(u16, Value), (u16, Value)> {
    let store = &context.store;
    let target = match (method, action) {
        ("GET", []) => return Ok((200, json!(store.group(group)))),
        ("POST", ["resolve"]) => Push::Status(true),
        ("POST", ["unresolve"]) => Push::Status(false),
        ("POST", ["assign"]) => Push::Assign(Some(parse::<AssignBody>(body)?.user)),
        ("POST", ["unassign"]) => Push::Assign(None),
        _ => return Ok((404, json!({"error": "no such group action"}))),
    };
    match target {
        Push::Status(resolved) => store.set_status(
            group,
            if resolved {
                GroupStatus::Resolved
            } else {
                GroupStatus::Unresolved
            },
        ),
        Push::Assign(user) => store.set_assignee(group, user),
    }
    let results: Vec<Value> = store
        .links_of_group(group)
        .into_iter()
        .map(|(client_key, issue_key)| {
            let started = Instant::now();
            let (trigger, result, record) = match target {
                Push::Status(resolved) => {
                    let request = outbound::StatusRequest {
                        client_key: client_key.clone(),
                        issue_key: issue_key.clone(),
                        resolved,
                        dry_run: false,
                    };
                    let call = context.runtime.sync_status(&context.backends, &request);
                    let verb = if resolved { "resolve" } else { "unresolve" };
                    let result = call
                        .result
                        .as_ref()
                        .map_or_else(|e| json!({"error": e.to_string()}), outcome::status);
                    (format!("{verb} group {group}"), result, call.record)
                }
                Push::Assign(user) => {
                    let target = match user {
                        Some(user) => outbound::AssigneeTarget::Emails(store.user_emails(user)),
                        None => outbound::AssigneeTarget::Unassign,
                    };
                    let request = outbound::AssigneeRequest {
                        client_key: client_key.clone(),
                        issue_key: issue_key.clone(),
                        target,
                        source: outbound::AssignmentSource::Platform,
                    };
                    let call = context.runtime.sync_assignee(&context.backends, &request);
                    let result = call
                        .result
                        .as_ref()
                        .map_or_else(|e| json!({"error": e.to_string()}), outcome::assignee);
                    (format!("assign group {group}"), result, call.record)
                }
            };
            emit(context, trigger, started, result.clone(), record);
            json!({"client_key": client_key, "issue_key": issue_key, "outcome": result})
        })
        .collect();
    Ok((200, json!({"group": group, "results": results})))
}

#[derive(Clone, Copy)]
enum Push {
    Status(bool),
    Assign(Option<u64>),
}
