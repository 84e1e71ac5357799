//! The in-memory backends: a cache and the platform's records, for tests, scenarios, the
//! benchmark and embedders that keep their state elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use super::effects::{self, Effect, IssueField};
use super::{
    BackendResult, BoxFuture, CacheBackend, Claim, Field, Group, GroupStatus, Platform,
    Transaction, ready,
};
use crate::limits::Limits;
use crate::wit::jira_sync::plugin::types::Installation;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave the state half-updated: a transaction swaps in a whole new
    // state or nothing, and every other write is one insert.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A cache whose entries expire on the clock the caller passes in.
#[derive(Default)]
pub struct MemoryCache {
    entries: Mutex<BTreeMap<String, (String, u64)>>,
}

impl MemoryCache {
    /// The value of `key` if it has not expired at `now`.
    pub fn get(&self, key: &str, now: u64) -> Option<String> {
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

    /// Stores `value` under `key` until `now + ttl_seconds`.
    pub fn set(&self, key: &str, value: &str, ttl_seconds: u32, now: u64) {
        lock(&self.entries).insert(
            key.to_owned(),
            (value.to_owned(), now.saturating_add(u64::from(ttl_seconds))),
        );
    }
}

impl CacheBackend for MemoryCache {
    fn get<'a>(&'a self, key: &'a str, now: u64) -> BoxFuture<'a, BackendResult<Option<String>>> {
        ready(Ok(MemoryCache::get(self, key, now)))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl_seconds: u32,
        now: u64,
    ) -> BoxFuture<'a, BackendResult<()>> {
        MemoryCache::set(self, key, value, ttl_seconds, now);
        ready(Ok(()))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, BackendResult<()>> {
        lock(&self.entries).remove(key);
        ready(Ok(()))
    }
}

type Key = (String, String);

/// Everything the platform holds, behind one lock so that a transaction is atomic.
#[derive(Debug, Clone, Default)]
struct State {
    installations: BTreeMap<String, Installation>,
    limits: BTreeMap<String, Limits>,
    /// What the host adds to the guest's requests, per installation (docs/behaviour.md#10).
    authorizations: BTreeMap<String, String>,
    links: BTreeMap<Key, Vec<u64>>,
    users: Vec<(String, u64)>,
    groups: BTreeMap<u64, Group>,
    handled: BTreeSet<Key>,
    /// Deliveries being handled: owner and lease end (Unix seconds).
    claims: BTreeMap<Key, (u64, u64)>,
    watermarks: BTreeMap<(String, String, Field), i64>,
}

fn key(a: &str, b: &str) -> Key {
    (a.to_owned(), b.to_owned())
}

/// The platform's records in memory.
#[derive(Default)]
pub struct MemoryPlatform {
    state: Mutex<State>,
}

impl MemoryPlatform {
    /// Adds or replaces an installation.
    pub fn add_installation(&self, installation: Installation) {
        lock(&self.state)
            .installations
            .insert(installation.client_key.clone(), installation);
    }

    /// Links `groups` to `issue_key`; unknown groups start unresolved and unassigned.
    pub fn link(&self, client_key: &str, issue_key: &str, groups: &[u64]) {
        let mut state = lock(&self.state);
        for group in groups {
            state.groups.entry(*group).or_insert(Group {
                status: GroupStatus::Unresolved,
                assignee: None,
            });
        }
        state
            .links
            .entry(key(client_key, issue_key))
            .or_default()
            .extend_from_slice(groups);
    }

    /// Sets the `Authorization` the host adds to the guest's requests for `client_key`, an
    /// installation whose credentials the host keeps (docs/behaviour.md#10).
    pub fn set_outbound_authorization(&self, client_key: &str, authorization: &str) {
        lock(&self.state)
            .authorizations
            .insert(client_key.to_owned(), authorization.to_owned());
    }

    /// Sets the limits of one call for `client_key`.
    pub fn set_limits(&self, client_key: &str, limits: Limits) {
        lock(&self.state)
            .limits
            .insert(client_key.to_owned(), limits);
    }

