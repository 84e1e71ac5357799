//! What the imports are implemented over. Each capability is one small trait, so that an
//! embedding platform plugs in its own store, cache, clock or HTTP client; one file per stock
//! backend follows:
//!
//! | file | backends |
//! | --- | --- |
//! | `memory.rs` | [`MemoryCache`], [`MemoryPlatform`] |
//! | `bounded.rs` | `BoundedCache`: at most N entries, for servers (feature `bounded-cache`) |
//! | `clock.rs` | [`SystemClock`], [`ManualClock`] |
//! | `sqlite.rs` | `SqliteStore`: the platform in one SQLite file (feature `sqlite`) |
//! | `outbox.rs` | the outbox of platform → Jira pushes, in the same file (feature `sqlite`) |
//! | `queue.rs` | the queue of accepted webhooks' work, in the same file (feature `sqlite`) |
//! | `oauth_upkeep.rs` | who keeps OAuth installations' tokens up, in the same file (feature `sqlite`) |
//! | `store.rs` | [`Store`]: what a server keeps besides the platform (queue, outbox, admin) |
//! | `effects.rs` | [`Effect`]: a call's changes, and the rule every platform commits them by |
//! | `postgres.rs` | `PgStore`: platform, queue and outbox shared by servers (feature `postgres`) |
//! | `redis_cache.rs` | `RedisCache`: the cache shared by servers (feature `redis`) |
//! | `real_http.rs` | `RealHttp`: real requests with a timeout and a size cap (feature `http-client`) |
//! | `scripted.rs` | `ScriptedHttp`: Jira's answers from a script (feature `replay`) |
//!
//! This layer knows nothing of the sandbox above it: the imports call it only after the
//! sandbox's checks.

#[cfg(feature = "bounded-cache")]
mod bounded;
mod clock;
pub mod effects;
mod memory;
#[cfg(feature = "sqlite")]
mod oauth_upkeep;
#[cfg(feature = "sqlite")]
mod outbox;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod queue;
#[cfg(feature = "http-client")]
mod real_http;
#[cfg(feature = "redis")]
mod redis_cache;
#[cfg(feature = "replay")]
mod scripted;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::limits::Limits;
use crate::wit::jira_sync::plugin::deliveries::Field as DeliveryField;
use crate::wit::jira_sync::plugin::http::Error as HttpError;
use crate::wit::jira_sync::plugin::types::Installation;

#[cfg(feature = "bounded-cache")]
pub use bounded::BoundedCache;
pub use clock::{ManualClock, SystemClock};
pub use effects::{Effect, IssueField, Transaction};
pub use memory::{MemoryCache, MemoryPlatform};
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
#[cfg(feature = "http-client")]
pub use real_http::{HttpLimits, RealHttp};
#[cfg(feature = "redis")]
pub use redis_cache::RedisCache;
#[cfg(feature = "replay")]
pub use scripted::{HttpStub, MAX_SCRIPTED_BODY, Query, ScriptedHttp};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use store::{Enqueued, Finished, NewJob, Next, OauthLease, OutboxEntry, QueuedJob, Store};

/// A request the guest asked the host to send, after the sandbox allowed it.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: &'static str,
    /// The full URL, already checked against the call's egress policy.
    pub url: String,
    /// Headers as the guest set them (its Connect JWT included).
    pub headers: Vec<(String, String)>,
    /// The body, if the method has one.
    pub body: Option<Vec<u8>>,
}

/// Jira's answer to an [`OutboundRequest`].
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    /// HTTP status; a 4xx or 5xx is an answer for the guest to read, not an error.
    pub status: u16,
    /// Response headers (e.g. `Retry-After`).
    pub headers: Vec<(String, String)>,
    /// The body, at most the backend's size cap.
    pub body: Vec<u8>,
}

/// A future a backend returns; boxed, so that the traits stay object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A future already resolved: what a backend that answers at once (memory, SQLite, a script)
/// returns from its async methods.
pub fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

/// What [`HttpBackend::send`] resolves to.
pub type HttpResult = Result<OutboundResponse, HttpError>;

/// Sends the guest's requests to Jira. Async: a call waiting on Jira holds no thread. A backend
/// that answers at once (a script, a test double) returns [`ready`]`(...)`.
pub trait HttpBackend: Send + Sync {
    /// Sends one request; transport failures are the WIT's typed HTTP errors.
    fn send(&self, request: OutboundRequest) -> BoxFuture<'_, HttpResult>;
}

/// A backend that could not answer (database down, disk full, connection lost). The call that
/// met it ends with this error and none of its effects is applied (docs/behaviour.md#9).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("backend: {0}")]
pub struct BackendError(pub String);

/// What every backend method returns.
pub type BackendResult<T> = Result<T, BackendError>;

/// Short-lived values the guest keeps between calls (user lookups, status lists). Async: a
/// remote cache (Redis) answers over the network without holding a thread.
pub trait CacheBackend: Send + Sync {
    /// The value of `key` if it has not expired at `now` (Unix seconds).
    fn get<'a>(&'a self, key: &'a str, now: u64) -> BoxFuture<'a, BackendResult<Option<String>>>;
    /// Stores `value` under `key` until `now + ttl_seconds`.
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl_seconds: u32,
        now: u64,
    ) -> BoxFuture<'a, BackendResult<()>>;
    /// Drops `key`.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, BackendResult<()>>;
}

