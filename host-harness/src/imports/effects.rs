//! The platform changes of one call, staged until the call succeeds, so that a call that breaks
//! a limit or traps leaves no partial effect.

use crate::backends::{DeliveryLog, GroupStatus, Platform};

/// One change to the platform or the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Assign a group (`None`: unassign it).
    Assignee(u64, Option<u64>),
    /// Resolve or unresolve a group.
    Status(u64, GroupStatus),
    /// Record a delivery id (client key, id) as handled.
    Seen(String, String),
    /// Move an issue's watermark (client key, issue key, updated ms).
    Applied(String, String, i64),
}

/// The staged effects of one call, in the order the guest asked for them.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    effects: Vec<Effect>,
}

impl Staged {
    /// Stages `effect`.
    pub fn push(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    /// Whether this call already marked delivery `id` as handled.
    pub fn seen(&self, client_key: &str, id: &str) -> bool {
        self.effects
            .iter()
            .any(|e| matches!(e, Effect::Seen(ck, seen) if ck == client_key && seen == id))
    }

    /// The status this call last staged for `group`, if any.
    pub fn status_of(&self, group: u64) -> Option<GroupStatus> {
        self.effects.iter().rev().find_map(|e| match e {
            Effect::Status(g, status) if *g == group => Some(*status),
            _ => None,
        })
    }

    /// Applies every staged effect, in order; called only when the call succeeded.
    pub fn commit(&mut self, platform: &dyn Platform, deliveries: &dyn DeliveryLog) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::MemoryPlatform;

    #[test]
    fn nothing_reaches_the_platform_before_commit_and_everything_after() {
        let platform = MemoryPlatform::default();
        platform.link("jira:1", "APP-1", &[1]);
        let mut staged = Staged::default();
        staged.push(Effect::Status(1, GroupStatus::Resolved));
        staged.push(Effect::Assignee(1, Some(7)));
        staged.push(Effect::Seen("jira:1".into(), "d-1".into()));
        staged.push(Effect::Applied("jira:1".into(), "APP-1".into(), 42));

        assert_eq!(staged.status_of(1), Some(GroupStatus::Resolved));
        assert!(staged.seen("jira:1", "d-1"));
        assert!(!staged.seen("jira:2", "d-1"), "ids are per installation");
        let group = platform.group(1).unwrap();
        assert_eq!(group.status, GroupStatus::Unresolved);
        assert_eq!(group.assignee, None);
        assert!(!platform.seen("jira:1", "d-1"));
        assert_eq!(platform.last_applied("jira:1", "APP-1"), None);

        staged.commit(&platform, &platform);
        let group = platform.group(1).unwrap();
        assert_eq!(group.status, GroupStatus::Resolved);
        assert_eq!(group.assignee, Some(7));
        assert!(platform.seen("jira:1", "d-1"));
        assert_eq!(platform.last_applied("jira:1", "APP-1"), Some(42));
        assert_eq!(staged.status_of(1), None, "commit drains the staging");
    }

    #[test]
    fn the_last_staged_status_wins() {
        let mut staged = Staged::default();
        staged.push(Effect::Status(1, GroupStatus::Resolved));
        staged.push(Effect::Status(1, GroupStatus::Unresolved));
        assert_eq!(staged.status_of(1), Some(GroupStatus::Unresolved));
        assert_eq!(staged.status_of(2), None);
    }
}