    /// Adds a verified email of user `id`.
    pub fn add_user(&self, email: &str, id: u64) {
        lock(&self.state).users.push((email.to_owned(), id));
    }

    /// Sets a group's state.
    pub fn put_group(&self, id: u64, group: Group) {
        lock(&self.state).groups.insert(id, group);
    }

    /// Every group, by id.
    pub fn groups(&self) -> BTreeMap<u64, Group> {
        lock(&self.state).groups.clone()
    }

    /// The group, if it exists (memory never fails, so tests read it plainly).
    pub fn group(&self, group: u64) -> Option<Group> {
        lock(&self.state).groups.get(&group).copied()
    }

    /// Whether delivery `id` of this installation was handled.
    pub fn handled(&self, client_key: &str, id: &str) -> bool {
        lock(&self.state).handled.contains(&key(client_key, id))
    }

    /// The field's watermark.
    pub fn watermark(&self, client_key: &str, issue_key: &str, field: Field) -> Option<i64> {
        lock(&self.state)
            .watermarks
            .get(&(client_key.to_owned(), issue_key.to_owned(), field))
            .copied()
    }
}

impl MemoryPlatform {
    /// Claims delivery `id` for `owner` (see [`Platform::claim`]); memory never fails.
    pub fn claim(
        &self,
        client_key: &str,
        id: &str,
        owner: u64,
        now: u64,
        lease_until: u64,
    ) -> Claim {
        let mut state = lock(&self.state);
        let delivery = key(client_key, id);
        if state.handled.contains(&delivery) {
            return Claim::Handled;
        }
        match state.claims.get(&delivery) {
            Some((holder, until)) if *holder != owner && *until > now => Claim::InProgress,
            _ => {
                state.claims.insert(delivery, (owner, lease_until));
                Claim::Claimed
            }
        }
    }

    /// Applies `effects` at once (see [`Platform::commit`]), e.g. to set up a replay's state.
    pub fn commit_now(&self, effects: &[Effect]) -> BackendResult<Vec<IssueField>> {
        let mut state = lock(&self.state);
        // Work on a copy and swap it in whole: a failure leaves the state as it was.
        let mut draft = state.clone();
        let superseded = effects::apply(&mut draft, effects)?;
        *state = draft;
        Ok(superseded)
    }
}

impl Platform for MemoryPlatform {
    fn installation<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<(Installation, Limits)>>> {
        let state = lock(&self.state);
        ready(Ok(state.installations.get(client_key).map(
            |installation| {
                let limits = state.limits.get(client_key).copied().unwrap_or_default();
                (installation.clone(), limits)
            },
        )))
    }

    fn outbound_authorization<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<String>>> {
        ready(Ok(lock(&self.state)
            .authorizations
            .get(client_key)
            .cloned()))
    }

    fn linked_groups<'a>(
        &'a self,
        client_key: &'a str,
        issue_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Vec<u64>>> {
        // Sorted and once each, as a database's `ORDER BY` answers.
        let mut groups = lock(&self.state)
            .links
            .get(&key(client_key, issue_key))
            .cloned()
            .unwrap_or_default();
        groups.sort_unstable();
        groups.dedup();
        ready(Ok(groups))
    }

    fn user_by_email<'a>(&'a self, email: &'a str) -> BoxFuture<'a, BackendResult<Option<u64>>> {
        ready(Ok(lock(&self.state)
            .users
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(email))
            .map(|(_, id)| *id)))
    }

