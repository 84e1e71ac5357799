//! The durable queue of inbound work, in the server's SQLite file: a webhook the component
//! accepted is recorded here before Jira gets its answer, and its work (the Jira reads, the
//! group changes) runs from here, retried with backoff on transient failures, so that neither a
//! slow Jira nor a server killed mid-work loses a delivery (docs/behaviour.md#1).
//!
//! A job is `running` while a server works on it under a lease, `queued` while it waits (for
//! its time, or for a free worker), and `failed` once its attempts ran out; a finished job is
//! deleted, since the delivery log remembers the delivery.

use rusqlite::{OptionalExtension, params};

use super::sqlite::{exec, failed, one};
use super::store::{Enqueued, Finished, NewJob, Next, QueuedJob};
use super::{BackendResult, SqliteStore};

const COLUMNS: &str =
    "id, client_key, delivery_id, body, state, attempts, accepted_at, error, lease_until";

fn finish(conn: &rusqlite::Connection, finished: &Finished) -> BackendResult<()> {
    let Finished {
        id,
        lease_until,
        next,
        error,
    } = finished;
    let held = *lease_until as i64;
    let result = match next {
        Next::Done => exec(
            conn,
            "DELETE FROM jobs WHERE id = ?1 AND lease_until = ?2",
            params![id, held],
        ),
        Next::Failed => exec(
            conn,
            "UPDATE jobs SET state = 'failed', lease_until = 0, error = ?3
             WHERE id = ?1 AND lease_until = ?2",
            params![id, held, error],
        ),
        Next::RetryAt(at) => exec(
            conn,
            "UPDATE jobs SET state = 'queued', next_at = ?3, lease_until = 0, error = ?4
             WHERE id = ?1 AND lease_until = ?2",
            params![id, held, *at as i64, error],
        ),
    };
    result.map(drop).map_err(failed("record job outcome"))
}

fn insert_job(
    conn: &rusqlite::Connection,
    client_key: &str,
    delivery_id: Option<&str>,
    body: &[u8],
    now: u64,
    run_until: Option<u64>,
) -> BackendResult<Enqueued> {
    let (state, attempts, lease) = match run_until {
        Some(lease) => ("running", 1, lease),
        None => ("queued", 0, 0),
    };
    let added = exec(
        conn,
        "INSERT INTO jobs (client_key, delivery_id, body, state, attempts, accepted_at,
         next_at, lease_until) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)
         ON CONFLICT (client_key, delivery_id) DO NOTHING",
        params![
            client_key,
            delivery_id,
            body,
            state,
            attempts,
            now as i64,
            lease as i64
        ],
    )
    .map_err(failed("enqueue job"))?;
    if added == 0 {
        return Ok(Enqueued::Duplicate);
    }
    if run_until.is_none() {
        return Ok(Enqueued::Wait);
    }
    Ok(Enqueued::Run(QueuedJob {
        id: conn.last_insert_rowid(),
        client_key: client_key.to_owned(),
        delivery_id: delivery_id.map(str::to_owned),
        body: body.to_vec(),
        state: state.to_owned(),
        attempts,
        accepted_at: now,
        error: None,
        lease_until: lease,
    }))
}

fn job(row: &rusqlite::Row<'_>) -> rusqlite::Result<QueuedJob> {
    Ok(QueuedJob {
        id: row.get(0)?,
        client_key: row.get(1)?,
        delivery_id: row.get(2)?,
        body: row.get(3)?,
        state: row.get(4)?,
        attempts: row.get(5)?,
        accepted_at: row.get::<_, i64>(6)? as u64,
        error: row.get(7)?,
        lease_until: row.get::<_, i64>(8)? as u64,
    })
}

