//! `group-assignment`: the guest assigns or unassigns the groups linked to a Jira issue of the
//! call's installation; the changes are staged until the call succeeds.

use super::CallState;
use super::record::Assignment;
use crate::backends::Effect;
use crate::wit::jira_sync::plugin::group_assignment::{self, AssignOutcome, UnassignOutcome};

impl group_assignment::Host for CallState {
    async fn assign(
        &mut self,
        client_key: String,
        issue_key: String,
        email: String,
    ) -> wasmtime::Result<AssignOutcome> {
        if !self.own(&client_key, "group-assignment.assign") {
            return Ok(AssignOutcome::NoLinkedGroups);
        }
        let platform = self.backends.platform.clone();
        let groups = self
            .linked_groups(&client_key, &issue_key)
            .await
            .map_err(|e| self.fail(e))?;
        let user = if groups.is_empty() {
            None
        } else {
            platform
                .user_by_email(&email)
                .await
                .map_err(|e| self.fail(e))?
        };
        let (result, outcome, groups) = match (groups.is_empty(), user) {
            (true, _) => ("no-linked-groups", AssignOutcome::NoLinkedGroups, groups),
            (false, Some(user)) => {
                for group in &groups {
                    self.staged.push(Effect::Assignee {
                        issue: (client_key.clone(), issue_key.clone()),
                        group: *group,
                        user: Some(user),
                    });
                }
                let n = groups.len() as u32;
                ("assigned", AssignOutcome::Assigned(n), groups)
            }
            (false, None) => (
                "no-user-with-email",
                AssignOutcome::NoUserWithEmail,
                Vec::new(),
            ),
        };
        self.record.assignments.push(Assignment {
            issue_key,
            email: Some(email),
            result,
            groups,
        });
        Ok(outcome)
    }

    async fn unassign(
        &mut self,
        client_key: String,
        issue_key: String,
    ) -> wasmtime::Result<UnassignOutcome> {
        if !self.own(&client_key, "group-assignment.unassign") {
            return Ok(UnassignOutcome::NoLinkedGroups);
        }
        let groups = self
            .linked_groups(&client_key, &issue_key)
            .await
            .map_err(|e| self.fail(e))?;
        for group in &groups {
            self.staged.push(Effect::Assignee {
                issue: (client_key.clone(), issue_key.clone()),
                group: *group,
                user: None,
            });
        }
        let (result, outcome) = if groups.is_empty() {
            ("no-linked-groups", UnassignOutcome::NoLinkedGroups)
        } else {
            (
                "unassigned",
                UnassignOutcome::Unassigned(groups.len() as u32),
            )
        };
        self.record.assignments.push(Assignment {
            issue_key,
            email: None,
            result,
            groups,
        });
        Ok(outcome)
    }
}
