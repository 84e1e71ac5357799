//! The host side of every WIT import, one module per interface, implemented on [`CallState`]:
//! the data of one call's store. Each import answers from the [`Backends`] below it, records
//! what the guest did ([`CallRecord`]), counts what it used against its [`Limits`], and stages
//! the platform changes ([`effects`]) until the runtime commits them.
//!
//! | module | WIT interface |
//! | --- | --- |
//! | `http.rs` | `http` (behind the [`egress`] policy) |
//! | `cache.rs` | `cache` |
//! | `installations.rs` | `installations` |
//! | `group_assignment.rs` | `group-assignment` |
//! | `group_status.rs` | `group-status` |
//! | `links.rs` | `links` |
//! | `deliveries.rs` | `deliveries` |
//! | `clock.rs` | `clock` |
//! | `log.rs` | `log` |
//!
//! This layer knows nothing of the engine that calls into it: the runtime builds a store around
//! a [`CallState`], and the `wit` bindings route the guest's import calls here.

mod cache;
mod clock;
mod deliveries;
pub(crate) mod effects;
pub mod egress;
mod group_assignment;
mod group_status;
mod http;
mod installations;
mod links;
mod log;
pub mod record;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;

use crate::backends::{BackendError, Backends};
use crate::limits::{LimitExceeded, Limits, MAX_MEMORY_BYTES};
use crate::wit::jira_sync::plugin::types::{self, Installation};
use effects::Staged;
use egress::Egress;
use record::CallRecord;

/// What one call has used so far.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    http_calls: u32,
    bytes: u64,
    log_lines: u32,
}

/// The store's data: the backends, the installation the call is bound to, the sandbox policy,
/// and what this call did and used.
pub struct CallState {
    /// What the imports are implemented over.
    pub backends: Backends,
    /// The origins the guest may reach in this call.
    pub egress: Egress,
    /// What the call did, for traces and logs.
    pub record: CallRecord,
    /// The limits in force: the defaults, then the installation's once the guest looks it up.
    pub limits: Limits,
    /// The limit this call broke, if any.
    pub limit_hit: Option<LimitExceeded>,
    /// The backend failure that ended this call, if any.
    pub backend_error: Option<BackendError>,
    /// This call's identity as the holder of delivery claims.
    owner: u64,
    /// Deliveries this call claimed: released at its end unless it marked them handled.
    claims: Vec<(String, String)>,
    /// The delivery the caller runs under an exclusive lease of its own, if any (see
    /// [`CallState::lease_delivery`]).
    leased: Option<(String, String)>,
    /// The one installation this call may touch (docs/behaviour.md#9), and its record when the
    /// platform has it.
    tenant: Option<(String, Option<Installation>)>,
    /// The `Authorization` the host adds to the guest's requests, for an installation whose
    /// credentials the host keeps (docs/behaviour.md#10).
    authorization: Option<String>,
    usage: Usage,
    staged: Staged,
    /// When the call started, for its wall-clock deadline.
    started: Instant,
    /// Where the guest's current stretch of running began. An async call may resume on another
    /// thread after each wait, so guest time is summed stretch by stretch, each on its own
    /// thread's CPU clock; host calls fall between stretches and do not count.
    stretch: Stretch,
    /// Guest CPU time of the stretches that ended.
    guest_before: Duration,
    /// Where the guest resumed after yielding its thread (see [`CallState::yield_thread`]).
    resumed: Arc<Mutex<Option<Stretch>>>,
}

/// The start of a stretch of guest execution on one thread.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    /// The thread's CPU clock (`None` where the platform has none: wall time stands in).
    cpu: Option<Duration>,
    wall: Instant,
}

impl Stretch {
    /// A stretch not started yet: [`CallState::enter_guest`] starts the first one, so that a
    /// call reads the thread's CPU clock (a system call) only once it runs guest code.
    fn unstarted() -> Self {
        Stretch {
            cpu: None,
            wall: Instant::now(),
        }
    }

    fn now() -> Self {
        Stretch {
            cpu: thread_cpu(),
            wall: Instant::now(),
        }
    }

    /// Time spent since the stretch began, on the current thread's CPU clock.
    fn elapsed(&self) -> Duration {
        match (self.cpu, thread_cpu()) {
            (Some(started), Some(now)) => now.saturating_sub(started),
            _ => self.wall.elapsed(),
        }
    }
}

