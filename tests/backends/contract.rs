//! The contract every backend of a kind keeps, as async test bodies over the traits; `main.rs`
//! runs each against every backend.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jira_sync_host::backends::{
    CacheBackend, Claim, Effect, Enqueued, Field, Finished, GroupStatus, MemoryPlatform, NewJob,
    Next, PgStore, Platform, SqliteStore, Store,
};
use jira_sync_host::installation::{CredentialSpec, InstallationSpec, OauthTokens};
use serde_json::json;

/// Seeds what the platform tests read: links and users, however the backend stores them.
pub trait Seed: Platform + 'static {
    fn seed_link(&self, client_key: &str, issue_key: &str, groups: &[u64]);
    fn seed_user(&self, id: u64, email: &str);
}

impl Seed for MemoryPlatform {
    fn seed_link(&self, client_key: &str, issue_key: &str, groups: &[u64]) {
        self.link(client_key, issue_key, groups);
    }
    fn seed_user(&self, id: u64, email: &str) {
        self.add_user(email, id);
    }
}

fn seed_store<S: Store + ?Sized>(store: &S, client_key: &str, issue_key: &str, groups: &[u64]) {
    block_on_thread(store.link(client_key, issue_key, groups)).expect("link");
}

impl Seed for SqliteStore {
    fn seed_link(&self, client_key: &str, issue_key: &str, groups: &[u64]) {
        seed_store(self, client_key, issue_key, groups);
    }
    fn seed_user(&self, id: u64, email: &str) {
        block_on_thread(Store::add_user(self, id, email)).expect("add user");
    }
}

impl Seed for PgStore {
    fn seed_link(&self, client_key: &str, issue_key: &str, groups: &[u64]) {
        seed_store(self, client_key, issue_key, groups);
    }
    fn seed_user(&self, id: u64, email: &str) {
        block_on_thread(Store::add_user(self, id, email)).expect("add user");
    }
}

