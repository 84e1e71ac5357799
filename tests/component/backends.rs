//! Backends fail (database down, disk full): the call ends with a typed error, nothing of it is
//! applied, the delivery stays unhandled so that Jira's retry runs, and the retry completes the
//! work once the backend is back (docs/behaviour.md#9).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jira_sync_host::backends::{
    BackendError, BackendResult, Backends, Claim, Field, Group, MemoryPlatform, Platform,
    Transaction,
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

impl Platform for Failing {
    fn installation(&self, client_key: &str) -> BackendResult<Option<(Installation, Limits)>> {
        self.read()?;
        self.inner.installation(client_key)
    }
    fn linked_groups(&self, client_key: &str, issue_key: &str) -> BackendResult<Vec<u64>> {
        self.read()?;
        Platform::linked_groups(self.inner.as_ref(), client_key, issue_key)
    }
    fn user_by_email(&self, email: &str) -> BackendResult<Option<u64>> {
        self.read()?;
        self.inner.user_by_email(email)
    }
    fn group(&self, group: u64) -> BackendResult<Option<Group>> {
        self.read()?;
        Platform::group(self.inner.as_ref(), group)
    }
    fn links_of_group(&self, group: u64) -> BackendResult<Vec<(String, String)>> {
        self.read()?;
        self.inner.links_of_group(group)
    }
    fn user_emails(&self, user: u64) -> BackendResult<Vec<String>> {
        self.read()?;
        self.inner.user_emails(user)
    }
    fn handled(&self, client_key: &str, id: &str) -> BackendResult<bool> {
        self.read()?;
        Platform::handled(self.inner.as_ref(), client_key, id)
    }
    fn watermark(&self, ck: &str, issue: &str, field: Field) -> BackendResult<Option<i64>> {
        self.read()?;
        Platform::watermark(self.inner.as_ref(), ck, issue, field)
    }
    fn claim(&self, ck: &str, id: &str, owner: u64, now: u64, until: u64) -> BackendResult<Claim> {
        self.read()?;
        self.inner.claim(ck, id, owner, now, until)
    }
    fn release(&self, client_key: &str, id: &str, owner: u64) -> BackendResult<()> {
        self.inner.release(client_key, id, owner)
    }
    fn transaction(
        &self,
        work: &mut dyn FnMut(&mut dyn Transaction) -> BackendResult<()>,
    ) -> BackendResult<()> {
        let fail = self.commits.load(Ordering::SeqCst);
        self.inner.transaction(&mut |tx| {
            work(tx)?;
            // Fails after every write was made: the transaction must drop them all.
            if fail {
                Err(BackendError("injected: disk full at commit".into()))
            } else {
                Ok(())
            }
        })
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
    fn installation(&self, client_key: &str) -> BackendResult<Option<(Installation, Limits)>> {
        self.0.installation(client_key)
    }
    fn linked_groups(&self, _: &str, _: &str) -> BackendResult<Vec<u64>> {
        Err(BackendError("injected: connection lost".into()))
    }
    fn user_by_email(&self, email: &str) -> BackendResult<Option<u64>> {
        self.0.user_by_email(email)
    }
    fn group(&self, group: u64) -> BackendResult<Option<Group>> {
        Platform::group(self.0.as_ref(), group)
    }
    fn links_of_group(&self, group: u64) -> BackendResult<Vec<(String, String)>> {
        self.0.links_of_group(group)
    }
    fn user_emails(&self, user: u64) -> BackendResult<Vec<String>> {
        self.0.user_emails(user)
    }
    fn handled(&self, client_key: &str, id: &str) -> BackendResult<bool> {
        Platform::handled(self.0.as_ref(), client_key, id)
    }
    fn watermark(&self, ck: &str, issue: &str, field: Field) -> BackendResult<Option<i64>> {
        Platform::watermark(self.0.as_ref(), ck, issue, field)
    }
    fn claim(&self, ck: &str, id: &str, owner: u64, now: u64, until: u64) -> BackendResult<Claim> {
        self.0.claim(ck, id, owner, now, until)
    }
    fn release(&self, client_key: &str, id: &str, owner: u64) -> BackendResult<()> {
        self.0.release(client_key, id, owner)
    }
    fn transaction(
        &self,
        work: &mut dyn FnMut(&mut dyn Transaction) -> BackendResult<()>,
    ) -> BackendResult<()> {
        self.0.transaction(work)
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
