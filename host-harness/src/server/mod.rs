//! `jira-sync-host serve`: Jira's webhooks over real HTTP into the component, and an admin API
//! through which the platform resolves, unresolves and assigns its groups (the outbound sync).
//!
//! - `transport.rs`: HTTP on tokio and hyper, with connection, time and admission bounds;
//! - `config.rs`: the TOML configuration;
//! - `admin.rs`: the admin API and the outbound pushes it triggers;
//! - `check.rs`: the mapping check's report, counted and rendered for people;
//! - `queue.rs`: accepted webhooks' work, run in the background from the durable queue;
//! - `outbox.rs`: platform → Jira pushes, retried from the outbox;
//! - `recording.rs`: recording mode, each call of an installation written as a scenario;
//! - `handshake.rs`: Connect's descriptor and lifecycle callbacks, and Forge's invocations;
//! - `oauth/`: OAuth installations' tokens refreshed and dynamic webhooks kept registered;
//! - `tenants.rs`: each installation's fair share of the workers;
//! - `metrics.rs`: the Prometheus metrics.
//!
//! The server sits on top of the runtime; nothing below it knows it exists.

mod admin;
pub mod check;
mod config;
mod handshake;
mod metrics;
mod oauth;
mod outbox;
mod queue;
mod recording;
mod tenants;
mod transport;

use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};

use crate::backends::{
    Backends, BoundedCache, CacheBackend, HttpBackend, PgStore, RedisCache, SqliteStore, Store,
    SystemClock,
};
use crate::imports::record::{CallRecord, body_value};
use crate::install::{ConnectKeys, ForgeKeys};
use crate::recording::Asked;
use crate::replay::trace;
use crate::runtime::Runtime;
use crate::wit::exports::jira_sync::plugin::webhook;
use metrics::Metrics;
use tenants::Tenants;
use transport::Bounds;

pub use config::{Database, LogFormat, ServerConfig};
pub use oauth::{OauthSettings, OauthUpkeep, Outcome, UpkeepError, Upkept};

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
    store: Arc<dyn Store>,
    events: Option<Mutex<Sender<CallEvent>>>,
    admin_token: Option<String>,
    /// One permit per worker: a component call (or an admin request) holds one while it runs.
    workers: Arc<Semaphore>,
    /// Of the workers, those background work (jobs, outbox retries) may hold at once: the rest
    /// stay free for `accept` and the admin API.
    background: Arc<Semaphore>,
    /// Per installation, the workers its jobs may hold at once.
    tenants: Tenants,
    /// The queue's in-memory side.
    queue: queue::Queue,
    /// The installations being recorded (docs/behaviour.md#12).
    recordings: Arc<recording::Recordings>,
    metrics: Metrics,
    /// Connect's and Forge's handshakes, and the keys they are verified with.
    handshakes: handshake::Handshakes,
    /// The runtime component calls and database work run on (docs/decisions/0007).
    calls: tokio::runtime::Handle,
    /// The runtime webhooks are answered on (`accept` and recording the job): a thread of its
    /// own, so that a burst of background or admin work never queues a webhook's answer (one:
    /// more threads than cores only add switches, BENCHMARKS.md).
    answers: tokio::runtime::Handle,
}

/// A running server; on shutdown (or drop) it stops accepting and lets requests in flight
/// finish within the configured grace period.
pub struct Server {
    addr: SocketAddr,
    context: Arc<Context>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    // Dropped after the transport's thread is joined: the calls in flight end with them.
    calls: Option<tokio::runtime::Runtime>,
    answers: Option<tokio::runtime::Runtime>,
}

