//! Answer first, work after (docs/behaviour.md#1): a webhook the component accepted is recorded
//! in the durable queue and answered at once; its work runs here, in the background, as a
//! `process` call, retried with backoff when it fails for a transient reason.
//!
//! Fairness: each installation's jobs hold at most its share of the workers at once, and
//! background work (jobs and outbox retries) at most three quarters of all workers, so that a
//! slow or rate-limiting site queues behind itself while other installations' jobs, and every
//! webhook's `accept`, still find a worker.
//!
//! Bounds: a job starts at once unless `max_pending` jobs already wait in memory; then it waits
//! in the database, and the dispatcher picks it up when work drains. The dispatcher also picks
//! up retries whose time came and jobs whose lease ran out (their server died).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{Notify, mpsc, oneshot};

use super::outbox::{backoff, now};
use super::{Context, record_call};
use crate::backends::{BackendError, Enqueued, Finished, NewJob, Next, QueuedJob};
use crate::recording::Asked;
use crate::replay::trace;
use crate::runtime::CallError;
use crate::wit::exports::jira_sync::plugin::webhook;

/// Attempts before a job fails for good.
const MAX_ATTEMPTS: u32 = 10;

/// The queue's in-memory side: how much work waits in memory, and the dispatcher's wake-up.
pub(super) struct Queue {
    /// Jobs started (waiting for a worker or running) and not yet finished.
    pending: AtomicUsize,
    /// Jobs that may wait in memory at once; past it, they wait in the database.
    max_pending: usize,
    /// Some job waits in the database for a free slot: finishing a job wakes the dispatcher.
    waiting: AtomicBool,
    wake: Notify,
    /// How long a running job is held before another server may take it over.
    lease: Duration,
    /// Set at shutdown: jobs not yet started go back to the database for the next start.
    stopping: AtomicBool,
    /// Jobs to record and outcomes to write, for the writer that writes them in batches
    /// (unbounded, but never longer than the requests admitted plus the jobs in memory).
    writes: mpsc::UnboundedSender<Write>,
}

/// A write for the queue's writer.
pub(super) enum Write {
    /// A job to record, and where to say how that went.
    Enqueue {
        job: NewJob,
        recorded: oneshot::Sender<Result<Enqueued, BackendError>>,
    },
    /// How an attempt on a job ended.
    Finish {
        /// The attempt, under the lease it held.
        attempt: Finished,
        /// Told once it is written.
        written: oneshot::Sender<()>,
    },
}

/// Most jobs recorded in one transaction.
const MAX_BATCH: usize = 256;

impl Queue {
    /// The queue, and the jobs to record for [`write`].
    pub fn new(max_pending: usize, lease: Duration) -> (Self, mpsc::UnboundedReceiver<Write>) {
        let (writes, written) = mpsc::unbounded_channel();
        let queue = Queue {
            pending: AtomicUsize::new(0),
            max_pending: max_pending.max(1),
            // A start may find work left by the last run.
            waiting: AtomicBool::new(true),
            wake: Notify::new(),
            lease,
            stopping: AtomicBool::new(false),
            writes,
        };
        (queue, written)
    }

    /// The lease of a job or a push attempt starting at `now`.
    pub(super) fn lease_until(&self, now: u64) -> u64 {
        now.saturating_add(self.lease.as_secs().max(1))
    }

    /// The least room worth a claim of waiting jobs when the dispatcher is woken.
    fn refill_batch(&self) -> usize {
        (self.max_pending / 4).max(1)
    }

    /// Jobs started and not yet finished.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Stops starting jobs; those already waiting in memory are handed back to the database.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// Records the job `accept` queued, and starts it unless too many already wait in memory.
/// `Err` means it was not recorded: Jira must be asked to retry the delivery.
pub(super) async fn enqueue(context: &Arc<Context>, job: webhook::Job) -> Result<(), BackendError> {
    let queue = &context.queue;
    let run = queue.pending.load(Ordering::Relaxed) < queue.max_pending
        && !queue.stopping.load(Ordering::Relaxed);
    let (recorded, outcome) = oneshot::channel();
    let write = Write::Enqueue {
        job: NewJob {
            client_key: job.client_key,
            delivery_id: job.delivery_id,
            body: job.body,
            run_until: run.then(|| queue.lease_until(now())),
        },
        recorded,
    };
    let gone = || BackendError("the queue's writer stopped".into());
    queue.writes.send(write).map_err(|_| gone())?;
    match outcome.await.map_err(|_| gone())?? {
        Enqueued::Run(job) => start(context.clone(), job),
        Enqueued::Wait => {
            queue.waiting.store(true, Ordering::SeqCst);
            queue.wake.notify_one();
        }
        Enqueued::Duplicate => {}
    }
    Ok(())
}

/// Records new jobs and finished attempts as they come, each batch in one transaction: under
/// load the webhooks and outcomes that arrive while a batch is written share the next commit.
pub(super) async fn write(context: Arc<Context>, mut writes: mpsc::UnboundedReceiver<Write>) {
    while let Some(first) = writes.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match writes.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let (mut jobs, mut replies, mut finished, mut written) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for write in batch {
            match write {
                Write::Enqueue { job, recorded } => {
                    jobs.push(job);
                    replies.push(recorded);
                }
                Write::Finish {
                    attempt,
                    written: told,
                } => {
                    finished.push(attempt);
                    written.push(told);
                }
            }
        }
        match context.store.write_queue(&jobs, &finished, now()).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                // The finished attempts stay `running` until their lease ends and run again;
                // the delivery log keeps their effects once.
                tracing::warn!(target: "jira_sync::queue", "write the queue: {e}");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
        for told in written {
            let _ = told.send(());
        }
    }
}

