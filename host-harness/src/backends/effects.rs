//! The platform changes one call commits, as data: each [`Platform`](super::Platform) applies a
//! list of them in one transaction of its own, and the ordering rule they follow is written
//! once, here (docs/behaviour.md#7).
//!
//! Renames and unlinks (Jira moved or deleted an issue) are applied first, in the order the
//! call staged them: they carry an issue's watermarks to its new key or drop them, so the
//! compare-and-set below must see the watermarks they leave. Each watermark moves by
//! compare-and-set inside that transaction, only forward. When another call has already moved a
//! field's watermark past this call's event, this call's changes to that field of that issue
//! are dropped: of two events for one issue handled at once, the older can never be applied
//! last. A delivery is marked handled once: a commit that finds its
//! delivery already marked (another server ran it after this one's lease ran out) applies
//! nothing and fails.

use std::collections::BTreeSet;

use super::{BackendError, BackendResult, Field, GroupStatus};

/// One change to the platform or the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
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
    /// Remove every link to an issue and its watermarks: Jira deleted it. The groups stay (a
    /// group may be linked to other issues, and its state is the platform's); only this
    /// installation's links and watermarks of that key go.
    Unlink {
        /// The deleted issue (client key, issue key).
        issue: (String, String),
    },
    /// An issue is now `to`: Jira moved it to another project, which gives it a new key. Its
    /// links move to `to` (merged with any `to` already has), and each field's watermark of
    /// `to` becomes the newer of the two, so that an event already applied under the old key
    /// still orders the events that arrive under the new one. Renaming a key to itself changes
    /// nothing.
    Rename {
        /// The issue (client key, old key).
        issue: (String, String),
        /// Its new key, on the same installation.
        to: String,
    },
}

impl Effect {
    /// The issue field this change belongs to, for the changes that belong to one.
    pub fn field(&self) -> Option<(&(String, String), Field)> {
        match self {
            Effect::Assignee { issue, .. } => Some((issue, Field::Assignee)),
            Effect::Status { issue, .. } => Some((issue, Field::Status)),
            _ => None,
        }
    }
}

/// A field of an issue: (client key, issue key, field).
pub type IssueField = (String, String, Field);

/// The error of a commit whose delivery another call marked handled first.
pub fn handled_elsewhere(client_key: &str, id: &str) -> BackendError {
    BackendError(format!(
        "delivery {id} of {client_key} was handled meanwhile by another call; nothing applied"
    ))
}

/// The writes of one open transaction of a synchronous store (memory, SQLite): implement it,
/// and [`apply`] does the rest.
pub trait Transaction {
    /// The field's watermark as this transaction sees it.
    fn watermark(
        &mut self,
        client_key: &str,
        issue_key: &str,
        field: Field,
    ) -> BackendResult<Option<i64>>;
    /// Sets the field's watermark.
    fn set_watermark(
        &mut self,
        client_key: &str,
        issue_key: &str,
        field: Field,
        updated_ms: i64,
    ) -> BackendResult<()>;
    /// Assigns `group` to `user` (`None`: unassigns it).
    fn set_assignee(&mut self, group: u64, user: Option<u64>) -> BackendResult<()>;
    /// Resolves or unresolves `group`.
    fn set_status(&mut self, group: u64, status: GroupStatus) -> BackendResult<()>;
    /// Records delivery `id` of this installation as handled and ends its claim; `false` when
    /// it was recorded already.
    fn mark_handled(&mut self, client_key: &str, id: &str) -> BackendResult<bool>;
    /// Deletes this installation's links to `issue_key` and the issue's watermarks.
    fn unlink(&mut self, client_key: &str, issue_key: &str) -> BackendResult<()>;
    /// Moves this installation's links of `from` to `to` (a group linked to both stays linked
    /// once) and merges the watermarks of `from` into those of `to`, the newer winning per
    /// field; `from` keeps neither. [`apply`] never calls it with `from == to`.
    fn rename(&mut self, client_key: &str, from: &str, to: &str) -> BackendResult<()>;
}