/// Runs a backend future to completion from synchronous seeding code inside a test's runtime.
fn block_on_thread<T>(future: impl Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn issue() -> (String, String) {
    ("jira:1".to_owned(), "APP-1".to_owned())
}

fn handled(id: &str) -> Effect {
    Effect::Handled("jira:1".to_owned(), id.to_owned())
}

pub async fn one_claim_of_many_at_once_wins<P: Seed>(platform: Arc<P>) {
    let now = now();
    for round in 0..3 {
        let id = format!("d-{round}");
        let claims = (0..32u64).map(|owner| {
            let platform = platform.clone();
            let id = id.clone();
            tokio::spawn(async move {
                let claim = platform.claim("jira:1", &id, owner, now, now + 60).await;
                (owner, claim.expect("claim"))
            })
        });
        let mut winners = Vec::new();
        for claim in claims {
            let (owner, claim) = claim.await.unwrap();
            match claim {
                Claim::Claimed => winners.push(owner),
                Claim::InProgress => {}
                Claim::Handled => panic!("nothing handled {id} yet"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        platform.commit(&[handled(&id)]).await.unwrap();
        assert_eq!(
            platform
                .claim("jira:1", &id, 99, now, now + 60)
                .await
                .unwrap(),
            Claim::Handled
        );
    }
}

pub async fn watermarks_only_move_forward_under_concurrent_commits<P: Seed>(platform: Arc<P>) {
    platform.seed_link("jira:1", "APP-1", &[1]);
    let mut order: Vec<i64> = (0..24).collect();
    fastrand::shuffle(&mut order);
    let commits = order.into_iter().map(|i| {
        let platform = platform.clone();
        tokio::spawn(async move {
            let effects = [
                Effect::Watermark {
                    issue: issue(),
                    fields: vec![Field::Status, Field::Assignee],
                    updated_ms: 1_000 + i,
                },
                Effect::Status {
                    issue: issue(),
                    group: 1,
                    status: if i % 2 == 0 {
                        GroupStatus::Resolved
                    } else {
                        GroupStatus::Unresolved
                    },
                },
                Effect::Assignee {
                    issue: issue(),
                    group: 1,
                    user: Some(i as u64),
                },
                handled(&format!("d-{i}")),
            ];
            platform.commit(&effects).await
        })
    });
    for commit in commits {
        commit.await.unwrap().expect("every commit succeeds");
    }
    assert_eq!(
        platform
            .watermark("jira:1", "APP-1", Field::Status)
            .await
            .unwrap(),
        Some(1_023)
    );
    let group = platform.group(1).await.unwrap().unwrap();
    assert_eq!(group.status, GroupStatus::Unresolved, "the newest event's");
    assert_eq!(group.assignee, Some(23), "the newest event's");
    for i in 0..24 {
        assert!(platform.handled("jira:1", &format!("d-{i}")).await.unwrap());
    }
}

pub async fn a_delivery_is_marked_handled_once<P: Seed>(platform: Arc<P>) {
    platform.seed_link("jira:1", "APP-1", &[1]);
    let commits = (0..8u64).map(|user| {
        let platform = platform.clone();
        tokio::spawn(async move {
            let effects = [
                Effect::Assignee {
                    issue: issue(),
                    group: 1,
                    user: Some(user),
                },
                handled("d"),
            ];
            (user, platform.commit(&effects).await)
        })
    });
    let mut applied = Vec::new();
    for commit in commits {
        let (user, result) = commit.await.unwrap();
        match result {
            Ok(_) => applied.push(user),
            Err(e) => assert!(e.0.contains("handled meanwhile"), "{e}"),
        }
    }
    assert_eq!(applied.len(), 1, "{applied:?}");
    let group = platform.group(1).await.unwrap().unwrap();
    assert_eq!(group.assignee, Some(applied[0]), "only the winner's change");
}

pub async fn a_commit_applies_all_or_nothing<P: Seed>(platform: Arc<P>) {
    platform.seed_link("jira:1", "APP-1", &[1]);
    platform.commit(&[handled("done")]).await.unwrap();
    let failing = [
        Effect::Watermark {
            issue: issue(),
            fields: vec![Field::Status],
            updated_ms: 5,
        },
        Effect::Status {
            issue: issue(),
            group: 1,
            status: GroupStatus::Resolved,
        },
        handled("fresh"),
        handled("done"),
    ];
    assert!(platform.commit(&failing).await.is_err());
    assert_eq!(
        platform.group(1).await.unwrap().unwrap().status,
        GroupStatus::Unresolved
    );
    assert_eq!(
        platform
            .watermark("jira:1", "APP-1", Field::Status)
            .await
            .unwrap(),
        None
    );
    assert!(!platform.handled("jira:1", "fresh").await.unwrap());
}

pub async fn reads_answer_what_was_written<P: Seed>(platform: Arc<P>) {
    platform.seed_link("jira:1", "APP-1", &[3, 1]);
    platform.seed_link("jira:2", "B-1", &[1]);
    platform.seed_user(7, "Ada@Example.com");
    assert_eq!(
        platform.linked_groups("jira:1", "APP-1").await.unwrap(),
        vec![1, 3]
    );
    assert_eq!(
        platform.linked_groups("jira:2", "APP-1").await.unwrap(),
        Vec::<u64>::new(),
        "links are per installation"
    );
    assert_eq!(
        platform.links_of_group(1).await.unwrap(),
        vec![
            ("jira:1".to_owned(), "APP-1".to_owned()),
            ("jira:2".to_owned(), "B-1".to_owned())
        ]
    );
    assert_eq!(
        platform.user_by_email("ada@example.COM").await.unwrap(),
        Some(7)
    );
    assert_eq!(
        platform.user_by_email("bob@example.com").await.unwrap(),
        None
    );
    assert_eq!(
        platform.user_emails(7).await.unwrap(),
        vec!["Ada@Example.com".to_owned()]
    );
    let group = platform.group(3).await.unwrap().unwrap();
    assert_eq!(
        (group.status, group.assignee),
        (GroupStatus::Unresolved, None)
    );
    assert!(platform.group(404).await.unwrap().is_none());
    assert!(!platform.handled("jira:1", "x").await.unwrap());
}

fn key(client_key: &str, issue_key: &str) -> (String, String) {
    (client_key.to_owned(), issue_key.to_owned())
}

fn rename(from: &str, to: &str) -> Effect {
    Effect::Rename {
        issue: key("jira:1", from),
        to: to.to_owned(),
    }
}

fn unlink(client_key: &str, issue_key: &str) -> Effect {
    Effect::Unlink {
        issue: key(client_key, issue_key),
    }
}

fn mark(client_key: &str, issue_key: &str, fields: &[Field], updated_ms: i64) -> Effect {
    Effect::Watermark {
        issue: key(client_key, issue_key),
        fields: fields.to_vec(),
        updated_ms,
    }
}

/// The (status, assignee) watermarks of an issue.
async fn marks_of<P: Seed>(platform: &P, client_key: &str, issue_key: &str) -> [Option<i64>; 2] {
    let mut marks = [None; 2];
    for (slot, field) in marks.iter_mut().zip([Field::Status, Field::Assignee]) {
        *slot = platform
            .watermark(client_key, issue_key, field)
            .await
            .unwrap();
    }
    marks
}

pub async fn a_rename_moves_links_and_watermarks_and_merges_them<P: Seed>(platform: Arc<P>) {
    platform.seed_link("jira:1", "OLD-1", &[1, 2]);
    platform.seed_link("jira:1", "NEW-5", &[2, 3]);
    platform.seed_link("jira:2", "OLD-1", &[1]);
    platform
        .commit(&[
            mark("jira:1", "OLD-1", &[Field::Status], 10),
            mark("jira:1", "OLD-1", &[Field::Assignee], 30),
            mark("jira:1", "NEW-5", &[Field::Status], 20),
            mark("jira:2", "OLD-1", &[Field::Status, Field::Assignee], 40),
        ])
        .await
        .unwrap();
    assert_eq!(
        platform.commit(&[rename("OLD-1", "NEW-5")]).await.unwrap(),
        []
    );
    assert_eq!(
        platform.linked_groups("jira:1", "NEW-5").await.unwrap(),
        vec![1, 2, 3]
    );
    assert_eq!(
        platform.linked_groups("jira:1", "OLD-1").await.unwrap(),
        Vec::<u64>::new()
    );
    assert_eq!(
        platform.links_of_group(2).await.unwrap(),
        vec![key("jira:1", "NEW-5")],
        "linked to both before, once after"
    );
    assert_eq!(
        marks_of(&*platform, "jira:1", "NEW-5").await,
        [Some(20), Some(30)],
        "the newer of the two per field"
    );
    assert_eq!(marks_of(&*platform, "jira:1", "OLD-1").await, [None, None]);
    assert_eq!(
        platform.linked_groups("jira:2", "OLD-1").await.unwrap(),
        vec![1],
        "another installation's issue of the same key stays"
    );
    assert_eq!(
        marks_of(&*platform, "jira:2", "OLD-1").await,
        [Some(40), Some(40)]
    );

    platform.commit(&[rename("NEW-5", "NEW-5")]).await.unwrap();
    assert_eq!(
        platform.linked_groups("jira:1", "NEW-5").await.unwrap(),
        vec![1, 2, 3],
        "a rename to itself changes nothing"
    );
    assert_eq!(
        marks_of(&*platform, "jira:1", "NEW-5").await,
        [Some(20), Some(30)]
    );

    // Moved twice in one call: the renames apply in the order staged.
    platform
        .commit(&[rename("NEW-5", "MID-2"), rename("MID-2", "LAST-9")])
        .await
        .unwrap();
    assert_eq!(
        platform.linked_groups("jira:1", "LAST-9").await.unwrap(),
        vec![1, 2, 3]
    );
    assert_eq!(
        marks_of(&*platform, "jira:1", "LAST-9").await,
        [Some(20), Some(30)]
    );
    for gone in ["NEW-5", "MID-2"] {
        assert!(
            platform
                .linked_groups("jira:1", gone)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(marks_of(&*platform, "jira:1", gone).await, [None, None]);
    }
}

pub async fn a_rename_comes_before_the_watermarks_of_its_commit<P: Seed>(platform: Arc<P>) {
    platform.seed_link("jira:1", "OLD-1", &[1]);
    platform
        .commit(&[mark("jira:1", "OLD-1", &[Field::Status], 50)])
        .await
        .unwrap();
    // Staged after the event it came with, applied before it: the event under the new key is
    // older than the one already applied under the old key, so it is dropped.
    let superseded = platform
        .commit(&[
            mark("jira:1", "NEW-5", &[Field::Status, Field::Assignee], 40),
            Effect::Status {
                issue: key("jira:1", "NEW-5"),
                group: 1,
                status: GroupStatus::Resolved,
            },
            Effect::Assignee {
                issue: key("jira:1", "NEW-5"),
                group: 1,
                user: Some(7),
            },
            rename("OLD-1", "NEW-5"),
        ])
        .await
        .unwrap();
    assert_eq!(
        superseded,
        [("jira:1".to_owned(), "NEW-5".to_owned(), Field::Status)]
    );
    let group = platform.group(1).await.unwrap().unwrap();
    assert_eq!(
        (group.status, group.assignee),
        (GroupStatus::Unresolved, Some(7)),
        "the status is older than the moved watermark, the assignee has none"
    );
    assert_eq!(
        marks_of(&*platform, "jira:1", "NEW-5").await,
        [Some(50), Some(40)]
    );
    assert_eq!(marks_of(&*platform, "jira:1", "OLD-1").await, [None, None]);
    let superseded = platform
        .commit(&[
            mark("jira:1", "NEW-5", &[Field::Status], 60),
            Effect::Status {
                issue: key("jira:1", "NEW-5"),
                group: 1,
                status: GroupStatus::Resolved,
            },
        ])
        .await
        .unwrap();
    assert_eq!(superseded, []);
    assert_eq!(
        platform.group(1).await.unwrap().unwrap().status,
        GroupStatus::Resolved
    );
}

pub async fn an_unlink_removes_links_and_watermarks_but_not_groups<P: Seed>(platform: Arc<P>) {
    platform.seed_link("jira:1", "APP-1", &[1, 2]);
    platform.seed_link("jira:1", "APP-2", &[2]);
    platform.seed_link("jira:2", "APP-1", &[3]);
    platform
        .commit(&[
            mark("jira:1", "APP-1", &[Field::Status, Field::Assignee], 10),
            mark("jira:1", "APP-2", &[Field::Status], 20),
            mark("jira:2", "APP-1", &[Field::Status], 30),
        ])
        .await
        .unwrap();
    platform
        .commit(&[unlink("jira:1", "APP-1"), handled("deleted")])
        .await
        .unwrap();
    assert!(
        platform
            .linked_groups("jira:1", "APP-1")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(marks_of(&*platform, "jira:1", "APP-1").await, [None, None]);
    assert!(platform.links_of_group(1).await.unwrap().is_empty());
    assert_eq!(
        platform.links_of_group(2).await.unwrap(),
        vec![key("jira:1", "APP-2")]
    );
    for group in [1, 2] {
        assert!(
            platform.group(group).await.unwrap().is_some(),
            "group {group} stays"
        );
    }
    assert_eq!(
        marks_of(&*platform, "jira:1", "APP-2").await,
        [Some(20), None]
    );
    assert_eq!(
        platform.linked_groups("jira:2", "APP-1").await.unwrap(),
        vec![3],
        "another installation's issue of the same key stays"
    );
    assert_eq!(
        marks_of(&*platform, "jira:2", "APP-1").await,
        [Some(30), None]
    );
    assert!(platform.handled("jira:1", "deleted").await.unwrap());
    // An event for the deleted issue that arrives late starts from no watermark.
    assert_eq!(
        platform
            .commit(&[mark("jira:1", "APP-1", &[Field::Status], 5)])
            .await
            .unwrap(),
        []
    );
}

pub async fn a_failing_commit_applies_neither_rename_nor_unlink<P: Seed>(platform: Arc<P>) {
    platform.seed_link("jira:1", "OLD-1", &[1]);
    platform.seed_link("jira:1", "GONE-2", &[2]);
    platform
        .commit(&[
            mark("jira:1", "OLD-1", &[Field::Status], 10),
            mark("jira:1", "GONE-2", &[Field::Status], 20),
            handled("done"),
        ])
        .await
        .unwrap();
    let error = platform
        .commit(&[
            rename("OLD-1", "NEW-5"),
            unlink("jira:1", "GONE-2"),
            mark("jira:1", "NEW-5", &[Field::Status], 30),
            handled("done"),
        ])
        .await
        .unwrap_err();
    assert!(error.0.contains("handled meanwhile"), "{error}");
    assert_eq!(
        platform.linked_groups("jira:1", "OLD-1").await.unwrap(),
        vec![1]
    );
    assert!(
        platform
            .linked_groups("jira:1", "NEW-5")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        platform.linked_groups("jira:1", "GONE-2").await.unwrap(),
        vec![2]
    );
    assert_eq!(
        marks_of(&*platform, "jira:1", "OLD-1").await,
        [Some(10), None]
    );
    assert_eq!(marks_of(&*platform, "jira:1", "NEW-5").await, [None, None]);
    assert_eq!(
        marks_of(&*platform, "jira:1", "GONE-2").await,
        [Some(20), None]
    );
}

pub async fn a_rename_racing_watermark_commits_ends_consistent<P: Seed>(platform: Arc<P>) {
    for round in 0..4 {
        let (old, new) = (format!("OLD-{round}"), format!("NEW-{round}"));
        let group = 10 + round;
        platform.seed_link("jira:1", &old, &[group]);
        platform.seed_link("jira:1", &new, &[group + 100]);
        // Fifteen events, each writing the watermarks of both keys (a call that sees both,
        // in either order) and the status of the group under the new key, and the move itself,
        // all at once in a random order.
        let mut commits: Vec<Vec<Effect>> = (0..15i64)
            .map(|i| {
                let both = [old.as_str(), new.as_str()];
                let (first, second) = if i % 2 == 0 {
                    (both[0], both[1])
                } else {
                    (both[1], both[0])
                };
                vec![
                    mark("jira:1", first, &Field::ALL, 1_000 + i),
                    mark("jira:1", second, &Field::ALL, 1_000 + i),
                    Effect::Status {
                        issue: key("jira:1", &new),
                        group,
                        status: if i % 2 == 0 {
                            GroupStatus::Resolved
                        } else {
                            GroupStatus::Unresolved
                        },
                    },
                    handled(&format!("r{round}-{i}")),
                ]
            })
            .collect();
        commits.push(vec![rename(&old, &new), handled(&format!("r{round}-move"))]);
        fastrand::shuffle(&mut commits);
        let tasks: Vec<_> = commits
            .into_iter()
            .map(|effects| {
                let platform = platform.clone();
                tokio::spawn(async move { platform.commit(&effects).await })
            })
            .collect();
        for task in tasks {
            task.await
                .unwrap()
                .expect("every commit succeeds, none deadlocks");
        }
        assert_eq!(
            platform.linked_groups("jira:1", &new).await.unwrap(),
            vec![group, group + 100]
        );
        assert!(
            platform
                .linked_groups("jira:1", &old)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            marks_of(&*platform, "jira:1", &new).await,
            [Some(1_014); 2],
            "the newest event, under whichever key it came"
        );
        // Events on the old key after the move start it afresh; never newer than the new key.
        let [status, assignee] = marks_of(&*platform, "jira:1", &old).await;
        assert_eq!(status, assignee);
        assert!(status.is_none_or(|ms| ms <= 1_014), "{status:?}");
        assert_eq!(
            platform.group(group).await.unwrap().unwrap().status,
            GroupStatus::Resolved,
            "the newest event's status"
        );
        for i in 0..15 {
            assert!(
                platform
                    .handled("jira:1", &format!("r{round}-{i}"))
                    .await
                    .unwrap()
            );
        }
        assert!(
            platform
                .handled("jira:1", &format!("r{round}-move"))
                .await
                .unwrap()
        );
    }
}

fn job(client_key: &str, delivery: &str) -> NewJob {
    NewJob {
        client_key: client_key.to_owned(),
        delivery_id: Some(delivery.to_owned()),
        body: delivery.as_bytes().to_vec(),
        run_until: None,
    }
}

pub async fn two_servers_never_claim_one_job<S: Store + 'static>(a: Arc<S>, b: Arc<S>) {
    let now = now();
    let jobs: Vec<NewJob> = (0..60)
        .map(|i| job(&format!("jira:{}", i % 3), &format!("d-{i}")))
        .collect();
    a.write_queue(&jobs, &[], now).await.unwrap();
    let claimers = (0..6).map(|i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store.claim_due_jobs(now, now + 60, 4).await.unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.into_iter().map(|j| j.id));
            }
        })
    });
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "a job claimed twice");
    assert_eq!(all.len(), 60, "every job claimed");
}

