//! What a server keeps besides the platform: installations, links and users written by its
//! admin API, the queue of accepted webhooks' work, and the outbox of platform → Jira pushes
//! (docs/behaviour.md#1). One trait, so that one server runs on a SQLite file of its own or
//! several share one PostgreSQL database; the types below are what both speak.

use serde::Serialize;
use serde_json::Value;

use super::{BackendResult, BoxFuture, Platform};
use crate::installation::{InstallationSpec, OauthTokens};

/// One accepted delivery whose work is due, running or failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueuedJob {
    /// The job's id.
    pub id: i64,
    /// The installation whose token verified the delivery.
    pub client_key: String,
    /// Jira's delivery identifier, when the delivery had one.
    pub delivery_id: Option<String>,
    /// The webhook body.
    #[serde(skip)]
    pub body: Vec<u8>,
    /// `queued`, `running` or `failed`.
    pub state: String,
    /// Attempts so far (the one running included).
    pub attempts: u32,
    /// When the job was accepted (Unix seconds).
    pub accepted_at: u64,
    /// Until when the server running it holds it (0 when not running).
    pub lease_until: u64,
    /// The last attempt's error, if it failed.
    pub error: Option<String>,
}

/// What became of one new job of [`Store::write_queue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Recorded as `running` under the caller's lease: the caller works on it now.
    Run(QueuedJob),
    /// Recorded as `queued`: a dispatcher picks it up when a worker is free.
    Wait,
    /// A job for the same delivery is already recorded: nothing was added.
    Duplicate,
}

/// A job to record (see [`Store::write_queue`]).
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The installation whose token verified the delivery.
    pub client_key: String,
    /// Jira's delivery identifier, if any.
    pub delivery_id: Option<String>,
    /// The webhook body.
    pub body: Vec<u8>,
    /// A lease for the caller to run it at once, or `None` to leave it waiting.
    pub run_until: Option<u64>,
}

/// One push of a group's change to one linked Jira issue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxEntry {
    /// The entry's id.
    pub id: i64,
    /// The group whose change it pushes.
    pub group: u64,
    /// The installation of the linked issue.
    pub client_key: String,
    /// The linked issue.
    pub issue_key: String,
    /// What to push: `{"resolved": bool}` or `{"assign": user | null}`.
    pub push: Value,
    /// `running`, `pending` (a retry is due at `next_at`), `done` or `failed`.
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When the next attempt is due (Unix seconds).
    pub next_at: u64,
    /// The last attempt's outcome.
    pub outcome: Option<Value>,
}

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The push is done (whatever Jira's answer meant for the issue).
    Done,
    /// It failed for good (e.g. unauthorized, rejected, attempts exhausted).
    Failed,
    /// Retry at this time (Unix seconds).
    RetryAt(u64),
}

/// A finished attempt on a job (see [`Store::write_queue`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The job.
    pub id: i64,
    /// The lease the runner held it under at the end: an outcome from a runner whose lease
    /// another server took over is dropped, since the job belongs to that server now.
    pub lease_until: u64,
    /// What comes next.
    pub next: Next,
    /// The attempt's error, if any.
    pub error: Option<String>,
}

/// The upkeep of one OAuth installation's tokens and webhooks, held by one server (see
/// [`Store::lease_oauth`]).
#[derive(Debug, Clone)]
pub struct OauthLease {
    /// The installation as stored once the lease was taken: what the holder refreshes from.
    pub spec: InstallationSpec,
    /// Until when the holder has it (Unix seconds); also the fence of its release.
    pub until: u64,
    /// Attempts that failed in a row before this one.
    pub failures: u32,
}

