//! What the imports are implemented over. Each capability is one small trait, so that an
//! embedding platform plugs in its own store, cache, clock or HTTP client; one file per stock
//! backend follows:
//!
//! | file | backends |
//! | --- | --- |
//! | `memory.rs` | [`MemoryCache`], [`MemoryPlatform`] (also a [`DeliveryLog`]) |
//! | `clock.rs` | [`SystemClock`], [`ManualClock`] |
//! | `sqlite.rs` | `SqliteStore`: platform and delivery log in one SQLite file (feature `sqlite`) |
//! | `real_http.rs` | `RealHttp`: real requests with a timeout and a size cap (feature `http-client`) |
//! | `scripted.rs` | `ScriptedHttp`: Jira's answers from a script (feature `replay`) |
//!
//! This layer knows nothing of the sandbox above it: the imports call it only after the
//! sandbox's checks.

mod clock;
mod memory;
#[cfg(feature = "http-client")]
mod real_http;
#[cfg(feature = "replay")]
mod scripted;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::sync::Arc;

use serde::Serialize;

use crate::limits::Limits;
use crate::wit::jira_sync::plugin::http::Error as HttpError;
use crate::wit::jira_sync::plugin::types::Installation;

pub use clock::{ManualClock, SystemClock};
pub use memory::{MemoryCache, MemoryPlatform};
#[cfg(feature = "http-client")]
pub use real_http::{HttpLimits, RealHttp};
#[cfg(feature = "replay")]
pub use scripted::{HttpStub, MAX_SCRIPTED_BODY, ScriptedHttp};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

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

/// Sends the guest's requests to Jira.
pub trait HttpBackend: Send + Sync {
    /// Sends one request; transport failures are the WIT's typed HTTP errors.
    fn send(&self, request: &OutboundRequest) -> Result<OutboundResponse, HttpError>;
}

/// Short-lived values the guest keeps between calls (user lookups, status lists).
pub trait CacheBackend: Send + Sync {
    /// The value of `key` if it has not expired at `now` (Unix seconds).
    fn get(&self, key: &str, now: u64) -> Option<String>;
    /// Stores `value` under `key` until `now + ttl_seconds`.
    fn set(&self, key: &str, value: &str, ttl_seconds: u32, now: u64);
    /// Drops `key`.
    fn delete(&self, key: &str);
}

/// The host's time; the guest has no other.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
    /// Waits `seconds` (e.g. a `Retry-After`); a manual clock just moves forward.
    fn sleep(&self, seconds: u32);
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

/// The platform's own records: installations, groups, their links to Jira issues, users.
pub trait Platform: Send + Sync {
    /// The installation, with what one call for it may consume (host-side only).
    fn installation(&self, client_key: &str) -> Option<(Installation, Limits)>;
    /// The groups linked to `issue_key` on this installation's site.
    fn linked_groups(&self, client_key: &str, issue_key: &str) -> Vec<u64>;
    /// The user whose verified email is `email`, compared case-insensitively.
    fn user_by_email(&self, email: &str) -> Option<u64>;
    /// Assigns `group` to `user` (`None`: unassigns it).
    fn set_assignee(&self, group: u64, user: Option<u64>);
    /// Resolves or unresolves `group`.
    fn set_status(&self, group: u64, status: GroupStatus);
    /// The group, if it exists.
    fn group(&self, group: u64) -> Option<Group>;
    /// The (client key, issue key) pairs `group` is linked to.
    fn links_of_group(&self, group: u64) -> Vec<(String, String)>;
    /// The verified emails of `user`.
    fn user_emails(&self, user: u64) -> Vec<String>;
}

/// Jira deliveries already handled, and the last `updated` applied per issue
/// (docs/behaviour.md#7).
pub trait DeliveryLog: Send + Sync {
    /// Whether delivery `id` of this installation was handled.
    fn seen(&self, client_key: &str, id: &str) -> bool;
    /// Records delivery `id` as handled.
    fn mark_seen(&self, client_key: &str, id: &str);
    /// The `updated` (ms) of the newest event applied to `issue_key`.
    fn last_applied(&self, client_key: &str, issue_key: &str) -> Option<i64>;
    /// Records `updated_ms` as the newest event applied to `issue_key`.
    fn set_last_applied(&self, client_key: &str, issue_key: &str, updated_ms: i64);
}

/// The backends one call runs against; cheap to clone and shared across threads.
#[derive(Clone)]
pub struct Backends {
    /// Outbound HTTP to Jira.
    pub http: Arc<dyn HttpBackend>,
    /// The guest's cache.
    pub cache: Arc<dyn CacheBackend>,
    /// Installations, groups, links and users.
    pub platform: Arc<dyn Platform>,
    /// Handled deliveries and ordering watermarks.
    pub deliveries: Arc<dyn DeliveryLog>,
    /// The host's time.
    pub clock: Arc<dyn Clock>,
}
