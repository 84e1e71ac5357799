//! The server's state in PostgreSQL, shared by several servers: the platform (installations,
//! links, groups, users), the delivery log (handled ids, claims, per-field watermarks), the
//! queue and the outbox, with the same tables and the same semantics as the SQLite file
//! (`sqlite.rs`, `queue.rs`, `outbox.rs`). What differs is what sharing needs:
//!
//! - claims of due jobs and pushes take their rows `FOR UPDATE SKIP LOCKED`, so that servers
//!   claiming at once never get the same row and never wait on each other;
//! - nothing is taken back at start ([`Store::recover`]): a running job or push may belong to a
//!   live server, and its lease hands it over if that server died;
//! - [`Platform::commit`] cannot use the synchronous [`effects::apply`], so it follows the same
//!   rule with compare-and-set statements, taking its locks in one fixed order (each issue's
//!   advisory lock, under which it writes the issue's watermarks and links, then groups, then
//!   the delivery log, each sorted) so that concurrent commits never deadlock.
//!
//! The schema is `migrations/postgres` (refinery), applied by [`PgStore::connect`] under an
//! advisory lock. Every failure is a [`BackendError`] naming what was being done.

use std::collections::BTreeSet;
use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime,
};
use serde_json::Value;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{NoTls, Row};

use super::effects::{self, Effect, IssueField};
use super::store::{Enqueued, Finished, NewJob, Next, OauthLease, OutboxEntry, QueuedJob, Store};
use super::{BackendError, BackendResult, BoxFuture, Claim, Field, Group, GroupStatus, Platform};
use crate::installation::{InstallationSpec, OauthTokens};
use crate::limits::Limits;
use crate::wit::jira_sync::plugin::types::Installation;

mod oauth_upkeep;

mod embedded {
    // The path is relative to the crate root; the SQL is compiled into the binary, so a server
    // migrates its database without the files on disk.
    refinery::embed_migrations!("migrations/postgres");
}

/// How long a call waits for a free connection of the pool before it fails: a bounded pool
/// under a burst must fail a call (Jira retries the webhook) rather than hang it.
const WAIT_FOR_CONNECTION: Duration = Duration::from_secs(30);
/// How long opening one connection may take (an unreachable database fails fast).
const OPEN_CONNECTION: Duration = Duration::from_secs(10);
/// How long checking a pooled connection before reuse may take.
const RECYCLE_CONNECTION: Duration = Duration::from_secs(5);
/// Times a batch of queue writes is tried when PostgreSQL aborts it to break a deadlock (which
/// the ordered delivery locks of `write_queue_once` should prevent; this is the safety net).
const QUEUE_WRITE_TRIES: usize = 3;

/// The platform, the delivery log, the queue and the outbox in one PostgreSQL database that
/// several servers may share.
pub struct PgStore {
    pool: Pool,
}

/// A failed statement: the backend error, and whether trying the transaction again may succeed
/// (PostgreSQL aborted it to break a deadlock or a serialization conflict; nothing was applied).
struct Failed {
    error: BackendError,
    retry: bool,
}

impl From<Failed> for BackendError {
    fn from(failed: Failed) -> Self {
        failed.error
    }
}

/// A failed PostgreSQL call as the error a backend method ends with, naming what was being
/// done.
fn failed(what: &'static str) -> impl Fn(tokio_postgres::Error) -> Failed {
    move |e| {
        let retry = e.code().is_some_and(|code| {
            *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
        });
        Failed {
            error: BackendError(format!("postgres: {what}: {}", describe(&e))),
            retry,
        }
    }
}

/// The pool's failure as a backend error naming what was being done.
fn broke<E: Error + 'static>(what: &'static str) -> impl Fn(E) -> BackendError {
    move |e| BackendError(format!("postgres: {what}: {}", describe(&e)))
}

/// `error` with its causes: tokio-postgres shows only "db error" for the server's message,
/// which is its cause.
fn describe(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string().replace('\n', "; "));
        cause = next.source();
    }
    text
}

type Params<'p> = [&'p (dyn ToSql + Sync)];

/// Statements this process sent to PostgreSQL (BEGIN and COMMIT not counted): the figure
/// behind "round trips per webhook" in BENCHMARKS.md and the server's metrics.
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

fn count_statement() {
    STATEMENTS.fetch_add(1, Ordering::Relaxed);
}

/// The rows of `sql`, through the connection's statement cache: a hot statement is parsed once
/// per connection.
async fn rows<C: GenericClient>(
    client: &C,
    what: &'static str,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<Row>, Failed> {
    let statement = client.prepare_cached(sql).await.map_err(failed(what))?;
    count_statement();
    client.query(&statement, params).await.map_err(failed(what))
}

/// [`rows`] for a query of at most one row.
async fn row<C: GenericClient>(
    client: &C,
    what: &'static str,
    sql: &str,
    params: &Params<'_>,
) -> Result<Option<Row>, Failed> {
    let statement = client.prepare_cached(sql).await.map_err(failed(what))?;
    count_statement();
    client
        .query_opt(&statement, params)
        .await
        .map_err(failed(what))
}

/// [`rows`] for a statement: how many rows it wrote.
async fn exec<C: GenericClient>(
    client: &C,
    what: &'static str,
    sql: &str,
    params: &Params<'_>,
) -> Result<u64, Failed> {
    let statement = client.prepare_cached(sql).await.map_err(failed(what))?;
    count_statement();
    client
        .execute(&statement, params)
        .await
        .map_err(failed(what))
}

/// Column `index` of `row`, as an error rather than a panic when its type is not `T`.
fn col<'r, T: FromSql<'r>>(row: &'r Row, index: usize, what: &'static str) -> Result<T, Failed> {
    row.try_get(index).map_err(failed(what))
}

/// A stored count or time (never negative when this store wrote it) as the traits' unsigned.
fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A stored attempt count as the traits' `u32`.
fn attempts(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
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

const JOB_COLUMNS: &str =
    "id, client_key, delivery_id, body, state, attempts, accepted_at, error, lease_until";

fn job(row: &Row) -> Result<QueuedJob, Failed> {
    const WHAT: &str = "read job";
    Ok(QueuedJob {
        id: col(row, 0, WHAT)?,
        client_key: col(row, 1, WHAT)?,
        delivery_id: col(row, 2, WHAT)?,
        body: col(row, 3, WHAT)?,
        state: col(row, 4, WHAT)?,
        attempts: attempts(col(row, 5, WHAT)?),
        accepted_at: unsigned(col(row, 6, WHAT)?),
        error: col(row, 7, WHAT)?,
        lease_until: unsigned(col(row, 8, WHAT)?),
    })
}

const OUTBOX_COLUMNS: &str =
    "id, group_id, client_key, issue_key, push, state, attempts, next_at, outcome";

fn entry(row: &Row) -> Result<OutboxEntry, Failed> {
    const WHAT: &str = "read push";
    let push: String = col(row, 4, WHAT)?;
    let outcome: Option<String> = col(row, 8, WHAT)?;
    Ok(OutboxEntry {
        id: col(row, 0, WHAT)?,
        group: col::<i64>(row, 1, WHAT)? as u64,
        client_key: col(row, 2, WHAT)?,
        issue_key: col(row, 3, WHAT)?,
        // As SQLite's store: this store wrote the JSON, and a value it cannot read back is
        // shown as null rather than hiding the entry.
        push: serde_json::from_str(&push).unwrap_or(Value::Null),
        state: col(row, 5, WHAT)?,
        attempts: attempts(col(row, 6, WHAT)?),
        next_at: unsigned(col(row, 7, WHAT)?),
        outcome: outcome.and_then(|o| serde_json::from_str(&o).ok()),
    })
}

impl PgStore {
    /// Connects to the database at `url` (a `postgresql://` URL or `key=value` settings, as
    /// `tokio_postgres::Config` parses them) with a pool of at most `pool_size` connections,
    /// and brings its schema up to date. Several servers may call this at once on one
    /// database: the migrations run under an advisory lock, one server after the other.
    pub async fn connect(url: &str, pool_size: usize) -> anyhow::Result<PgStore> {
        anyhow::ensure!(
            pool_size > 0,
            "the PostgreSQL pool needs at least one connection"
        );
        let config: tokio_postgres::Config = url
            .parse()
            .context("read the PostgreSQL connection settings")?;
        let place = place(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A connection that broke is found by the next statement on it; checking each
                // one with a query before every use would cost a round trip per call.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT_FOR_CONNECTION))
            .create_timeout(Some(OPEN_CONNECTION))
            .recycle_timeout(Some(RECYCLE_CONNECTION))
            .build()
            .context("build the PostgreSQL pool")?;
        let client = pool
            .get()
            .await
            .with_context(|| format!("connect to PostgreSQL at {place}"))?;
        migrate(client).await?;
        Ok(PgStore { pool })
    }

    async fn client(&self, what: &'static str) -> BackendResult<Object> {
        self.pool.get().await.map_err(broke(what))
    }
}

/// Where `config` points (hosts and ports, no credentials), for the operator reading an error.
fn place(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = config.get_ports().get(i).or(config.get_ports().first());
            let host = match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            port.map_or(host.clone(), |port| format!("{host}:{port}"))
        })
        .collect();
    format!(
        "{} (database {})",
        hosts.join(", "),
        config.get_dbname().unwrap_or("(the user's)")
    )
}

/// Applies the embedded migrations on `client`'s connection. Refinery takes no lock of its own:
/// two servers starting at once would both create its history table or both apply a migration.
/// A session-level advisory lock, keyed by the schema the connection writes to, makes them take
/// turns; the second then finds everything applied. The connection leaves the pool and is
/// closed afterwards, so that the lock never outlives this function (even if unlocking failed).
async fn migrate(client: Object) -> anyhow::Result<()> {
    let mut client = Object::take(client);
    const LOCK: &str = "SELECT pg_advisory_lock(hashtext('jira-sync migrations'),
                                                hashtext(coalesce(current_schema(), '')))";
    const UNLOCK: &str = "SELECT pg_advisory_unlock(hashtext('jira-sync migrations'),
                                                    hashtext(coalesce(current_schema(), '')))";
    client
        .batch_execute(LOCK)
        .await
        .context("lock the schema for migrations")?;
    let applied = embedded::migrations::runner()
        .run_async(&mut *client)
        .await
        .context("migrate the PostgreSQL schema");
    let unlocked = client
        .batch_execute(UNLOCK)
        .await
        .context("unlock the schema after migrations");
    applied?;
    unlocked?;
    Ok(())
}