/// Records how an attempt on job `id`, held until `lease_until`, ended, through the writer;
/// waits until it is written.
async fn finish(context: &Context, id: i64, lease_until: u64, next: Next, error: Option<String>) {
    let (written, done) = oneshot::channel();
    let write = Write::Finish {
        attempt: Finished {
            id,
            lease_until,
            next,
            error,
        },
        written,
    };
    if context.queue.writes.send(write).is_ok() {
        let _ = done.await;
    }
}

/// Runs `job` in the background once its installation's share, a background slot and a worker
/// are free.
fn start(context: Arc<Context>, job: QueuedJob) {
    context.queue.pending.fetch_add(1, Ordering::SeqCst);
    let calls = context.calls.clone();
    calls.spawn(async move {
        let share = context.tenants.share(Some(job.client_key.clone())).await;
        let background = context.background.clone().acquire_owned().await;
        let worker = context.workers.clone().acquire_owned().await;
        if background.is_err() || worker.is_err() || context.queue.stopping.load(Ordering::SeqCst) {
            // Shutting down: the job waits in the database for the next start.
            finish(
                &context,
                job.id,
                job.lease_until,
                Next::RetryAt(now()),
                Some("server stopped".into()),
            )
            .await;
        } else if let Some(held) = still_ours(&context, &job).await {
            run(&context, &job, held).await;
        }
        drop((worker, background, share));
        let queue = &context.queue;
        queue.pending.fetch_sub(1, Ordering::SeqCst);
        if queue.waiting.load(Ordering::SeqCst) {
            queue.wake.notify_one();
        }
    });
}

/// The lease the job is held under for its attempt, when it is still this runner's: one that
/// waited long for a worker is renewed first, and one whose lease ran out and was taken over
/// is left to its new runner (the lease is the delivery's claim, so two runners must never
/// overlap).
async fn still_ours(context: &Context, job: &QueuedJob) -> Option<u64> {
    let now = now();
    if now.saturating_add(context.queue.lease.as_secs() / 2) < job.lease_until {
        return Some(job.lease_until);
    }
    let until = context.queue.lease_until(now);
    match context
        .store
        .renew_job(job.id, job.lease_until, until)
        .await
    {
        Ok(true) => Some(until),
        Ok(false) => None,
        Err(e) => {
            tracing::warn!(target: "jira_sync::queue", id = job.id, "renew lease: {e}");
            None
        }
    }
}

/// Runs `work` while renewing job `id`'s lease (`held`) each time half of it has passed, so
/// that a call longer than the lease is not taken over in the middle; returns its result and
/// the lease held at its end.
async fn holding_lease<T>(
    context: &Context,
    id: i64,
    mut held: u64,
    work: impl Future<Output = T>,
) -> (T, u64) {
    let mut work = std::pin::pin!(work);
    let half = (context.queue.lease / 2).max(Duration::from_millis(500));
    loop {
        tokio::select! {
            done = &mut work => return (done, held),
            () = tokio::time::sleep(half) => {
                let until = context.queue.lease_until(now());
                match context.store.renew_job(id, held, until).await {
                    Ok(true) => held = until,
                    // Taken over or unreadable: the call goes on; its effects still pass the
                    // watermarks and the delivery log.
                    Ok(false) => tracing::warn!(target: "jira_sync::queue", id, "lease lost"),
                    Err(e) => tracing::warn!(target: "jira_sync::queue", id, "renew lease: {e}"),
                }
            }
        }
    }
}