pub async fn a_job_whose_lease_ran_out_is_taken_over_and_the_old_lease_is_fenced<
    S: Store + 'static,
>(
    a: Arc<S>,
    b: Arc<S>,
) {
    let now = now();
    let mut running = job("jira:1", "d-1");
    running.run_until = Some(now + 10);
    let Enqueued::Run(first) = a.write_queue(&[running], &[], now).await.unwrap().remove(0) else {
        panic!("a job with a lease starts running");
    };
    assert!(
        b.claim_due_jobs(now + 5, now + 65, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let taken = b.claim_due_jobs(now + 11, now + 71, 10).await.unwrap();
    assert_eq!(taken.len(), 1, "the lease ran out: taken over");
    assert_eq!((taken[0].id, taken[0].attempts), (first.id, 2));
    assert!(
        !a.renew_job(first.id, now + 10, now + 100).await.unwrap(),
        "the old runner's lease is gone"
    );
    assert!(b.renew_job(first.id, now + 71, now + 131).await.unwrap());
    let outcome = |lease_until| Finished {
        id: first.id,
        lease_until,
        next: Next::Done,
        error: None,
    };
    a.write_queue(&[], &[outcome(now + 10)], now + 12)
        .await
        .unwrap();
    assert_eq!(
        a.jobs_due(now + 12).await.unwrap(),
        1,
        "the old runner's outcome is dropped: the job is the new runner's"
    );
    b.write_queue(&[], &[outcome(now + 131)], now + 12)
        .await
        .unwrap();
    assert_eq!(a.jobs_due(now + 200).await.unwrap(), 0);
}

pub async fn jobs_are_claimed_round_robin_per_installation<S: Store + 'static>(
    a: Arc<S>,
    _b: Arc<S>,
) {
    let now = now();
    let jobs = [
        job("jira:a", "a0"),
        job("jira:a", "a1"),
        job("jira:a", "a2"),
        job("jira:b", "b0"),
        job("jira:b", "b1"),
        job("jira:c", "c0"),
    ];
    a.write_queue(&jobs, &[], now).await.unwrap();
    let order: Vec<String> = a
        .claim_due_jobs(now, now + 60, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.delivery_id.unwrap_or_default())
        .collect();
    assert_eq!(order, ["a0", "b0", "c0", "a1", "b1", "a2"]);
}

pub async fn a_redelivered_job_is_recorded_once<S: Store + 'static>(a: Arc<S>, b: Arc<S>) {
    let now = now();
    let writers = (0..10).map(|i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move {
            store
                .write_queue(&[job("jira:1", "same")], &[], now)
                .await
                .unwrap()
                .remove(0)
        })
    });
    let mut recorded = 0;
    for writer in writers {
        match writer.await.unwrap() {
            Enqueued::Duplicate => {}
            Enqueued::Wait => recorded += 1,
            Enqueued::Run(_) => panic!("no lease was asked for"),
        }
    }
    assert_eq!(recorded, 1);
    assert_eq!(a.queue_backlog(now).await.unwrap().0, 1);
}

