//! `group-assignment`: the guest assigns or unassigns the groups linked to a Jira issue of the
//! call's installation; the changes are staged until the call succeeds.

use super::CallState;
use super::effects::Effect;
use super::record::Assignment;
use crate::wit::jira_sync::plugin::group_assignment::{self, AssignOutcome, UnassignOutcome};

impl group_assignment::Host for CallState {
    fn assign(&mut self, client_key: String, issue_key: String, email: String) -> AssignOutcome {
        if !self.own(&client_key, "group-assignment.assign") {
            return AssignOutcome::NoLinkedGroups;
        }
        let platform = &self.backends.platform;
        let groups = platform.linked_groups(&client_key, &issue_key);
        let (result, outcome, groups) = if groups.is_empty() {
            ("no-linked-groups", AssignOutcome::NoLinkedGroups, groups)
        } else if let Some(user) = platform.user_by_email(&email) {
            for group in &groups {
                self.staged.push(Effect::Assignee(*group, Some(user)));
            }
            let n = groups.len() as u32;
            ("assigned", AssignOutcome::Assigned(n), groups)
        } else {
            (
                "no-user-with-email",
                AssignOutcome::NoUserWithEmail,
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

    fn unassign(&mut self, client_key: String, issue_key: String) -> UnassignOutcome {
        if !self.own(&client_key, "group-assignment.unassign") {
            return UnassignOutcome::NoLinkedGroups;
        }
        let groups = self
            .backends
            .platform
            .linked_groups(&client_key, &issue_key);
        for group in &groups {
            self.staged.push(Effect::Assignee(*group, None));
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
        outcome
    }
}
