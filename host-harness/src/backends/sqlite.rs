//! The server's state in one SQLite file: installations, links, groups, users, and the delivery
//! log (handled webhook ids and their claims, per-field watermarks), so that a restart loses
//! nothing. Every failed statement is a [`BackendError`]; a call's writes are one transaction.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension, params};

use super::effects::{self, Effect, IssueField};
use super::store::{Enqueued, Finished, NewJob, Next, OauthLease, OutboxEntry, QueuedJob, Store};
use super::{
    BackendError, BackendResult, BoxFuture, Claim, Field, Group, GroupStatus, Platform,
    Transaction, ready,
};
use crate::installation::{InstallationSpec, OauthTokens};
use crate::limits::Limits;
use crate::wit::jira_sync::plugin::types::Installation;

// WAL with `synchronous = NORMAL`: a commit is durable once written to the log, which survives
// the process being killed (kill -9) but not the machine losing power before the next
// checkpoint; `FULL` would fsync every commit and cap the server near a thousand commits a
// second (BENCHMARKS.md).
const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";

// The schema's versions, applied in order at open and recorded in the file
// (`refinery_schema_history`), so that a newer server upgrades an older file in place.
mod schema {
    refinery::embed_migrations!("migrations/sqlite");
}

/// The platform and the delivery log in one SQLite file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Installations as last read, parsed. Every component call reads its installation, and
    /// reading and parsing the stored JSON each time was a tenth of the server's time under
    /// load (BENCHMARKS.md).
    specs: Mutex<Specs>,
}

/// [`SqliteStore`]'s parsed installations. This store forgets an entry whenever it writes it,
/// holding the connection, and a miss reads and fills under the connection too, so it can never
/// put back what a write replaced; another connection's commit (another server on the file)
/// changes the file's data version, which empties them all.
#[derive(Default)]
struct Specs {
    data_version: i64,
    parsed: HashMap<String, InstallationSpec>,
}

/// Runs `sql` through the connection's statement cache: a hot statement is parsed once.
pub(super) fn exec(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// [`exec`] for a query of one row.
pub(super) fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, row)
}

