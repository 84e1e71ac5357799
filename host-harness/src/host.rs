//! The imports, implemented over [`Backends`], with everything the guest did recorded per call.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::backends::{Backends, GroupStatus, OutboundRequest};
use crate::bindings::jira_sync::plugin::{
    cache, clock, deliveries, group_assignment, group_status, http, installations, log, types,
};
use crate::egress::Egress;
use crate::limits::{LimitExceeded, Limits, MAX_MEMORY_BYTES};

/// One HTTP exchange as the guest saw it.
#[derive(Debug, Clone, Serialize)]
pub struct HttpExchange {
    pub method: String,
    pub url: String,
    pub headers: serde_json::Map<String, Value>,
    pub body: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Assignment {
    pub issue_key: String,
    pub email: Option<String>,
    pub result: &'static str,
    pub groups: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    pub issue_key: String,
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<&'static str>,
    pub groups: Vec<u64>,
    /// How many of `groups` were not already in that status.
    pub changed: u32,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CacheStats {
    pub hits: u32,
    pub misses: u32,
    pub sets: u32,
    pub deletes: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    pub level: &'static str,
    pub event: String,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub fields: serde_json::Map<String, Value>,
}

/// Everything one call did through the imports, in order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallRecord {
    pub http: Vec<HttpExchange>,
    pub assignments: Vec<Assignment>,
    pub resolutions: Vec<Resolution>,
    pub cache: CacheStats,
    pub logs: Vec<LogLine>,
    /// Seconds the guest asked to sleep (e.g. honouring `Retry-After`).
    pub slept: u64,
}

/// A change to the platform, held until the call succeeds so that a call that breaks a limit
/// or traps leaves no partial effect.
#[derive(Debug, Clone)]
enum Effect {
    Assignee(u64, Option<u64>),
    Status(u64, GroupStatus),
    Seen(String, String),
    Applied(String, String, i64),
}

#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    http_calls: u32,
    bytes: u64,
    log_lines: u32,
}

/// The store's data: the backends, the sandbox policy, and what this call did and used.
pub struct HostState {
    pub backends: Backends,
    pub egress: Egress,
    pub record: CallRecord,
    /// The limits in force: the defaults, then the installation's once the guest looks it up.
    pub limits: Limits,
    /// The limit this call broke, if any.
    pub limit_hit: Option<LimitExceeded>,
    usage: Usage,
    effects: Vec<Effect>,
    started: Instant,
    host_time: Duration,
}

impl HostState {
    /// A call's state under the default limits, until the guest looks its installation up.
    pub fn new(backends: Backends) -> Self {
        HostState {
            backends,
            egress: Egress::default(),
            record: CallRecord::default(),
            limits: Limits::default(),
            limit_hit: None,
            usage: Usage::default(),
            effects: Vec::new(),
            started: Instant::now(),
            host_time: Duration::ZERO,
        }
    }

    /// Time spent in guest code so far: wall time less the time inside host calls.
    pub fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host_time)
    }

    /// Records `limit` as broken and returns the trap that ends the call.
    pub fn exceed(&mut self, limit: LimitExceeded) -> wasmtime::Error {
        self.limit_hit = Some(limit);
        wasmtime::Error::from(limit)
    }

    /// Applies the call's effects to the platform; called only when the call succeeded.
    pub fn commit(&mut self) {
        let platform = &self.backends.platform;
        let deliveries = &self.backends.deliveries;
        for effect in self.effects.drain(..) {
            match effect {
                Effect::Assignee(group, user) => platform.set_assignee(group, user),
                Effect::Status(group, status) => platform.set_status(group, status),
                Effect::Seen(client_key, id) => deliveries.mark_seen(&client_key, &id),
                Effect::Applied(client_key, issue_key, ms) => {
                    deliveries.set_last_applied(&client_key, &issue_key, ms)
                }
            }
        }
    }

    /// A group's status as this call sees it: its own pending change, else the platform's.
    fn status_of(&self, group: u64) -> Option<GroupStatus> {
        self.effects
            .iter()
            .rev()
            .find_map(|e| match e {
                Effect::Status(g, status) if *g == group => Some(*status),
                _ => None,
            })
            .or_else(|| self.backends.platform.group(group).map(|g| g.status))
    }
}

