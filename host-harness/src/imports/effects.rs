//! The platform changes of one call, staged until the call succeeds and then committed in one
//! transaction, so that a call that breaks a limit, traps or meets a failing backend leaves no
//! partial effect (docs/behaviour.md#9). The rule they are committed by (watermarks first,
//! superseded fields dropped) is the backends' (`backends::effects`).

use crate::backends::{BackendResult, Effect, GroupStatus, IssueField, Platform};

/// The staged effects of one call, in the order the guest asked for them.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    effects: Vec<Effect>,
}

impl Staged {
    /// Stages `effect`; a delivery marked handled twice is staged once.
    pub fn push(&mut self, effect: Effect) {
        if let Effect::Handled(client_key, id) = &effect
            && self.handled(client_key, id)
        {
            return;
        }
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

    /// The keys this call renamed to `issue_key` of `client_key` (Jira moved the issue): their
    /// links are the issue's too once the call commits.
    pub fn renamed_into<'a>(
        &'a self,
        client_key: &'a str,
        issue_key: &'a str,
    ) -> impl Iterator<Item = &'a str> {
        self.effects.iter().filter_map(move |e| match e {
            Effect::Rename {
                issue: (ck, from),
                to,
            } if ck == client_key && to == issue_key => Some(from.as_str()),
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
    pub async fn commit(&mut self, platform: &dyn Platform) -> BackendResult<Vec<IssueField>> {
        let effects = std::mem::take(&mut self.effects);
        // A call that changed nothing (a refused or duplicate webhook) opens no transaction.
        if effects.is_empty() {
            return Ok(Vec::new());
        }
        platform.commit(&effects).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::{Field, MemoryPlatform};

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

        assert_eq!(pollster::block_on(staged.commit(&platform)), Ok(Vec::new()));
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
        assert_eq!(pollster::block_on(first.commit(&platform)), Ok(Vec::new()));
        let mut late = Staged::default();
        newer(&mut late, 100, GroupStatus::Unresolved);
        let superseded = pollster::block_on(late.commit(&platform)).unwrap();
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
