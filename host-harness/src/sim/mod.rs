//! A Jira Cloud simulator on loopback: the REST endpoints of docs/behaviour.md#2, #3 and #1.4 with Jira's JSON
//! shapes and status codes, Connect JWT verification of every request, fault injection, and
//! signed `issue_updated` webhooks when an issue changes (`issue_deleted` and moves in
//! `issue_events.rs`). A site can also be an OAuth or Forge app's (`oauth_api.rs`) or an admin
//! webhook's (`admin_api.rs`). It also plays Atlassian's key servers, and signs lifecycle
//! callbacks and Forge invocation tokens with its own keys ([`install`]).

mod admin_api;
mod http_io;
pub mod install;
mod issue_events;
mod jira_api;
mod oauth_api;
pub mod world;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_io::Answer;

use serde::Serialize;
use serde_json::Value;

use crate::signing;
use crate::signing::SignOverrides;
pub use oauth_api::{SimOauth, SimWebhook};
pub use world::SimWorld;

/// A fault the simulator answers with instead of serving a matching request.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Method to match; any when empty.
    #[serde(default)]
    pub method: String,
    /// Matches requests whose path contains this.
    pub path_contains: String,
    /// The status answered.
    pub status: u16,
    /// Headers answered (e.g. `Retry-After`).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Body answered.
    #[serde(default)]
    pub body: String,
    /// Wait this long before answering.
    #[serde(default)]
    pub delay_ms: u64,
    /// How many matching requests get the fault (at least one).
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

/// One request the simulator served.
#[derive(Debug, Clone, Serialize)]
pub struct SimExchange {
    /// Milliseconds since the simulator started.
    pub at_ms: u64,
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// The request's raw query.
    pub query: String,
    /// The status answered.
    pub status: u16,
    /// Why the request's token was refused, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The injected fault's status, when a fault answered.
    pub fault: Option<u16>,
}

/// One webhook the simulator sent.
#[derive(Debug, Clone, Serialize)]
pub struct SimDelivery {
    /// Milliseconds since the simulator started.
    pub at_ms: u64,
    /// `X-Atlassian-Webhook-Identifier`.
    pub id: String,
    /// 0 for the first attempt, then 1, 2 for retries.
    pub attempt: u32,
    /// The issue it is about.
    pub issue_key: String,
    /// The changelog's fields.
    pub fields: Vec<String>,
    /// The app's answer, or `None` when it could not be reached.
    pub status: Option<u16>,
    /// How long the app took to answer.
    pub elapsed_ms: u64,
}

/// A webhook waiting to be sent.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Its delivery id.
    pub id: String,
    /// The JSON body.
    pub body: Value,
    /// A proof to send instead of a valid one (tests forge and tamper with it): the
    /// `Authorization` header, or an admin webhook site's `X-Hub-Signature`.
    pub authorization: Option<String>,
}

pub(crate) struct SimState {
    pub world: SimWorld,
    pub faults: Vec<Fault>,
    pub exchanges: Vec<SimExchange>,
    pub deliveries: Vec<SimDelivery>,
    pub webhook_url: Option<String>,
    pub last_updated_ms: i64,
    /// The OAuth app's side, once the site is an OAuth app's (`oauth_api.rs`).
    pub oauth: Option<oauth_api::SimOauth>,
    /// The admin webhook's side, once the site is an admin webhook's (`admin_api.rs`).
    pub admin: Option<admin_api::SimAdmin>,
}