/// A failed statement as the backend error a call ends with, naming what was being done.
pub(super) fn failed(what: &'static str) -> impl Fn(rusqlite::Error) -> BackendError {
    move |e| BackendError(format!("sqlite: {what}: {e}"))
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut conn =
            Connection::open(path).with_context(|| format!("open database {}", path.display()))?;
        conn.execute_batch(PRAGMAS)
            .context("set the journal mode")?;
        schema::migrations::runner()
            .run(&mut conn)
            .with_context(|| format!("migrate database {}", path.display()))?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            specs: Mutex::default(),
        })
    }

    pub(super) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn specs(&self) -> MutexGuard<'_, Specs> {
        self.specs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops `client_key`'s parsed installation; called by every write of it, with the
    /// connection (`_held`) still held, so that no read in between can cache the old one.
    pub(super) fn forget_spec(&self, _held: &Connection, client_key: &str) {
        self.specs().parsed.remove(client_key);
    }

    /// Adds an installation, or replaces the one with the same client key.
    pub fn add_installation(&self, spec: &InstallationSpec) -> BackendResult<()> {
        let json = serde_json::to_string(spec)
            .map_err(|e| BackendError(format!("installation {}: {e}", spec.client_key)))?;
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(failed("begin add installation"))?;
        tx.execute(
            "INSERT OR REPLACE INTO installations (client_key, spec) VALUES (?1, ?2)",
            params![spec.client_key, json],
        )
        .map_err(failed("add installation"))?;
        // New credentials (a re-authorised OAuth installation) are kept up at once, whatever
        // the old ones' failures held back.
        tx.execute(
            "DELETE FROM oauth_upkeep WHERE client_key = ?1",
            params![spec.client_key],
        )
        .map_err(failed("free OAuth upkeep"))?;
        let committed = tx.commit().map_err(failed("commit add installation"));
        self.forget_spec(&conn, &spec.client_key);
        committed
    }

    /// Links `groups` to `issue_key`; unknown groups start unresolved and unassigned.
    pub fn link(&self, client_key: &str, issue_key: &str, groups: &[u64]) -> BackendResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(failed("begin link"))?;
        for group in groups {
            tx.execute(
                "INSERT OR IGNORE INTO groups (id) VALUES (?1)",
                params![*group as i64],
            )
            .and_then(|_| {
                tx.execute(
                    "INSERT OR IGNORE INTO links (client_key, issue_key, group_id)
                     VALUES (?1, ?2, ?3)",
                    params![client_key, issue_key, *group as i64],
                )
            })
            .map_err(failed("link groups"))?;
        }
        tx.commit().map_err(failed("commit link"))
    }

    /// Adds a verified email of user `id`.
    pub fn add_user(&self, id: u64, email: &str) -> BackendResult<()> {
        self.conn()
            .execute(
                "INSERT OR IGNORE INTO users (id, email) VALUES (?1, ?2)",
                params![id as i64, email],
            )
            .map(drop)
            .map_err(failed("add user"))
    }

    /// Forgets delivery ids handled before `handled_before` and claims whose lease ended by
    /// `now` (Unix seconds), and failed jobs accepted before `handled_before`; returns how many
    /// deliveries and claims went.
    pub fn prune(&self, handled_before: u64, now: u64) -> BackendResult<(usize, usize)> {
        let conn = self.conn();
        let deliveries = conn
            .execute(
                "DELETE FROM deliveries WHERE handled_at < ?1",
                params![handled_before as i64],
            )
            .map_err(failed("prune deliveries"))?;
        let claims = conn
            .execute(
                "DELETE FROM claims WHERE lease_until <= ?1",
                params![now as i64],
            )
            .map_err(failed("prune claims"))?;
        conn.execute(
            "DELETE FROM jobs WHERE state = 'failed' AND accepted_at < ?1",
            params![handled_before as i64],
        )
        .map_err(failed("prune failed jobs"))?;
        Ok((deliveries, claims))
    }

    /// Every group, by id.
    pub fn groups(&self) -> BackendResult<BTreeMap<u64, Group>> {
        let conn = self.conn();
        conn.prepare("SELECT id, resolved, assignee FROM groups ORDER BY id")
            .and_then(|mut stmt| {
                stmt.query_map([], |row| {
                    Ok((
                        row.get::<_, i64>(0)? as u64,
                        group_of(row.get(1)?, row.get(2)?),
                    ))
                })?
                .collect::<rusqlite::Result<BTreeMap<_, _>>>()
            })
            .map_err(failed("list groups"))
    }
}

fn group_of(resolved: bool, assignee: Option<i64>) -> Group {
    Group {
        status: if resolved {
            GroupStatus::Resolved
        } else {
            GroupStatus::Unresolved
        },
        assignee: assignee.map(|a| a as u64),
    }
}

/// The stored installation `client_key`, read on `conn` (a transaction's, or none).
pub(super) fn read_spec(
    conn: &Connection,
    client_key: &str,
) -> BackendResult<Option<InstallationSpec>> {
    let spec: Option<String> = one(
        conn,
        "SELECT spec FROM installations WHERE client_key = ?1",
        params![client_key],
        |row| row.get(0),
    )
    .optional()
    .map_err(failed("read installation"))?;
    spec.map(|spec| parse_spec(client_key, &spec)).transpose()
}

/// An installation as stored (JSON).
pub(super) fn parse_spec(client_key: &str, json: &str) -> BackendResult<InstallationSpec> {
    serde_json::from_str(json)
        .map_err(|e| BackendError(format!("installation {client_key} is unreadable: {e}")))
}

impl SqliteStore {
    /// See [`Store::installation_spec`].
    pub fn installation_spec(&self, client_key: &str) -> BackendResult<Option<InstallationSpec>> {
        let conn = self.conn();
        let data_version = one(&conn, "PRAGMA data_version", [], |row| row.get(0))
            .map_err(failed("read the data version"))?;
        {
            let mut specs = self.specs();
            if specs.data_version != data_version {
                *specs = Specs {
                    data_version,
                    parsed: HashMap::new(),
                };
            }
            if let Some(spec) = specs.parsed.get(client_key) {
                return Ok(Some(spec.clone()));
            }
        }
        let spec = read_spec(&conn, client_key)?;
        // An unknown key is not remembered: anyone can name one in a webhook.
        if let Some(spec) = &spec {
            self.specs()
                .parsed
                .insert(client_key.to_owned(), spec.clone());
        }
        Ok(spec)
    }
}

