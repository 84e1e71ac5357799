//! Backends fail (database down, disk full): the call ends with a typed error, nothing of it is
//! applied, the delivery stays unhandled so that Jira's retry runs, and the retry completes the
//! work once the backend is back (docs/behaviour.md#9).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jira_sync_host::backends::{
    BackendError, BackendResult, Backends, BoxFuture, Claim, Effect, Field, Group, IssueField,
    MemoryPlatform, Platform,
};
use jira_sync_host::{CallError, Installation, Limits, Scenario, World};
use jira_sync_tests::{ada_delivery, runtime, scenario};

/// The memory platform, failing on command: every read, or the commit of a call's writes.
struct Failing {
    inner: Arc<MemoryPlatform>,
    reads: AtomicBool,
    commits: AtomicBool,
}

impl Failing {
    fn read(&self) -> BackendResult<()> {
        if self.reads.load(Ordering::SeqCst) {
            Err(BackendError("injected: database down".into()))
        } else {
            Ok(())
        }
    }
}

impl Failing {
    /// `answer`, unless reads are failing.
    fn answer<'a, T: Send + 'a>(
        &self,
        answer: BoxFuture<'a, BackendResult<T>>,
    ) -> BoxFuture<'a, BackendResult<T>> {
        match self.read() {
            Ok(()) => answer,
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}

impl Platform for Failing {
    fn installation<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<(Installation, Limits)>>> {
        self.answer(self.inner.installation(client_key))
    }
    fn outbound_authorization<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<String>>> {
        self.answer(self.inner.outbound_authorization(client_key))
    }
    fn linked_groups<'a>(
        &'a self,
        ck: &'a str,
        issue: &'a str,
    ) -> BoxFuture<'a, BackendResult<Vec<u64>>> {
        self.answer(self.inner.linked_groups(ck, issue))
    }
    fn user_by_email<'a>(&'a self, email: &'a str) -> BoxFuture<'a, BackendResult<Option<u64>>> {
        self.answer(self.inner.user_by_email(email))
    }
    fn group(&self, group: u64) -> BoxFuture<'_, BackendResult<Option<Group>>> {
        self.answer(Platform::group(self.inner.as_ref(), group))
    }
    fn links_of_group(&self, group: u64) -> BoxFuture<'_, BackendResult<Vec<(String, String)>>> {
        self.answer(self.inner.links_of_group(group))
    }
    fn user_emails(&self, user: u64) -> BoxFuture<'_, BackendResult<Vec<String>>> {
        self.answer(self.inner.user_emails(user))
    }
    fn handled<'a>(&'a self, ck: &'a str, id: &'a str) -> BoxFuture<'a, BackendResult<bool>> {
        self.answer(Platform::handled(self.inner.as_ref(), ck, id))
    }
    fn watermark<'a>(
        &'a self,
        ck: &'a str,
        issue: &'a str,
        field: Field,
    ) -> BoxFuture<'a, BackendResult<Option<i64>>> {
        self.answer(Platform::watermark(self.inner.as_ref(), ck, issue, field))
    }
    fn claim<'a>(
        &'a self,
        ck: &'a str,
        id: &'a str,
        owner: u64,
        now: u64,
        until: u64,
    ) -> BoxFuture<'a, BackendResult<Claim>> {
        self.answer(Platform::claim(
            self.inner.as_ref(),
            ck,
            id,
            owner,
            now,
            until,
        ))
    }
    fn release<'a>(
        &'a self,
        ck: &'a str,
        id: &'a str,
        owner: u64,
    ) -> BoxFuture<'a, BackendResult<()>> {
        self.inner.release(ck, id, owner)
    }
    fn commit<'a>(
        &'a self,
        effects: &'a [Effect],
    ) -> BoxFuture<'a, BackendResult<Vec<IssueField>>> {
        if self.commits.load(Ordering::SeqCst) {
            Box::pin(std::future::ready(Err(BackendError(
                "injected: disk full at commit".into(),
            ))))
        } else {
            self.inner.commit(effects)
        }
    }
}

struct Setup {
    world: World,
    failing: Arc<Failing>,
    backends: Backends,
}

fn setup() -> Setup {
    let scenario: Scenario = serde_json::from_value(scenario("base")).unwrap();
    let world = World::new(&scenario);
    let failing = Arc::new(Failing {
        inner: world.platform.clone(),
        reads: AtomicBool::new(false),
        commits: AtomicBool::new(false),
    });
    let backends = Backends {
        platform: failing.clone(),
        ..world.backends.clone()
    };
    Setup {
        world,
        failing,
        backends,
    }
}

fn assert_untouched(setup: &Setup) {
    let platform = &setup.world.platform;
    assert_eq!(platform.group(1).unwrap().assignee, None, "nothing applied");
    assert!(
        !platform.handled("jira:1c4", "d-1"),
        "not recorded as handled"
    );
    assert_eq!(
        platform.watermark("jira:1c4", "APP-123", Field::Assignee),
        None
    );
}

