//! `group-status`: the guest resolves or unresolves the groups linked to a Jira issue of the
//! call's installation; a group already in that status is left alone, and changes are staged
//! until the call succeeds.

use super::CallState;
use super::record::Resolution;
use crate::backends::Effect;
use crate::backends::{BackendResult, GroupStatus};
use crate::wit::jira_sync::plugin::group_status::{self, StatusOutcome};
use crate::wit::jira_sync::plugin::types::ResolutionStrategy;

impl CallState {
    /// A group's status as this call sees it: its own pending change, else the platform's.
    async fn status_of(&self, group: u64) -> BackendResult<Option<GroupStatus>> {
        match self.staged.status_of(group) {
            Some(status) => Ok(Some(status)),
            None => Ok(self.backends.platform.group(group).await?.map(|g| g.status)),
        }
    }

    async fn change_status(
        &mut self,
        client_key: &str,
        issue_key: String,
        status: GroupStatus,
        strategy: Option<&'static str>,
    ) -> BackendResult<StatusOutcome> {
        if !self.own(client_key, "group-status") {
            return Ok(StatusOutcome::NoLinkedGroups);
        }
        let groups = self.linked_groups(client_key, &issue_key).await?;
        let mut changed = 0;
        for group in &groups {
            if self.status_of(*group).await?.is_some_and(|s| s != status) {
                self.staged.push(Effect::Status {
                    issue: (client_key.to_owned(), issue_key.clone()),
                    group: *group,
                    status,
                });
                changed += 1;
            }
        }
        let outcome = if groups.is_empty() {
            StatusOutcome::NoLinkedGroups
        } else {
            StatusOutcome::Changed(changed)
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
        Ok(outcome)
    }
}

impl group_status::Host for CallState {
    async fn resolve(
        &mut self,
        client_key: String,
        issue_key: String,
        strategy: ResolutionStrategy,
    ) -> wasmtime::Result<StatusOutcome> {
        let strategy = Some(strategy.into());
        self.change_status(&client_key, issue_key, GroupStatus::Resolved, strategy)
            .await
            .map_err(|e| self.fail(e))
    }

    async fn unresolve(
        &mut self,
        client_key: String,
        issue_key: String,
    ) -> wasmtime::Result<StatusOutcome> {
        self.change_status(&client_key, issue_key, GroupStatus::Unresolved, None)
            .await
            .map_err(|e| self.fail(e))
    }
}