/// What one server writes of an installation (its kind's credentials, an uninstall, a
/// reinstall) another reads: calls find no uninstalled site, the host's own view still does.
pub async fn an_installation_s_credentials_and_uninstall_reach_every_server<S: Store + 'static>(
    a: Arc<S>,
    b: Arc<S>,
) {
    let mut spec = jira_sync_host::InstallationSpec::new("site-1", "", "https://a.example", "app");
    spec.credentials = jira_sync_host::installation::CredentialSpec::AdminWebhook {
        secret: "hook".into(),
        email: "bot@example.com".into(),
        api_token: "t0ken".into(),
    };
    a.add_installation(&spec).await.unwrap();
    assert!(b.installation("site-1").await.unwrap().is_some());
    assert_eq!(
        b.outbound_authorization("site-1").await.unwrap().as_deref(),
        Some("Basic Ym90QGV4YW1wbGUuY29tOnQwa2Vu")
    );
    assert_eq!(
        b.installation_spec("site-1")
            .await
            .unwrap()
            .unwrap()
            .credentials,
        spec.credentials
    );
    spec.uninstalled = true;
    a.add_installation(&spec).await.unwrap();
    assert!(b.installation("site-1").await.unwrap().is_none());
    assert!(
        b.installation_spec("site-1")
            .await
            .unwrap()
            .unwrap()
            .uninstalled,
        "kept for a reinstall"
    );
    spec.uninstalled = false;
    b.add_installation(&spec).await.unwrap();
    assert!(a.installation("site-1").await.unwrap().is_some());
    assert!(a.installation_spec("site-2").await.unwrap().is_none());
}