    fn group(&self, group: u64) -> BoxFuture<'_, BackendResult<Option<Group>>> {
        ready(Ok(MemoryPlatform::group(self, group)))
    }

    fn links_of_group(&self, group: u64) -> BoxFuture<'_, BackendResult<Vec<(String, String)>>> {
        ready(Ok(lock(&self.state)
            .links
            .iter()
            .filter(|(_, groups)| groups.contains(&group))
            .map(|(link, _)| link.clone())
            .collect()))
    }

    fn user_emails(&self, user: u64) -> BoxFuture<'_, BackendResult<Vec<String>>> {
        ready(Ok(lock(&self.state)
            .users
            .iter()
            .filter(|(_, id)| *id == user)
            .map(|(email, _)| email.clone())
            .collect()))
    }

    fn handled<'a>(
        &'a self,
        client_key: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, BackendResult<bool>> {
        ready(Ok(MemoryPlatform::handled(self, client_key, id)))
    }

    fn watermark<'a>(
        &'a self,
        client_key: &'a str,
        issue_key: &'a str,
        field: Field,
    ) -> BoxFuture<'a, BackendResult<Option<i64>>> {
        ready(Ok(MemoryPlatform::watermark(
            self, client_key, issue_key, field,
        )))
    }

    fn claim<'a>(
        &'a self,
        client_key: &'a str,
        id: &'a str,
        owner: u64,
        now: u64,
        lease_until: u64,
    ) -> BoxFuture<'a, BackendResult<Claim>> {
        ready(Ok(MemoryPlatform::claim(
            self,
            client_key,
            id,
            owner,
            now,
            lease_until,
        )))
    }

    fn release<'a>(
        &'a self,
        client_key: &'a str,
        id: &'a str,
        owner: u64,
    ) -> BoxFuture<'a, BackendResult<()>> {
        let mut state = lock(&self.state);
        let delivery = key(client_key, id);
        if state
            .claims
            .get(&delivery)
            .is_some_and(|(holder, _)| *holder == owner)
        {
            state.claims.remove(&delivery);
        }
        ready(Ok(()))
    }

    fn commit<'a>(
        &'a self,
        effects: &'a [Effect],
    ) -> BoxFuture<'a, BackendResult<Vec<IssueField>>> {
        ready(self.commit_now(effects))
    }
}

impl Transaction for State {
    fn watermark(
        &mut self,
        client_key: &str,
        issue_key: &str,
        field: Field,
    ) -> BackendResult<Option<i64>> {
        Ok(self
            .watermarks
            .get(&(client_key.to_owned(), issue_key.to_owned(), field))
            .copied())
    }

    fn set_watermark(
        &mut self,
        client_key: &str,
        issue_key: &str,
        field: Field,
        updated_ms: i64,
    ) -> BackendResult<()> {
        self.watermarks.insert(
            (client_key.to_owned(), issue_key.to_owned(), field),
            updated_ms,
        );
        Ok(())
    }

    fn set_assignee(&mut self, group: u64, user: Option<u64>) -> BackendResult<()> {
        if let Some(g) = self.groups.get_mut(&group) {
            g.assignee = user;
        }
        Ok(())
    }

    fn set_status(&mut self, group: u64, status: GroupStatus) -> BackendResult<()> {
        if let Some(g) = self.groups.get_mut(&group) {
            g.status = status;
        }
        Ok(())
    }

    fn mark_handled(&mut self, client_key: &str, id: &str) -> BackendResult<bool> {
        let delivery = key(client_key, id);
        self.claims.remove(&delivery);
        Ok(self.handled.insert(delivery))
    }

    fn unlink(&mut self, client_key: &str, issue_key: &str) -> BackendResult<()> {
        self.links.remove(&key(client_key, issue_key));
        for field in Field::ALL {
            self.watermarks
                .remove(&(client_key.to_owned(), issue_key.to_owned(), field));
        }
        Ok(())
    }

    fn rename(&mut self, client_key: &str, from: &str, to: &str) -> BackendResult<()> {
        if let Some(moved) = self.links.remove(&key(client_key, from)) {
            let links = self.links.entry(key(client_key, to)).or_default();
            for group in moved {
                if !links.contains(&group) {
                    links.push(group);
                }
            }
        }
        for field in Field::ALL {
            let Some(moved) =
                self.watermarks
                    .remove(&(client_key.to_owned(), from.to_owned(), field))
            else {
                continue;
            };
            self.watermarks
                .entry((client_key.to_owned(), to.to_owned(), field))
                .and_modify(|current| *current = (*current).max(moved))
                .or_insert(moved);
        }
        Ok(())
    }
}