// The platform's reads and writes, synchronous: SQLite answers from a local file, and the
// trait impls below hand the answers over as ready futures.
impl SqliteStore {
    /// See [`Platform::installation`].
    pub fn installation(&self, client_key: &str) -> BackendResult<Option<(Installation, Limits)>> {
        Ok(SqliteStore::installation_spec(self, client_key)?.and_then(|spec| spec.for_calls()))
    }

    /// See [`Platform::linked_groups`].
    pub fn linked_groups(&self, client_key: &str, issue_key: &str) -> BackendResult<Vec<u64>> {
        let conn = self.conn();
        conn.prepare_cached(
            "SELECT group_id FROM links WHERE client_key = ?1 AND issue_key = ?2 ORDER BY group_id",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![client_key, issue_key], |row| {
                Ok(row.get::<_, i64>(0)? as u64)
            })?
            .collect()
        })
        .map_err(failed("read links"))
    }

    /// See [`Platform::user_by_email`].
    pub fn user_by_email(&self, email: &str) -> BackendResult<Option<u64>> {
        one(
            &self.conn(),
            "SELECT id FROM users WHERE email = ?1 ORDER BY id LIMIT 1",
            params![email],
            |row| row.get::<_, i64>(0),
        )
        .optional()
        .map(|id| id.map(|id| id as u64))
        .map_err(failed("find user"))
    }

    /// See [`Platform::group`].
    pub fn group(&self, group: u64) -> BackendResult<Option<Group>> {
        self.conn()
            .query_row(
                "SELECT resolved, assignee FROM groups WHERE id = ?1",
                params![group as i64],
                |row| Ok(group_of(row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(failed("read group"))
    }

    /// See [`Platform::links_of_group`].
    pub fn links_of_group(&self, group: u64) -> BackendResult<Vec<(String, String)>> {
        let conn = self.conn();
        conn.prepare("SELECT client_key, issue_key FROM links WHERE group_id = ?1 ORDER BY 1, 2")
            .and_then(|mut stmt| {
                stmt.query_map(params![group as i64], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect()
            })
            .map_err(failed("read links of group"))
    }

    /// See [`Platform::user_emails`].
    pub fn user_emails(&self, user: u64) -> BackendResult<Vec<String>> {
        let conn = self.conn();
        conn.prepare("SELECT email FROM users WHERE id = ?1 ORDER BY email")
            .and_then(|mut stmt| {
                stmt.query_map(params![user as i64], |row| row.get(0))?
                    .collect()
            })
            .map_err(failed("read user emails"))
    }

    /// See [`Platform::handled`].
    pub fn handled(&self, client_key: &str, id: &str) -> BackendResult<bool> {
        handled(&self.conn(), client_key, id).map_err(failed("read delivery"))
    }

    /// See [`Platform::watermark`].
    pub fn watermark(
        &self,
        client_key: &str,
        issue_key: &str,
        field: Field,
    ) -> BackendResult<Option<i64>> {
        watermark(&self.conn(), client_key, issue_key, field).map_err(failed("read watermark"))
    }

    /// See [`Platform::claim`].
    pub fn claim(
        &self,
        client_key: &str,
        id: &str,
        owner: u64,
        now: u64,
        lease_until: u64,
    ) -> BackendResult<Claim> {
        let mut conn = self.conn();
        // IMMEDIATE: the read and the write below are one step for every other connection.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(failed("begin claim"))?;
        if handled(&tx, client_key, id).map_err(failed("read delivery"))? {
            return Ok(Claim::Handled);
        }
        let taken = exec(
            &tx,
            "INSERT INTO claims (client_key, id, owner, lease_until) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (client_key, id) DO UPDATE SET owner = ?3, lease_until = ?4
             WHERE claims.owner = ?3 OR claims.lease_until <= ?5",
            params![client_key, id, owner as i64, lease_until as i64, now as i64],
        )
        .map_err(failed("claim delivery"))?;
        tx.commit().map_err(failed("commit claim"))?;
        Ok(if taken == 1 {
            Claim::Claimed
        } else {
            Claim::InProgress
        })
    }

    /// See [`Platform::release`].
    pub fn release(&self, client_key: &str, id: &str, owner: u64) -> BackendResult<()> {
        exec(
            &self.conn(),
            "DELETE FROM claims WHERE client_key = ?1 AND id = ?2 AND owner = ?3",
            params![client_key, id, owner as i64],
        )
        .map(drop)
        .map_err(failed("release claim"))
    }

    /// See [`Platform::commit`].
    pub fn commit(&self, effects: &[Effect]) -> BackendResult<Vec<IssueField>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(failed("begin transaction"))?;
        let superseded = effects::apply(&mut Tx(&tx), effects)?;
        // Dropping an uncommitted transaction rolls it back: an error above applies nothing.
        tx.commit().map_err(failed("commit"))?;
        Ok(superseded)
    }
}

impl Platform for SqliteStore {
    fn installation<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<(Installation, Limits)>>> {
        ready(SqliteStore::installation(self, client_key))
    }

    fn outbound_authorization<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<String>>> {
        ready(
            SqliteStore::installation_spec(self, client_key)
                .map(|spec| spec.and_then(|spec| spec.outbound_authorization())),
        )
    }

    fn linked_groups<'a>(
        &'a self,
        client_key: &'a str,
        issue_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Vec<u64>>> {
        ready(SqliteStore::linked_groups(self, client_key, issue_key))
    }

    fn user_by_email<'a>(&'a self, email: &'a str) -> BoxFuture<'a, BackendResult<Option<u64>>> {
        ready(SqliteStore::user_by_email(self, email))
    }

    fn group(&self, group: u64) -> BoxFuture<'_, BackendResult<Option<Group>>> {
        ready(SqliteStore::group(self, group))
    }

    fn links_of_group(&self, group: u64) -> BoxFuture<'_, BackendResult<Vec<(String, String)>>> {
        ready(SqliteStore::links_of_group(self, group))
    }

    fn user_emails(&self, user: u64) -> BoxFuture<'_, BackendResult<Vec<String>>> {
        ready(SqliteStore::user_emails(self, user))
    }

    fn handled<'a>(
        &'a self,
        client_key: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, BackendResult<bool>> {
        ready(SqliteStore::handled(self, client_key, id))
    }

    fn watermark<'a>(
        &'a self,
        client_key: &'a str,
        issue_key: &'a str,
        field: Field,
    ) -> BoxFuture<'a, BackendResult<Option<i64>>> {
        ready(SqliteStore::watermark(self, client_key, issue_key, field))
    }

    fn claim<'a>(
        &'a self,
        client_key: &'a str,
        id: &'a str,
        owner: u64,
        now: u64,
        lease_until: u64,
    ) -> BoxFuture<'a, BackendResult<Claim>> {
        ready(SqliteStore::claim(
            self,
            client_key,
            id,
            owner,
            now,
            lease_until,
        ))
    }

    fn release<'a>(
        &'a self,
        client_key: &'a str,
        id: &'a str,
        owner: u64,
    ) -> BoxFuture<'a, BackendResult<()>> {
        ready(SqliteStore::release(self, client_key, id, owner))
    }

    fn commit<'a>(
        &'a self,
        effects: &'a [Effect],
    ) -> BoxFuture<'a, BackendResult<Vec<IssueField>>> {
        ready(SqliteStore::commit(self, effects))
    }
}