// The platform's reads and writes.
impl PgStore {
    async fn spec_(&self, client_key: &str) -> BackendResult<Option<InstallationSpec>> {
        let client = self.client("read installation").await?;
        let found = row(
            &client,
            "read installation",
            "SELECT spec FROM installations WHERE client_key = $1",
            &[&client_key],
        )
        .await?;
        let Some(found) = found else {
            return Ok(None);
        };
        let spec: String = col(&found, 0, "read installation")?;
        let spec: InstallationSpec = serde_json::from_str(&spec).map_err(|e| {
            BackendError(format!(
                "postgres: installation {client_key} is unreadable: {e}"
            ))
        })?;
        Ok(Some(spec))
    }

    async fn linked_groups_(&self, client_key: &str, issue_key: &str) -> BackendResult<Vec<u64>> {
        const WHAT: &str = "read links";
        let client = self.client(WHAT).await?;
        rows(
            &client,
            WHAT,
            "SELECT group_id FROM links WHERE client_key = $1 AND issue_key = $2
             ORDER BY group_id",
            &[&client_key, &issue_key],
        )
        .await?
        .iter()
        .map(|r| Ok(col::<i64>(r, 0, WHAT)? as u64))
        .collect()
    }

    async fn user_by_email_(&self, email: &str) -> BackendResult<Option<u64>> {
        const WHAT: &str = "find user";
        let client = self.client(WHAT).await?;
        // `lower(email)` on both sides: the index `users_email` answers it.
        let found = row(
            &client,
            WHAT,
            "SELECT id FROM users WHERE lower(email) = lower($1) ORDER BY id LIMIT 1",
            &[&email],
        )
        .await?;
        found
            .map(|r| Ok(col::<i64>(&r, 0, WHAT)? as u64))
            .transpose()
    }

    async fn group_(&self, group: u64) -> BackendResult<Option<Group>> {
        const WHAT: &str = "read group";
        let client = self.client(WHAT).await?;
        let found = row(
            &client,
            WHAT,
            "SELECT resolved, assignee FROM groups WHERE id = $1",
            &[&(group as i64)],
        )
        .await?;
        found
            .map(|r| Ok(group_of(col(&r, 0, WHAT)?, col(&r, 1, WHAT)?)))
            .transpose()
    }

    async fn links_of_group_(&self, group: u64) -> BackendResult<Vec<(String, String)>> {
        const WHAT: &str = "read links of group";
        let client = self.client(WHAT).await?;
        links_of(&client, group).await.map_err(Into::into)
    }

    async fn user_emails_(&self, user: u64) -> BackendResult<Vec<String>> {
        const WHAT: &str = "read user emails";
        let client = self.client(WHAT).await?;
        // Case-insensitive order first, as SQLite's NOCASE column sorts.
        rows(
            &client,
            WHAT,
            "SELECT email FROM users WHERE id = $1 ORDER BY lower(email), email",
            &[&(user as i64)],
        )
        .await?
        .iter()
        .map(|r| Ok(col(r, 0, WHAT)?))
        .collect()
    }

    async fn handled_(&self, client_key: &str, id: &str) -> BackendResult<bool> {
        let client = self.client("read delivery").await?;
        Ok(handled(&client, client_key, id).await?)
    }

    async fn watermark_(
        &self,
        client_key: &str,
        issue_key: &str,
        field: Field,
    ) -> BackendResult<Option<i64>> {
        const WHAT: &str = "read watermark";
        let client = self.client(WHAT).await?;
        let found = row(
            &client,
            WHAT,
            "SELECT updated_ms FROM watermarks
             WHERE client_key = $1 AND issue_key = $2 AND field = $3",
            &[&client_key, &issue_key, &field.as_str()],
        )
        .await?;
        found.map(|r| Ok(col(&r, 0, WHAT)?)).transpose()
    }

    async fn claim_(
        &self,
        client_key: &str,
        id: &str,
        owner: u64,
        now: u64,
        lease_until: u64,
    ) -> BackendResult<Claim> {
        let mut client = self.client("claim delivery").await?;
        let tx = client.transaction().await.map_err(failed("begin claim"))?;
        // The claim first, the look for the handled mark second, each a statement of its own:
        // under READ COMMITTED a statement sees what was committed before it began, and the
        // insert waits for any transaction that is deleting this claim (a commit marking the
        // delivery handled), so the look after it sees that mark. Looking first could miss a
        // mark committed between the look and the claim, and claim a handled delivery.
        let taken = exec(
            &tx,
            "claim delivery",
            "INSERT INTO claims (client_key, id, owner, lease_until) VALUES ($1, $2, $3, $4)
             ON CONFLICT (client_key, id) DO UPDATE
             SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until
             WHERE claims.owner = EXCLUDED.owner OR claims.lease_until <= $5",
            &[
                &client_key,
                &id,
                &(owner as i64),
                &(lease_until as i64),
                &(now as i64),
            ],
        )
        .await?
            == 1;
        if handled(&tx, client_key, id).await? {
            // Nothing to hold: the claim just written goes with the rollback. A rollback that
            // fails leaves nothing either (the server aborts a transaction whose connection
            // broke), so the answer stands.
            let _ = tx.rollback().await;
            return Ok(Claim::Handled);
        }
        tx.commit().await.map_err(failed("commit claim"))?;
        Ok(if taken {
            Claim::Claimed
        } else {
            Claim::InProgress
        })
    }

    async fn release_(&self, client_key: &str, id: &str, owner: u64) -> BackendResult<()> {
        const WHAT: &str = "release claim";
        let client = self.client(WHAT).await?;
        exec(
            &client,
            WHAT,
            "DELETE FROM claims WHERE client_key = $1 AND id = $2 AND owner = $3",
            &[&client_key, &id, &(owner as i64)],
        )
        .await?;
        Ok(())
    }

    async fn commit_(&self, effects: &[Effect]) -> BackendResult<Vec<IssueField>> {
        // The rule of `effects::apply`, with the locks taken in one order by every commit, so
        // that two commits never wait on each other in a cycle: the issues' advisory locks by
        // key, then groups by id, then the delivery log by key. A commit writes an issue's
        // watermarks and links only under that issue's lock, so it never waits for those rows;
        // nonexistent rows (a first watermark, a renamed issue's new key) are covered too,
        // which row locks cannot do. The sorts are stable: two writes to one row keep their
        // order, so the later one still wins.
        let mut moves: Vec<&Effect> = Vec::new();
        let mut watermarks: Vec<(i64, &str, &str, Field, i64)> = Vec::new();
        let mut marks: Vec<(&str, &str)> = Vec::new();
        for effect in effects {
            match effect {
                Effect::Rename {
                    issue: (_, from),
                    to,
                } if from == to => {}
                Effect::Rename { .. } | Effect::Unlink { .. } => moves.push(effect),
                Effect::Watermark {
                    issue: (ck, issue),
                    fields,
                    updated_ms,
                } => watermarks.extend(fields.iter().map(|field| {
                    let lock = issue_lock(ck, issue);
                    (lock, ck.as_str(), issue.as_str(), *field, *updated_ms)
                })),
                Effect::Handled(ck, id) => marks.push((ck.as_str(), id.as_str())),
                _ => {}
            }
        }
        watermarks.sort_by(|a, b| (a.0, a.1, a.2, a.3).cmp(&(b.0, b.1, b.2, b.3)));
        marks.sort();

        let mut client = self.client("commit").await?;
        let tx = client
            .transaction()
            .await
            .map_err(failed("begin transaction"))?;
        if !moves.is_empty() {
            // A rename or unlink writes issues out of key order (in the order staged, and
            // before the watermarks), so it takes every issue lock of the commit first, in
            // order; the watermarks' statements below then hold them already.
            let mut locks: Vec<i64> = watermarks.iter().map(|w| w.0).collect();
            for effect in &moves {
                match effect {
                    Effect::Rename {
                        issue: (ck, from),
                        to,
                    } => locks.extend([issue_lock(ck, from), issue_lock(ck, to)]),
                    Effect::Unlink { issue: (ck, issue) } => locks.push(issue_lock(ck, issue)),
                    _ => {}
                }
            }
            exec(
                &tx,
                "lock issues",
                "SELECT pg_advisory_xact_lock(k) FROM (
                    SELECT DISTINCT k FROM unnest($1::BIGINT[]) AS k ORDER BY k) AS keys",
                &[&locks],
            )
            .await?;
            for effect in moves {
                match effect {
                    Effect::Rename {
                        issue: (ck, from),
                        to,
                    } => rename(&tx, ck, from, to).await?,
                    Effect::Unlink { issue: (ck, issue) } => unlink(&tx, ck, issue).await?,
                    _ => {}
                }
            }
        }
        let mut superseded = BTreeSet::new();
        for (lock, ck, issue, field, updated_ms) in watermarks {
            // Compare-and-set, forward only, under the issue's lock (taken in the statement, so
            // that it costs no round trip). The upsert works on the newest committed row even
            // when this statement's snapshot predates it (it waited for the lock), and holds
            // the row until this commit ends. No row back: a newer event was applied first.
            let moved = row(
                &tx,
                "record watermark",
                "WITH locked AS (SELECT pg_advisory_xact_lock($5::BIGINT))
                 INSERT INTO watermarks (client_key, issue_key, field, updated_ms)
                 SELECT $1::TEXT, $2::TEXT, $3::TEXT, $4::BIGINT FROM locked
                 ON CONFLICT (client_key, issue_key, field) DO UPDATE
                 SET updated_ms = EXCLUDED.updated_ms
                 WHERE watermarks.updated_ms <= EXCLUDED.updated_ms
                 RETURNING 1",
                &[&ck, &issue, &field.as_str(), &updated_ms, &lock],
            )
            .await?;
            if moved.is_none() {
                superseded.insert((ck.to_owned(), issue.to_owned(), field));
            }
        }
        let mut changes: Vec<&Effect> = effects
            .iter()
            .filter(|effect| {
                matches!(effect, Effect::Assignee { .. } | Effect::Status { .. })
                    && !effects::dropped(effect, &superseded)
            })
            .collect();
        changes.sort_by_key(|effect| match effect {
            Effect::Assignee { group, .. } | Effect::Status { group, .. } => *group,
            _ => 0,
        });
        for change in changes {
            match change {
                Effect::Assignee { group, user, .. } => set_assignee(&tx, *group, *user).await?,
                Effect::Status { group, status, .. } => set_status(&tx, *group, *status).await?,
                _ => {}
            }
        }
        for (ck, id) in marks {
            // Inserted nothing: another call marked the delivery first (this one's lease ran
            // out and it was run again), and nothing of this commit may be applied.
            let added = exec(
                &tx,
                "record delivery",
                "INSERT INTO deliveries (client_key, id, handled_at)
                 VALUES ($1, $2, CAST(EXTRACT(EPOCH FROM now()) AS BIGINT))
                 ON CONFLICT (client_key, id) DO NOTHING",
                &[&ck, &id],
            )
            .await?;
            if added != 1 {
                // As in `claim_`, a failed rollback still applied nothing.
                let _ = tx.rollback().await;
                return Err(effects::handled_elsewhere(ck, id));
            }
            exec(
                &tx,
                "end claim",
                "DELETE FROM claims WHERE client_key = $1 AND id = $2",
                &[&ck, &id],
            )
            .await?;
        }
        tx.commit().await.map_err(failed("commit"))?;
        Ok(superseded.into_iter().collect())
    }
}