impl CallState {
    /// A call bound to the installation `tenant` (none: the guest may reach no installation's
    /// data), under that installation's limits, or the defaults when there is none.
    /// A backend that fails to read the installation leaves [`CallState::backend_error`] set:
    /// the call must not run.
    pub async fn new(backends: Backends, tenant: Option<String>) -> Self {
        let mut backend_error = None;
        let tenant = match tenant {
            Some(client_key) => {
                let found = backends
                    .platform
                    .installation(&client_key)
                    .await
                    .unwrap_or_else(|e| {
                        backend_error = Some(e);
                        None
                    });
                Some((client_key, found))
            }
            None => None,
        };
        let limits = match &tenant {
            Some((_, Some((_, limits)))) => *limits,
            _ => Limits::default(),
        };
        // Read only for the kinds whose requests the guest does not sign itself.
        let mut authorization = None;
        if let Some((client_key, Some((installation, _)))) = &tenant
            && !matches!(installation.credentials, types::Credentials::Connect(_))
        {
            authorization = backends
                .platform
                .outbound_authorization(client_key)
                .await
                .unwrap_or_else(|e| {
                    backend_error = Some(e);
                    None
                });
        }
        CallState {
            backends,
            egress: Egress::default(),
            record: CallRecord::default(),
            limits,
            limit_hit: None,
            backend_error,
            owner: claim_owner(),
            claims: Vec::new(),
            leased: None,
            tenant: tenant.map(|(key, found)| (key, found.map(|(installation, _)| installation))),
            authorization,
            usage: Usage::default(),
            staged: Staged::default(),
            started: Instant::now(),
            stretch: Stretch::unstarted(),
            guest_before: Duration::ZERO,
            resumed: Arc::default(),
        }
    }

    /// Declares that the caller holds delivery `id` of `client_key` under an exclusive lease
    /// (e.g. a queue's lease on its job): the guest's claim on it then writes nothing.
    pub fn lease_delivery(&mut self, client_key: String, id: String) {
        self.leased = Some((client_key, id));
    }

    /// CPU time spent in guest code so far, host calls excluded. Time the thread waits for a
    /// core does not count.
    pub fn guest_time(&mut self) -> Duration {
        self.take_resumed();
        self.guest_before + self.stretch.elapsed()
    }

