//! The platform changes of one call, staged until the call succeeds and then committed in one
//! transaction, so that a call that breaks a limit, traps or meets a failing backend leaves no
//! partial effect (docs/behaviour.md#9).
//!
//! Ordering (docs/behaviour.md#7): each watermark moves by compare-and-set inside that
//! transaction, only forward. When another call has already moved a field's watermark past this
//! call's event, this call's changes to that field of that issue are dropped: of two events for
//! one issue handled at once, the older can never be applied last.

use std::collections::BTreeSet;

use crate::backends::{BackendResult, Field, GroupStatus, Platform, Transaction};

/// One change to the platform or the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Assign a group (`None`: unassign it) because of an event on this issue.
    Assignee {
        /// The issue (client key, issue key) whose event this is.
        issue: (String, String),
        /// The group.
        group: u64,
        /// The user.
        user: Option<u64>,
    },
    /// Resolve or unresolve a group because of an event on this issue.
    Status {
        /// The issue (client key, issue key) whose event this is.
        issue: (String, String),
        /// The group.
        group: u64,
        /// The new status.
        status: GroupStatus,
    },
    /// Record a delivery id (client key, id) as handled.
    Handled(String, String),
    /// Move these fields' watermarks of an issue (client key, issue key) to `updated_ms`.
    Watermark {
        /// The issue.
        issue: (String, String),
        /// The fields the event orders.
        fields: Vec<Field>,
        /// The event's `updated`, in ms.
        updated_ms: i64,
    },
}

impl Effect {
    /// The issue field this change belongs to, for the changes that belong to one.
    fn field(&self) -> Option<(&(String, String), Field)> {
        match self {
            Effect::Assignee { issue, .. } => Some((issue, Field::Assignee)),
            Effect::Status { issue, .. } => Some((issue, Field::Status)),
            _ => None,
        }
    }
}

/// A field of an issue: (client key, issue key, field).
pub(crate) type IssueField = (String, String, Field);

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
    pub fn handled(&self, client_key: &str, id: &str) -> bool {
        self.effects
            .iter()
            .any(|e| matches!(e, Effect::Handled(ck, seen) if ck == client_key && seen == id))
    }

    /// The status this call last staged for `group`, if any.
    pub fn status_of(&self, group: u64) -> Option<GroupStatus> {
        self.effects.iter().rev().find_map(|e| match e {
            Effect::Status {
                group: g, status, ..
            } if *g == group => Some(*status),
            _ => None,
        })
    }

    /// The deliveries this call marked handled.
    pub fn handled_ids(&self) -> impl Iterator<Item = (&str, &str)> {
        self.effects.iter().filter_map(|e| match e {
            Effect::Handled(ck, id) => Some((ck.as_str(), id.as_str())),
            _ => None,
        })
    }

    /// Applies every staged effect in one transaction; returns the fields whose changes were
    /// dropped because a newer event had already been applied to them.
    pub fn commit(&mut self, platform: &dyn Platform) -> BackendResult<Vec<IssueField>> {
        let effects = std::mem::take(&mut self.effects);
        let mut superseded = BTreeSet::new();
        platform.transaction(&mut |tx| {
            superseded = move_watermarks(tx, &effects)?;
            for effect in &effects {
                let dropped = effect.field().is_some_and(|((ck, issue), field)| {
                    superseded.contains(&(ck.clone(), issue.clone(), field))
                });
                if !dropped {
                    apply(tx, effect)?;
                }
            }
            Ok(())
        })?;
        Ok(superseded.into_iter().collect())
    }
}

/// Compare-and-set of every staged watermark: forward (or equal) moves, an older one marks its
/// field superseded.
fn move_watermarks(
    tx: &mut dyn Transaction,
    effects: &[Effect],
) -> BackendResult<BTreeSet<IssueField>> {
    let mut superseded = BTreeSet::new();
    for effect in effects {
        let Effect::Watermark {
            issue: (ck, issue),
            fields,
            updated_ms,
        } = effect
        else {
            continue;
        };
        for field in fields {
            match tx.watermark(ck, issue, *field)? {
                Some(current) if current > *updated_ms => {
                    superseded.insert((ck.clone(), issue.clone(), *field));
                }
                _ => tx.set_watermark(ck, issue, *field, *updated_ms)?,
            }
        }
    }
    Ok(superseded)
}