pub async fn outbox_retries_come_due_at_their_time_one_per_installation<S: Store + 'static>(
    a: Arc<S>,
    b: Arc<S>,
) {
    let now = now();
    a.link("jira:a", "A-1", &[5]).await.unwrap();
    a.link("jira:a", "A-2", &[5]).await.unwrap();
    a.link("jira:b", "B-1", &[5]).await.unwrap();
    let entries = a
        .change_group(5, &json!({"resolved": true}), now, now + 60)
        .await
        .unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(
        a.group(5).await.unwrap().unwrap().status,
        GroupStatus::Resolved
    );
    for entry in &entries {
        assert_eq!((entry.state.as_str(), entry.attempts), ("running", 1));
        a.finish_push(
            entry.id,
            &json!({"error": "rate-limited"}),
            Next::RetryAt(now + 30),
        )
        .await
        .unwrap();
    }
    assert!(
        b.claim_due_pushes(now + 29, now + 90, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = b.claim_due_pushes(now + 30, now + 90, 10).await.unwrap();
    let installations: BTreeSet<&str> = due.iter().map(|e| e.client_key.as_str()).collect();
    assert_eq!(due.len(), 2, "one per installation: {due:?}");
    assert_eq!(installations.len(), 2);
    assert!(due.iter().all(|e| e.attempts == 2 && e.state == "running"));
    for entry in &due {
        b.finish_push(entry.id, &json!({"ok": true}), Next::Done)
            .await
            .unwrap();
    }
    let rest = a.claim_due_pushes(now + 30, now + 90, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].client_key, "jira:a");
    let states: Vec<String> = a
        .pushes_of_group(5)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(
        states.iter().filter(|s| *s == "done").count(),
        2,
        "{states:?}"
    );
    assert_eq!(states.len(), 3);
}

pub async fn the_cache_round_trips_and_expires<C: CacheBackend + 'static>(cache: Arc<C>) {
    let key = "9:jira:1c4:user:ada";
    cache.set(key, "7", 60, now()).await.unwrap();
    assert_eq!(cache.get(key, now()).await.unwrap().as_deref(), Some("7"));
    assert_eq!(cache.get("9:jira:2c4:user:ada", now()).await.unwrap(), None);
    cache.delete(key).await.unwrap();
    assert_eq!(cache.get(key, now()).await.unwrap(), None);
    cache.set(key, "7", 60, now()).await.unwrap();
    cache.set(key, "8", 0, now()).await.unwrap();
    assert_eq!(
        cache.get(key, now()).await.unwrap(),
        None,
        "ttl 0 expires at once"
    );
    cache.set(key, "7", 1, now()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(cache.get(key, now()).await.unwrap(), None, "expired");
}

pub async fn the_cache_serves_many_calls_at_once<C: CacheBackend + 'static>(cache: Arc<C>) {
    let calls = (0..64).map(|i| {
        let cache = cache.clone();
        tokio::spawn(async move {
            let key = format!("k{i}");
            cache.set(&key, &i.to_string(), 60, now()).await.unwrap();
            cache.get(&key, now()).await.unwrap()
        })
    });
    for (i, call) in calls.enumerate() {
        assert_eq!(call.await.unwrap(), Some(i.to_string()));
    }
}