impl Server {
    /// Starts serving on `config.listen` (port 0 picks a free one).
    pub fn start(
        config: &ServerConfig,
        runtime: Arc<Runtime>,
        store: Arc<dyn Store>,
        http: Arc<dyn HttpBackend>,
        events: Option<Sender<CallEvent>>,
    ) -> anyhow::Result<Self> {
        config.check()?;
        if let Some(capacity) = runtime.capacity()
            && capacity < config.workers
        {
            anyhow::bail!(
                "workers = {} but the runtime's instance pool has {capacity} slots: size the pool \
                 to the workers (Allocation::Pooling)",
                config.workers
            );
        }
        let listener = crate::listen::listen(&config.listen)
            .with_context(|| format!("listen on {}", config.listen))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        // Two runtimes: the transport's (accepting, reading, answering) and the calls' (the
        // component and the database, which compute or block briefly). A call waiting on Jira
        // or a `Retry-After` holds no thread (docs/decisions/0007).
        let calls = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.call_threads)
            .thread_name("jira-sync-call")
            .enable_all()
            .build()
            .context("start the calls' runtime")?;
        let answers = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("jira-sync-answer")
            .enable_all()
            .build()
            .context("start the answers' runtime")?;
        // A store of one server: what a killed predecessor held runs again now rather than
        // after its leases (docs/decisions/0008). A shared store leaves it to the leases.
        if !store.shared() {
            match calls.block_on(store.recover(outbox::now())) {
                Ok((0, 0, 0)) => {}
                Ok((jobs, pushes, claims)) => tracing::warn!(
                    target: "jira_sync::server",
                    jobs, pushes, claims, "took back the work of a server that did not stop cleanly"
                ),
                Err(e) => anyhow::bail!("recover the last run's work: {e}"),
            }
        }
        let cache: Arc<dyn CacheBackend> = match &config.cache {
            Some(url) => Arc::new(
                calls
                    .block_on(RedisCache::connect(
                        url,
                        &config.cache_prefix,
                        config.cache_connections,
                    ))
                    .with_context(|| format!("connect to the cache {}", without_password(url)))?,
            ),
            None => Arc::new(BoundedCache::new(config.cache_entries)),
        };
        let backends = Backends {
            http,
            cache,
            platform: store.clone(),
            clock: Arc::new(SystemClock {
                max_sleep: Duration::from_secs(config.max_sleep_seconds),
            }),
        };
        let (queue, writes) =
            queue::Queue::new(config.queue, Duration::from_secs(config.job_lease_seconds));
        let context = Arc::new(Context {
            runtime,
            backends,
            store,
            events: events.map(Mutex::new),
            admin_token: config.admin_token.clone(),
            workers: Arc::new(Semaphore::new(config.workers)),
            background: Arc::new(Semaphore::new((config.workers * 3 / 4).max(1))),
            tenants: Tenants::new(config.workers_per_tenant()),
            queue,
            recordings: Arc::new(recording::Recordings::new(config.recordings_path())),
            metrics: Metrics::new(),
            handshakes: handshake::Handshakes {
                public_url: config
                    .public_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{addr}")),
                app_key: config.app_key.clone(),
                app_name: config.app_name.clone(),
                skew: handshake::SKEW_SECONDS,
                connect_keys: ConnectKeys::new(&config.connect_key_server),
                forge: config
                    .forge_app_ari
                    .clone()
                    .map(|ari| (ari, ForgeKeys::new(&config.forge_jwks_url))),
            },
            calls: calls.handle().clone(),
            answers: answers.handle().clone(),
        });
        let bounds = Bounds {
            max_connections: config.max_connections,
            header_timeout: Duration::from_millis(config.header_timeout_ms),
            body_timeout: Duration::from_millis(config.body_timeout_ms),
            max_body: MAX_REQUEST_BYTES as usize,
            admitted: config.workers + config.queue,
            grace: Duration::from_millis(config.shutdown_grace_ms),
        };
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("jira-sync-server")
            .enable_all()
            .build()
            .context("start the server's runtime")?;
        calls.spawn(prune_every_hour(
            context.store.clone(),
            Duration::from_secs(config.retention_days.saturating_mul(86_400)),
        ));
        calls.spawn(outbox::retry_due(context.clone(), config.workers));
        calls.spawn(oauth::keep_up_every(
            OauthUpkeep::new(
                context.store.clone(),
                context.backends.http.clone(),
                OauthSettings::from_config(config),
            ),
            Duration::from_secs(config.oauth_interval_seconds),
        ));
        calls.spawn(queue::dispatch(context.clone()));
        answers.spawn(queue::write(context.clone(), writes));
        let (stop, stopped) = oneshot::channel();
        let shared = context.clone();
        let thread = std::thread::Builder::new()
            .name("jira-sync-serve".into())
            .spawn(move || {
                tokio.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => {
                            transport::serve(listener, context.clone(), bounds, stopped).await;
                        }
                        Err(e) => tracing::error!(target: "jira_sync::server", "listen: {e}"),
                    }
                    // Requests are answered; jobs not yet started wait in the database for the
                    // next start, and those running finish within the grace period.
                    context.queue.stop();
                    let deadline = Instant::now() + bounds.grace;
                    while context.queue.pending() > 0 && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                });
            })?;
        Ok(Server {
            addr,
            context: shared,
            stop: Some(stop),
            thread: Some(thread),
            calls: Some(calls),
            answers: Some(answers),
        })
    }

    /// The server's base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until no accepted webhook's job is running or due (retries scheduled for later
    /// do not count), at most `timeout`; whether that happened.
    pub fn wait_for_jobs(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let due = self
                .context
                .calls
                .block_on(self.context.store.jobs_due(outbox::now()));
            if self.context.queue.pending() == 0 && matches!(due, Ok(0)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops accepting, lets requests in flight finish (within the grace period), and returns.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Dropped from whatever thread stops the server, possibly inside another runtime.
        for runtime in [self.calls.take(), self.answers.take()]
            .into_iter()
            .flatten()
        {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Opens the store `config.database` names: a SQLite file of this server's (its directory
/// created), or a PostgreSQL database several servers share (migrated, pooled). Returns it and
/// where it is, for the operator (a URL without its password).
pub fn open_store(config: &ServerConfig) -> anyhow::Result<(Arc<dyn Store>, String)> {
    match config.database() {
        Database::Sqlite(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("create the data directory {}", parent.display()))?;
            }
            let store = SqliteStore::open(&path)?;
            Ok((Arc::new(store), path.display().to_string()))
        }
        Database::Postgres(url) => {
            // Migrations run on a runtime of their own; the pool makes its connections later,
            // on the runtime that uses them.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("start a runtime to migrate the database")?;
            let store = runtime.block_on(PgStore::connect(&url, config.database_connections))?;
            Ok((Arc::new(store), without_password(&url)))
        }
    }
}

/// `url` without its password, for logs and messages.
pub(crate) fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(an unreadable URL)".to_owned(),
    }
}