/// The key of an issue's transaction-level advisory lock, which a commit holds while it writes
/// the issue's watermarks or links. FNV-1a: every server sharing the database must compute the
/// same key whatever build it runs, which the standard library's hasher does not promise. The
/// one-key form of the lock: the queue's delivery locks use the two-key form, a space of their
/// own. Two issues with one key only wait for each other.
fn issue_lock(client_key: &str, issue_key: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    // 0xff is never part of UTF-8: ("a", "bc") and ("ab", "c") differ.
    for byte in client_key.bytes().chain([0xff]).chain(issue_key.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash as i64
}

/// Moves the links and watermarks of `from` to `to` (see [`effects::Transaction::rename`]);
/// the caller holds both issues' locks.
async fn rename<C: GenericClient>(
    client: &C,
    client_key: &str,
    from: &str,
    to: &str,
) -> Result<(), Failed> {
    const WHAT: &str = "rename issue";
    // The links in group order, as `link_` inserts them: an admin linking groups to `to` at
    // the same time waits for the same rows in the same order.
    exec(
        client,
        WHAT,
        "WITH moved AS (
            DELETE FROM links WHERE client_key = $1 AND issue_key = $2 RETURNING group_id)
         INSERT INTO links (client_key, issue_key, group_id)
         SELECT $1, $3::TEXT, group_id FROM moved ORDER BY group_id
         ON CONFLICT DO NOTHING",
        &[&client_key, &from, &to],
    )
    .await?;
    exec(
        client,
        WHAT,
        "WITH moved AS (
            DELETE FROM watermarks WHERE client_key = $1 AND issue_key = $2
            RETURNING field, updated_ms)
         INSERT INTO watermarks (client_key, issue_key, field, updated_ms)
         SELECT $1, $3::TEXT, field, updated_ms FROM moved
         ON CONFLICT (client_key, issue_key, field)
         DO UPDATE SET updated_ms = GREATEST(watermarks.updated_ms, EXCLUDED.updated_ms)",
        &[&client_key, &from, &to],
    )
    .await
    .map(drop)
}

/// Deletes the links and watermarks of an issue; the caller holds its lock.
async fn unlink<C: GenericClient>(
    client: &C,
    client_key: &str,
    issue_key: &str,
) -> Result<(), Failed> {
    for sql in [
        "DELETE FROM links WHERE client_key = $1 AND issue_key = $2",
        "DELETE FROM watermarks WHERE client_key = $1 AND issue_key = $2",
    ] {
        exec(client, "unlink issue", sql, &[&client_key, &issue_key]).await?;
    }
    Ok(())
}

async fn handled<C: GenericClient>(client: &C, client_key: &str, id: &str) -> Result<bool, Failed> {
    let found = row(
        client,
        "read delivery",
        "SELECT 1 FROM deliveries WHERE client_key = $1 AND id = $2",
        &[&client_key, &id],
    )
    .await?;
    Ok(found.is_some())
}

async fn links_of<C: GenericClient>(
    client: &C,
    group: u64,
) -> Result<Vec<(String, String)>, Failed> {
    const WHAT: &str = "read links of group";
    rows(
        client,
        WHAT,
        "SELECT client_key, issue_key FROM links WHERE group_id = $1 ORDER BY 1, 2",
        &[&(group as i64)],
    )
    .await?
    .iter()
    .map(|r| Ok((col(r, 0, WHAT)?, col(r, 1, WHAT)?)))
    .collect()
}

async fn set_assignee<C: GenericClient>(
    client: &C,
    group: u64,
    user: Option<u64>,
) -> Result<(), Failed> {
    exec(
        client,
        "set assignee",
        "UPDATE groups SET assignee = $2 WHERE id = $1",
        &[&(group as i64), &user.map(|u| u as i64)],
    )
    .await
    .map(drop)
}

async fn set_status<C: GenericClient>(
    client: &C,
    group: u64,
    status: GroupStatus,
) -> Result<(), Failed> {
    exec(
        client,
        "set status",
        "UPDATE groups SET resolved = $2 WHERE id = $1",
        &[&(group as i64), &(status == GroupStatus::Resolved)],
    )
    .await
    .map(drop)
}

// The admin writes and retention.
impl PgStore {
    async fn add_installation_(&self, spec: &InstallationSpec) -> BackendResult<()> {
        const WHAT: &str = "add installation";
        let json = serde_json::to_string(spec).map_err(|e| {
            BackendError(format!("postgres: installation {}: {e}", spec.client_key))
        })?;
        let client = self.client(WHAT).await?;
        // New credentials (a re-authorised OAuth installation) are kept up at once, whatever
        // the old ones' failures held back: one statement frees the upkeep with the write.
        exec(
            &client,
            WHAT,
            "WITH freed AS (DELETE FROM oauth_upkeep WHERE client_key = $1)
             INSERT INTO installations (client_key, spec) VALUES ($1, $2)
             ON CONFLICT (client_key) DO UPDATE SET spec = EXCLUDED.spec",
            &[&spec.client_key, &json],
        )
        .await?;
        Ok(())
    }

    async fn link_(&self, client_key: &str, issue_key: &str, groups: &[u64]) -> BackendResult<()> {
        // Sorted, so that two links of overlapping groups insert them in the same order.
        let mut ids: Vec<i64> = groups.iter().map(|g| *g as i64).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut client = self.client("link groups").await?;
        let tx = client.transaction().await.map_err(failed("begin link"))?;
        exec(
            &tx,
            "link groups",
            "INSERT INTO groups (id) SELECT unnest($1::BIGINT[]) ON CONFLICT (id) DO NOTHING",
            &[&ids],
        )
        .await?;
        exec(
            &tx,
            "link groups",
            "INSERT INTO links (client_key, issue_key, group_id)
             SELECT $1, $2, unnest($3::BIGINT[]) ON CONFLICT DO NOTHING",
            &[&client_key, &issue_key, &ids],
        )
        .await?;
        tx.commit().await.map_err(failed("commit link"))?;
        Ok(())
    }

    async fn add_user_(&self, id: u64, email: &str) -> BackendResult<()> {
        const WHAT: &str = "add user";
        let client = self.client(WHAT).await?;
        // The unique index on (id, lower(email)) makes a known email in another case a no-op.
        exec(
            &client,
            WHAT,
            "INSERT INTO users (id, email) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&(id as i64), &email],
        )
        .await?;
        Ok(())
    }

    async fn prune_(&self, handled_before: u64, now: u64) -> BackendResult<(usize, usize)> {
        // Three statements, each its own transaction as in SQLite: retention holds no lock
        // across them, and each delete is complete on its own.
        let client = self.client("prune").await?;
        let deliveries = exec(
            &client,
            "prune deliveries",
            "DELETE FROM deliveries WHERE handled_at < $1",
            &[&(handled_before as i64)],
        )
        .await?;
        let claims = exec(
            &client,
            "prune claims",
            "DELETE FROM claims WHERE lease_until <= $1",
            &[&(now as i64)],
        )
        .await?;
        exec(
            &client,
            "prune failed jobs",
            "DELETE FROM jobs WHERE state = 'failed' AND accepted_at < $1",
            &[&(handled_before as i64)],
        )
        .await?;
        Ok((deliveries as usize, claims as usize))
    }
}

// The queue.
impl PgStore {
    async fn write_queue_(
        &self,
        jobs: &[NewJob],
        finished: &[Finished],
        now: u64,
    ) -> BackendResult<Vec<Enqueued>> {
        let mut client = self.client("write the queue").await?;
        let mut tries = 0;
        loop {
            tries += 1;
            match write_queue_once(&mut client, jobs, finished, now).await {
                Err(failed) if failed.retry && tries < QUEUE_WRITE_TRIES => continue,
                result => return result.map_err(Into::into),
            }
        }
    }