fn oauth_installation(client_key: &str, refresh_token: &str) -> InstallationSpec {
    let mut spec = InstallationSpec::new(client_key, "", "https://api.example/ex/jira/1", "app");
    spec.credentials = CredentialSpec::Oauth {
        client_id: "id".into(),
        client_secret: "cs".into(),
        access_token: None,
        refresh_token: Some(refresh_token.into()),
        access_expires_at: 0,
        webhook_ids: Vec::new(),
        webhooks_expire_at: 0,
        jql: None,
    };
    spec
}

fn keys(specs: &[InstallationSpec]) -> Vec<&str> {
    specs.iter().map(|s| s.client_key.as_str()).collect()
}

pub async fn oauth_upkeep_is_leased_to_one_server_at_a_time_and_backs_off_after_failures<
    S: Store + 'static,
>(
    a: Arc<S>,
    b: Arc<S>,
) {
    let now = now();
    a.add_installation(&oauth_installation("cloud-1", "rt-1"))
        .await
        .unwrap();
    a.add_installation(&oauth_installation("cloud-2", "rt-1"))
        .await
        .unwrap();
    a.add_installation(&InstallationSpec::new(
        "jira:1",
        "s",
        "https://a.example",
        "app",
    ))
    .await
    .unwrap();
    let mut gone = oauth_installation("cloud-3", "rt-1");
    gone.uninstalled = true;
    a.add_installation(&gone).await.unwrap();
    assert_eq!(
        keys(&b.oauth_installations(now).await.unwrap()),
        ["cloud-1", "cloud-2"],
        "OAuth installations only, uninstalled ones left out"
    );
    assert!(
        a.lease_oauth("jira:1", now, now + 60)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        a.lease_oauth("nobody", now, now + 60)
            .await
            .unwrap()
            .is_none()
    );

    // Many servers at once: one lease.
    let takers = (0..8).map(|i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move { store.lease_oauth("cloud-1", now, now + 60).await.unwrap() })
    });
    let mut leases = Vec::new();
    for taker in takers {
        leases.extend(taker.await.unwrap());
    }
    assert_eq!(leases.len(), 1, "exactly one server holds the upkeep");
    let lease = leases.remove(0);
    assert_eq!((lease.until, lease.failures), (now + 60, 0));
    assert_eq!(
        lease.spec.oauth_tokens().unwrap().refresh_token.as_deref(),
        Some("rt-1")
    );
    assert_eq!(
        keys(&a.oauth_installations(now).await.unwrap()),
        ["cloud-2"]
    );
    assert!(
        b.lease_oauth("cloud-1", now + 61, now + 121)
            .await
            .unwrap()
            .is_some(),
        "a lease whose holder died is taken over"
    );
    b.release_oauth("cloud-1", now + 60, 0, false)
        .await
        .unwrap();
    assert!(
        a.lease_oauth("cloud-1", now + 62, now + 122)
            .await
            .unwrap()
            .is_none(),
        "the old holder's release is fenced off"
    );

    // A failure holds the next attempt back until its time, and counts.
    b.release_oauth("cloud-1", now + 121, now + 300, true)
        .await
        .unwrap();
    assert!(
        a.lease_oauth("cloud-1", now + 299, now + 359)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        keys(&a.oauth_installations(now + 299).await.unwrap()),
        ["cloud-2"]
    );
    let again = a
        .lease_oauth("cloud-1", now + 300, now + 360)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.failures, 1);
    a.release_oauth("cloud-1", now + 360, now + 900, true)
        .await
        .unwrap();
    // Re-authorised: the installation is added again and kept up at once.
    a.add_installation(&oauth_installation("cloud-1", "rt-new"))
        .await
        .unwrap();
    let fresh = b
        .lease_oauth("cloud-1", now + 301, now + 361)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fresh.failures, 0);
    assert_eq!(
        fresh.spec.oauth_tokens().unwrap().refresh_token.as_deref(),
        Some("rt-new")
    );
    b.release_oauth("cloud-1", now + 361, 0, false)
        .await
        .unwrap();
    assert_eq!(
        a.lease_oauth("cloud-1", now + 302, now + 362)
            .await
            .unwrap()
            .unwrap()
            .failures,
        0
    );
}