/// One attempt at `job`: the `process` call, then its outcome recorded.
async fn run(context: &Context, job: &QueuedJob, held: u64) {
    let started = Instant::now();
    let request = webhook::Job {
        client_key: job.client_key.clone(),
        delivery_id: job.delivery_id.clone(),
        body: job.body.clone(),
    };
    // The job's lease is exclusive (one server per SQLite file, which takes back a killed
    // predecessor's jobs at start): it stands for the delivery's claim.
    let process = context.call_recorded(
        || Some(request.client_key.clone()),
        || Asked::process(&request),
        trace::process,
        async |backends| context.runtime.process_leased(backends, &request).await,
    );
    let (call, held) = holding_lease(context, job.id, held, process).await;
    let (next, error) = next_step(&call.result, job.attempts, now());
    if next == Next::Failed {
        context.metrics.job_failed();
        tracing::error!(
            target: "jira_sync::queue",
            id = job.id, client_key = %job.client_key, attempts = job.attempts,
            error = error.as_deref().unwrap_or_default(),
            "job failed for good"
        );
    }
    finish(context, job.id, held, next, error.clone()).await;
    let result = match &call.result {
        Ok(outcome) => trace::job_outcome(outcome),
        Err(e) => json!({"error": e.to_string()}),
    };
    record_call(
        context,
        "process",
        format!(
            "job {} for webhook {}",
            job.id,
            job.delivery_id.as_deref().unwrap_or("without identifier")
        ),
        started,
        result,
        call.result.as_ref().err().map(ToString::to_string),
        call.record,
    );
}

/// What an attempt's result means for the job: done, failed for good, or due again (no sooner
/// than the component asked, and after a backoff that grows with the attempts); with the error
/// to keep.
fn next_step(
    result: &Result<webhook::JobOutcome, CallError>,
    attempts: u32,
    now: u64,
) -> (Next, Option<String>) {
    let retry = |after: u64| {
        if attempts >= MAX_ATTEMPTS {
            Next::Failed
        } else {
            Next::RetryAt(now.saturating_add(after))
        }
    };
    match result {
        Ok(webhook::JobOutcome::Done) => (Next::Done, None),
        Ok(webhook::JobOutcome::RetryAfter(seconds)) => (
            retry(u64::from(*seconds).max(backoff(attempts))),
            Some(format!("retry after {seconds} s")),
        ),
        Ok(webhook::JobOutcome::Failed(why)) => (retry(backoff(attempts)), Some(why.clone())),
        Err(e) => (retry(backoff(attempts)), Some(e.to_string())),
    }
}

/// Starts waiting jobs as room frees up, retries whose time came, and jobs whose server died;
/// measures the queue every second.
pub(super) async fn dispatch(context: Arc<Context>) {
    let queue = &context.queue;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let woken = tokio::select! {
            _ = tick.tick() => {
                if let Ok((depth, oldest)) = context.store.queue_backlog(now()).await {
                    context.metrics.queue(depth, oldest);
                }
                false
            }
            () = queue.wake.notified() => true,
        };
        if queue.stopping.load(Ordering::SeqCst) {
            return;
        }
        let room = queue
            .max_pending
            .saturating_sub(queue.pending.load(Ordering::SeqCst));
        // Waiting jobs are taken in batches: each claim reads every waiting job to take the
        // installations in turn, so taking one as each job finished made a backlog's cost grow
        // with its square. The tick takes what is due however little room there is.
        if room == 0 || (woken && room < queue.refill_batch()) {
            continue;
        }
        let now = now();
        match context
            .store
            .claim_due_jobs(now, queue.lease_until(now), room)
            .await
        {
            Ok(jobs) => {
                if jobs.len() < room {
                    // Everything due was taken; until a job waits again, finishing one need not
                    // wake the dispatcher.
                    queue.waiting.store(false, Ordering::SeqCst);
                }
                for job in jobs {
                    start(context.clone(), job);
                }
            }
            Err(e) => tracing::warn!(target: "jira_sync::queue", "claim due jobs: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_decide_done_failed_or_when_to_retry() {
        let now = 1_000;
        assert_eq!(
            next_step(&Ok(webhook::JobOutcome::Done), 1, now),
            (Next::Done, None)
        );
        let (next, _) = next_step(&Ok(webhook::JobOutcome::RetryAfter(30)), 1, now);
        assert_eq!(next, Next::RetryAt(1_030), "no sooner than asked");
        let (next, _) = next_step(&Ok(webhook::JobOutcome::RetryAfter(1)), 3, now);
        assert_eq!(next, Next::RetryAt(1_020), "nor sooner than the backoff");
        let (next, error) = next_step(&Ok(webhook::JobOutcome::Failed("401".into())), 1, now);
        assert_eq!(
            (next, error.as_deref()),
            (Next::RetryAt(1_005), Some("401"))
        );
        let trap = Err(CallError::Trap("boom".into()));
        assert_eq!(next_step(&trap, 2, now).0, Next::RetryAt(1_010));
        assert_eq!(
            next_step(&trap, MAX_ATTEMPTS, now).0,
            Next::Failed,
            "attempts run out"
        );
    }
}