/// Retention: forgets handled delivery ids older than `keep` and claims whose lease ended, at
/// start and every hour.
async fn prune_every_hour(store: Arc<dyn Store>, keep: Duration) {
    let mut hourly = tokio::time::interval(Duration::from_secs(3600));
    loop {
        hourly.tick().await;
        let now = outbox::now();
        match store.prune(now.saturating_sub(keep.as_secs()), now).await {
            Ok((deliveries, claims)) => tracing::info!(
                target: "jira_sync::server",
                deliveries, claims, "pruned handled deliveries and ended claims"
            ),
            Err(e) => tracing::warn!(target: "jira_sync::server", "prune: {e}"),
        }
    }
}

/// A request as read in full by the transport.
pub(super) struct Received {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// An answer: status, headers, body.
pub(super) struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, answer: Value) -> Self {
        Reply {
            status,
            headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
            body: answer.to_string().into_bytes(),
        }
    }
}

/// The answers that need no body, no worker and no database: liveness and metrics. A server
/// whose workers are all taken still answers them.
fn immediate(context: &Context, path: &str) -> Option<Reply> {
    match path {
        "/healthz" => Some(Reply::json(200, json!({"ok": true}))),
        "/metrics" => Some({
            if let Some(statements) = context.store.statements() {
                context.metrics.database_statements(statements);
            }
            Reply {
                status: 200,
                headers: vec![(
                    "Content-Type".to_owned(),
                    "application/openmetrics-text; version=1.0.0; charset=utf-8".to_owned(),
                )],
                body: context.metrics.render().into_bytes(),
            }
        }),
        _ => None,
    }
}

