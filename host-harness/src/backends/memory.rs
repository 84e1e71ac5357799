//! The in-memory backends: a cache and the platform's records, for tests, scenarios, the
//! benchmark and embedders that keep their state elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use super::{CacheBackend, DeliveryLog, Group, GroupStatus, Platform};
use crate::limits::Limits;
use crate::wit::jira_sync::plugin::types::Installation;

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
            (value.to_owned(), now.saturating_add(u64::from(ttl_seconds))),
        );
    }

    fn delete(&self, key: &str) {
        lock(&self.entries).remove(key);
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
    /// Adds or replaces an installation.
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

    /// Sets the limits of one call for `client_key`.
    pub fn set_limits(&self, client_key: &str, limits: Limits) {
        lock(&self.limits).insert(client_key.to_owned(), limits);
    }

    /// Adds a verified email of user `id`.
    pub fn add_user(&self, email: &str, id: u64) {
        lock(&self.users).push((email.to_owned(), id));
    }

    /// Sets a group's state.
    pub fn put_group(&self, id: u64, group: Group) {
        lock(&self.groups).insert(id, group);
    }

    /// Every group, by id.
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