/// After the failure, the same delivery completes the work once the backend is back.
fn assert_redelivery_completes(setup: &Setup) {
    setup.failing.reads.store(false, Ordering::SeqCst);
    setup.failing.commits.store(false, Ordering::SeqCst);
    let call = runtime()
        .blocking()
        .webhook(&setup.backends, &ada_delivery("d-1"));
    assert_eq!(call.result.unwrap().status, 200);
    assert_eq!(setup.world.platform.group(1).unwrap().assignee, Some(7));
    assert!(setup.world.platform.handled("jira:1c4", "d-1"));
}

#[test]
fn a_read_failure_ends_the_call_with_a_backend_error_not_unknown_installation() {
    let setup = setup();
    setup.failing.reads.store(true, Ordering::SeqCst);
    let call = runtime()
        .blocking()
        .webhook(&setup.backends, &ada_delivery("d-1"));
    match call.result {
        Err(CallError::Backend(e)) => assert!(e.0.contains("database down"), "{e}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert_untouched(&setup);
    assert_redelivery_completes(&setup);
}

#[test]
fn a_call_that_changes_nothing_opens_no_transaction() {
    // With every commit failing, a refused webhook still gets its answer: a call with no
    // effects never reaches the backend's commit (a transaction of nothing, per call).
    let setup = setup();
    setup.failing.commits.store(true, Ordering::SeqCst);
    let mut unsigned = ada_delivery("d-1");
    unsigned
        .headers
        .retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
    let call = runtime().blocking().webhook(&setup.backends, &unsigned);
    assert_eq!(call.result.unwrap().status, 409);
    assert_untouched(&setup);
}

#[test]
fn a_failure_in_the_middle_of_a_call_applies_nothing() {
    let setup = setup();
    // The installation is read when the call is bound; the links fail after it.
    let backends = Backends {
        platform: Arc::new(FailAfterBinding(setup.failing.clone())),
        ..setup.backends.clone()
    };
    let call = runtime()
        .blocking()
        .webhook(&backends, &ada_delivery("d-1"));
    assert!(
        matches!(call.result, Err(CallError::Backend(_))),
        "{:?}",
        call.result
    );
    assert_untouched(&setup);
    assert_redelivery_completes(&setup);
}

/// Answers the installation, then fails every other read: a failure mid-call.
struct FailAfterBinding(Arc<Failing>);

impl Platform for FailAfterBinding {
    fn installation<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<(Installation, Limits)>>> {
        self.0.installation(client_key)
    }
    fn outbound_authorization<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<String>>> {
        self.0.outbound_authorization(client_key)
    }
    fn linked_groups<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, BackendResult<Vec<u64>>> {
        Box::pin(std::future::ready(Err(BackendError(
            "injected: connection lost".into(),
        ))))
    }
    fn user_by_email<'a>(&'a self, email: &'a str) -> BoxFuture<'a, BackendResult<Option<u64>>> {
        self.0.user_by_email(email)
    }
    fn group(&self, group: u64) -> BoxFuture<'_, BackendResult<Option<Group>>> {
        self.0.group(group)
    }
    fn links_of_group(&self, group: u64) -> BoxFuture<'_, BackendResult<Vec<(String, String)>>> {
        self.0.links_of_group(group)
    }
    fn user_emails(&self, user: u64) -> BoxFuture<'_, BackendResult<Vec<String>>> {
        self.0.user_emails(user)
    }
    fn handled<'a>(&'a self, ck: &'a str, id: &'a str) -> BoxFuture<'a, BackendResult<bool>> {
        self.0.handled(ck, id)
    }
    fn watermark<'a>(
        &'a self,
        ck: &'a str,
        issue: &'a str,
        field: Field,
    ) -> BoxFuture<'a, BackendResult<Option<i64>>> {
        self.0.watermark(ck, issue, field)
    }
    fn claim<'a>(
        &'a self,
        ck: &'a str,
        id: &'a str,
        owner: u64,
        now: u64,
        until: u64,
    ) -> BoxFuture<'a, BackendResult<Claim>> {
        self.0.claim(ck, id, owner, now, until)
    }
    fn release<'a>(
        &'a self,
        ck: &'a str,
        id: &'a str,
        owner: u64,
    ) -> BoxFuture<'a, BackendResult<()>> {
        self.0.release(ck, id, owner)
    }
    fn commit<'a>(
        &'a self,
        effects: &'a [Effect],
    ) -> BoxFuture<'a, BackendResult<Vec<IssueField>>> {
        self.0.commit(effects)
    }
}

#[test]
fn a_failed_commit_applies_nothing_and_releases_the_delivery() {
    let setup = setup();
    setup.failing.commits.store(true, Ordering::SeqCst);
    let call = runtime()
        .blocking()
        .webhook(&setup.backends, &ada_delivery("d-1"));
    match call.result {
        Err(CallError::Backend(e)) => assert!(e.0.contains("disk full"), "{e}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert_untouched(&setup);
    assert_redelivery_completes(&setup);
}