pub async fn oauth_tokens_are_saved_only_over_the_refresh_token_they_came_from<
    S: Store + 'static,
>(
    a: Arc<S>,
    b: Arc<S>,
) {
    let mut spec = oauth_installation("cloud-1", "rt-1");
    spec.max_transition_hops = 9;
    a.add_installation(&spec).await.unwrap();
    let next = |n: u64| OauthTokens {
        access_token: Some(format!("at-{n}")),
        refresh_token: Some(format!("rt-{n}")),
        access_expires_at: 1000 * n,
        webhook_ids: vec![n],
        webhooks_expire_at: 2000 * n,
    };
    // Two servers save what they got from the same refresh token: one wins.
    let savers = [(a.clone(), 2), (b.clone(), 3)].map(|(store, n)| {
        tokio::spawn(async move {
            store
                .save_oauth_tokens("cloud-1", Some("rt-1"), &next(n))
                .await
                .unwrap()
        })
    });
    let [first, second] = savers;
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert!(first ^ second, "exactly one save over rt-1");
    let stored = b
        .oauth_installations(now())
        .await
        .unwrap()
        .remove(0)
        .oauth_tokens()
        .unwrap();
    assert!(stored == next(2) || stored == next(3), "{stored:?}");
    assert!(
        !a.save_oauth_tokens("cloud-1", Some("rt-1"), &next(4))
            .await
            .unwrap()
    );
    assert!(!a.save_oauth_tokens("nobody", None, &next(4)).await.unwrap());
    let current = stored.refresh_token.clone();
    assert!(
        a.save_oauth_tokens("cloud-1", current.as_deref(), &next(5))
            .await
            .unwrap()
    );
    assert_eq!(
        b.outbound_authorization("cloud-1")
            .await
            .unwrap()
            .as_deref(),
        Some("Bearer at-5"),
        "the guest's next request carries the new access token"
    );
    let (installation, _) = b.installation("cloud-1").await.unwrap().unwrap();
    assert_eq!(
        installation.config.max_transition_hops, 9,
        "the rest of the spec stays"
    );
}