    /// Ends the guest's stretch and returns the future that yields its thread to other tasks
    /// once: a guest that computes for long shares the thread with other calls instead of
    /// holding it. The guest's next stretch starts where it resumes, possibly on another
    /// thread.
    pub fn yield_thread(&mut self) -> impl Future<Output = ()> + Send + 'static {
        self.leave_guest();
        let resumed = self.resumed.clone();
        async move {
            // tokio's yield puts the task behind the others ready to run (a plain self-wake
            // could poll it again at once); without a runtime it is a plain self-wake.
            tokio::task::yield_now().await;
            *resumed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Stretch::now());
        }
    }

    /// Starts the guest's stretch where it resumed after a yield, if it did.
    fn take_resumed(&mut self) {
        let resumed = self
            .resumed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(resumed) = resumed {
            self.stretch = resumed;
        }
    }

    /// Marks the guest as starting to run on the current thread (the call's first poll).
    pub fn enter_guest(&mut self) {
        self.stretch = Stretch::now();
    }

    /// Ends the guest's current stretch: what follows is host time until
    /// [`CallState::enter_guest`].
    fn leave_guest(&mut self) {
        self.take_resumed();
        self.guest_before += self.stretch.elapsed();
    }

    /// Whether the call has passed its wall-clock deadline. Seconds slept on a clock that does
    /// not really sleep (replay's) count too, so that replay ends where a real run would.
    pub fn past_deadline(&self, waiting: Duration) -> bool {
        let spent = self
            .started
            .elapsed()
            .max(Duration::from_secs(self.record.slept));
        spent.saturating_add(waiting) > self.limits.wall()
    }

    /// Records `limit` as broken and returns the trap that ends the call.
    pub fn exceed(&mut self, limit: LimitExceeded) -> wasmtime::Error {
        self.limit_hit = Some(limit);
        wasmtime::Error::from(limit)
    }

    /// Records `error` as the backend failure that ends the call, and returns its trap.
    pub fn fail(&mut self, error: BackendError) -> wasmtime::Error {
        let trap = wasmtime::Error::msg(error.to_string());
        self.backend_error = Some(error);
        trap
    }

    /// Applies the call's staged effects to the platform in one transaction; called only when
    /// the call succeeded. Fields superseded by a newer event are recorded, not applied.
    pub async fn commit(&mut self) -> Result<(), BackendError> {
        let handled: Vec<(String, String)> = self
            .staged
            .handled_ids()
            .map(|(ck, id)| (ck.to_owned(), id.to_owned()))
            .collect();
        let superseded = self.staged.commit(self.backends.platform.as_ref()).await?;
        // Marking a delivery handled ended its claim in the same transaction.
        self.claims.retain(|claim| !handled.contains(claim));
        self.record.superseded = superseded
            .into_iter()
            .map(|(_, issue, field)| format!("{issue} {}", field.as_str()))
            .collect();
        Ok(())
    }

    /// Releases the delivery claims this call still holds (those a successful commit did not
    /// mark handled), so that Jira's retry runs. A failure to release is left to the claim's
    /// lease.
    pub async fn release_claims(&mut self) {
        for (client_key, id) in std::mem::take(&mut self.claims) {
            let _ = self
                .backends
                .platform
                .release(&client_key, &id, self.owner)
                .await;
        }
    }

    /// Whether `client_key` is the call's installation; when it is not, the attempt is refused
    /// and recorded (`what` names the import).
    fn own(&mut self, client_key: &str, what: &str) -> bool {
        let own = matches!(&self.tenant, Some((bound, _)) if bound == client_key);
        if !own {
            self.record.refusals.push(format!(
                "{what}: installation `{client_key}` is not this call's ({})",
                self.tenant
                    .as_ref()
                    .map_or("none", |(bound, _)| bound.as_str())
            ));
        }
        own
    }

    /// The cache key of `key` in the call's installation's namespace; `None` (refused and
    /// recorded) for a call bound to no installation.
    fn cache_key(&mut self, key: &str) -> Option<String> {
        match &self.tenant {
            // Length-prefixed, so that no (client key, key) pair can spell another's.
            Some((bound, _)) => Some(format!("{}:{bound}:{key}", bound.len())),
            None => {
                self.record
                    .refusals
                    .push("cache: this call is bound to no installation".to_owned());
                None
            }
        }
    }

    /// The groups linked to `issue_key` as this call sees them: the platform's, and those of
    /// the keys the call renamed into it (docs/behaviour.md#1.8).
    async fn linked_groups(
        &self,
        client_key: &str,
        issue_key: &str,
    ) -> Result<Vec<u64>, BackendError> {
        let platform = &self.backends.platform;
        let mut groups = platform.linked_groups(client_key, issue_key).await?;
        for from in self.staged.renamed_into(client_key, issue_key) {
            groups.extend(platform.linked_groups(client_key, from).await?);
        }
        groups.sort_unstable();
        groups.dedup();
        Ok(groups)
    }

    /// Whether this call already holds the claim on delivery `id`.
    fn holds(&self, client_key: &str, id: &str) -> bool {
        self.claims
            .iter()
            .any(|(ck, held)| ck == client_key && held == id)
    }

    /// Awaits `work` (a host call such as HTTP or a sleep) as host time, not guest CPU; the
    /// guest resumes on whichever thread polls the call next.
    async fn in_host<T>(&mut self, work: impl Future<Output = T>) -> T {
        self.leave_guest();
        let value = work.await;
        self.enter_guest();
        value
    }
}

/// A claim holder's identity: random per process, counted per call, so that calls on several
/// servers sharing one database never mistake each other's claims.
fn claim_owner() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PROCESS: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let process = *PROCESS.get_or_init(|| {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    });
    // The top bit clear: SQLite stores the owner as a signed integer.
    (process ^ NEXT.fetch_add(1, Ordering::Relaxed)) & (u64::MAX >> 1)
}

/// The calling thread's CPU time, where the platform keeps one.
fn thread_cpu() -> Option<Duration> {
    ThreadTime::try_now().ok().map(|t| t.as_duration())
}

impl wasmtime::ResourceLimiter for CallState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.memory_bytes.min(MAX_MEMORY_BYTES) {
            return Err(self.exceed(LimitExceeded::Memory));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; the guest needs a handful.
        Ok(desired <= 10_000)
    }
}