impl Store for SqliteStore {
    fn add_installation<'a>(
        &'a self,
        spec: &'a InstallationSpec,
    ) -> BoxFuture<'a, BackendResult<()>> {
        ready(SqliteStore::add_installation(self, spec))
    }

    fn installation_spec<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<InstallationSpec>>> {
        ready(SqliteStore::installation_spec(self, client_key))
    }

    fn link<'a>(
        &'a self,
        client_key: &'a str,
        issue_key: &'a str,
        groups: &'a [u64],
    ) -> BoxFuture<'a, BackendResult<()>> {
        ready(SqliteStore::link(self, client_key, issue_key, groups))
    }

    fn add_user<'a>(&'a self, id: u64, email: &'a str) -> BoxFuture<'a, BackendResult<()>> {
        ready(SqliteStore::add_user(self, id, email))
    }

    fn prune(&self, handled_before: u64, now: u64) -> BoxFuture<'_, BackendResult<(usize, usize)>> {
        ready(SqliteStore::prune(self, handled_before, now))
    }

    fn shared(&self) -> bool {
        // One file, one server: nothing running belongs to anyone alive at start.
        false
    }

    fn write_queue<'a>(
        &'a self,
        jobs: &'a [NewJob],
        finished: &'a [Finished],
        now: u64,
    ) -> BoxFuture<'a, BackendResult<Vec<Enqueued>>> {
        ready(SqliteStore::write_queue(self, jobs, finished, now))
    }

    fn claim_due_jobs(
        &self,
        now: u64,
        lease_until: u64,
        limit: usize,
    ) -> BoxFuture<'_, BackendResult<Vec<QueuedJob>>> {
        ready(SqliteStore::claim_due_jobs(self, now, lease_until, limit))
    }

    fn queue_backlog(&self, now: u64) -> BoxFuture<'_, BackendResult<(u64, u64)>> {
        ready(SqliteStore::queue_backlog(self, now))
    }

    fn renew_job(&self, id: i64, held: u64, until: u64) -> BoxFuture<'_, BackendResult<bool>> {
        ready(SqliteStore::renew_job(self, id, held, until))
    }

    fn recover(&self, now: u64) -> BoxFuture<'_, BackendResult<(usize, usize, usize)>> {
        ready(SqliteStore::recover(self, now))
    }

    fn jobs_due(&self, now: u64) -> BoxFuture<'_, BackendResult<u64>> {
        ready(SqliteStore::jobs_due(self, now))
    }

    fn failed_jobs(&self, limit: usize) -> BoxFuture<'_, BackendResult<Vec<QueuedJob>>> {
        ready(SqliteStore::failed_jobs(self, limit))
    }

    fn change_group<'a>(
        &'a self,
        group: u64,
        push: &'a serde_json::Value,
        now: u64,
        lease_until: u64,
    ) -> BoxFuture<'a, BackendResult<Vec<OutboxEntry>>> {
        ready(SqliteStore::change_group(
            self,
            group,
            push,
            now,
            lease_until,
        ))
    }

    fn finish_push<'a>(
        &'a self,
        id: i64,
        outcome: &'a serde_json::Value,
        next: Next,
    ) -> BoxFuture<'a, BackendResult<()>> {
        ready(SqliteStore::finish_push(self, id, outcome, next))
    }

    fn claim_due_pushes(
        &self,
        now: u64,
        lease_until: u64,
        limit: usize,
    ) -> BoxFuture<'_, BackendResult<Vec<OutboxEntry>>> {
        ready(SqliteStore::claim_due_pushes(self, now, lease_until, limit))
    }

    fn outbox_entry(&self, id: i64) -> BoxFuture<'_, BackendResult<Option<OutboxEntry>>> {
        ready(SqliteStore::outbox_entry(self, id))
    }

    fn outbox_backlog(&self, now: u64) -> BoxFuture<'_, BackendResult<(u64, u64)>> {
        ready(SqliteStore::outbox_backlog(self, now))
    }

    fn pushes_of_group(&self, group: u64) -> BoxFuture<'_, BackendResult<Vec<OutboxEntry>>> {
        ready(SqliteStore::pushes_of_group(self, group))
    }

    fn oauth_installations(&self, now: u64) -> BoxFuture<'_, BackendResult<Vec<InstallationSpec>>> {
        ready(SqliteStore::oauth_installations(self, now))
    }

    fn lease_oauth<'a>(
        &'a self,
        client_key: &'a str,
        now: u64,
        until: u64,
    ) -> BoxFuture<'a, BackendResult<Option<OauthLease>>> {
        ready(SqliteStore::lease_oauth(self, client_key, now, until))
    }

    fn save_oauth_tokens<'a>(
        &'a self,
        client_key: &'a str,
        expected: Option<&'a str>,
        tokens: &'a OauthTokens,
    ) -> BoxFuture<'a, BackendResult<bool>> {
        ready(SqliteStore::save_oauth_tokens(
            self, client_key, expected, tokens,
        ))
    }

    fn release_oauth<'a>(
        &'a self,
        client_key: &'a str,
        held: u64,
        retry_at: u64,
        failed: bool,
    ) -> BoxFuture<'a, BackendResult<()>> {
        ready(SqliteStore::release_oauth(
            self, client_key, held, retry_at, failed,
        ))
    }
}