impl SqliteStore {
    /// Records new jobs and finished attempts in one transaction (a server batches the
    /// webhooks and the outcomes that arrive while the last batch is written), with one
    /// outcome per new job, in order. A new job with a lease (`run_until`) starts `running` for
    /// the caller to work on at once, one without waits `queued`, and a delivery already
    /// recorded (Jira's retry of one still queued) adds nothing. A finished attempt deletes a
    /// done job, marks a failed one, or makes it due again at a time.
    pub fn write_queue(
        &self,
        jobs: &[NewJob],
        finished: &[Finished],
        now: u64,
    ) -> BackendResult<Vec<Enqueued>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(failed("begin queue writes"))?;
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            outcomes.push(insert_job(
                &tx,
                &job.client_key,
                job.delivery_id.as_deref(),
                &job.body,
                now,
                job.run_until,
            )?);
        }
        for attempt in finished {
            finish(&tx, attempt)?;
        }
        tx.commit().map_err(failed("commit queue writes"))?;
        Ok(outcomes)
    }

    /// Claims up to `limit` jobs due at `now` (waiting ones whose time came, and running ones
    /// whose lease ran out because their server died), taking the installations in turn: the
    /// first due job of each, then the second of each, and so on, so that one installation's
    /// backlog never starves another's.
    pub fn claim_due_jobs(
        &self,
        now: u64,
        lease_until: u64,
        limit: usize,
    ) -> BackendResult<Vec<QueuedJob>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(failed("begin claim of jobs"))?;
        let ids: Vec<i64> = tx
            .prepare_cached(
                "SELECT id FROM (
                    SELECT id, ROW_NUMBER() OVER (PARTITION BY client_key ORDER BY id) AS turn
                    FROM jobs
                    WHERE (state = 'queued' AND next_at <= ?1)
                       OR (state = 'running' AND lease_until <= ?1))
                 ORDER BY turn, id LIMIT ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![now as i64, limit as i64], |row| row.get(0))?
                    .collect()
            })
            .map_err(failed("find due jobs"))?;
        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            exec(
                &tx,
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?2
                 WHERE id = ?1",
                params![id, lease_until as i64],
            )
            .map_err(failed("claim job"))?;
            if let Some(claimed) = one(
                &tx,
                &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                params![id],
                job,
            )
            .optional()
            .map_err(failed("read job"))?
            {
                jobs.push(claimed);
            }
        }
        tx.commit().map_err(failed("commit claim of jobs"))?;
        Ok(jobs)
    }

    /// Jobs waiting or running, and how long the oldest has waited since it was accepted
    /// (seconds).
    pub fn queue_backlog(&self, now: u64) -> BackendResult<(u64, u64)> {
        self.conn()
            .query_row(
                "SELECT COUNT(*), COALESCE(MAX(?1 - accepted_at), 0) FROM jobs
                 WHERE state IN ('queued', 'running')",
                params![now as i64],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)? as u64,
                        row.get::<_, i64>(1)?.max(0) as u64,
                    ))
                },
            )
            .map_err(failed("measure the queue"))
    }

    /// Extends the lease on job `id` to `until`, if it still runs under the lease `held` the
    /// caller has; `false` when it does not (another runner took it over).
    pub fn renew_job(&self, id: i64, held: u64, until: u64) -> BackendResult<bool> {
        exec(
            &self.conn(),
            "UPDATE jobs SET lease_until = ?3
             WHERE id = ?1 AND state = 'running' AND lease_until = ?2",
            params![id, held as i64, until as i64],
        )
        .map(|changed| changed == 1)
        .map_err(failed("renew job lease"))
    }

    /// Takes back, at a server's start, what a server killed on this file held: its running
    /// jobs are due again now, its running pushes pending now, and its delivery claims end (a
    /// SQLite file has one server: whatever is running belongs to a server that is gone).
    /// Returns the jobs, pushes and claims taken back.
    pub fn recover(&self, now: u64) -> BackendResult<(usize, usize, usize)> {
        let conn = self.conn();
        let jobs = conn
            .execute(
                "UPDATE jobs SET state = 'queued', next_at = ?1, lease_until = 0
                 WHERE state = 'running'",
                params![now as i64],
            )
            .map_err(failed("recover jobs"))?;
        let pushes = conn
            .execute(
                "UPDATE outbox SET state = 'pending', next_at = ?1, lease_until = 0
                 WHERE state = 'running'",
                params![now as i64],
            )
            .map_err(failed("recover pushes"))?;
        let claims = conn
            .execute("DELETE FROM claims", [])
            .map_err(failed("recover claims"))?;
        Ok((jobs, pushes, claims))
    }

    /// Jobs running, or waiting with their time come (retries not yet due are not counted).
    pub fn jobs_due(&self, now: u64) -> BackendResult<u64> {
        self.conn()
            .query_row(
                "SELECT COUNT(*) FROM jobs
                 WHERE state = 'running' OR (state = 'queued' AND next_at <= ?1)",
                params![now as i64],
                |row| Ok(row.get::<_, i64>(0)? as u64),
            )
            .map_err(failed("count due jobs"))
    }

    /// Jobs whose attempts ran out, oldest first, at most `limit`.
    pub fn failed_jobs(&self, limit: usize) -> BackendResult<Vec<QueuedJob>> {
        let conn = self.conn();
        conn.prepare(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE state = 'failed' ORDER BY id LIMIT ?1"
        ))
        .and_then(|mut stmt| stmt.query_map(params![limit as i64], job)?.collect())
        .map_err(failed("read failed jobs"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::sqlite::tests::temp;

    /// One write at a time, as the tests below make them.
    trait OneByOne {
        fn enqueue(
            &self,
            client_key: &str,
            delivery_id: Option<&str>,
            body: &[u8],
            now: u64,
            run_until: Option<u64>,
        ) -> BackendResult<Enqueued>;
        fn finish_job(&self, job: &QueuedJob, next: Next, error: Option<&str>)
        -> BackendResult<()>;
    }

    impl OneByOne for SqliteStore {
        fn enqueue(
            &self,
            client_key: &str,
            delivery_id: Option<&str>,
            body: &[u8],
            now: u64,
            run_until: Option<u64>,
        ) -> BackendResult<Enqueued> {
            let job = NewJob {
                client_key: client_key.into(),
                delivery_id: delivery_id.map(Into::into),
                body: body.to_vec(),
                run_until,
            };
            Ok(self.write_queue(&[job], &[], now)?.remove(0))
        }

        fn finish_job(
            &self,
            job: &QueuedJob,
            next: Next,
            error: Option<&str>,
        ) -> BackendResult<()> {
            let attempt = Finished {
                id: job.id,
                lease_until: job.lease_until,
                next,
                error: error.map(Into::into),
            };
            self.write_queue(&[], &[attempt], 0).map(drop)
        }
    }

    #[test]
    fn a_delivery_is_queued_once_and_a_finished_job_is_gone() {
        let t = temp("queue-once");
        let store = &t.1;
        let run = store
            .enqueue("jira:1", Some("d-1"), b"{}", 100, Some(220))
            .unwrap();
        let Enqueued::Run(job) = run else {
            panic!("{run:?}")
        };
        assert_eq!((job.state.as_str(), job.attempts), ("running", 1));
        // Jira's retry of a delivery still queued adds nothing, even for another server.
        assert_eq!(
            store
                .enqueue("jira:1", Some("d-1"), b"{}", 101, None)
                .unwrap(),
            Enqueued::Duplicate
        );
        // The same id on another installation is another delivery; no id is never a duplicate.
        assert_eq!(
            store
                .enqueue("jira:2", Some("d-1"), b"{}", 101, None)
                .unwrap(),
            Enqueued::Wait
        );
        assert_eq!(
            store.enqueue("jira:1", None, b"{}", 101, None).unwrap(),
            Enqueued::Wait
        );
        assert_eq!(
            store.enqueue("jira:1", None, b"{}", 101, None).unwrap(),
            Enqueued::Wait
        );
        assert_eq!(store.queue_backlog(110).unwrap(), (4, 10));
        store.finish_job(&job, Next::Done, None).unwrap();
        assert_eq!(store.queue_backlog(110).unwrap().0, 3);
        // Once done, a redelivery is queued again (the delivery log then dedupes its effects).
        assert!(matches!(
            store
                .enqueue("jira:1", Some("d-1"), b"{}", 120, None)
                .unwrap(),
            Enqueued::Wait
        ));
    }

    #[test]
    fn a_batch_records_its_jobs_in_order_and_a_copy_within_it_once() {
        let t = temp("queue-batch");
        let job = |id: &str, run_until| NewJob {
            client_key: "jira:1".into(),
            delivery_id: Some(id.into()),
            body: b"{}".to_vec(),
            run_until,
        };
        let outcomes =
            t.1.write_queue(
                &[job("a", Some(200)), job("b", None), job("a", None)],
                &[],
                100,
            )
            .unwrap();
        assert!(matches!(&outcomes[0], Enqueued::Run(j) if j.delivery_id.as_deref() == Some("a")));
        assert_eq!(outcomes[1..], [Enqueued::Wait, Enqueued::Duplicate]);
        let Enqueued::Run(first) = &outcomes[0] else {
            unreachable!()
        };
        // Its outcome and a new job in one batch.
        let outcomes =
            t.1.write_queue(
                &[job("c", None)],
                &[Finished {
                    id: first.id,
                    lease_until: first.lease_until,
                    next: Next::Done,
                    error: None,
                }],
                101,
            )
            .unwrap();
        assert_eq!(outcomes, [Enqueued::Wait]);
        assert_eq!(
            t.1.queue_backlog(101).unwrap().0,
            2,
            "b and c wait; a is done"
        );
    }

    #[test]
    fn due_jobs_are_claimed_installation_by_installation_and_leases_are_taken_over() {
        let t = temp("queue-claim");
        let store = &t.1;
        for i in 0..3 {
            store
                .enqueue("jira:busy", Some(&format!("b-{i}")), b"{}", 100, None)
                .unwrap();
        }
        store
            .enqueue("jira:quiet", Some("q-0"), b"{}", 100, None)
            .unwrap();
        let first = store.claim_due_jobs(100, 200, 2).unwrap();
        let keys: Vec<&str> = first.iter().map(|j| j.client_key.as_str()).collect();
        assert_eq!(keys, ["jira:busy", "jira:quiet"], "one of each first");
        assert!(
            first
                .iter()
                .all(|j| j.state == "running" && j.attempts == 1)
        );
        // A retry is not due before its time.
        store
            .finish_job(&first[1], Next::RetryAt(150), Some("503"))
            .unwrap();
        let second = store.claim_due_jobs(120, 200, 10).unwrap();
        assert_eq!(second.len(), 2, "the busy installation's other two");
        assert_eq!(store.jobs_due(120).unwrap(), 3, "three running");
        // The retry comes due; the running jobs' leases hold until 200.
        let retried = store.claim_due_jobs(199, 300, 10).unwrap();
        assert_eq!(retried.len(), 1);
        let retried = &retried[0];
        assert_eq!(
            (
                retried.client_key.as_str(),
                retried.attempts,
                retried.error.as_deref()
            ),
            ("jira:quiet", 2, Some("503"))
        );
        // Their server dies: once the lease ran out, another takes them over.
        let taken = store.claim_due_jobs(200, 300, 10).unwrap();
        assert_eq!(taken.len(), 3, "three leases ran out");
        assert!(taken.iter().all(|j| j.client_key == "jira:busy"));
        store
            .finish_job(retried, Next::Failed, Some("gave up"))
            .unwrap();
        let failed = store.failed_jobs(10).unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].error.as_deref(), Some("gave up"));
        assert_eq!(
            store.queue_backlog(200).unwrap().0,
            3,
            "failed is not backlog"
        );
        assert_eq!(store.jobs_due(200).unwrap(), 3);
    }
}