struct Shared {
    state: Mutex<SimState>,
    /// Added to every answer to the app (not to control calls): a slow site.
    latency: Mutex<Duration>,
    pending: Mutex<usize>,
    idle: Condvar,
    started: Instant,
    next_id: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// A running simulator; stops its server and joins its sender on drop.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Serves the site's HTTP (`http_io`).
    runtime: Option<tokio::runtime::Runtime>,
    outbox: Option<Sender<Webhook>>,
    sender: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Serves `world` on a free loopback port.
    pub fn start(world: SimWorld) -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0", world)
    }

    /// Serves `world` on `listen`.
    pub fn start_on(listen: &str, world: SimWorld) -> anyhow::Result<Self> {
        let listener = crate::listen::listen(listen)
            .map_err(|e| anyhow::anyhow!("start the simulator on {listen}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| anyhow::anyhow!("start the simulator on {listen}: {e}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("jira-simulator")
            .enable_all()
            .build()
            .map_err(|e| anyhow::anyhow!("start the simulator's runtime: {e}"))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(SimState {
                world,
                faults: Vec::new(),
                exchanges: Vec::new(),
                deliveries: Vec::new(),
                webhook_url: None,
                last_updated_ms: 0,
                oauth: None,
                admin: None,
            }),
            latency: Mutex::new(Duration::ZERO),
            pending: Mutex::new(0),
            idle: Condvar::new(),
            started: Instant::now(),
            next_id: AtomicU64::new(1),
            stop: AtomicBool::new(false),
        });
        let (outbox, inbox) = mpsc::channel();
        let answer = {
            let (shared, outbox) = (shared.clone(), outbox.clone());
            Arc::new(move |incoming| answer(&shared, &outbox, incoming))
        };
        runtime.spawn(http_io::serve(listener, answer));
        let sender_shared = shared.clone();
        let sender = thread::spawn(move || deliver(&sender_shared, inbox));
        Ok(Simulator {
            addr,
            shared,
            runtime: Some(runtime),
            outbox: Some(outbox),
            sender: Some(sender),
        })
    }

    /// Answers every request of the app this much later (a slow site); control calls are
    /// answered at once.
    pub fn set_latency(&self, latency: Duration) {
        *self
            .shared
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = latency;
    }

    /// When the simulator started; `at_ms` fields count from here.
    pub fn started(&self) -> Instant {
        self.shared.started
    }

    /// The site's base URL, e.g. `http://127.0.0.1:40123`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The simulator's Connect key server, for [`crate::install::ConnectKeys::new`]: it serves
    /// the key of [`install::CONNECT_KID`].
    pub fn connect_keys_url(&self) -> String {
        format!("{}{}", self.base_url(), install::CONNECT_KEYS_PATH)
    }

    /// The simulator's Forge JWKS, for [`crate::install::ForgeKeys::new`]: it holds the key of
    /// [`install::FORGE_KID`].
    pub fn forge_jwks_url(&self) -> String {
        format!("{}{}", self.base_url(), install::JWKS_PATH)
    }

    /// Where `issue_updated` webhooks go.
    pub fn set_webhook_url(&self, url: &str) {
        self.shared.lock().webhook_url = Some(url.to_owned());
    }

    /// Answers the next matching requests with `fault`.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// Someone assigns the issue in Jira's UI (`None`: unassigns); Jira sends the webhook.
    pub fn assign(&self, issue_key: &str, account_id: Option<&str>) -> anyhow::Result<()> {
        let webhook = {
            let mut state = self.shared.lock();
            jira_api::set_assignee(&mut state, issue_key, account_id, &self.shared.next_id)
                .map_err(|a| {
                    anyhow::anyhow!(
                        "Jira answered {}: {}",
                        a.status,
                        String::from_utf8_lossy(&a.body)
                    )
                })?
        };
        if let Some(webhook) = webhook {
            self.send(webhook);
        }
        Ok(())
    }

    /// Sends a webhook as it is (e.g. a redelivery, an out-of-order pair, a tampered token).
    pub fn send(&self, webhook: Webhook) {
        *self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner()) += 1;
        if let Some(outbox) = &self.outbox {
            let _ = outbox.send(webhook);
        }
    }

    /// Blocks until every webhook queued so far was answered, or `timeout` passed.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (pending, _) = self
            .shared
            .idle
            .wait_timeout_while(pending, timeout, |n| *n > 0)
            .unwrap_or_else(|p| p.into_inner());
        *pending == 0
    }

    /// The issue as the simulator holds it now (under its key or one it had before a move).
    pub fn issue(&self, key: &str) -> Option<world::SimIssue> {
        self.shared
            .lock()
            .world
            .issues
            .iter()
            .find(|i| i.answers_to(key))
            .cloned()
    }

    /// The `issue_updated` body Jira would send now for `key` with these changelog items.
    pub fn webhook_body(&self, key: &str, items: Value) -> Option<Value> {
        let state = self.shared.lock();
        jira_api::issue_updated_body(&state, key, items)
    }

    /// Every request of the app, in order.
    pub fn exchanges(&self) -> Vec<SimExchange> {
        self.shared.lock().exchanges.clone()
    }

    /// Every webhook delivery attempt, in order.
    pub fn deliveries(&self) -> Vec<SimDelivery> {
        self.shared.lock().deliveries.clone()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.outbox = None;
        // Not waiting for the connections: a simulator may be dropped inside an async test,
        // where blocking on a runtime's shutdown is refused. The server's tasks, and with them
        // the last handles on the webhook queue, go as the runtime's threads stop.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        if let Some(sender) = self.sender.take() {
            let _ = sender.join();
        }
    }
}