fn apply(tx: &mut dyn Transaction, effect: &Effect) -> BackendResult<()> {
    match effect {
        Effect::Assignee { group, user, .. } => tx.set_assignee(*group, *user),
        Effect::Status { group, status, .. } => tx.set_status(*group, *status),
        Effect::Handled(client_key, id) => tx.mark_handled(client_key, id),
        Effect::Watermark { .. } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::MemoryPlatform;

    fn issue() -> (String, String) {
        ("jira:1".to_owned(), "APP-1".to_owned())
    }

    #[test]
    fn nothing_reaches_the_platform_before_commit_and_everything_after() {
        let platform = MemoryPlatform::default();
        platform.link("jira:1", "APP-1", &[1]);
        let mut staged = Staged::default();
        staged.push(Effect::Status {
            issue: issue(),
            group: 1,
            status: GroupStatus::Resolved,
        });
        staged.push(Effect::Assignee {
            issue: issue(),
            group: 1,
            user: Some(7),
        });
        staged.push(Effect::Handled("jira:1".into(), "d-1".into()));
        staged.push(Effect::Watermark {
            issue: issue(),
            fields: vec![Field::Status],
            updated_ms: 42,
        });

        assert_eq!(staged.status_of(1), Some(GroupStatus::Resolved));
        assert!(staged.handled("jira:1", "d-1"));
        assert!(!staged.handled("jira:2", "d-1"), "ids are per installation");
        let group = platform.group(1).unwrap();
        assert_eq!(group.status, GroupStatus::Unresolved);
        assert_eq!(group.assignee, None);
        assert!(!platform.handled("jira:1", "d-1"));

        assert_eq!(staged.commit(&platform), Ok(Vec::new()));
        let group = platform.group(1).unwrap();
        assert_eq!(group.status, GroupStatus::Resolved);
        assert_eq!(group.assignee, Some(7));
        assert!(platform.handled("jira:1", "d-1"));
        assert_eq!(
            platform.watermark("jira:1", "APP-1", Field::Status),
            Some(42)
        );
        assert_eq!(platform.watermark("jira:1", "APP-1", Field::Assignee), None);
        assert_eq!(staged.status_of(1), None, "commit drains the staging");
    }

    #[test]
    fn an_older_event_loses_its_field_to_a_newer_one_committed_first() {
        let platform = MemoryPlatform::default();
        platform.link("jira:1", "APP-1", &[1]);
        let newer = |staged: &mut Staged, ms, status| {
            staged.push(Effect::Status {
                issue: issue(),
                group: 1,
                status,
            });
            staged.push(Effect::Assignee {
                issue: issue(),
                group: 1,
                user: Some(ms as u64),
            });
            staged.push(Effect::Watermark {
                issue: issue(),
                fields: vec![Field::Status],
                updated_ms: ms,
            });
        };
        let mut first = Staged::default();
        newer(&mut first, 200, GroupStatus::Resolved);
        assert_eq!(first.commit(&platform), Ok(Vec::new()));
        let mut late = Staged::default();
        newer(&mut late, 100, GroupStatus::Unresolved);
        let superseded = late.commit(&platform).unwrap();
        assert_eq!(
            superseded,
            vec![("jira:1".into(), "APP-1".into(), Field::Status)]
        );
        let group = platform.group(1).unwrap();
        assert_eq!(
            group.status,
            GroupStatus::Resolved,
            "the newer status stays"
        );
        assert_eq!(
            group.assignee,
            Some(100),
            "the assignee field was not ordered"
        );
        assert_eq!(
            platform.watermark("jira:1", "APP-1", Field::Status),
            Some(200)
        );
    }

    #[test]
    fn the_last_staged_status_wins() {
        let mut staged = Staged::default();
        for status in [GroupStatus::Resolved, GroupStatus::Unresolved] {
            staged.push(Effect::Status {
                issue: issue(),
                group: 1,
                status,
            });
        }
        assert_eq!(staged.status_of(1), Some(GroupStatus::Unresolved));
        assert_eq!(staged.status_of(2), None);
    }
}