/// The host's time; the guest has no other.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
    /// Waits `seconds` (e.g. a `Retry-After`) without holding a thread; a manual clock just
    /// moves forward.
    fn sleep(&self, seconds: u32) -> BoxFuture<'_, ()>;
}

/// Whether a platform group is open or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatus {
    /// Open.
    Unresolved,
    /// Done.
    Resolved,
}

/// A platform group as the sync sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Open or done.
    pub status: GroupStatus,
    /// The platform user it is assigned to, if any.
    pub assignee: Option<u64>,
}

/// The issue field an ordering watermark belongs to: each field of an issue is ordered on its
/// own, so a late assignee change is not stale because a newer status change was applied
/// (docs/behaviour.md#7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    /// The issue's status.
    Status,
    /// The issue's assignee.
    Assignee,
}

// The one conversion that belongs to this layer rather than to `convert.rs`, which sits below
// the backends: the WIT's delivery field as the backends store it.
impl From<DeliveryField> for Field {
    fn from(field: DeliveryField) -> Self {
        match field {
            DeliveryField::Status => Field::Status,
            DeliveryField::Assignee => Field::Assignee,
        }
    }
}

impl Field {
    /// Every field, in a fixed order.
    pub const ALL: [Field; 2] = [Field::Status, Field::Assignee];

    /// The field's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Status => "status",
            Field::Assignee => "assignee",
        }
    }
}

/// The platform's own records: installations, groups, their links to Jira issues, users, and
/// the delivery log. Async, so that a networked database (PostgreSQL) waits without holding a
/// thread; a synchronous store answers with [`ready`]. A call's writes
/// arrive together, as [`Effect`]s for [`Platform::commit`].
pub trait Platform: Send + Sync {
    /// The installation, with what one call for it may consume (host-side only).
    fn installation<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<(Installation, Limits)>>>;
    /// The `Authorization` value the host adds to the guest's requests for this installation,
    /// for the kinds of credentials whose tokens the host keeps (docs/behaviour.md#10). `None`
    /// for Connect installations, whose requests the guest signs itself.
    fn outbound_authorization<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<String>>>;
    /// The groups linked to `issue_key` on this installation's site.
    fn linked_groups<'a>(
        &'a self,
        client_key: &'a str,
        issue_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Vec<u64>>>;
    /// The user whose verified email is `email`, compared case-insensitively.
    fn user_by_email<'a>(&'a self, email: &'a str) -> BoxFuture<'a, BackendResult<Option<u64>>>;
    /// The group, if it exists.
    fn group(&self, group: u64) -> BoxFuture<'_, BackendResult<Option<Group>>>;
    /// The (client key, issue key) pairs `group` is linked to.
    fn links_of_group(&self, group: u64) -> BoxFuture<'_, BackendResult<Vec<(String, String)>>>;
    /// The verified emails of `user`.
    fn user_emails(&self, user: u64) -> BoxFuture<'_, BackendResult<Vec<String>>>;
    /// Whether delivery `id` of this installation was handled.
    fn handled<'a>(
        &'a self,
        client_key: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, BackendResult<bool>>;
    /// The `updated` (ms) of the newest event applied to this field of `issue_key`.
    fn watermark<'a>(
        &'a self,
        client_key: &'a str,
        issue_key: &'a str,
        field: Field,
    ) -> BoxFuture<'a, BackendResult<Option<i64>>>;
    /// Claims delivery `id` for the call `owner` until `lease_until` (Unix seconds): atomically,
    /// so that of many copies of one delivery handled at once exactly one is claimed. A claim
    /// whose lease has run out (its server died) may be taken over.
    fn claim<'a>(
        &'a self,
        client_key: &'a str,
        id: &'a str,
        owner: u64,
        now: u64,
        lease_until: u64,
    ) -> BoxFuture<'a, BackendResult<Claim>>;
    /// Drops `owner`'s claim on delivery `id`, unless it was marked handled: the delivery is
    /// then free for Jira's retry.
    fn release<'a>(
        &'a self,
        client_key: &'a str,
        id: &'a str,
        owner: u64,
    ) -> BoxFuture<'a, BackendResult<()>>;
    /// Applies one call's `effects` in one transaction, all or nothing, by the rules of
    /// [`effects`] (a synchronous store calls [`effects::apply`] inside its transaction).
    /// Returns the fields whose changes were dropped because a newer event had already been
    /// applied to them.
    fn commit<'a>(&'a self, effects: &'a [Effect])
    -> BoxFuture<'a, BackendResult<Vec<IssueField>>>;
}

/// What became of a claim on a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the delivery now.
    Claimed,
    /// It was handled before: acknowledge it without effects.
    Handled,
    /// Another call holds it right now: ask Jira to retry later.
    InProgress,
}

/// The backends one call runs against; cheap to clone and shared across threads.
#[derive(Clone)]
pub struct Backends {
    /// Outbound HTTP to Jira.
    pub http: Arc<dyn HttpBackend>,
    /// The guest's cache.
    pub cache: Arc<dyn CacheBackend>,
    /// Installations, groups, links, users, handled deliveries and ordering watermarks.
    pub platform: Arc<dyn Platform>,
    /// The host's time.
    pub clock: Arc<dyn Clock>,
}