impl types::Host for CallState {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::{
        BoxFuture, Field, GroupStatus, HttpBackend, HttpResult, ManualClock, MemoryCache,
        MemoryPlatform, OutboundRequest, OutboundResponse,
    };
    use crate::installation::InstallationSpec;
    use crate::wit::jira_sync::plugin::types::{Installation, ResolutionStrategy};
    use crate::wit::jira_sync::plugin::{
        cache::Host as _, deliveries::ClaimOutcome, deliveries::Field as DeliveryField,
        deliveries::Host as _, group_assignment, group_assignment::Host as _, group_status,
        group_status::Host as _, http, http::Host as _, installations::Host as _,
    };
    use pollster::block_on;

    /// Answers every request 200, so that only the sandbox can refuse one.
    struct Ok200;

    impl HttpBackend for Ok200 {
        fn send(&self, _: OutboundRequest) -> BoxFuture<'_, HttpResult> {
            Box::pin(std::future::ready(Ok(OutboundResponse {
                status: 200,
                headers: Vec::new(),
                body: b"{}".to_vec(),
            })))
        }
    }

    fn state() -> (CallState, Arc<MemoryPlatform>) {
        let platform = Arc::new(MemoryPlatform::default());
        let spec = InstallationSpec::new("jira:1", "s", "https://acme.atlassian.net", "app");
        platform.add_installation(Installation::from(&spec));
        platform.set_limits(
            "jira:1",
            Limits {
                http_calls: 1,
                ..Limits::default()
            },
        );
        platform.link("jira:1", "APP-1", &[1, 2]);
        platform.add_user("ada@example.com", 7);
        let backends = Backends {
            http: Arc::new(Ok200),
            cache: Arc::new(MemoryCache::default()),
            platform: platform.clone(),
            clock: Arc::new(ManualClock::new(0)),
        };
        (
            block_on(CallState::new(backends, Some("jira:1".into()))),
            platform,
        )
    }

    fn get(url: &str) -> http::Request {
        http::Request {
            method: http::Method::Get,
            url: url.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    #[test]
    fn imports_stage_their_effects_until_commit() {
        let (mut call, platform) = state();
        block_on(call.resolve("jira:1".into(), "APP-1".into(), ResolutionStrategy::Resolve))
            .unwrap();
        block_on(call.assign("jira:1".into(), "APP-1".into(), "ADA@example.com".into())).unwrap();
        let claim = block_on(call.claim("jira:1".into(), "d-1".into())).unwrap();
        assert!(matches!(claim, ClaimOutcome::Claimed), "{claim:?}");
        block_on(call.mark_handled("jira:1".into(), "d-1".into())).unwrap();
        block_on(call.set_last_applied("jira:1".into(), "APP-1".into(), DeliveryField::Status, 5))
            .unwrap();

        assert!(
            matches!(
                block_on(call.claim("jira:1".into(), "d-1".into())).unwrap(),
                ClaimOutcome::Claimed
            ),
            "the call still holds its own claim"
        );
        assert!(!platform.handled("jira:1", "d-1"));
        assert_eq!(platform.group(1).unwrap().status, GroupStatus::Unresolved);
        assert_eq!(platform.group(2).unwrap().assignee, None);
        assert_eq!(call.record.resolutions[0].changed, 2);

        block_on(call.commit()).unwrap();
        for group in [1, 2] {
            let group = platform.group(group).unwrap();
            assert_eq!(group.status, GroupStatus::Resolved);
            assert_eq!(group.assignee, Some(7));
        }
        assert!(platform.handled("jira:1", "d-1"));
        assert_eq!(
            platform.watermark("jira:1", "APP-1", Field::Status),
            Some(5)
        );
    }

    /// Records the `Authorization` of every request it answers 200.
    #[derive(Default)]
    struct Seen(Mutex<Vec<Option<String>>>);

    impl HttpBackend for Seen {
        fn send(&self, request: OutboundRequest) -> BoxFuture<'_, HttpResult> {
            let authorizations: Vec<&String> = request
                .headers
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"))
                .map(|(_, value)| value)
                .collect();
            assert!(authorizations.len() <= 1, "{authorizations:?}");
            self.0
                .lock()
                .unwrap()
                .push(authorizations.first().map(|v| (*v).clone()));
            Box::pin(std::future::ready(Ok(OutboundResponse {
                status: 200,
                headers: Vec::new(),
                body: b"{}".to_vec(),
            })))
        }
    }

    /// A call bound to `spec`'s installation, whose platform holds the authorization the spec
    /// gives its requests.
    fn call_for(spec: &InstallationSpec) -> (CallState, Arc<Seen>) {
        let platform = Arc::new(MemoryPlatform::default());
        platform.add_installation(Installation::from(spec));
        if let Some(authorization) = spec.outbound_authorization() {
            platform.set_outbound_authorization(&spec.client_key, &authorization);
        }
        let seen = Arc::new(Seen::default());
        let backends = Backends {
            http: seen.clone(),
            cache: Arc::new(MemoryCache::default()),
            platform,
            clock: Arc::new(ManualClock::new(0)),
        };
        let call = block_on(CallState::new(backends, Some(spec.client_key.clone())));
        (call, seen)
    }

    #[test]
    fn the_host_authorises_the_requests_of_the_kinds_whose_tokens_it_keeps() {
        let mut spec = InstallationSpec::new("site-1", "", "https://acme.atlassian.net", "app");
        spec.credentials = crate::installation::CredentialSpec::AdminWebhook {
            secret: "hook-secret".into(),
            email: "bot@example.com".into(),
            api_token: "t0ken".into(),
        };
        let (mut call, seen) = call_for(&spec);
        block_on(call.get_by_client_key("site-1".into())).unwrap();
        let mut forged = get("https://acme.atlassian.net/rest/api/2/status");
        forged
            .headers
            .push(("authorization".into(), "Bearer guest-made".into()));
        block_on(call.send(forged)).unwrap().unwrap();
        block_on(call.send(get("https://acme.atlassian.net/rest/api/2/status")))
            .unwrap()
            .unwrap();
        let basic = "Basic Ym90QGV4YW1wbGUuY29tOnQwa2Vu";
        assert_eq!(
            *seen.0.lock().unwrap(),
            [Some(basic.to_owned()), Some(basic.to_owned())],
            "the host's credential replaces the guest's"
        );
        let trace = serde_json::to_string(&call.record).unwrap();
        assert!(
            !trace.contains("Ym90"),
            "no host token in the record: {trace}"
        );
        assert!(trace.contains("guest-made"), "the guest's request as sent");

        let connect = InstallationSpec::new("jira:1", "s", "https://acme.atlassian.net", "app");
        let (mut call, seen) = call_for(&connect);
        block_on(call.get_by_client_key("jira:1".into())).unwrap();
        block_on(call.send(get("https://acme.atlassian.net/rest/api/2/status")))
            .unwrap()
            .unwrap();
        assert_eq!(
            *seen.0.lock().unwrap(),
            [None],
            "Connect requests are the guest's to sign"
        );
    }

    #[test]
    fn guest_time_is_cpu_time_not_time_spent_waiting() {
        let (mut call, _) = state();
        // The runtime starts the guest's clock when the guest starts.
        call.enter_guest();
        // Descheduled, blocked or asleep: the thread's CPU clock does not move.
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert!(
            call.guest_time() < std::time::Duration::from_millis(30),
            "{:?}",
            call.guest_time()
        );
    }

    #[test]
    fn the_deadline_counts_wall_time_and_the_waits_asked_for() {
        let (mut call, _) = state();
        call.limits.wall_ms = 1_000;
        assert!(!call.past_deadline(std::time::Duration::ZERO));
        assert!(call.past_deadline(std::time::Duration::from_secs(2)));
        call.record.slept = 1;
        assert!(call.past_deadline(std::time::Duration::from_millis(1)));
    }

    #[test]
    fn a_dropped_call_applies_nothing() {
        let (mut call, platform) = state();
        block_on(call.unresolve("jira:1".into(), "APP-1".into())).unwrap();
        block_on(call.resolve("jira:1".into(), "APP-1".into(), ResolutionStrategy::Resolve))
            .unwrap();
        assert_eq!(
            call.record.resolutions[1].changed, 2,
            "sees its own staging"
        );
        drop(call);
        assert_eq!(platform.group(1).unwrap().status, GroupStatus::Unresolved);
    }

    #[test]
    fn the_bound_installation_s_limits_apply_from_the_start_and_its_site_after_lookup() {
        let (mut call, _) = state();
        assert_eq!(call.limits.http_calls, 1, "the installation's limits apply");
        let denied = block_on(call.send(get("https://acme.atlassian.net/rest"))).unwrap();
        assert!(matches!(denied, Err(http::Error::Denied(_))), "{denied:?}");
        assert!(
            block_on(call.get_by_client_key("jira:1".into()))
                .unwrap()
                .is_some()
        );
        // The first request already counted against the budget of one.
        let over = block_on(call.send(get("https://acme.atlassian.net/rest")));
        assert!(over.is_err(), "a second request breaks http-calls");
        assert_eq!(call.limit_hit, Some(LimitExceeded::HttpCalls));
    }

    #[test]
    fn another_installation_is_out_of_reach() {
        let (mut call, platform) = state();
        let other = InstallationSpec::new("jira:2", "other-secret", "https://b.example", "app");
        platform.add_installation(Installation::from(&other));
        platform.link("jira:2", "B-1", &[9]);

        assert!(
            block_on(call.get_by_client_key("jira:2".into()))
                .unwrap()
                .is_none(),
            "no secret"
        );
        assert!(matches!(
            block_on(call.resolve("jira:2".into(), "B-1".into(), ResolutionStrategy::Resolve))
                .unwrap(),
            group_status::StatusOutcome::NoLinkedGroups
        ));
        assert!(matches!(
            block_on(call.assign("jira:2".into(), "B-1".into(), "ada@example.com".into())).unwrap(),
            group_assignment::AssignOutcome::NoLinkedGroups
        ));
        let claim = block_on(call.claim("jira:2".into(), "d-9".into())).unwrap();
        assert!(
            matches!(claim, ClaimOutcome::Handled),
            "not this call's: {claim:?}"
        );
        block_on(call.mark_handled("jira:2".into(), "d-9".into())).unwrap();
        block_on(call.set_last_applied("jira:2".into(), "B-1".into(), DeliveryField::Status, 9))
            .unwrap();
        assert_eq!(
            block_on(call.last_applied("jira:2".into(), "B-1".into(), DeliveryField::Status))
                .unwrap(),
            None
        );
        call.limits.http_calls = 10;
        let site = block_on(call.send(get("https://b.example/rest"))).unwrap();
        assert!(matches!(site, Err(http::Error::Denied(_))), "{site:?}");

        block_on(call.commit()).unwrap();
        assert_eq!(platform.group(9).unwrap().status, GroupStatus::Unresolved);
        assert!(!platform.handled("jira:2", "d-9"));
        assert_eq!(platform.watermark("jira:2", "B-1", Field::Status), None);
        assert_eq!(call.record.refusals.len(), 7, "{:#?}", call.record.refusals);
        assert!(call.record.refusals.iter().all(|r| r.contains("`jira:2`")));
    }

    #[test]
    fn cache_entries_are_namespaced_per_installation() {
        let (mut a, platform) = state();
        block_on(a.set("k".into(), "a's".into(), 60)).unwrap();
        let other = InstallationSpec::new("jira:2", "s", "https://b.example", "app");
        platform.add_installation(Installation::from(&other));
        let mut b = block_on(CallState::new(a.backends.clone(), Some("jira:2".into())));
        assert_eq!(block_on(b.get("k".into())).unwrap(), None);
        block_on(b.set("k".into(), "b's".into(), 60)).unwrap();
        assert_eq!(block_on(a.get("k".into())).unwrap().as_deref(), Some("a's"));

        let mut unbound = block_on(CallState::new(a.backends.clone(), None));
        assert_eq!(block_on(unbound.get("k".into())).unwrap(), None);
        block_on(unbound.set("k".into(), "x".into(), 60)).unwrap();
        assert_eq!(unbound.record.refusals.len(), 2);
        assert!(
            block_on(unbound.get_by_client_key("jira:1".into()))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn an_allowed_site_is_reached_and_others_are_denied() {
        let (mut call, _) = state();
        block_on(call.get_by_client_key("jira:1".into())).unwrap();
        call.limits.http_calls = 10;
        let ok = block_on(call.send(get("https://acme.atlassian.net/rest"))).unwrap();
        assert_eq!(ok.map(|r| r.status).ok(), Some(200));
        let other = block_on(call.send(get("https://evil.example/"))).unwrap();
        assert!(matches!(other, Err(http::Error::Denied(_))));
        assert_eq!(call.record.http.len(), 2);
        assert!(
            call.record.http[1]
                .error
                .as_deref()
                .unwrap()
                .starts_with("denied")
        );
    }
}