/// The simulator's answer to one request, and what it sets off.
fn answer(shared: &Arc<Shared>, outbox: &Sender<Webhook>, incoming: http_io::Incoming) -> Answer {
    // The key servers stand for Atlassian, not for the site: no JWT, fault, latency or exchange
    // record.
    if let Some((status, content_type, body)) = install::serve(&incoming.method, &incoming.path) {
        return Answer {
            status,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
            then: None,
        };
    }
    let call = jira_api::Call {
        method: &incoming.method,
        path: &incoming.path,
        query: &incoming.query,
        headers: &incoming.headers,
        body: &incoming.body,
        now_ms: now_ms(),
    };
    let control = incoming.path.starts_with("/_sim/");
    let latency = if control {
        Duration::ZERO
    } else {
        *shared.latency.lock().unwrap_or_else(|p| p.into_inner())
    };
    let mut state = shared.lock();
    let answer = if control {
        jira_api::control(&mut state, &call, &shared.next_id)
    } else {
        jira_api::handle(&mut state, &call, &shared.next_id)
    };
    // Only the app's requests are exchanges; control calls stand for people and tests.
    if !control {
        state.exchanges.push(SimExchange {
            at_ms: shared.elapsed_ms(),
            method: incoming.method.clone(),
            path: incoming.path.clone(),
            query: incoming.query.clone(),
            status: answer.status,
            auth_error: answer.auth_error.clone(),
            fault: answer.fault.then_some(answer.status),
        });
    }
    drop(state);
    // Jira sends the webhooks of a change as it answers the request that made it.
    let webhooks = answer.webhooks;
    let then = (!webhooks.is_empty()).then(|| {
        let (shared, outbox) = (shared.clone(), outbox.clone());
        Box::new(move || {
            for webhook in webhooks {
                *shared.pending.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                let _ = outbox.send(webhook);
            }
        }) as Box<dyn FnOnce() + Send>
    });
    Answer {
        status: answer.status,
        headers: answer.headers,
        body: answer.body,
        delay: answer.delay + latency,
        then,
    }
}