    async fn claim_due_jobs_(
        &self,
        now: u64,
        lease_until: u64,
        limit: usize,
    ) -> BackendResult<Vec<QueuedJob>> {
        const WHAT: &str = "claim jobs";
        let client = self.client(WHAT).await?;
        // SQLite's round robin (each installation's first due job, then each one's second, ...)
        // over the due jobs no other server holds right now. Row locks cannot sit beside a
        // window function, so each installation's first `limit` due jobs are locked in a lateral
        // subquery (no installation can have more than `limit` among the chosen), ranked
        // outside it, and the chosen ones updated; the locks on the others end with the
        // statement. SKIP LOCKED: a job another server is claiming is left to it, not waited
        // for; a job it claimed meanwhile is re-checked, and is no longer due.
        let claimed = rows(
            &client,
            WHAT,
            "WITH picked AS (
                SELECT id, turn FROM (
                    SELECT j.id, ROW_NUMBER() OVER (PARTITION BY c.client_key ORDER BY j.id) AS turn
                    FROM (SELECT DISTINCT client_key FROM jobs
                          WHERE (state = 'queued' AND next_at <= $1)
                             OR (state = 'running' AND lease_until <= $1)) AS c
                    CROSS JOIN LATERAL (
                        SELECT id FROM jobs
                        WHERE client_key = c.client_key
                          AND ((state = 'queued' AND next_at <= $1)
                               OR (state = 'running' AND lease_until <= $1))
                        ORDER BY id LIMIT $2
                        FOR UPDATE SKIP LOCKED) AS j
                ) AS ranked
                ORDER BY turn, id LIMIT $2)
             UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $3
             FROM picked WHERE jobs.id = picked.id
             RETURNING jobs.id, jobs.client_key, jobs.delivery_id, jobs.body, jobs.state,
                       jobs.attempts, jobs.accepted_at, jobs.error, jobs.lease_until, picked.turn",
            &[&(now as i64), &(limit as i64), &(lease_until as i64)],
        )
        .await?;
        let mut jobs = claimed
            .iter()
            .map(|r| Ok((col::<i64>(r, 9, WHAT)?, job(r)?)))
            .collect::<Result<Vec<_>, Failed>>()?;
        // RETURNING has no order: hand them over in their turns, as SQLite does.
        jobs.sort_by_key(|(turn, job)| (*turn, job.id));
        Ok(jobs.into_iter().map(|(_, job)| job).collect())
    }

    async fn queue_backlog_(&self, now: u64) -> BackendResult<(u64, u64)> {
        self.backlog(
            "measure the queue",
            "SELECT COUNT(*), COALESCE(MAX($1 - accepted_at), 0) FROM jobs
             WHERE state IN ('queued', 'running')",
            now,
        )
        .await
    }

    /// A count and an age in seconds (never negative), as `sql` measures them at `now`.
    async fn backlog(&self, what: &'static str, sql: &str, now: u64) -> BackendResult<(u64, u64)> {
        let client = self.client(what).await?;
        let Some(found) = row(&client, what, sql, &[&(now as i64)]).await? else {
            return Ok((0, 0));
        };
        Ok((
            unsigned(col(&found, 0, what)?),
            unsigned(col(&found, 1, what)?),
        ))
    }

    async fn renew_job_(&self, id: i64, held: u64, until: u64) -> BackendResult<bool> {
        const WHAT: &str = "renew job lease";
        let client = self.client(WHAT).await?;
        // The lease held is the fence: a runner whose job was taken over (its lease ran out
        // and another claim set a new one) renews nothing.
        let changed = exec(
            &client,
            WHAT,
            "UPDATE jobs SET lease_until = $3
             WHERE id = $1 AND state = 'running' AND lease_until = $2",
            &[&id, &(held as i64), &(until as i64)],
        )
        .await?;
        Ok(changed == 1)
    }

    async fn jobs_due_(&self, now: u64) -> BackendResult<u64> {
        const WHAT: &str = "count due jobs";
        let client = self.client(WHAT).await?;
        let found = row(
            &client,
            WHAT,
            "SELECT COUNT(*) FROM jobs
             WHERE state = 'running' OR (state = 'queued' AND next_at <= $1)",
            &[&(now as i64)],
        )
        .await?;
        found
            .map(|r| Ok(unsigned(col(&r, 0, WHAT)?)))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    async fn failed_jobs_(&self, limit: usize) -> BackendResult<Vec<QueuedJob>> {
        const WHAT: &str = "read failed jobs";
        let client = self.client(WHAT).await?;
        let sql =
            format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'failed' ORDER BY id LIMIT $1");
        rows(&client, WHAT, &sql, &[&(limit as i64)])
            .await?
            .iter()
            .map(|r| Ok(job(r)?))
            .collect()
    }
}

/// One try of [`Store::write_queue`], in one transaction.
async fn write_queue_once(
    client: &mut Object,
    jobs: &[NewJob],
    finished: &[Finished],
    now: u64,
) -> Result<Vec<Enqueued>, Failed> {
    let tx = client
        .transaction()
        .await
        .map_err(failed("begin queue writes"))?;
    // Two servers recording copies of the same deliveries in opposite orders would each wait
    // for the other's uncommitted copy (a deadlock PostgreSQL breaks by failing one batch).
    // Locking the batch's deliveries first, in one order for everyone, makes the later batch
    // wait before it records anything, while the jobs keep the batch's order (and so their ids
    // its arrival order, which the round robin follows).
    let (client_keys, ids): (Vec<&str>, Vec<&str>) = jobs
        .iter()
        .filter_map(|new| Some((new.client_key.as_str(), new.delivery_id.as_deref()?)))
        .unzip();
    if !ids.is_empty() {
        exec(
            &tx,
            "lock deliveries",
            "SELECT pg_advisory_xact_lock(k1, k2) FROM (
                SELECT DISTINCT hashtext(ck) AS k1, hashtext(id) AS k2
                FROM unnest($1::TEXT[], $2::TEXT[]) AS d(ck, id)
                ORDER BY 1, 2) AS keys",
            &[&client_keys, &ids],
        )
        .await?;
    }
    let mut outcomes = Vec::with_capacity(jobs.len());
    for new in jobs {
        let (state, attempts, lease) = match new.run_until {
            Some(lease) => ("running", 1u32, lease),
            None => ("queued", 0, 0),
        };
        // A copy of a delivery already recorded (by this batch, or by another server that
        // commits first: the insert waits for it) inserts nothing.
        let added = row(
            &tx,
            "enqueue job",
            "INSERT INTO jobs (client_key, delivery_id, body, state, attempts, accepted_at,
             next_at, lease_until) VALUES ($1, $2, $3, $4, $5, $6, $6, $7)
             ON CONFLICT (client_key, delivery_id) DO NOTHING
             RETURNING id",
            &[
                &new.client_key,
                &new.delivery_id,
                &new.body,
                &state,
                &(attempts as i32),
                &(now as i64),
                &(lease as i64),
            ],
        )
        .await?;
        let outcome = match (added, new.run_until) {
            (None, _) => Enqueued::Duplicate,
            (Some(_), None) => Enqueued::Wait,
            (Some(added), Some(_)) => Enqueued::Run(QueuedJob {
                id: col(&added, 0, "enqueue job")?,
                client_key: new.client_key.clone(),
                delivery_id: new.delivery_id.clone(),
                body: new.body.clone(),
                state: state.to_owned(),
                attempts,
                accepted_at: now,
                error: None,
                lease_until: lease,
            }),
        };
        outcomes.push(outcome);
    }
    for attempt in finished {
        const WHAT: &str = "record job outcome";
        // Only while the job still runs under the attempt's lease: another server that took it
        // over owns it now.
        let (id, held, error) = (&attempt.id, &(attempt.lease_until as i64), &attempt.error);
        match attempt.next {
            Next::Done => {
                exec(
                    &tx,
                    WHAT,
                    "DELETE FROM jobs WHERE id = $1 AND lease_until = $2",
                    &[id, held],
                )
                .await?
            }
            Next::Failed => {
                exec(
                    &tx,
                    WHAT,
                    "UPDATE jobs SET state = 'failed', lease_until = 0, error = $3
                     WHERE id = $1 AND lease_until = $2",
                    &[id, held, error],
                )
                .await?
            }
            Next::RetryAt(at) => {
                exec(
                    &tx,
                    WHAT,
                    "UPDATE jobs SET state = 'queued', next_at = $3, lease_until = 0, error = $4
                     WHERE id = $1 AND lease_until = $2",
                    &[id, held, &(at as i64), error],
                )
                .await?
            }
        };
    }
    tx.commit().await.map_err(failed("commit queue writes"))?;
    Ok(outcomes)
}

