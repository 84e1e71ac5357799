//! The platform changes one call commits, as data: each [`Platform`](super::Platform) applies a
//! list of them in one transaction of its own, and the ordering rule they follow is written
//! once, here (docs/behaviour.md#7).
//!
//! Each watermark moves by compare-and-set inside that transaction, only forward. When another
//! call has already moved a field's watermark past this call's event, this call's changes to
//! that field of that issue are dropped: of two events for one issue handled at once, the older
//! can never be applied last. A delivery is marked handled once: a commit that finds its
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
}

/// Applies `effects` inside `tx`: watermarks first (compare-and-set), then every change whose
/// field was not superseded, then the handled marks. Returns the superseded fields; an error
/// (a failed write, or a delivery handled elsewhere) means the caller must roll back.
pub fn apply(tx: &mut dyn Transaction, effects: &[Effect]) -> BackendResult<Vec<IssueField>> {
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