impl wasmtime::ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.memory_bytes.min(MAX_MEMORY_BYTES) {
            return Err(self.exceed(LimitExceeded::Memory));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; the guest needs a handful.
        Ok(desired <= 10_000)
    }
}

/// A body for the trace: JSON when it parses, text otherwise, null when empty.
pub fn body_value(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn string_map(headers: &[(String, String)]) -> serde_json::Map<String, Value> {
    headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

impl types::Host for HostState {}

impl http::Host for HostState {
    fn send(
        &mut self,
        request: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::Error>> {
        self.usage.http_calls += 1;
        if self.usage.http_calls > self.limits.http_calls {
            return Err(self.exceed(LimitExceeded::HttpCalls));
        }
        self.usage.bytes += request.body.as_ref().map_or(0, |b| b.len() as u64);
        let method = match request.method {
            http::Method::Get => "GET",
            http::Method::Post => "POST",
            http::Method::Put => "PUT",
            http::Method::Delete => "DELETE",
        };
        let mut exchange = HttpExchange {
            method: method.to_owned(),
            url: request.url.clone(),
            headers: string_map(&request.headers),
            body: body_value(request.body.as_deref().unwrap_or_default()),
            status: None,
            error: None,
        };
        let sent = Instant::now();
        let result = self.egress.check(&request.url).and_then(|()| {
            self.backends.http.send(&OutboundRequest {
                method,
                url: request.url,
                headers: request.headers,
                body: request.body,
            })
        });
        self.host_time += sent.elapsed();
        let result = result.and_then(|response| {
            if response.body.len() as u64 > self.limits.response_bytes {
                Err(http::Error::ResponseTooLarge(self.limits.response_bytes))
            } else {
                Ok(response)
            }
        });
        match &result {
            Ok(response) => {
                exchange.status = Some(response.status);
                self.usage.bytes += response.body.len() as u64;
            }
            Err(e) => exchange.error = Some(crate::outcome::http_error(e)),
        }
        self.record.http.push(exchange);
        if self.usage.bytes > self.limits.total_bytes {
            return Err(self.exceed(LimitExceeded::TotalBytes));
        }
        Ok(result.map(|r| http::Response {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }))
    }
}

impl cache::Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        let value = self.backends.cache.get(&key, self.backends.clock.now());
        match value {
            Some(_) => self.record.cache.hits += 1,
            None => self.record.cache.misses += 1,
        }
        value
    }

    fn set(&mut self, key: String, value: String, ttl_seconds: u32) {
        self.record.cache.sets += 1;
        let now = self.backends.clock.now();
        self.backends.cache.set(&key, &value, ttl_seconds, now);
    }

    fn delete(&mut self, key: String) {
        self.record.cache.deletes += 1;
        self.backends.cache.delete(&key);
    }
}

impl installations::Host for HostState {
    fn get_by_client_key(&mut self, client_key: String) -> Option<types::Installation> {
        let (installation, limits) = self.backends.platform.installation(&client_key)?;
        // The guest may now reach this installation's site, and only sites it looked up.
        self.egress.allow(&installation.base_url);
        self.limits = limits;
        Some(installation)
    }
}

impl group_assignment::Host for HostState {
    fn assign(
        &mut self,
        client_key: String,
        issue_key: String,
        email: String,
    ) -> group_assignment::AssignOutcome {
        let platform = &self.backends.platform;
        let groups = platform.linked_groups(&client_key, &issue_key);
        let (result, outcome, groups) = if groups.is_empty() {
            (
                "no-linked-groups",
                group_assignment::AssignOutcome::NoLinkedGroups,
                groups,
            )
        } else if let Some(user) = platform.user_by_email(&email) {
            self.effects
                .extend(groups.iter().map(|g| Effect::Assignee(*g, Some(user))));
            let n = groups.len() as u32;
            (
                "assigned",
                group_assignment::AssignOutcome::Assigned(n),
                groups,
            )
        } else {
            (
                "no-user-with-email",
                group_assignment::AssignOutcome::NoUserWithEmail,
                Vec::new(),
            )
        };
        self.record.assignments.push(Assignment {
            issue_key,
            email: Some(email),
            result,
            groups,
        });
        outcome
    }

    fn unassign(
        &mut self,
        client_key: String,
        issue_key: String,
    ) -> group_assignment::UnassignOutcome {
        let groups = self
            .backends
            .platform
            .linked_groups(&client_key, &issue_key);
        self.effects
            .extend(groups.iter().map(|g| Effect::Assignee(*g, None)));
        let (result, outcome) = if groups.is_empty() {
            (
                "no-linked-groups",
                group_assignment::UnassignOutcome::NoLinkedGroups,
            )
        } else {
            (
                "unassigned",
                group_assignment::UnassignOutcome::Unassigned(groups.len() as u32),
            )
        };
        self.record.assignments.push(Assignment {
            issue_key,
            email: None,
            result,
            groups,
        });
        outcome
    }
}

impl HostState {
    fn change_status(
        &mut self,
        client_key: &str,
        issue_key: String,
        status: GroupStatus,
        strategy: Option<&'static str>,
    ) -> group_status::StatusOutcome {
        let groups = self.backends.platform.linked_groups(client_key, &issue_key);
        let mut changed = 0;
        for group in &groups {
            if self.status_of(*group).is_some_and(|s| s != status) {
                self.effects.push(Effect::Status(*group, status));
                changed += 1;
            }
        }
        let outcome = if groups.is_empty() {
            group_status::StatusOutcome::NoLinkedGroups
        } else {
            group_status::StatusOutcome::Changed(changed)
        };
        self.record.resolutions.push(Resolution {
            issue_key,
            action: match status {
                GroupStatus::Resolved => "resolve",
                GroupStatus::Unresolved => "unresolve",
            },
            strategy,
            groups,
            changed,
        });
        outcome
    }
}

impl group_status::Host for HostState {
    fn resolve(
        &mut self,
        client_key: String,
        issue_key: String,
        strategy: types::ResolutionStrategy,
    ) -> group_status::StatusOutcome {
        let strategy = match strategy {
            types::ResolutionStrategy::Resolve => "resolve",
            types::ResolutionStrategy::ResolveCurrentRelease => "resolve-current-release",
            types::ResolutionStrategy::ResolveNextRelease => "resolve-next-release",
        };
        self.change_status(
            &client_key,
            issue_key,
            GroupStatus::Resolved,
            Some(strategy),
        )
    }

    fn unresolve(&mut self, client_key: String, issue_key: String) -> group_status::StatusOutcome {
        self.change_status(&client_key, issue_key, GroupStatus::Unresolved, None)
    }
}

impl deliveries::Host for HostState {
    fn seen(&mut self, client_key: String, id: String) -> bool {
        self.effects
            .iter()
            .any(|e| matches!(e, Effect::Seen(ck, seen) if *ck == client_key && *seen == id))
            || self.backends.deliveries.seen(&client_key, &id)
    }

    fn mark_seen(&mut self, client_key: String, id: String) {
        self.effects.push(Effect::Seen(client_key, id));
    }

    fn last_applied(&mut self, client_key: String, issue_key: String) -> Option<i64> {
        self.backends
            .deliveries
            .last_applied(&client_key, &issue_key)
    }

    fn set_last_applied(&mut self, client_key: String, issue_key: String, updated_ms: i64) {
        self.effects
            .push(Effect::Applied(client_key, issue_key, updated_ms));
    }
}

impl clock::Host for HostState {
    fn now(&mut self) -> u64 {
        self.backends.clock.now()
    }

    fn sleep(&mut self, seconds: u32) {
        self.record.slept += u64::from(seconds);
        let started = Instant::now();
        self.backends.clock.sleep(seconds);
        self.host_time += started.elapsed();
    }
}

impl log::Host for HostState {
    fn log(
        &mut self,
        level: log::Level,
        event: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        self.usage.log_lines += 1;
        self.usage.bytes +=
            (event.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()) as u64;
        if self.usage.log_lines > self.limits.log_lines {
            return Err(self.exceed(LimitExceeded::Log));
        }
        if self.usage.bytes > self.limits.total_bytes {
            return Err(self.exceed(LimitExceeded::TotalBytes));
        }
        let level = match level {
            log::Level::Trace => "trace",
            log::Level::Debug => "debug",
            log::Level::Info => "info",
            log::Level::Warn => "warn",
            log::Level::Error => "error",
        };
        self.record.logs.push(LogLine {
            level,
            event,
            fields: string_map(&fields),
        });
        Ok(())
    }
}