// The outbox.
impl PgStore {
    async fn change_group_(
        &self,
        group: u64,
        push: &Value,
        now: u64,
        lease_until: u64,
    ) -> BackendResult<Vec<OutboxEntry>> {
        enum Change {
            Status(GroupStatus),
            Assignee(Option<u64>),
        }
        let change = match (
            push.get("resolved").and_then(Value::as_bool),
            push.get("assign"),
        ) {
            (Some(true), _) => Change::Status(GroupStatus::Resolved),
            (Some(false), _) => Change::Status(GroupStatus::Unresolved),
            (None, Some(user)) => Change::Assignee(user.as_u64()),
            _ => {
                return Err(BackendError(format!(
                    "postgres: change group: not a group change: {push}"
                )));
            }
        };
        let push_text = push.to_string();
        let mut client = self.client("change group").await?;
        let tx = client
            .transaction()
            .await
            .map_err(failed("begin group change"))?;
        match change {
            Change::Status(status) => set_status(&tx, group, status).await?,
            Change::Assignee(user) => set_assignee(&tx, group, user).await?,
        }
        let mut entries = Vec::new();
        for (client_key, issue_key) in links_of(&tx, group).await? {
            let sql = format!(
                "INSERT INTO outbox (group_id, client_key, issue_key, push, state, attempts,
                 next_at, lease_until) VALUES ($1, $2, $3, $4, 'running', 1, $5, $6)
                 RETURNING {OUTBOX_COLUMNS}"
            );
            let added = rows(
                &tx,
                "record push",
                &sql,
                &[
                    &(group as i64),
                    &client_key,
                    &issue_key,
                    &push_text,
                    &(now as i64),
                    &(lease_until as i64),
                ],
            )
            .await?;
            for added in &added {
                entries.push(entry(added)?);
            }
        }
        tx.commit().await.map_err(failed("commit group change"))?;
        Ok(entries)
    }

    async fn finish_push_(&self, id: i64, outcome: &Value, next: Next) -> BackendResult<()> {
        const WHAT: &str = "record push outcome";
        let (state, next_at) = match next {
            Next::Done => ("done", 0),
            Next::Failed => ("failed", 0),
            Next::RetryAt(at) => ("pending", at),
        };
        let client = self.client(WHAT).await?;
        exec(
            &client,
            WHAT,
            "UPDATE outbox SET state = $2, next_at = $3, lease_until = 0, outcome = $4
             WHERE id = $1",
            &[&id, &state, &(next_at as i64), &outcome.to_string()],
        )
        .await?;
        Ok(())
    }

    async fn claim_due_pushes_(
        &self,
        now: u64,
        lease_until: u64,
        limit: usize,
    ) -> BackendResult<Vec<OutboxEntry>> {
        const WHAT: &str = "claim pushes";
        let client = self.client(WHAT).await?;
        // Each installation's first due push that no other server is claiming right now (see
        // `claim_due_jobs_`), the oldest `limit` of those.
        let sql = format!(
            "WITH picked AS (
                SELECT o.id FROM (SELECT DISTINCT client_key FROM outbox
                                  WHERE (state = 'pending' AND next_at <= $1)
                                     OR (state = 'running' AND lease_until <= $1)) AS c
                CROSS JOIN LATERAL (
                    SELECT id FROM outbox
                    WHERE client_key = c.client_key
                      AND ((state = 'pending' AND next_at <= $1)
                           OR (state = 'running' AND lease_until <= $1))
                    ORDER BY id LIMIT 1
                    FOR UPDATE SKIP LOCKED) AS o
                ORDER BY o.id LIMIT $2)
             UPDATE outbox SET state = 'running', attempts = attempts + 1, lease_until = $3
             FROM picked WHERE outbox.id = picked.id
             RETURNING {}",
            OUTBOX_COLUMNS
                .split(", ")
                .map(|c| format!("outbox.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut entries = rows(
            &client,
            WHAT,
            &sql,
            &[&(now as i64), &(limit as i64), &(lease_until as i64)],
        )
        .await?
        .iter()
        .map(entry)
        .collect::<Result<Vec<_>, Failed>>()?;
        entries.sort_by_key(|e| e.id);
        Ok(entries)
    }

    async fn outbox_entry_(&self, id: i64) -> BackendResult<Option<OutboxEntry>> {
        const WHAT: &str = "read push";
        let client = self.client(WHAT).await?;
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1");
        let found = row(&client, WHAT, &sql, &[&id]).await?;
        Ok(found.map(|r| entry(&r)).transpose()?)
    }

    async fn outbox_backlog_(&self, now: u64) -> BackendResult<(u64, u64)> {
        self.backlog(
            "measure the outbox",
            "SELECT COUNT(*), COALESCE(MAX($1 - next_at), 0) FROM outbox
             WHERE state IN ('pending', 'running')",
            now,
        )
        .await
    }

    async fn pushes_of_group_(&self, group: u64) -> BackendResult<Vec<OutboxEntry>> {
        const WHAT: &str = "read pushes of group";
        let client = self.client(WHAT).await?;
        let sql =
            format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE group_id = $1 ORDER BY id DESC");
        rows(&client, WHAT, &sql, &[&(group as i64)])
            .await?
            .iter()
            .map(|r| Ok(entry(r)?))
            .collect()
    }
}

impl Platform for PgStore {
    fn installation<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<(Installation, Limits)>>> {
        Box::pin(async move {
            let spec = self.spec_(client_key).await?;
            Ok(spec.and_then(|spec| spec.for_calls()))
        })
    }

    fn outbound_authorization<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<String>>> {
        Box::pin(async move {
            let spec = self.spec_(client_key).await?;
            Ok(spec.and_then(|spec| spec.outbound_authorization()))
        })
    }

    fn linked_groups<'a>(
        &'a self,
        client_key: &'a str,
        issue_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Vec<u64>>> {
        Box::pin(self.linked_groups_(client_key, issue_key))
    }

    fn user_by_email<'a>(&'a self, email: &'a str) -> BoxFuture<'a, BackendResult<Option<u64>>> {
        Box::pin(self.user_by_email_(email))
    }

    fn group(&self, group: u64) -> BoxFuture<'_, BackendResult<Option<Group>>> {
        Box::pin(self.group_(group))
    }

    fn links_of_group(&self, group: u64) -> BoxFuture<'_, BackendResult<Vec<(String, String)>>> {
        Box::pin(self.links_of_group_(group))
    }

    fn user_emails(&self, user: u64) -> BoxFuture<'_, BackendResult<Vec<String>>> {
        Box::pin(self.user_emails_(user))
    }

    fn handled<'a>(
        &'a self,
        client_key: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, BackendResult<bool>> {
        Box::pin(self.handled_(client_key, id))
    }

    fn watermark<'a>(
        &'a self,
        client_key: &'a str,
        issue_key: &'a str,
        field: Field,
    ) -> BoxFuture<'a, BackendResult<Option<i64>>> {
        Box::pin(self.watermark_(client_key, issue_key, field))
    }

    fn claim<'a>(
        &'a self,
        client_key: &'a str,
        id: &'a str,
        owner: u64,
        now: u64,
        lease_until: u64,
    ) -> BoxFuture<'a, BackendResult<Claim>> {
        Box::pin(self.claim_(client_key, id, owner, now, lease_until))
    }

    fn release<'a>(
        &'a self,
        client_key: &'a str,
        id: &'a str,
        owner: u64,
    ) -> BoxFuture<'a, BackendResult<()>> {
        Box::pin(self.release_(client_key, id, owner))
    }

    fn commit<'a>(
        &'a self,
        effects: &'a [Effect],
    ) -> BoxFuture<'a, BackendResult<Vec<IssueField>>> {
        Box::pin(self.commit_(effects))
    }
}

impl Store for PgStore {
    fn add_installation<'a>(
        &'a self,
        spec: &'a InstallationSpec,
    ) -> BoxFuture<'a, BackendResult<()>> {
        Box::pin(self.add_installation_(spec))
    }

    fn installation_spec<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<InstallationSpec>>> {
        Box::pin(self.spec_(client_key))
    }

    fn link<'a>(
        &'a self,
        client_key: &'a str,
        issue_key: &'a str,
        groups: &'a [u64],
    ) -> BoxFuture<'a, BackendResult<()>> {
        Box::pin(self.link_(client_key, issue_key, groups))
    }

    fn add_user<'a>(&'a self, id: u64, email: &'a str) -> BoxFuture<'a, BackendResult<()>> {
        Box::pin(self.add_user_(id, email))
    }

    fn prune(&self, handled_before: u64, now: u64) -> BoxFuture<'_, BackendResult<(usize, usize)>> {
        Box::pin(self.prune_(handled_before, now))
    }

    fn statements(&self) -> Option<u64> {
        Some(STATEMENTS.load(Ordering::Relaxed))
    }

    fn shared(&self) -> bool {
        // Several servers share the database: what runs may belong to a live one.
        true
    }

    fn write_queue<'a>(
        &'a self,
        jobs: &'a [NewJob],
        finished: &'a [Finished],
        now: u64,
    ) -> BoxFuture<'a, BackendResult<Vec<Enqueued>>> {
        Box::pin(self.write_queue_(jobs, finished, now))
    }

    fn claim_due_jobs(
        &self,
        now: u64,
        lease_until: u64,
        limit: usize,
    ) -> BoxFuture<'_, BackendResult<Vec<QueuedJob>>> {
        Box::pin(self.claim_due_jobs_(now, lease_until, limit))
    }

    fn queue_backlog(&self, now: u64) -> BoxFuture<'_, BackendResult<(u64, u64)>> {
        Box::pin(self.queue_backlog_(now))
    }

    fn renew_job(&self, id: i64, held: u64, until: u64) -> BoxFuture<'_, BackendResult<bool>> {
        Box::pin(self.renew_job_(id, held, until))
    }

    fn recover(&self, _now: u64) -> BoxFuture<'_, BackendResult<(usize, usize, usize)>> {
        // Shared: a running job, push or claim may be a live server's. Leases hand a dead
        // server's work to the others.
        Box::pin(std::future::ready(Ok((0, 0, 0))))
    }

    fn jobs_due(&self, now: u64) -> BoxFuture<'_, BackendResult<u64>> {
        Box::pin(self.jobs_due_(now))
    }

    fn failed_jobs(&self, limit: usize) -> BoxFuture<'_, BackendResult<Vec<QueuedJob>>> {
        Box::pin(self.failed_jobs_(limit))
    }

    fn change_group<'a>(
        &'a self,
        group: u64,
        push: &'a Value,
        now: u64,
        lease_until: u64,
    ) -> BoxFuture<'a, BackendResult<Vec<OutboxEntry>>> {
        Box::pin(self.change_group_(group, push, now, lease_until))
    }

    fn finish_push<'a>(
        &'a self,
        id: i64,
        outcome: &'a Value,
        next: Next,
    ) -> BoxFuture<'a, BackendResult<()>> {
        Box::pin(self.finish_push_(id, outcome, next))
    }

    fn claim_due_pushes(
        &self,
        now: u64,
        lease_until: u64,
        limit: usize,
    ) -> BoxFuture<'_, BackendResult<Vec<OutboxEntry>>> {
        Box::pin(self.claim_due_pushes_(now, lease_until, limit))
    }

    fn outbox_entry(&self, id: i64) -> BoxFuture<'_, BackendResult<Option<OutboxEntry>>> {
        Box::pin(self.outbox_entry_(id))
    }

    fn outbox_backlog(&self, now: u64) -> BoxFuture<'_, BackendResult<(u64, u64)>> {
        Box::pin(self.outbox_backlog_(now))
    }

    fn pushes_of_group(&self, group: u64) -> BoxFuture<'_, BackendResult<Vec<OutboxEntry>>> {
        Box::pin(self.pushes_of_group_(group))
    }

    fn oauth_installations(&self, now: u64) -> BoxFuture<'_, BackendResult<Vec<InstallationSpec>>> {
        Box::pin(self.oauth_installations_(now))
    }

    fn lease_oauth<'a>(
        &'a self,
        client_key: &'a str,
        now: u64,
        until: u64,
    ) -> BoxFuture<'a, BackendResult<Option<OauthLease>>> {
        Box::pin(self.lease_oauth_(client_key, now, until))
    }

    fn save_oauth_tokens<'a>(
        &'a self,
        client_key: &'a str,
        expected: Option<&'a str>,
        tokens: &'a OauthTokens,
    ) -> BoxFuture<'a, BackendResult<bool>> {
        Box::pin(self.save_oauth_tokens_(client_key, expected, tokens))
    }

    fn release_oauth<'a>(
        &'a self,
        client_key: &'a str,
        held: u64,
        retry_at: u64,
        failed: bool,
    ) -> BoxFuture<'a, BackendResult<()>> {
        Box::pin(self.release_oauth_(client_key, held, retry_at, failed))
    }
}