/// Whether `path` is Jira's (a webhook of any kind, docs/behaviour.md#10): answered by the
/// component, on the answers' runtime.
fn is_webhook(path: &str) -> bool {
    path.starts_with("/extensions/jira/") || path.starts_with("/webhooks/")
}

/// Routes a request read in full; runs on the calls runtime.
async fn route(context: &Arc<Context>, received: &Received) -> Reply {
    let path = received.path.as_str();
    if is_webhook(path) {
        let request = webhook::Request {
            method: received.method.clone(),
            path: received.path.clone(),
            query: received.query.clone(),
            headers: received.headers.clone(),
            body: received.body.clone(),
        };
        let response = handle_webhook(context, &request).await;
        Reply {
            status: response.status,
            headers: response.headers,
            body: response.body,
        }
    } else if path.starts_with("/admin/") {
        if admin::allowed(context, &received.headers) {
            let (status, answer) =
                admin::handle(context, &received.method, path, &received.body).await;
            Reply::json(status, answer)
        } else {
            Reply::json(401, json!({"error": "the admin API needs the admin token"}))
        }
    } else if handshake::is_handshake(path) {
        handshake::handle(context, received).await
    } else if path == "/readyz" {
        // Ready when the database answers.
        match context.store.group(0).await {
            Ok(_) => Reply::json(200, json!({"ok": true})),
            Err(e) => Reply::json(503, json!({"error": e.to_string()})),
        }
    } else {
        Reply::json(404, json!({"error": "not found"}))
    }
}

/// Logs the call (and the guest's own log lines) for operators, counts it in the metrics, and
/// hands it to the listener.
fn record_call(
    context: &Context,
    kind: &'static str,
    trigger: String,
    started: Instant,
    result: Value,
    error: Option<String>,
    record: CallRecord,
) {
    context
        .metrics
        .call(kind, started.elapsed(), error.as_deref(), &record);
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

/// A webhook: `accept` verifies it and answers, or records its job in the queue and answers
/// 200 at once; the job runs in the background (`queue.rs`).
async fn handle_webhook(context: &Arc<Context>, request: &webhook::Request) -> webhook::Response {
    let started = Instant::now();
    let call = context
        .call_recorded(
            || crate::runtime::webhook_tenant(request),
            || Asked::accept(request),
            trace::accept,
            async |backends| context.runtime.accept(backends, request).await,
        )
        .await;
    let delivery = request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-atlassian-webhook-identifier"))
        .map_or("without identifier", |(_, v)| v.as_str());
    let error = call.result.as_ref().err().map(ToString::to_string);
    let response = match call.result {
        Ok(webhook::Acceptance::Answered(response)) => response,
        Ok(webhook::Acceptance::Queued(job)) => match queue::enqueue(context, job).await {
            Ok(()) => webhook::Response {
                status: 200,
                headers: Vec::new(),
                body: Vec::new(),
            },
            // Not recorded: Jira keeps the delivery and retries it.
            Err(e) => unavailable(&format!("the delivery could not be queued: {e}")),
        },
        Err(e) => webhook::Response {
            status: 500,
            headers: Vec::new(),
            body: json!({"error": format!("the component failed: {e}")})
                .to_string()
                .into_bytes(),
        },
    };
    context.metrics.webhook(response.status);
    record_call(
        context,
        "accept",
        format!("webhook {delivery}"),
        started,
        json!({"status": response.status, "body": body_value(&response.body)}),
        error,
        call.record,
    );
    response
}

/// 503 with `Retry-After`, for a delivery Jira should send again shortly.
fn unavailable(why: &str) -> webhook::Response {
    webhook::Response {
        status: 503,
        headers: vec![
            ("Retry-After".into(), "10".into()),
            ("Content-Type".into(), "application/json".into()),
        ],
        body: json!({"error": why}).to_string().into_bytes(),
    }
}