/// Sends queued webhooks one at a time, in order, like Jira's per-site delivery; a 5xx or an
/// unreachable app is retried twice with `X-Atlassian-Webhook-Retry` counting up.
fn deliver(shared: &Shared, inbox: Receiver<Webhook>) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build(),
    );
    for webhook in inbox {
        let url = shared.lock().webhook_url.clone();
        if let Some(url) = url {
            for attempt in 0..3 {
                let started = Instant::now();
                let status = post_webhook(&agent, shared, &url, &webhook, attempt);
                let fields = webhook.body["changelog"]["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i["field"].as_str().map(str::to_owned))
                    .collect();
                shared.lock().deliveries.push(SimDelivery {
                    at_ms: shared.elapsed_ms(),
                    id: webhook.id.clone(),
                    attempt,
                    issue_key: webhook.body["issue"]["key"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    fields,
                    status,
                    elapsed_ms: started.elapsed().as_millis() as u64,
                });
                if status.is_some_and(|s| s < 500) || shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
        let mut pending = shared.pending.lock().unwrap_or_else(|p| p.into_inner());
        *pending = pending.saturating_sub(1);
        shared.idle.notify_all();
    }
}

fn post_webhook(
    agent: &ureq::Agent,
    shared: &Shared,
    url: &str,
    webhook: &Webhook,
    attempt: u32,
) -> Option<u16> {
    let parsed = url::Url::parse(url).ok()?;
    let body = webhook.body.to_string();
    let proof = {
        let state = shared.lock();
        match (
            admin_api::delivery_signature(&state, webhook, body.as_bytes()),
            &webhook.authorization,
        ) {
            // An admin webhook's delivery is proved by its body's HMAC alone.
            (Some(signature), _) => ("X-Hub-Signature", signature),
            (None, Some(given)) => ("Authorization", given.clone()),
            // An OAuth app's site signs its deliveries with the app's client secret.
            (None, None) if state.oauth.is_some() => (
                "Authorization",
                oauth_api::delivery_authorization(&state, now_ms() / 1000).unwrap_or_default(),
            ),
            (None, None) => (
                "Authorization",
                signing::authorization(
                    &state.world.installation.client_key,
                    &state.world.installation.shared_secret,
                    now_ms() / 1000,
                    ("POST", parsed.path(), parsed.query().unwrap_or("")),
                    &SignOverrides::default(),
                ),
            ),
        }
    };
    agent
        .post(url)
        .header(proof.0, &proof.1)
        .header("Content-Type", "application/json")
        .header("X-Atlassian-Webhook-Identifier", &webhook.id)
        .header("X-Atlassian-Webhook-Retry", &attempt.to_string())
        .send(body.as_bytes())
        .ok()
        .map(|r| r.status().as_u16())
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream;
    use std::sync::Barrier;

    /// Many clients connect at once and keep their connections open, as an HTTP client's pool
    /// does: each is answered. (The simulator's old HTTP library left a connection that came
    /// in a burst waiting until another closed, which here is never.)
    #[test]
    fn connections_that_arrive_at_once_and_stay_open_are_each_answered() {
        let sim = Simulator::start(SimWorld::demo()).unwrap();
        sim.set_latency(Duration::from_millis(300));
        let (clients, rounds) = (48, 4);
        // The old library lost a connection in about two bursts of three: four of them.
        for _ in 0..rounds {
            burst(sim.addr, clients);
        }
        assert_eq!(sim.exchanges().len(), clients * rounds);
    }

    /// `clients` connections at once, each asking once; all held open until all are answered.
    fn burst(addr: SocketAddr, clients: usize) {
        let (connected, answered) = (
            Arc::new(Barrier::new(clients)),
            Arc::new(Barrier::new(clients)),
        );
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                let (connected, answered) = (connected.clone(), answered.clone());
                thread::spawn(move || {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    connected.wait();
                    stream
                        .write_all(b"GET /rest/api/3/myself HTTP/1.1\r\nHost: jira\r\n\r\n")
                        .unwrap();
                    let mut status = String::new();
                    let read = BufReader::new(&stream).read_line(&mut status);
                    // Every connection stays open until every client has its answer.
                    answered.wait();
                    read.map(|_| status)
                })
            })
            .collect();
        for thread in threads {
            let status = thread.join().unwrap().expect("an answer within 10 s");
            // Unsigned, so refused: what matters is that it was answered.
            assert!(status.starts_with("HTTP/1.1 401"), "{status}");
        }
    }
}
