//! The guest's cache in Redis, shared by every server of a deployment (docs/decisions/0009):
//! a user lookup one server cached answers the next webhook on another.
//!
//! Expiry is Redis's own (`SET … EX`), so entries leave without anyone reading them; the host
//! clock's `now` that the trait passes is not needed (a test that moves a manual clock does not
//! expire Redis entries). Keys arrive namespaced per installation by the imports; this backend
//! puts its deployment prefix in front.
//!
//! The connections are a fixed set of redis-rs `ConnectionManager`s taken in turn: each one
//! multiplexes any number of requests over one socket and reconnects after a failure, so the
//! set is a bounded pool without a checkout round trip (deadpool-redis pings on every
//! checkout, which doubled the round trips of a cache read).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{BackendError, BackendResult, BoxFuture, CacheBackend};

/// How long one command may take before the call that issued it fails: a stalled Redis must
/// fail a call (the queue retries it), never hang it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The cache in Redis.
pub struct RedisCache {
    connections: Vec<ConnectionManager>,
    next: AtomicUsize,
    prefix: String,
}

impl RedisCache {
    /// Connects `connections` (at least one) to the Redis at `url`, every key under `prefix`.
    /// Fails at once when Redis does not answer, so that a wrong URL stops a server at start.
    pub async fn connect(url: &str, prefix: &str, connections: usize) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("read the Redis URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            // Reconnects happen in the background; a call meanwhile fails rather than waits.
            .set_number_of_retries(1);
        let mut managers = Vec::with_capacity(connections.max(1));
        for _ in 0..connections.max(1) {
            let mut manager = ConnectionManager::new_with_config(client.clone(), config.clone())
                .await
                .context("connect to Redis")?;
            let _: String = redis::cmd("PING")
                .query_async(&mut manager)
                .await
                .context("Redis did not answer PING")?;
            managers.push(manager);
        }
        Ok(RedisCache {
            connections: managers,
            next: AtomicUsize::new(0),
            prefix: prefix.to_owned(),
        })
    }

    /// The next connection, in turn.
    fn connection(&self) -> ConnectionManager {
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        self.connections[turn].clone()
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// A failed command as the backend error a call ends with.
fn failed(what: &'static str) -> impl Fn(redis::RedisError) -> BackendError {
    move |e| BackendError(format!("redis: {what}: {e}"))
}

impl CacheBackend for RedisCache {
    fn get<'a>(&'a self, key: &'a str, _now: u64) -> BoxFuture<'a, BackendResult<Option<String>>> {
        Box::pin(async move {
            redis::cmd("GET")
                .arg(self.key(key))
                .query_async(&mut self.connection())
                .await
                .map_err(failed("get"))
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl_seconds: u32,
        _now: u64,
    ) -> BoxFuture<'a, BackendResult<()>> {
        Box::pin(async move {
            let command = if ttl_seconds == 0 {
                // Expired at once, as in memory: whatever was stored before is gone too (Redis
                // refuses `EX 0`).
                redis::cmd("DEL").arg(self.key(key)).to_owned()
            } else {
                redis::cmd("SET")
                    .arg(self.key(key))
                    .arg(value)
                    .arg("EX")
                    .arg(ttl_seconds)
                    .to_owned()
            };
            command
                .query_async::<()>(&mut self.connection())
                .await
                .map_err(failed("set"))
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, BackendResult<()>> {
        Box::pin(async move {
            redis::cmd("DEL")
                .arg(self.key(key))
                .query_async::<()>(&mut self.connection())
                .await
                .map_err(failed("delete"))
        })
    }
}
