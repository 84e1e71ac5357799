//! The guest's core called natively over the same [`Backends`], without a sandbox: the baseline
//! the benchmarks compare the component against.

use jira_sync_plugin::env::{Cache, Clock, Deliveries, Groups, Http, Installations, Log};
use jira_sync_plugin::model::{self, Level};

use crate::backends::{Backends, GroupStatus, OutboundRequest};

/// The core's environment over the host's backends, with no sandbox in between.
pub struct NativeEnv<'a> {
    /// The same backends the component runs against.
    pub backends: &'a Backends,
    /// Log lines, kept as the wasm host keeps them, so that both sides do the same work.
    pub logs: Vec<(String, Vec<(String, String)>)>,
}

impl Http for NativeEnv<'_> {
    fn send(&mut self, r: model::HttpRequest) -> Result<model::HttpResponse, model::HttpError> {
        let response = self.backends.http.send(&OutboundRequest {
            method: r.method.as_str(),
            url: r.url,
            headers: r.headers,
            body: r.body,
        });
        match response {
            Ok(r) => Ok(model::HttpResponse {
                status: r.status,
                headers: r.headers,
                body: r.body,
            }),
            Err(e) => Err(e.into()),
        }
    }
}

impl Cache for NativeEnv<'_> {
    fn get(&mut self, key: &str) -> Option<String> {
        self.backends.cache.get(key, self.backends.clock.now())
    }
    fn set(&mut self, key: &str, value: &str, ttl_seconds: u32) {
        let now = self.backends.clock.now();
        self.backends.cache.set(key, value, ttl_seconds, now);
    }
    fn delete(&mut self, key: &str) {
        self.backends.cache.delete(key);
    }
}

impl Installations for NativeEnv<'_> {
    fn by_client_key(&mut self, client_key: &str) -> Option<model::Installation> {
        self.backends
            .platform
            .installation(client_key)
            .map(|(i, _)| i.into())
    }
}

impl Groups for NativeEnv<'_> {
    fn assign(&mut self, client_key: &str, issue_key: &str, email: &str) -> model::AssignOutcome {
        let platform = &self.backends.platform;
        let groups = platform.linked_groups(client_key, issue_key);
        if groups.is_empty() {
            return model::AssignOutcome::NoLinkedGroups;
        }
        let Some(user) = platform.user_by_email(email) else {
            return model::AssignOutcome::NoUserWithEmail;
        };
        for group in &groups {
            platform.set_assignee(*group, Some(user));
        }
        model::AssignOutcome::Assigned(groups.len() as u32)
    }

    fn unassign(&mut self, client_key: &str, issue_key: &str) -> model::UnassignOutcome {
        let groups = self.backends.platform.linked_groups(client_key, issue_key);
        for group in &groups {
            self.backends.platform.set_assignee(*group, None);
        }
        match groups.len() {
            0 => model::UnassignOutcome::NoLinkedGroups,
            n => model::UnassignOutcome::Unassigned(n as u32),
        }
    }

    fn resolve(
        &mut self,
        ck: &str,
        key: &str,
        _: model::ResolutionStrategy,
    ) -> model::StatusChange {
        self.set_status(ck, key, GroupStatus::Resolved)
    }

    fn unresolve(&mut self, ck: &str, key: &str) -> model::StatusChange {
        self.set_status(ck, key, GroupStatus::Unresolved)
    }
}

impl NativeEnv<'_> {
    fn set_status(
        &mut self,
        client_key: &str,
        issue_key: &str,
        status: GroupStatus,
    ) -> model::StatusChange {
        let platform = &self.backends.platform;
        let groups = platform.linked_groups(client_key, issue_key);
        if groups.is_empty() {
            return model::StatusChange::NoLinkedGroups;
        }
        let mut changed = 0;
        for group in groups {
            if platform.group(group).is_some_and(|g| g.status != status) {
                platform.set_status(group, status);
                changed += 1;
            }
        }
        model::StatusChange::Changed(changed)
    }
}

impl Deliveries for NativeEnv<'_> {
    fn seen(&mut self, client_key: &str, id: &str) -> bool {
        self.backends.deliveries.seen(client_key, id)
    }
    fn mark_seen(&mut self, client_key: &str, id: &str) {
        self.backends.deliveries.mark_seen(client_key, id)
    }
    fn last_applied(&mut self, client_key: &str, issue_key: &str) -> Option<i64> {
        self.backends.deliveries.last_applied(client_key, issue_key)
    }
    fn set_last_applied(&mut self, client_key: &str, issue_key: &str, updated_ms: i64) {
        self.backends
            .deliveries
            .set_last_applied(client_key, issue_key, updated_ms)
    }
}

impl Clock for NativeEnv<'_> {
    fn now(&mut self) -> u64 {
        self.backends.clock.now()
    }
    fn sleep(&mut self, seconds: u32) {
        self.backends.clock.sleep(seconds)
    }
}

impl Log for NativeEnv<'_> {
    fn log(&mut self, _: Level, event: &str, fields: &[(&str, &str)]) {
        let fields = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.logs.push((event.to_owned(), fields));
    }
}