/// A server's durable state. Every method is one transaction (or one statement) of its own.
pub trait Store: Platform {
    /// Adds an installation, or replaces the one with the same client key.
    fn add_installation<'a>(
        &'a self,
        spec: &'a InstallationSpec,
    ) -> BoxFuture<'a, BackendResult<()>>;
    /// The installation as stored, uninstalled or not (the host's own view, with every
    /// credential; calls see [`Platform::installation`]).
    fn installation_spec<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<InstallationSpec>>>;
    /// Links `groups` to `issue_key`; unknown groups start unresolved and unassigned.
    fn link<'a>(
        &'a self,
        client_key: &'a str,
        issue_key: &'a str,
        groups: &'a [u64],
    ) -> BoxFuture<'a, BackendResult<()>>;
    /// Adds a verified email of user `id`.
    fn add_user<'a>(&'a self, id: u64, email: &'a str) -> BoxFuture<'a, BackendResult<()>>;
    /// Forgets delivery ids handled before `handled_before`, claims whose lease ended by `now`
    /// (Unix seconds), and failed jobs accepted before `handled_before`; returns how many
    /// deliveries and claims went.
    fn prune(&self, handled_before: u64, now: u64) -> BoxFuture<'_, BackendResult<(usize, usize)>>;
    /// Statements sent to a networked database so far, by this process (`None` for a store in
    /// the process, whose statements cost no round trip).
    fn statements(&self) -> Option<u64> {
        None
    }
    /// Whether several servers may share this store. A store of one server takes back, at
    /// start, whatever was running ([`Store::recover`]); a shared one leaves that to leases,
    /// since what runs may belong to a live server.
    fn shared(&self) -> bool;

    /// Records new jobs and finished attempts in one transaction (a server batches the
    /// webhooks and the outcomes that arrive while the last batch is written), with one
    /// outcome per new job, in order. A new job with a lease (`run_until`) starts `running` for
    /// the caller to work on at once, one without waits `queued`, and a delivery already
    /// recorded (Jira's retry of one still queued) adds nothing. A finished attempt deletes a
    /// done job, marks a failed one, or makes it due again at a time, if the job is still
    /// running under the attempt's lease.
    fn write_queue<'a>(
        &'a self,
        jobs: &'a [NewJob],
        finished: &'a [Finished],
        now: u64,
    ) -> BoxFuture<'a, BackendResult<Vec<Enqueued>>>;
    /// Claims up to `limit` jobs due at `now` (waiting ones whose time came, and running ones
    /// whose lease ran out because their server died), taking the installations in turn: the
    /// first due job of each, then the second of each, and so on, so that one installation's
    /// backlog never starves another's.
    fn claim_due_jobs(
        &self,
        now: u64,
        lease_until: u64,
        limit: usize,
    ) -> BoxFuture<'_, BackendResult<Vec<QueuedJob>>>;
    /// Jobs waiting or running, and how long the oldest has waited since it was accepted
    /// (seconds).
    fn queue_backlog(&self, now: u64) -> BoxFuture<'_, BackendResult<(u64, u64)>>;
    /// Extends the lease on job `id` to `until`, if it still runs under the lease `held` the
    /// caller has; `false` when it does not (another runner took it over).
    fn renew_job(&self, id: i64, held: u64, until: u64) -> BoxFuture<'_, BackendResult<bool>>;
    /// Takes back, at a server's start, what a killed predecessor held: its running jobs are
    /// due again now, its running pushes pending now, and its delivery claims end. Only for a
    /// store that is not [`Store::shared`]. Returns the jobs, pushes and claims taken back.
    fn recover(&self, now: u64) -> BoxFuture<'_, BackendResult<(usize, usize, usize)>>;
    /// Jobs running, or waiting with their time come (retries not yet due are not counted).
    fn jobs_due(&self, now: u64) -> BoxFuture<'_, BackendResult<u64>>;
    /// Jobs whose attempts ran out, oldest first, at most `limit`.
    fn failed_jobs(&self, limit: usize) -> BoxFuture<'_, BackendResult<Vec<QueuedJob>>>;

    /// Changes `group` (its status, or its assignee) and records one push per linked issue, in
    /// one transaction; the entries start `running` under a lease until `lease_until`, for the
    /// caller to make the first attempt at once.
    fn change_group<'a>(
        &'a self,
        group: u64,
        push: &'a Value,
        now: u64,
        lease_until: u64,
    ) -> BoxFuture<'a, BackendResult<Vec<OutboxEntry>>>;
    /// Records the outcome of an attempt on entry `id`.
    fn finish_push<'a>(
        &'a self,
        id: i64,
        outcome: &'a Value,
        next: Next,
    ) -> BoxFuture<'a, BackendResult<()>>;
    /// Claims the pushes due at `now` (retries whose time has come, and attempts whose lease ran
    /// out because their server died), at most one per installation so that one slow or
    /// rate-limited site never delays another's, and at most `limit` in all.
    fn claim_due_pushes(
        &self,
        now: u64,
        lease_until: u64,
        limit: usize,
    ) -> BoxFuture<'_, BackendResult<Vec<OutboxEntry>>>;
    /// The entry `id`.
    fn outbox_entry(&self, id: i64) -> BoxFuture<'_, BackendResult<Option<OutboxEntry>>>;
    /// Pushes not yet done or failed, and how long the most overdue one is past its time
    /// (seconds; 0 when none is due).
    fn outbox_backlog(&self, now: u64) -> BoxFuture<'_, BackendResult<(u64, u64)>>;
    /// Every push of `group`, newest first.
    fn pushes_of_group(&self, group: u64) -> BoxFuture<'_, BackendResult<Vec<OutboxEntry>>>;

    /// The OAuth installations (uninstalled ones left out) whose upkeep no server holds and
    /// whose next attempt may run at `now` (docs/behaviour.md#10.2).
    fn oauth_installations(&self, now: u64) -> BoxFuture<'_, BackendResult<Vec<InstallationSpec>>>;
    /// Takes the upkeep of OAuth installation `client_key` until `until`, if no server holds it
    /// and its next attempt may run at `now`, and returns the installation as stored once taken:
    /// of several callers at once, exactly one gets it, so that one refresh token is used once.
    /// Adding the installation again ([`Store::add_installation`]) frees its upkeep and forgets
    /// its failures, so that a re-authorised installation is kept up at once.
    fn lease_oauth<'a>(
        &'a self,
        client_key: &'a str,
        now: u64,
        until: u64,
    ) -> BoxFuture<'a, BackendResult<Option<OauthLease>>>;
    /// Replaces the tokens and webhooks of OAuth installation `client_key` with `tokens` if its
    /// stored refresh token is still `expected`, in one transaction (see
    /// [`InstallationSpec::replace_oauth_tokens`]); whether it did.
    fn save_oauth_tokens<'a>(
        &'a self,
        client_key: &'a str,
        expected: Option<&'a str>,
        tokens: &'a OauthTokens,
    ) -> BoxFuture<'a, BackendResult<bool>>;
    /// Ends the lease `held` on the upkeep of `client_key`: no attempt before `retry_at`, and
    /// `failed` adds one to the failures in a row (else they start again from none). Nothing
    /// happens if the lease is no longer the caller's.
    fn release_oauth<'a>(
        &'a self,
        client_key: &'a str,
        held: u64,
        retry_at: u64,
        failed: bool,
    ) -> BoxFuture<'a, BackendResult<()>>;
}
