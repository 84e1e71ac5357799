//! The outbox of platform → Jira syncs, in the server's SQLite file: every resolve, unresolve,
//! assign and unassign of a linked group is recorded in the same transaction as the group's
//! change, one entry per linked issue, so that a push that fails (Jira down, rate-limited) or a
//! server that dies mid-push loses nothing: the entry is retried until it succeeds or fails for
//! good.

use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::sqlite::failed;
use super::store::{Next, OutboxEntry};
use super::{BackendError, BackendResult, GroupStatus, SqliteStore, Transaction as _};

const COLUMNS: &str =
    "id, group_id, client_key, issue_key, push, state, attempts, next_at, outcome";

fn entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxEntry> {
    let push: String = row.get(4)?;
    let outcome: Option<String> = row.get(8)?;
    Ok(OutboxEntry {
        id: row.get(0)?,
        group: row.get::<_, i64>(1)? as u64,
        client_key: row.get(2)?,
        issue_key: row.get(3)?,
        push: serde_json::from_str(&push).unwrap_or(Value::Null),
        state: row.get(5)?,
        attempts: row.get(6)?,
        next_at: row.get::<_, i64>(7)? as u64,
        outcome: outcome.and_then(|o| serde_json::from_str(&o).ok()),
    })
}

impl SqliteStore {
    /// Changes `group` (its status, or its assignee) and records one push per linked issue, in
    /// one transaction; the entries start `running` under a lease until `lease_until`, for the
    /// caller to make the first attempt at once.
    pub fn change_group(
        &self,
        group: u64,
        push: &Value,
        now: u64,
        lease_until: u64,
    ) -> BackendResult<Vec<OutboxEntry>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(failed("begin group change"))?;
        {
            let mut writes = super::sqlite::Tx(&tx);
            match (
                push.get("resolved").and_then(Value::as_bool),
                push.get("assign"),
            ) {
                (Some(resolved), _) => writes.set_status(
                    group,
                    if resolved {
                        GroupStatus::Resolved
                    } else {
                        GroupStatus::Unresolved
                    },
                )?,
                (None, Some(user)) => writes.set_assignee(group, user.as_u64())?,
                _ => return Err(BackendError(format!("not a group change: {push}"))),
            }
        }
        let links: Vec<(String, String)> = tx
            .prepare("SELECT client_key, issue_key FROM links WHERE group_id = ?1 ORDER BY 1, 2")
            .and_then(|mut stmt| {
                stmt.query_map(params![group as i64], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect()
            })
            .map_err(failed("read links of group"))?;
        let mut ids = Vec::new();
        for (client_key, issue_key) in &links {
            tx.execute(
                "INSERT INTO outbox (group_id, client_key, issue_key, push, state, attempts,
                 next_at, lease_until) VALUES (?1, ?2, ?3, ?4, 'running', 1, ?5, ?6)",
                params![
                    group as i64,
                    client_key,
                    issue_key,
                    push.to_string(),
                    now as i64,
                    lease_until as i64
                ],
            )
            .map_err(failed("record push"))?;
            ids.push(tx.last_insert_rowid());
        }
        tx.commit().map_err(failed("commit group change"))?;
        drop(conn);
        ids.into_iter()
            .map(|id| {
                self.outbox_entry(id)?
                    .ok_or_else(|| BackendError(format!("outbox {id} vanished")))
            })
            .collect()
    }

    /// Records the outcome of an attempt on entry `id`.
    pub fn finish_push(&self, id: i64, outcome: &Value, next: Next) -> BackendResult<()> {
        let (state, next_at) = match next {
            Next::Done => ("done", 0),
            Next::Failed => ("failed", 0),
            Next::RetryAt(at) => ("pending", at),
        };
        self.conn()
            .execute(
                "UPDATE outbox SET state = ?2, next_at = ?3, lease_until = 0, outcome = ?4
                 WHERE id = ?1",
                params![id, state, next_at as i64, outcome.to_string()],
            )
            .map(drop)
            .map_err(failed("record push outcome"))
    }

    /// Claims the pushes due at `now` (retries whose time has come, and attempts whose lease ran
    /// out because their server died), at most one per installation so that one slow or
    /// rate-limited site never delays another's, and at most `limit` in all.
    pub fn claim_due_pushes(
        &self,
        now: u64,
        lease_until: u64,
        limit: usize,
    ) -> BackendResult<Vec<OutboxEntry>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(failed("begin claim of pushes"))?;
        let ids: Vec<i64> = tx
            .prepare(
                "SELECT MIN(id) FROM outbox
                 WHERE (state = 'pending' AND next_at <= ?1)
                    OR (state = 'running' AND lease_until <= ?1)
                 GROUP BY client_key ORDER BY MIN(id) LIMIT ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![now as i64, limit as i64], |row| row.get(0))?
                    .collect()
            })
            .map_err(failed("find due pushes"))?;
        for id in &ids {
            tx.execute(
                "UPDATE outbox SET state = 'running', attempts = attempts + 1, lease_until = ?2
                 WHERE id = ?1",
                params![id, lease_until as i64],
            )
            .map_err(failed("claim push"))?;
        }
        tx.commit().map_err(failed("commit claim of pushes"))?;
        drop(conn);
        ids.into_iter()
            .filter_map(|id| self.outbox_entry(id).transpose())
            .collect()
    }

    /// The entry `id`.
    pub fn outbox_entry(&self, id: i64) -> BackendResult<Option<OutboxEntry>> {
        self.conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM outbox WHERE id = ?1"),
                params![id],
                entry,
            )
            .optional()
            .map_err(failed("read push"))
    }

    /// Pushes not yet done or failed, and how long the most overdue one is past its time
    /// (seconds; 0 when none is due).
    pub fn outbox_backlog(&self, now: u64) -> BackendResult<(u64, u64)> {
        self.conn()
            .query_row(
                "SELECT COUNT(*), COALESCE(MAX(?1 - next_at), 0) FROM outbox
                 WHERE state IN ('pending', 'running')",
                params![now as i64],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)? as u64,
                        row.get::<_, i64>(1)?.max(0) as u64,
                    ))
                },
            )
            .map_err(failed("measure the outbox"))
    }

    /// Every push of `group`, newest first.
    pub fn pushes_of_group(&self, group: u64) -> BackendResult<Vec<OutboxEntry>> {
        let conn = self.conn();
        conn.prepare(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE group_id = ?1 ORDER BY id DESC"
        ))
        .and_then(|mut stmt| stmt.query_map(params![group as i64], entry)?.collect())
        .map_err(failed("read pushes of group"))
    }
}