#[cfg(test)]
mod tests {
    //! Against the PostgreSQL at `JIRA_SYNC_TEST_POSTGRES` (default: 127.0.0.1:5432, user
    //! `postgres`, database `test`). Each test works in a schema of its own, dropped at the end.

    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::wit::jira_sync::plugin::types::Credentials;

    const DEFAULT_URL: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

    fn base_url() -> String {
        std::env::var("JIRA_SYNC_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_URL.to_owned())
    }

    /// A fresh schema, dropped (with everything in it) when this goes.
    struct Schema {
        name: String,
    }

    impl Schema {
        async fn new() -> Schema {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let name = format!(
                "pgstore_{}_{}_{nanos}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            admin(&format!("CREATE SCHEMA {name}")).await;
            Schema { name }
        }

        /// Connection settings whose every connection works in this schema.
        fn url(&self) -> String {
            format!("{} options='-c search_path={}'", base_url(), self.name)
        }

        async fn store(&self) -> PgStore {
            PgStore::connect(&self.url(), 8).await.expect("connect")
        }
    }

    impl Drop for Schema {
        fn drop(&mut self) {
            // Drop runs outside async code (and on panics): a thread of its own with a runtime
            // of its own.
            let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(admin(&sql));
            })
            .join();
        }
    }

    async fn admin_client() -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&base_url(), NoTls)
            .await
            .expect("the test PostgreSQL (JIRA_SYNC_TEST_POSTGRES) is reachable");
        tokio::spawn(connection);
        client
    }

    async fn admin(sql: &str) {
        admin_client().await.batch_execute(sql).await.expect(sql);
    }

    fn issue(key: &str) -> (String, String) {
        ("jira:1".to_owned(), key.to_owned())
    }

    fn handled(id: &str) -> Effect {
        Effect::Handled("jira:1".into(), id.into())
    }

    fn new_job(client_key: &str, id: Option<&str>, run_until: Option<u64>) -> NewJob {
        NewJob {
            client_key: client_key.into(),
            delivery_id: id.map(Into::into),
            body: b"{\"x\":1}".to_vec(),
            run_until,
        }
    }

    async fn enqueue(store: &PgStore, job: NewJob, now: u64) -> Enqueued {
        store.write_queue(&[job], &[], now).await.unwrap().remove(0)
    }

    async fn finish_job(store: &PgStore, job: &QueuedJob, next: Next, error: Option<&str>) {
        let attempt = Finished {
            id: job.id,
            lease_until: job.lease_until,
            next,
            error: error.map(Into::into),
        };
        store.write_queue(&[], &[attempt], 0).await.unwrap();
    }

    #[test]
    fn an_issue_lock_key_is_the_same_in_every_build() {
        // Servers of different versions share the database: a changed key would let two of
        // them write one issue at once and deadlock.
        assert_eq!(issue_lock("jira:1", "APP-1"), -1_825_289_553_291_587_090);
        assert_ne!(issue_lock("a", "bc"), issue_lock("ab", "c"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrations_run_once_even_when_servers_start_together() {
        let schema = Schema::new().await;
        let url = schema.url();
        let (a, b, c) = tokio::join!(
            PgStore::connect(&url, 2),
            PgStore::connect(&url, 2),
            PgStore::connect(&url, 2)
        );
        let (a, _b, _c) = (a.unwrap(), b.unwrap(), c.unwrap());
        // Once more on a migrated schema: nothing to do.
        let again = PgStore::connect(&url, 2).await.unwrap();
        let applied = admin_client()
            .await
            .query_one(
                &format!(
                    "SELECT COUNT(*) FROM {}.refinery_schema_history",
                    schema.name
                ),
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        let embedded = embedded::migrations::runner().get_migrations().len();
        assert_eq!(applied, embedded as i64, "each migration applied once");
        again.link("jira:1", "APP-1", &[1]).await.unwrap();
        assert_eq!(a.linked_groups("jira:1", "APP-1").await.unwrap(), [1]);
        assert!(
            PgStore::connect(&url, 0).await.is_err(),
            "an empty pool is refused"
        );
        // The migrations' connection leaves the pool without taking its slot.
        let single = PgStore::connect(&url, 1).await.unwrap();
        for _ in 0..3 {
            assert_eq!(single.linked_groups("jira:1", "APP-1").await.unwrap(), [1]);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_platform_reads_what_the_admin_wrote() {
        let schema = Schema::new().await;
        let store = schema.store().await;
        assert!(store.installation("jira:1").await.unwrap().is_none());
        let mut spec = InstallationSpec::new("jira:1", "secret", "https://a.example", "app");
        spec.limits.http_calls = 7;
        store.add_installation(&spec).await.unwrap();
        spec.shared_secret = "rotated".into();
        store.add_installation(&spec).await.unwrap();
        let (installation, limits) = store.installation("jira:1").await.unwrap().unwrap();
        assert!(
            matches!(installation.credentials, Credentials::Connect(ref s) if s == "rotated"),
            "replaced"
        );
        assert_eq!(limits.http_calls, 7);
        spec.uninstalled = true;
        store.add_installation(&spec).await.unwrap();
        assert!(
            store.installation("jira:1").await.unwrap().is_none(),
            "an uninstalled site is no installation for calls"
        );

        store.link("jira:1", "APP-1", &[3, 1, 3]).await.unwrap();
        store.link("jira:2", "APP-9", &[1]).await.unwrap();
        assert_eq!(
            store.linked_groups("jira:1", "APP-1").await.unwrap(),
            [1, 3]
        );
        assert_eq!(
            store.links_of_group(1).await.unwrap(),
            [
                ("jira:1".to_owned(), "APP-1".to_owned()),
                ("jira:2".to_owned(), "APP-9".to_owned())
            ]
        );
        assert_eq!(
            store.group(3).await.unwrap(),
            Some(Group {
                status: GroupStatus::Unresolved,
                assignee: None
            })
        );
        assert_eq!(store.group(4).await.unwrap(), None);

        store.add_user(7, "Ann@Example.com").await.unwrap();
        store.add_user(7, "ann@example.COM").await.unwrap();
        store.add_user(7, "b@example.com").await.unwrap();
        store.add_user(5, "ANN@example.com").await.unwrap();
        assert_eq!(
            store.user_by_email("ann@EXAMPLE.com").await.unwrap(),
            Some(5)
        );
        assert_eq!(
            store.user_by_email("nobody@example.com").await.unwrap(),
            None
        );
        assert_eq!(
            store.user_emails(7).await.unwrap(),
            ["Ann@Example.com", "b@example.com"],
            "one email whatever its case"
        );
        assert!(store.shared());
        assert_eq!(store.recover(100).await.unwrap(), (0, 0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_delivery_is_claimed_once_until_handled_released_or_its_lease_ends() {
        let schema = Schema::new().await;
        let store = schema.store().await;
        let claim = |ck: &'static str, owner, now, until| {
            let store = &store;
            async move { store.claim(ck, "d", owner, now, until).await.unwrap() }
        };
        assert_eq!(claim("jira:1", 1, 100, 160).await, Claim::Claimed);
        assert_eq!(
            claim("jira:1", 1, 101, 161).await,
            Claim::Claimed,
            "its holder again"
        );
        assert_eq!(claim("jira:1", 2, 110, 170).await, Claim::InProgress);
        assert_eq!(claim("jira:2", 2, 110, 170).await, Claim::Claimed);
        store.release("jira:1", "d", 2).await.unwrap();
        assert_eq!(
            claim("jira:1", 3, 120, 180).await,
            Claim::InProgress,
            "only the holder releases"
        );
        store.release("jira:1", "d", 1).await.unwrap();
        assert_eq!(claim("jira:1", 3, 120, 180).await, Claim::Claimed);
        assert_eq!(
            claim("jira:1", 4, 181, 240).await,
            Claim::Claimed,
            "an ended lease is taken over"
        );
        store.commit(&[handled("d")]).await.unwrap();
        assert!(store.handled("jira:1", "d").await.unwrap());
        assert_eq!(claim("jira:1", 5, 200, 260).await, Claim::Handled);
        let again = store.commit(&[handled("d")]).await.unwrap_err();
        assert!(again.0.contains("handled meanwhile"), "{again}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_32_concurrent_claims_of_one_delivery_exactly_one_wins() {
        let schema = Schema::new().await;
        // Two servers, each with its own pool.
        let stores = [
            Arc::new(schema.store().await),
            Arc::new(schema.store().await),
        ];
        for round in 0..3 {
            let id = format!("d-{round}");
            let mut tasks = Vec::new();
            for owner in 0..32u64 {
                let store = stores[owner as usize % 2].clone();
                let id = id.clone();
                tasks.push(tokio::spawn(async move {
                    store.claim("jira:1", &id, owner + 1, 100, 200).await
                }));
            }
            let mut claims = Vec::new();
            for task in tasks {
                claims.push(task.await.unwrap().unwrap());
            }
            assert_eq!(claims.iter().filter(|c| **c == Claim::Claimed).count(), 1);
            assert_eq!(
                claims.iter().filter(|c| **c == Claim::InProgress).count(),
                31
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claims_racing_the_handled_mark_never_claim_a_handled_delivery() {
        let schema = Schema::new().await;
        let store = Arc::new(schema.store().await);
        for round in 0..20u64 {
            let id = format!("d-{round}");
            // The holder's lease has run out, so any racing claim may take the delivery over,
            // while the holder commits its mark.
            assert_eq!(
                store.claim("jira:1", &id, 1, 100, 150).await.unwrap(),
                Claim::Claimed
            );
            let committer = {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(async move { store.commit(&[handled(&id)]).await })
            };
            let mut claimers = Vec::new();
            for owner in 2..6 {
                let (store, id) = (store.clone(), id.clone());
                claimers.push(tokio::spawn(async move {
                    store.claim("jira:1", &id, owner, 200, 300).await.unwrap()
                }));
            }
            committer.await.unwrap().unwrap();
            for claimer in claimers {
                claimer.await.unwrap();
            }
            // A claim made before the mark is ended by it: none may be left on a handled one.
            let left = admin_client()
                .await
                .query_one(
                    &format!("SELECT COUNT(*) FROM {}.claims WHERE id = $1", schema.name),
                    &[&id],
                )
                .await
                .unwrap()
                .get::<_, i64>(0);
            assert_eq!(left, 0, "round {round}");
            assert_eq!(
                store.claim("jira:1", &id, 9, 200, 300).await.unwrap(),
                Claim::Handled
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watermarks_only_move_forward_and_older_changes_are_dropped() {
        let schema = Schema::new().await;
        let store = Arc::new(schema.store().await);
        store.link("jira:1", "APP-1", &[1, 2]).await.unwrap();
        let event = |updated_ms: i64| {
            vec![
                Effect::Watermark {
                    issue: issue("APP-1"),
                    fields: vec![Field::Assignee, Field::Status],
                    updated_ms,
                },
                Effect::Assignee {
                    issue: issue("APP-1"),
                    group: 2,
                    user: Some(updated_ms as u64),
                },
                Effect::Status {
                    issue: issue("APP-1"),
                    group: 1,
                    status: if updated_ms % 2 == 0 {
                        GroupStatus::Resolved
                    } else {
                        GroupStatus::Unresolved
                    },
                },
                Effect::Assignee {
                    issue: issue("APP-1"),
                    group: 1,
                    user: Some(updated_ms as u64),
                },
            ]
        };
        // One after the other: the older one is dropped whole, and told.
        assert_eq!(store.commit(&event(10)).await.unwrap(), []);
        let superseded = store.commit(&event(5)).await.unwrap();
        assert_eq!(
            superseded,
            [
                ("jira:1".to_owned(), "APP-1".to_owned(), Field::Status),
                ("jira:1".to_owned(), "APP-1".to_owned(), Field::Assignee),
            ],
            "sorted as a BTreeSet"
        );
        assert_eq!(store.group(1).await.unwrap().unwrap().assignee, Some(10));
        // Concurrently, on both fields at once and in any order: the newest wins.
        for round in 0..5i64 {
            let base = 100 + round * 100;
            let mut tasks = Vec::new();
            for i in [3i64, 17, 1, 12, 8, 16, 5, 11, 2, 14, 9, 4] {
                let store = store.clone();
                let effects = event(base + i);
                tasks.push(tokio::spawn(async move {
                    (base + i, store.commit(&effects).await.unwrap())
                }));
            }
            for task in tasks {
                let (updated, superseded) = task.await.unwrap();
                if updated == base + 17 {
                    assert_eq!(superseded, [], "the newest is never superseded");
                }
                // Both fields move together, so either both are superseded or neither is.
                assert!(superseded.is_empty() || superseded.len() == 2);
            }
            let newest = base + 17;
            for field in Field::ALL {
                assert_eq!(
                    store.watermark("jira:1", "APP-1", field).await.unwrap(),
                    Some(newest)
                );
            }
            let one = store.group(1).await.unwrap().unwrap();
            let two = store.group(2).await.unwrap().unwrap();
            assert_eq!(
                (one.assignee, two.assignee),
                (Some(newest as u64), Some(newest as u64))
            );
            assert_eq!(one.status, GroupStatus::Unresolved, "17 is odd");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_commit_of_one_delivery_fails_and_applies_nothing() {
        let schema = Schema::new().await;
        let store = Arc::new(schema.store().await);
        store.link("jira:1", "APP-1", &[1]).await.unwrap();
        store.commit(&[handled("d")]).await.unwrap();
        let error = store
            .commit(&[
                Effect::Watermark {
                    issue: issue("APP-1"),
                    fields: vec![Field::Status],
                    updated_ms: 5,
                },
                Effect::Status {
                    issue: issue("APP-1"),
                    group: 1,
                    status: GroupStatus::Resolved,
                },
                handled("d"),
            ])
            .await
            .unwrap_err();
        assert!(error.0.contains("handled meanwhile"), "{error}");
        assert_eq!(
            store.group(1).await.unwrap().unwrap().status,
            GroupStatus::Unresolved
        );
        assert_eq!(
            store
                .watermark("jira:1", "APP-1", Field::Status)
                .await
                .unwrap(),
            None
        );
        // Concurrently: exactly one of them applies.
        for round in 0..10 {
            let id = format!("c-{round}");
            let tasks: Vec<_> = (0..4u64)
                .map(|user| {
                    let (store, id) = (store.clone(), id.clone());
                    tokio::spawn(async move {
                        let effects = [
                            Effect::Assignee {
                                issue: issue("APP-1"),
                                group: 1,
                                user: Some(user),
                            },
                            handled(&id),
                        ];
                        (user, store.commit(&effects).await)
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for task in tasks {
                let (user, result) = task.await.unwrap();
                match result {
                    Ok(_) => winners.push(user),
                    Err(e) => assert!(e.0.contains("handled meanwhile"), "{e}"),
                }
            }
            assert_eq!(winners.len(), 1);
            assert_eq!(
                store.group(1).await.unwrap().unwrap().assignee,
                Some(winners[0])
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_delivery_is_queued_once_and_a_finished_job_is_gone() {
        let schema = Schema::new().await;
        let store = schema.store().await;
        let run = enqueue(&store, new_job("jira:1", Some("d-1"), Some(220)), 100).await;
        let Enqueued::Run(job) = run else {
            panic!("{run:?}")
        };
        assert_eq!(
            (job.state.as_str(), job.attempts, job.lease_until),
            ("running", 1, 220)
        );
        assert_eq!(job.body, b"{\"x\":1}");
        assert_eq!(
            enqueue(&store, new_job("jira:1", Some("d-1"), None), 101).await,
            Enqueued::Duplicate
        );
        assert_eq!(
            enqueue(&store, new_job("jira:2", Some("d-1"), None), 101).await,
            Enqueued::Wait
        );
        assert_eq!(
            enqueue(&store, new_job("jira:1", None, None), 101).await,
            Enqueued::Wait
        );
        assert_eq!(
            enqueue(&store, new_job("jira:1", None, None), 101).await,
            Enqueued::Wait
        );
        assert_eq!(store.queue_backlog(110).await.unwrap(), (4, 10));
        finish_job(&store, &job, Next::Done, None).await;
        assert_eq!(store.queue_backlog(110).await.unwrap().0, 3);
        assert_eq!(
            enqueue(&store, new_job("jira:1", Some("d-1"), None), 120).await,
            Enqueued::Wait
        );
        // A batch: in order, a copy within it once, an outcome beside new jobs.
        let outcomes = store
            .write_queue(
                &[
                    new_job("jira:3", Some("a"), Some(200)),
                    new_job("jira:3", Some("b"), None),
                    new_job("jira:3", Some("a"), None),
                ],
                &[],
                130,
            )
            .await
            .unwrap();
        assert!(matches!(&outcomes[0], Enqueued::Run(j) if j.delivery_id.as_deref() == Some("a")));
        assert_eq!(outcomes[1..], [Enqueued::Wait, Enqueued::Duplicate]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn servers_recording_the_same_deliveries_in_opposite_orders_both_succeed() {
        // Each batch waits on the other's copy: PostgreSQL breaks the deadlock by aborting one,
        // which is tried again and then finds the other's jobs recorded.
        let schema = Schema::new().await;
        let one = Arc::new(schema.store().await);
        let two = Arc::new(schema.store().await);
        for round in 0..5 {
            let ids: Vec<String> = (0..20).map(|i| format!("r{round}-{i}")).collect();
            let forward: Vec<NewJob> = ids
                .iter()
                .map(|id| new_job("jira:1", Some(id), None))
                .collect();
            let backward: Vec<NewJob> = forward.iter().rev().cloned().collect();
            let (a, b) = tokio::join!(
                tokio::spawn({
                    let one = one.clone();
                    async move { one.write_queue(&forward, &[], 100).await }
                }),
                tokio::spawn({
                    let two = two.clone();
                    async move { two.write_queue(&backward, &[], 100).await }
                })
            );
            let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
            for (i, outcome) in a.iter().enumerate() {
                let other = &b[b.len() - 1 - i];
                assert!(
                    matches!(
                        (outcome, other),
                        (Enqueued::Wait, Enqueued::Duplicate)
                            | (Enqueued::Duplicate, Enqueued::Wait)
                    ),
                    "{outcome:?} {other:?}"
                );
            }
        }
        assert_eq!(one.queue_backlog(100).await.unwrap().0, 100);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn due_jobs_are_claimed_installation_by_installation_and_leases_are_taken_over() {
        let schema = Schema::new().await;
        let store = schema.store().await;
        for i in 0..3 {
            enqueue(
                &store,
                new_job("jira:busy", Some(&format!("b-{i}")), None),
                100,
            )
            .await;
        }
        enqueue(&store, new_job("jira:quiet", Some("q-0"), None), 100).await;
        let first = store.claim_due_jobs(100, 200, 2).await.unwrap();
        let keys: Vec<&str> = first.iter().map(|j| j.client_key.as_str()).collect();
        assert_eq!(keys, ["jira:busy", "jira:quiet"], "one of each first");
        assert!(
            first
                .iter()
                .all(|j| j.state == "running" && j.attempts == 1)
        );
        finish_job(&store, &first[1], Next::RetryAt(150), Some("503")).await;
        let second = store.claim_due_jobs(120, 200, 10).await.unwrap();
        assert_eq!(second.len(), 2, "the busy installation's other two");
        assert_eq!(store.jobs_due(120).await.unwrap(), 3, "three running");
        let retried = store.claim_due_jobs(199, 300, 10).await.unwrap();
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
        let taken = store.claim_due_jobs(200, 300, 10).await.unwrap();
        assert_eq!(taken.len(), 3, "three leases ran out");
        assert!(
            taken
                .iter()
                .all(|j| j.client_key == "jira:busy" && j.attempts == 2)
        );
        finish_job(&store, retried, Next::Failed, Some("gave up")).await;
        let failed = store.failed_jobs(10).await.unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].error.as_deref(), Some("gave up"));
        assert_eq!(
            store.queue_backlog(200).await.unwrap().0,
            3,
            "failed is not backlog"
        );
        assert_eq!(store.jobs_due(200).await.unwrap(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_robin_takes_the_installations_in_turn() {
        let schema = Schema::new().await;
        let store = schema.store().await;
        // a: 4 jobs, b: 2, c: 1, interleaved by id as a, a, a, a, b, b, c.
        for (ck, n) in [("a", 4), ("b", 2), ("c", 1)] {
            for i in 0..n {
                enqueue(&store, new_job(ck, Some(&format!("{ck}{i}")), None), 100).await;
            }
        }
        let order: Vec<String> = store
            .claim_due_jobs(100, 200, 6)
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.delivery_id.unwrap_or_default())
            .collect();
        assert_eq!(order, ["a0", "b0", "c0", "a1", "b1", "a2"]);
        assert_eq!(
            store.claim_due_jobs(100, 200, 6).await.unwrap().len(),
            1,
            "a3"
        );
        assert!(store.claim_due_jobs(100, 200, 0).await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_servers_claiming_at_once_never_get_the_same_job() {
        let schema = Schema::new().await;
        let one = Arc::new(schema.store().await);
        let two = Arc::new(schema.store().await);
        let jobs: Vec<NewJob> = (0..200)
            .map(|i| new_job(&format!("jira:{}", i % 5), Some(&format!("d-{i}")), None))
            .collect();
        one.write_queue(&jobs, &[], 100).await.unwrap();
        let claimer = |store: Arc<PgStore>| {
            tokio::spawn(async move {
                let mut ids = Vec::new();
                let mut empty = 0;
                while empty < 3 {
                    let claimed = store.claim_due_jobs(100, 200, 7).await.unwrap();
                    empty = if claimed.is_empty() { empty + 1 } else { 0 };
                    ids.extend(claimed.into_iter().map(|j| j.id));
                }
                ids
            })
        };
        let (a, b, c) = (
            claimer(one.clone()),
            claimer(two.clone()),
            claimer(two.clone()),
        );
        let mut all = a.await.unwrap();
        all.extend(b.await.unwrap());
        all.extend(c.await.unwrap());
        let distinct: HashSet<i64> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "a job claimed twice");
        assert_eq!(all.len(), 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lease_is_renewed_only_by_its_holder() {
        let schema = Schema::new().await;
        let store = schema.store().await;
        let Enqueued::Run(job) =
            enqueue(&store, new_job("jira:1", Some("d"), Some(200)), 100).await
        else {
            panic!("not run")
        };
        assert!(store.renew_job(job.id, 200, 260).await.unwrap());
        assert!(
            !store.renew_job(job.id, 200, 320).await.unwrap(),
            "the lease is 260 now"
        );
        assert!(
            store.claim_due_jobs(259, 400, 10).await.unwrap().is_empty(),
            "still held"
        );
        // The holder stalls past its lease; another server takes the job over.
        let taken = store.claim_due_jobs(260, 400, 10).await.unwrap();
        assert_eq!(
            (taken.len(), taken[0].id, taken[0].lease_until),
            (1, job.id, 400)
        );
        assert!(
            !store.renew_job(job.id, 260, 500).await.unwrap(),
            "the old holder is fenced"
        );
        assert!(store.renew_job(job.id, 400, 500).await.unwrap());
        finish_job(&store, &job, Next::RetryAt(600), None).await;
        assert!(
            !store.renew_job(job.id, 0, 700).await.unwrap(),
            "not running"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pushes_are_recorded_with_the_change_and_claimed_one_per_installation() {
        let schema = Schema::new().await;
        let store = Arc::new(schema.store().await);
        store.link("jira:1", "APP-1", &[1]).await.unwrap();
        store.link("jira:1", "APP-2", &[1]).await.unwrap();
        store.link("jira:2", "OPS-1", &[1]).await.unwrap();
        assert!(
            store
                .change_group(1, &serde_json::json!({"nope": 1}), 100, 160)
                .await
                .is_err()
        );
        let pushed = store
            .change_group(1, &serde_json::json!({"resolved": true}), 100, 160)
            .await
            .unwrap();
        assert_eq!(pushed.len(), 3);
        assert!(
            pushed
                .iter()
                .all(|e| e.state == "running" && e.attempts == 1)
        );
        assert_eq!(pushed[0].push, serde_json::json!({"resolved": true}));
        assert_eq!(
            store.group(1).await.unwrap().unwrap().status,
            GroupStatus::Resolved
        );
        let assigned = store
            .change_group(1, &serde_json::json!({"assign": 42}), 101, 160)
            .await
            .unwrap();
        assert_eq!(store.group(1).await.unwrap().unwrap().assignee, Some(42));
        // Every attempt fails and is due again at 150.
        let outcome = serde_json::json!({"status": 503, "body": ["a", {"b": null}]});
        for entry in pushed.iter().chain(&assigned) {
            store
                .finish_push(entry.id, &outcome, Next::RetryAt(150))
                .await
                .unwrap();
        }
        let read = store.outbox_entry(pushed[0].id).await.unwrap().unwrap();
        assert_eq!((read.state.as_str(), read.next_at), ("pending", 150));
        assert_eq!(read.outcome, Some(outcome.clone()));
        assert!(store.outbox_entry(-1).await.unwrap().is_none());
        assert_eq!(store.outbox_backlog(170).await.unwrap(), (6, 20));
        assert!(
            store
                .claim_due_pushes(149, 300, 10)
                .await
                .unwrap()
                .is_empty()
        );
        // Two servers at once: one push per installation per claim, never one push twice.
        let (a, b) = tokio::join!(
            store.claim_due_pushes(150, 300, 10),
            store.claim_due_pushes(150, 300, 10)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        for claimed in [&a, &b] {
            let keys: HashSet<&str> = claimed.iter().map(|e| e.client_key.as_str()).collect();
            assert_eq!(keys.len(), claimed.len(), "one per installation");
        }
        let ids: HashSet<i64> = a.iter().chain(&b).map(|e| e.id).collect();
        assert_eq!(ids.len(), a.len() + b.len(), "a push claimed twice");
        let first = store.claim_due_pushes(150, 300, 10).await.unwrap();
        assert!(
            first
                .iter()
                .all(|e| e.state == "running" && e.attempts == 2)
        );
        let limited = store.claim_due_pushes(150, 300, 1).await.unwrap();
        assert!(limited.len() <= 1);
        let newest_first: Vec<i64> = store
            .pushes_of_group(1)
            .await
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        let mut sorted = newest_first.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!((newest_first.len(), &newest_first), (6, &sorted));
        store
            .finish_push(pushed[0].id, &outcome, Next::Done)
            .await
            .unwrap();
        assert_eq!(
            store
                .outbox_entry(pushed[0].id)
                .await
                .unwrap()
                .unwrap()
                .state,
            "done"
        );
        assert_eq!(store.outbox_backlog(170).await.unwrap().0, 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_push_is_claimed_again_once_its_lease_ends() {
        let schema = Schema::new().await;
        let store = schema.store().await;
        store.link("jira:1", "APP-1", &[1]).await.unwrap();
        let pushed = store
            .change_group(1, &serde_json::json!({"assign": null}), 100, 160)
            .await
            .unwrap();
        assert_eq!(pushed[0].push, serde_json::json!({"assign": null}));
        assert!(
            store
                .claim_due_pushes(159, 300, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let again = store.claim_due_pushes(160, 300, 10).await.unwrap();
        assert_eq!(
            (again.len(), again[0].id, again[0].attempts),
            (1, pushed[0].id, 2)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retention_forgets_old_deliveries_ended_claims_and_old_failed_jobs_only() {
        let schema = Schema::new().await;
        let store = schema.store().await;
        store.commit(&[handled("recent")]).await.unwrap();
        admin(&format!(
            "INSERT INTO {}.deliveries (client_key, id, handled_at) VALUES ('jira:1', 'old', 100)",
            schema.name
        ))
        .await;
        store.claim("jira:1", "ended", 1, 100, 150).await.unwrap();
        store.claim("jira:1", "held", 1, 100, 10_000).await.unwrap();
        enqueue(&store, new_job("jira:1", Some("old-job"), Some(120)), 100).await;
        enqueue(
            &store,
            new_job("jira:1", Some("new-job"), Some(2_000)),
            1_500,
        )
        .await;
        let failed: Vec<Finished> = store
            .claim_due_jobs(5_000, 6_000, 10)
            .await
            .unwrap()
            .iter()
            .map(|j| Finished {
                id: j.id,
                lease_until: j.lease_until,
                next: Next::Failed,
                error: Some("no".to_owned()),
            })
            .collect();
        store.write_queue(&[], &failed, 5_000).await.unwrap();
        assert_eq!(store.failed_jobs(10).await.unwrap().len(), 2);
        assert_eq!(store.prune(1_000, 200).await.unwrap(), (1, 1));
        assert!(!store.handled("jira:1", "old").await.unwrap());
        assert!(store.handled("jira:1", "recent").await.unwrap());
        assert_eq!(
            store.claim("jira:1", "held", 2, 200, 300).await.unwrap(),
            Claim::InProgress
        );
        let left = store.failed_jobs(10).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].delivery_id.as_deref(), Some("new-job"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_database_is_an_error_naming_what_was_done() {
        let error = PgStore::connect(
            "host=127.0.0.1 port=1 user=postgres dbname=test connect_timeout=2",
            1,
        )
        .await
        .err()
        .expect("no server on port 1");
        assert!(
            format!("{error:#}").contains("connect to PostgreSQL"),
            "{error:#}"
        );
        // A schema the connection cannot write to: a statement fails as a backend error.
        let schema = Schema::new().await;
        let store = schema.store().await;
        admin(&format!("DROP TABLE {}.groups CASCADE", schema.name)).await;
        let error = store.group(1).await.unwrap_err();
        assert!(error.0.starts_with("postgres: read group: "), "{error}");
        assert!(
            error.0.contains("does not exist"),
            "the server's message: {error}"
        );
    }
}
