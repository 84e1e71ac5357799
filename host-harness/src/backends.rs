//! What the imports are implemented over. Each backend is a small trait so that an embedding
//! platform plugs in its own store, cache, clock or HTTP client; the in-memory ones serve tests,
//! scenarios and the CLI.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::bindings::jira_sync::plugin::http::Error as HttpError;
use crate::bindings::jira_sync::plugin::types::Installation;
use crate::limits::Limits;

/// A request the guest asked the host to send, after the sandbox allowed it.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub trait HttpBackend: Send + Sync {
    fn send(&self, request: &OutboundRequest) -> Result<OutboundResponse, HttpError>;
}

pub trait CacheBackend: Send + Sync {
    fn get(&self, key: &str, now: u64) -> Option<String>;
    fn set(&self, key: &str, value: &str, ttl_seconds: u32, now: u64);
    fn delete(&self, key: &str);
}

pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
    fn sleep(&self, seconds: u32);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatus {
    Unresolved,
    Resolved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Group {
    pub status: GroupStatus,
    pub assignee: Option<u64>,
}

/// The platform's own records: installations, groups, their links to Jira issues, users.
pub trait Platform: Send + Sync {
    /// The installation, with what one call for it may consume (host-side only).
    fn installation(&self, client_key: &str) -> Option<(Installation, Limits)>;
    fn linked_groups(&self, client_key: &str, issue_key: &str) -> Vec<u64>;
    /// The user whose verified email is `email`, compared case-insensitively.
    fn user_by_email(&self, email: &str) -> Option<u64>;
    fn set_assignee(&self, group: u64, user: Option<u64>);
    fn set_status(&self, group: u64, status: GroupStatus);
    fn group(&self, group: u64) -> Option<Group>;
    /// The (client key, issue key) pairs `group` is linked to.
    fn links_of_group(&self, group: u64) -> Vec<(String, String)>;
    /// The verified emails of `user`.
    fn user_emails(&self, user: u64) -> Vec<String>;
}

/// Jira deliveries already handled, and the last `updated` applied per issue (SPEC 7).
pub trait DeliveryLog: Send + Sync {
    fn seen(&self, client_key: &str, id: &str) -> bool;
    fn mark_seen(&self, client_key: &str, id: &str);
    fn last_applied(&self, client_key: &str, issue_key: &str) -> Option<i64>;
    fn set_last_applied(&self, client_key: &str, issue_key: &str, updated_ms: i64);
}

/// The backends one call runs against; cheap to clone and shared across threads.
#[derive(Clone)]
pub struct Backends {
    pub http: Arc<dyn HttpBackend>,
    pub cache: Arc<dyn CacheBackend>,
    pub platform: Arc<dyn Platform>,
    pub deliveries: Arc<dyn DeliveryLog>,
    pub clock: Arc<dyn Clock>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these maps half-updated: every update is one insert.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A cache whose entries expire on the clock the caller passes in.
#[derive(Default)]
pub struct MemoryCache {
    entries: Mutex<BTreeMap<String, (String, u64)>>,
}

impl CacheBackend for MemoryCache {
    fn get(&self, key: &str, now: u64) -> Option<String> {
        let mut entries = lock(&self.entries);
        match entries.get(key) {
            Some((value, expires)) if *expires > now => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn set(&self, key: &str, value: &str, ttl_seconds: u32, now: u64) {
        lock(&self.entries).insert(
            key.to_owned(),
            (value.to_owned(), now + u64::from(ttl_seconds)),
        );
    }

    fn delete(&self, key: &str) {
        lock(&self.entries).remove(key);
    }
}

/// The machine's clock; `sleep` really sleeps, capped so that a hostile `Retry-After` cannot
/// park a worker for long.
pub struct SystemClock {
    pub max_sleep: std::time::Duration,
}

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn sleep(&self, seconds: u32) {
        std::thread::sleep(std::time::Duration::from_secs(u64::from(seconds)).min(self.max_sleep));
    }
}

/// A clock that moves only when told to; `sleep` advances it, so retries replay instantly.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(now: u64) -> Self {
        ManualClock(AtomicU64::new(now))
    }

    pub fn advance(&self, seconds: u64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    fn sleep(&self, seconds: u32) {
        self.advance(u64::from(seconds));
    }
}

/// The platform's records in memory.
#[derive(Default)]
pub struct MemoryPlatform {
    installations: Mutex<BTreeMap<String, Installation>>,
    links: Mutex<BTreeMap<(String, String), Vec<u64>>>,
    users: Mutex<Vec<(String, u64)>>,
    groups: Mutex<BTreeMap<u64, Group>>,
    delivered: Mutex<BTreeSet<(String, String)>>,
    applied: Mutex<BTreeMap<(String, String), i64>>,
    limits: Mutex<BTreeMap<String, Limits>>,
}

impl MemoryPlatform {
    pub fn add_installation(&self, installation: Installation) {
        lock(&self.installations).insert(installation.client_key.clone(), installation);
    }

    /// Links `groups` to `issue_key`; unknown groups start unresolved and unassigned.
    pub fn link(&self, client_key: &str, issue_key: &str, groups: &[u64]) {
        let mut known = lock(&self.groups);
        for group in groups {
            known.entry(*group).or_insert(Group {
                status: GroupStatus::Unresolved,
                assignee: None,
            });
        }
        lock(&self.links)
            .entry((client_key.to_owned(), issue_key.to_owned()))
            .or_default()
            .extend_from_slice(groups);
    }

    pub fn set_limits(&self, client_key: &str, limits: Limits) {
        lock(&self.limits).insert(client_key.to_owned(), limits);
    }

    pub fn add_user(&self, email: &str, id: u64) {
        lock(&self.users).push((email.to_owned(), id));
    }

    pub fn put_group(&self, id: u64, group: Group) {
        lock(&self.groups).insert(id, group);
    }

    pub fn groups(&self) -> BTreeMap<u64, Group> {
        lock(&self.groups).clone()
    }
}

impl Platform for MemoryPlatform {
    fn installation(&self, client_key: &str) -> Option<(Installation, Limits)> {
        let installation = lock(&self.installations).get(client_key).cloned()?;
        let limits = lock(&self.limits)
            .get(client_key)
            .copied()
            .unwrap_or_default();
        Some((installation, limits))
    }

    fn linked_groups(&self, client_key: &str, issue_key: &str) -> Vec<u64> {
        lock(&self.links)
            .get(&(client_key.to_owned(), issue_key.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    fn user_by_email(&self, email: &str) -> Option<u64> {
        lock(&self.users)
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(email))
            .map(|(_, id)| *id)
    }

    fn set_assignee(&self, group: u64, user: Option<u64>) {
        if let Some(g) = lock(&self.groups).get_mut(&group) {
            g.assignee = user;
        }
    }

    fn set_status(&self, group: u64, status: GroupStatus) {
        if let Some(g) = lock(&self.groups).get_mut(&group) {
            g.status = status;
        }
    }

    fn group(&self, group: u64) -> Option<Group> {
        lock(&self.groups).get(&group).copied()
    }

    fn links_of_group(&self, group: u64) -> Vec<(String, String)> {
        lock(&self.links)
            .iter()
            .filter(|(_, groups)| groups.contains(&group))
            .map(|(link, _)| link.clone())
            .collect()
    }

    fn user_emails(&self, user: u64) -> Vec<String> {
        lock(&self.users)
            .iter()
            .filter(|(_, id)| *id == user)
            .map(|(email, _)| email.clone())
            .collect()
    }
}

impl DeliveryLog for MemoryPlatform {
    fn seen(&self, client_key: &str, id: &str) -> bool {
        lock(&self.delivered).contains(&(client_key.to_owned(), id.to_owned()))
    }

    fn mark_seen(&self, client_key: &str, id: &str) {
        lock(&self.delivered).insert((client_key.to_owned(), id.to_owned()));
    }

    fn last_applied(&self, client_key: &str, issue_key: &str) -> Option<i64> {
        lock(&self.applied)
            .get(&(client_key.to_owned(), issue_key.to_owned()))
            .copied()
    }

    fn set_last_applied(&self, client_key: &str, issue_key: &str, updated_ms: i64) {
        lock(&self.applied).insert((client_key.to_owned(), issue_key.to_owned()), updated_ms);
    }
}
