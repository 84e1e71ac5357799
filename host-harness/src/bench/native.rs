//! The guest's core called natively over the same [`Backends`], without a sandbox: the baseline
//! the benchmarks compare the component against.

use jira_sync_plugin::env::{Cache, Clock, Deliveries, Groups, Http, Installations, Links, Log};
use jira_sync_plugin::model::{self, Level};

use pollster::block_on;

use crate::backends::Effect;
use crate::backends::{Backends, Field, GroupStatus, OutboundRequest};
use crate::imports::effects::Staged;

/// The core's environment over the host's backends, with no sandbox in between.
pub struct NativeEnv<'a> {
    /// The same backends the component runs against.
    pub backends: &'a Backends,
    /// Log lines, kept as the wasm host keeps them, so that both sides do the same work.
    pub logs: Vec<(String, Vec<(String, String)>)>,
    /// The platform changes, staged and committed in one transaction as the sandbox does.
    pub(crate) staged: Staged,
}

impl<'a> NativeEnv<'a> {
    /// An environment over `backends`.
    pub fn new(backends: &'a Backends) -> Self {
        NativeEnv {
            backends,
            logs: Vec::new(),
            staged: Staged::default(),
        }
    }

    /// Commits the staged changes, as the sandbox does after a successful call.
    pub fn commit(&mut self) {
        let _ = block_on(self.staged.commit(self.backends.platform.as_ref()));
    }
}

impl Http for NativeEnv<'_> {
    fn send(&mut self, r: model::HttpRequest) -> Result<model::HttpResponse, model::HttpError> {
        // The bench's backends answer at once, as do the memory backends below.
        let response = block_on(self.backends.http.send(OutboundRequest {
            method: r.method.as_str(),
            url: r.url,
            headers: r.headers,
            body: r.body,
        }));
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
        let now = self.backends.clock.now();
        block_on(self.backends.cache.get(key, now)).ok().flatten()
    }
    fn set(&mut self, key: &str, value: &str, ttl_seconds: u32) {
        let now = self.backends.clock.now();
        let _ = block_on(self.backends.cache.set(key, value, ttl_seconds, now));
    }
    fn delete(&mut self, key: &str) {
        let _ = block_on(self.backends.cache.delete(key));
    }
}

impl Installations for NativeEnv<'_> {
    fn by_client_key(&mut self, client_key: &str) -> Option<model::Installation> {
        let found = block_on(self.backends.platform.installation(client_key)).ok()??;
        Some(found.0.into())
    }
}

impl NativeEnv<'_> {
    /// The groups linked to the issue, with those of the keys this call renamed into it.
    fn linked(&self, client_key: &str, issue_key: &str) -> Vec<u64> {
        let platform = &self.backends.platform;
        let mut groups: Vec<u64> = std::iter::once(issue_key)
            .chain(self.staged.renamed_into(client_key, issue_key))
            .flat_map(|key| block_on(platform.linked_groups(client_key, key)).unwrap_or_default())
            .collect();
        groups.sort_unstable();
        groups.dedup();
        groups
    }

    fn issue(client_key: &str, issue_key: &str) -> (String, String) {
        (client_key.to_owned(), issue_key.to_owned())
    }

    fn set_status(
        &mut self,
        client_key: &str,
        issue_key: &str,
        status: GroupStatus,
    ) -> model::StatusChange {
        let groups = self.linked(client_key, issue_key);
        if groups.is_empty() {
            return model::StatusChange::NoLinkedGroups;
        }
        let mut changed = 0;
        for group in groups {
            let current = block_on(self.backends.platform.group(group)).ok().flatten();
            if current.is_some_and(|g| g.status != status) {
                self.staged.push(Effect::Status {
                    issue: Self::issue(client_key, issue_key),
                    group,
                    status,
                });
                changed += 1;
            }
        }
        model::StatusChange::Changed(changed)
    }
}

impl Groups for NativeEnv<'_> {
    fn assign(&mut self, client_key: &str, issue_key: &str, email: &str) -> model::AssignOutcome {
        let groups = self.linked(client_key, issue_key);
        if groups.is_empty() {
            return model::AssignOutcome::NoLinkedGroups;
        }
        let Some(user) = block_on(self.backends.platform.user_by_email(email))
            .ok()
            .flatten()
        else {
            return model::AssignOutcome::NoUserWithEmail;
        };
        for group in &groups {
            self.staged.push(Effect::Assignee {
                issue: Self::issue(client_key, issue_key),
                group: *group,
                user: Some(user),
            });
        }
        model::AssignOutcome::Assigned(groups.len() as u32)
    }

    fn unassign(&mut self, client_key: &str, issue_key: &str) -> model::UnassignOutcome {
        let groups = self.linked(client_key, issue_key);
        for group in &groups {
            self.staged.push(Effect::Assignee {
                issue: Self::issue(client_key, issue_key),
                group: *group,
                user: None,
            });
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

impl Links for NativeEnv<'_> {
    fn remove_links(&mut self, client_key: &str, issue_key: &str) -> u32 {
        let groups = self.linked(client_key, issue_key).len() as u32;
        self.staged.push(Effect::Unlink {
            issue: Self::issue(client_key, issue_key),
        });
        groups
    }

    fn rename_links(&mut self, client_key: &str, from: &str, to: &str) -> u32 {
        let groups = self.linked(client_key, from).len() as u32;
        if from != to {
            self.staged.push(Effect::Rename {
                issue: Self::issue(client_key, from),
                to: to.to_owned(),
            });
        }
        groups
    }
}

impl Deliveries for NativeEnv<'_> {
    fn claim(&mut self, client_key: &str, id: &str) -> model::Claim {
        // The native baseline runs one call at a time: a claim is a read.
        let handled = self.staged.handled(client_key, id)
            || block_on(self.backends.platform.handled(client_key, id)).unwrap_or_default();
        if handled {
            model::Claim::Handled
        } else {
            model::Claim::Claimed
        }
    }
    fn mark_handled(&mut self, client_key: &str, id: &str) {
        self.staged
            .push(Effect::Handled(client_key.to_owned(), id.to_owned()))
    }
    fn last_applied(
        &mut self,
        client_key: &str,
        issue_key: &str,
        field: model::Field,
    ) -> Option<i64> {
        block_on(
            self.backends
                .platform
                .watermark(client_key, issue_key, native_field(field)),
        )
        .ok()
        .flatten()
    }
    fn set_last_applied(
        &mut self,
        client_key: &str,
        issue_key: &str,
        field: model::Field,
        updated_ms: i64,
    ) {
        self.staged.push(Effect::Watermark {
            issue: Self::issue(client_key, issue_key),
            fields: vec![native_field(field)],
            updated_ms,
        })
    }
}

fn native_field(field: model::Field) -> Field {
    match field {
        model::Field::Status => Field::Status,
        model::Field::Assignee => Field::Assignee,
    }
}

impl Clock for NativeEnv<'_> {
    fn now(&mut self) -> u64 {
        self.backends.clock.now()
    }
    fn sleep(&mut self, seconds: u32) {
        pollster::block_on(self.backends.clock.sleep(seconds));
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