fn handled(conn: &Connection, client_key: &str, id: &str) -> rusqlite::Result<bool> {
    one(
        conn,
        "SELECT 1 FROM deliveries WHERE client_key = ?1 AND id = ?2",
        params![client_key, id],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
}

fn watermark(
    conn: &Connection,
    client_key: &str,
    issue_key: &str,
    field: Field,
) -> rusqlite::Result<Option<i64>> {
    one(
        conn,
        "SELECT updated_ms FROM watermarks WHERE client_key = ?1 AND issue_key = ?2 AND field = ?3",
        params![client_key, issue_key, field.as_str()],
        |row| row.get(0),
    )
    .optional()
}

/// Deletes an issue's links and watermarks.
fn forget(conn: &Connection, client_key: &str, issue_key: &str) -> rusqlite::Result<()> {
    for sql in [
        "DELETE FROM links WHERE client_key = ?1 AND issue_key = ?2",
        "DELETE FROM watermarks WHERE client_key = ?1 AND issue_key = ?2",
    ] {
        exec(conn, sql, params![client_key, issue_key])?;
    }
    Ok(())
}

/// The writes of one call, inside an open SQLite transaction.
pub(super) struct Tx<'a>(pub(super) &'a rusqlite::Transaction<'a>);

impl Transaction for Tx<'_> {
    fn watermark(
        &mut self,
        client_key: &str,
        issue_key: &str,
        field: Field,
    ) -> BackendResult<Option<i64>> {
        watermark(self.0, client_key, issue_key, field).map_err(failed("read watermark"))
    }

    fn set_watermark(
        &mut self,
        client_key: &str,
        issue_key: &str,
        field: Field,
        updated_ms: i64,
    ) -> BackendResult<()> {
        exec(
            self.0,
            "INSERT OR REPLACE INTO watermarks (client_key, issue_key, field, updated_ms)
             VALUES (?1, ?2, ?3, ?4)",
            params![client_key, issue_key, field.as_str(), updated_ms],
        )
        .map(drop)
        .map_err(failed("record watermark"))
    }

    fn set_assignee(&mut self, group: u64, user: Option<u64>) -> BackendResult<()> {
        exec(
            self.0,
            "UPDATE groups SET assignee = ?2 WHERE id = ?1",
            params![group as i64, user.map(|u| u as i64)],
        )
        .map(drop)
        .map_err(failed("set assignee"))
    }

    fn set_status(&mut self, group: u64, status: GroupStatus) -> BackendResult<()> {
        exec(
            self.0,
            "UPDATE groups SET resolved = ?2 WHERE id = ?1",
            params![group as i64, status == GroupStatus::Resolved],
        )
        .map(drop)
        .map_err(failed("set status"))
    }

    fn mark_handled(&mut self, client_key: &str, id: &str) -> BackendResult<bool> {
        let added = exec(
            self.0,
            "INSERT OR IGNORE INTO deliveries (client_key, id, handled_at)
             VALUES (?1, ?2, CAST(strftime('%s', 'now') AS INTEGER))",
            params![client_key, id],
        )
        .map_err(failed("record delivery"))?;
        exec(
            self.0,
            "DELETE FROM claims WHERE client_key = ?1 AND id = ?2",
            params![client_key, id],
        )
        .map_err(failed("end claim"))?;
        Ok(added == 1)
    }

    fn unlink(&mut self, client_key: &str, issue_key: &str) -> BackendResult<()> {
        forget(self.0, client_key, issue_key).map_err(failed("unlink issue"))
    }

    fn rename(&mut self, client_key: &str, from: &str, to: &str) -> BackendResult<()> {
        // Copy to `to`, then delete `from`: the copy skips a link `to` has already and keeps
        // the newer watermark of a field both have.
        let copies = [
            "INSERT OR IGNORE INTO links (client_key, issue_key, group_id)
             SELECT client_key, ?3, group_id FROM links WHERE client_key = ?1 AND issue_key = ?2",
            "INSERT INTO watermarks (client_key, issue_key, field, updated_ms)
             SELECT client_key, ?3, field, updated_ms FROM watermarks
             WHERE client_key = ?1 AND issue_key = ?2
             ON CONFLICT (client_key, issue_key, field)
             DO UPDATE SET updated_ms = max(updated_ms, excluded.updated_ms)",
        ];
        for sql in copies {
            exec(self.0, sql, params![client_key, from, to]).map_err(failed("rename issue"))?;
        }
        forget(self.0, client_key, from).map_err(failed("rename issue"))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A store in a file of its own, removed on drop.
    pub(in crate::backends) struct Temp(std::path::PathBuf, pub SqliteStore);

    impl Drop for Temp {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    pub(in crate::backends) fn temp(name: &str) -> Temp {
        let path =
            std::env::temp_dir().join(format!("jira-sync-sqlite-{name}-{}.db", std::process::id()));
        let store = SqliteStore::open(&path).unwrap();
        Temp(path, store)
    }

    #[test]
    fn a_read_installation_follows_every_write_of_it() {
        let t = temp("specs");
        let spec =
            |json: serde_json::Value| -> InstallationSpec { serde_json::from_value(json).unwrap() };
        let oauth = |access: &str| {
            spec(serde_json::json!({
                "client_key": "cloud-1", "base_url": "https://api.atlassian.com/ex/jira/cloud-1",
                "app_key": "app", "credentials": {"kind": "oauth", "client_id": "id",
                    "client_secret": "cs", "refresh_token": "rt-0", "access_token": access}
            }))
        };
        let authorization = || {
            t.1.installation_spec("cloud-1")
                .unwrap()
                .and_then(|spec| spec.outbound_authorization())
        };
        assert_eq!(t.1.installation_spec("cloud-1").unwrap().map(drop), None);
        t.1.add_installation(&oauth("at-1")).unwrap();
        assert_eq!(authorization().as_deref(), Some("Bearer at-1"), "read");
        assert_eq!(
            authorization().as_deref(),
            Some("Bearer at-1"),
            "read again"
        );
        t.1.add_installation(&oauth("at-2")).unwrap();
        assert_eq!(authorization().as_deref(), Some("Bearer at-2"), "replaced");
        let mut current = t.1.installation_spec("cloud-1").unwrap().unwrap();
        let mut next = current.oauth_tokens().unwrap();
        next.access_token = Some("at-3".into());
        next.refresh_token = Some("rt-1".into());
        assert!(
            t.1.save_oauth_tokens("cloud-1", Some("rt-0"), &next)
                .unwrap()
        );
        assert_eq!(authorization().as_deref(), Some("Bearer at-3"), "refreshed");
        current.uninstalled = true;
        t.1.add_installation(&current).unwrap();
        assert!(
            t.1.installation("cloud-1").unwrap().is_none(),
            "uninstalled at once"
        );
    }

    #[test]
    fn a_transaction_that_fails_half_way_applies_nothing() {
        let t = temp("rollback");
        t.1.link("jira:1", "APP-1", &[1, 2]).unwrap();
        // Another connection makes the second write fail, as a full disk or a constraint would.
        Connection::open(&t.0)
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER fail BEFORE UPDATE ON groups WHEN NEW.id = 2
                 BEGIN SELECT RAISE(ABORT, 'injected'); END;",
            )
            .unwrap();
        let issue = || ("jira:1".to_owned(), "APP-1".to_owned());
        let result = t.1.commit(&[
            Effect::Handled("jira:1".into(), "d-1".into()),
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
            Effect::Status {
                issue: issue(),
                group: 2,
                status: GroupStatus::Resolved,
            },
        ]);
        assert!(result.unwrap_err().0.contains("injected"));
        let group = t.1.group(1).unwrap().unwrap();
        assert_eq!(
            group.status,
            GroupStatus::Unresolved,
            "the first write is gone too"
        );
        assert!(!t.1.handled("jira:1", "d-1").unwrap());
        assert_eq!(
            t.1.watermark("jira:1", "APP-1", Field::Status).unwrap(),
            None
        );
    }

    #[test]
    fn a_file_from_before_migrations_is_taken_as_version_1_and_keeps_its_data() {
        let path =
            std::env::temp_dir().join(format!("jira-sync-sqlite-legacy-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        {
            let legacy = Connection::open(&path).unwrap();
            legacy
                .execute_batch(include_str!("../../migrations/sqlite/V1__initial.sql"))
                .unwrap();
            legacy
                .execute("INSERT INTO groups (id, resolved) VALUES (5, 1)", [])
                .unwrap();
        }
        for _ in 0..2 {
            let store = SqliteStore::open(&path).unwrap();
            assert_eq!(
                store.group(5).unwrap().map(|g| g.status),
                Some(GroupStatus::Resolved)
            );
        }
        let versions: Vec<i64> = Connection::open(&path)
            .unwrap()
            .prepare("SELECT version FROM refinery_schema_history ORDER BY version")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let embedded = schema::migrations::runner().get_migrations().len() as i64;
        assert_eq!(
            versions,
            (1..=embedded).collect::<Vec<_>>(),
            "each applied once, however often opened"
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn retention_forgets_old_deliveries_and_ended_claims_only() {
        let t = temp("prune");
        t.1.commit(&[handled("recent")]).unwrap();
        Connection::open(&t.0)
            .unwrap()
            .execute_batch(
                "INSERT INTO deliveries (client_key, id, handled_at) VALUES ('jira:1', 'old', 100);",
            )
            .unwrap();
        t.1.claim("jira:1", "ended", 1, 100, 150).unwrap();
        t.1.claim("jira:1", "held", 1, 100, 10_000).unwrap();
        assert_eq!(t.1.prune(1_000, 200).unwrap(), (1, 1));
        assert!(!t.1.handled("jira:1", "old").unwrap());
        assert!(t.1.handled("jira:1", "recent").unwrap());
        assert_eq!(
            t.1.claim("jira:1", "held", 2, 200, 300).unwrap(),
            Claim::InProgress
        );
    }

    #[test]
    fn a_delivery_is_claimed_once_until_handled_released_or_its_lease_ends() {
        let t = temp("claims");
        let store = &t.1;
        assert_eq!(
            store.claim("jira:1", "d", 1, 100, 160).unwrap(),
            Claim::Claimed
        );
        assert_eq!(
            store.claim("jira:1", "d", 2, 110, 170).unwrap(),
            Claim::InProgress
        );
        assert_eq!(
            store.claim("jira:2", "d", 2, 110, 170).unwrap(),
            Claim::Claimed
        );
        store.release("jira:1", "d", 2).unwrap();
        assert_eq!(
            store.claim("jira:1", "d", 3, 120, 180).unwrap(),
            Claim::InProgress,
            "only the holder releases"
        );
        store.release("jira:1", "d", 1).unwrap();
        assert_eq!(
            store.claim("jira:1", "d", 3, 120, 180).unwrap(),
            Claim::Claimed
        );
        assert_eq!(
            store.claim("jira:1", "d", 4, 181, 240).unwrap(),
            Claim::Claimed,
            "an ended lease is taken over"
        );
        store.commit(&[handled("d")]).unwrap();
        assert_eq!(
            store.claim("jira:1", "d", 5, 200, 260).unwrap(),
            Claim::Handled
        );
        let again = store.commit(&[handled("d")]).unwrap_err();
        assert!(again.0.contains("handled meanwhile"), "{again}");
    }

    fn handled(id: &str) -> Effect {
        Effect::Handled("jira:1".into(), id.into())
    }
}