/// Applies `effects` inside `tx`: renames and unlinks first (in the order staged), then
/// watermarks (compare-and-set), then every change whose field was not superseded, then the
/// handled marks. Returns the superseded fields; an error (a failed write, or a delivery
/// handled elsewhere) means the caller must roll back.
pub fn apply(tx: &mut dyn Transaction, effects: &[Effect]) -> BackendResult<Vec<IssueField>> {
    for effect in effects {
        match effect {
            Effect::Unlink { issue: (ck, issue) } => tx.unlink(ck, issue)?,
            Effect::Rename {
                issue: (ck, from),
                to,
            } if from != to => tx.rename(ck, from, to)?,
            _ => {}
        }
    }
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
    for effect in effects {
        match effect {
            Effect::Assignee { group, user, .. } if !dropped(effect, &superseded) => {
                tx.set_assignee(*group, *user)?
            }
            Effect::Status { group, status, .. } if !dropped(effect, &superseded) => {
                tx.set_status(*group, *status)?
            }
            Effect::Handled(client_key, id) if !tx.mark_handled(client_key, id)? => {
                return Err(handled_elsewhere(client_key, id));
            }
            _ => {}
        }
    }
    Ok(superseded.into_iter().collect())
}

/// Whether `effect` belongs to a superseded field.
pub fn dropped(effect: &Effect, superseded: &BTreeSet<IssueField>) -> bool {
    effect.field().is_some_and(|((ck, issue), field)| {
        superseded.contains(&(ck.clone(), issue.clone(), field))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transaction that writes nothing and records what it was asked, in order.
    #[derive(Default)]
    struct Recorder(Vec<String>);

    impl Transaction for Recorder {
        fn watermark(
            &mut self,
            _: &str,
            issue_key: &str,
            field: Field,
        ) -> BackendResult<Option<i64>> {
            self.0.push(format!("read {issue_key} {}", field.as_str()));
            Ok(None)
        }
        fn set_watermark(
            &mut self,
            _: &str,
            issue_key: &str,
            field: Field,
            updated_ms: i64,
        ) -> BackendResult<()> {
            self.0
                .push(format!("set {issue_key} {} {updated_ms}", field.as_str()));
            Ok(())
        }
        fn set_assignee(&mut self, group: u64, _: Option<u64>) -> BackendResult<()> {
            self.0.push(format!("assign {group}"));
            Ok(())
        }
        fn set_status(&mut self, group: u64, _: GroupStatus) -> BackendResult<()> {
            self.0.push(format!("status {group}"));
            Ok(())
        }
        fn mark_handled(&mut self, _: &str, id: &str) -> BackendResult<bool> {
            self.0.push(format!("handled {id}"));
            Ok(true)
        }
        fn unlink(&mut self, _: &str, issue_key: &str) -> BackendResult<()> {
            self.0.push(format!("unlink {issue_key}"));
            Ok(())
        }
        fn rename(&mut self, _: &str, from: &str, to: &str) -> BackendResult<()> {
            self.0.push(format!("rename {from} {to}"));
            Ok(())
        }
    }

    fn issue(key: &str) -> (String, String) {
        ("jira:1".to_owned(), key.to_owned())
    }

    #[test]
    fn renames_and_unlinks_come_first_in_their_order_and_a_rename_to_itself_is_skipped() {
        let effects = [
            Effect::Watermark {
                issue: issue("NEW-5"),
                fields: vec![Field::Status],
                updated_ms: 7,
            },
            Effect::Status {
                issue: issue("NEW-5"),
                group: 1,
                status: GroupStatus::Resolved,
            },
            Effect::Rename {
                issue: issue("OLD-1"),
                to: "NEW-5".to_owned(),
            },
            Effect::Unlink {
                issue: issue("GONE-2"),
            },
            Effect::Rename {
                issue: issue("NEW-5"),
                to: "NEW-5".to_owned(),
            },
            Effect::Handled("jira:1".to_owned(), "d-1".to_owned()),
        ];
        let mut tx = Recorder::default();
        assert_eq!(apply(&mut tx, &effects).unwrap(), []);
        assert_eq!(
            tx.0,
            [
                "rename OLD-1 NEW-5",
                "unlink GONE-2",
                "read NEW-5 status",
                "set NEW-5 status 7",
                "status 1",
                "handled d-1",
            ]
        );
    }
}
