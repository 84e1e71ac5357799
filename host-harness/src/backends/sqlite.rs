//! The server's state in one SQLite file: installations, links, groups, users, and the delivery
//! log (handled webhook ids, last `updated` applied per issue), so that a restart loses nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension, params};

use super::{DeliveryLog, Group, GroupStatus, Platform};
use crate::installation::InstallationSpec;
use crate::limits::Limits;
use crate::wit::jira_sync::plugin::types::Installation;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS installations (client_key TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS links (
    client_key TEXT NOT NULL, issue_key TEXT NOT NULL, group_id INTEGER NOT NULL,
    PRIMARY KEY (client_key, issue_key, group_id));
CREATE TABLE IF NOT EXISTS groups (
    id INTEGER PRIMARY KEY, resolved INTEGER NOT NULL DEFAULT 0, assignee INTEGER);
CREATE TABLE IF NOT EXISTS users (id INTEGER NOT NULL, email TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (id, email));
CREATE TABLE IF NOT EXISTS deliveries (client_key TEXT NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (client_key, id));
CREATE TABLE IF NOT EXISTS applied (client_key TEXT NOT NULL, issue_key TEXT NOT NULL,
    updated_ms INTEGER NOT NULL, PRIMARY KEY (client_key, issue_key));
";

/// The platform and the delivery log in one SQLite file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

/// The trait methods cannot return errors; a failed statement is reported, never a panic.
fn report<T: Default>(what: &str, result: rusqlite::Result<T>) -> T {
    result.unwrap_or_else(|e| {
        tracing::error!(target: "jira_sync::store", "{what}: {e}");
        T::default()
    })
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn =
            Connection::open(path).with_context(|| format!("open database {}", path.display()))?;
        conn.execute_batch(SCHEMA)
            .context("create the database schema")?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an installation, or replaces the one with the same client key.
    pub fn add_installation(&self, spec: &InstallationSpec) -> anyhow::Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO installations (client_key, spec) VALUES (?1, ?2)",
            params![spec.client_key, serde_json::to_string(spec)?],
        )?;
        Ok(())
    }

    /// Links `groups` to `issue_key`; unknown groups start unresolved and unassigned.
    pub fn link(&self, client_key: &str, issue_key: &str, groups: &[u64]) -> anyhow::Result<()> {
        let conn = self.conn();
        for group in groups {
            conn.execute(
                "INSERT OR IGNORE INTO groups (id) VALUES (?1)",
                params![*group as i64],
            )?;
            conn.execute(
                "INSERT OR IGNORE INTO links (client_key, issue_key, group_id) VALUES (?1, ?2, ?3)",
                params![client_key, issue_key, *group as i64],
            )?;
        }
        Ok(())
    }

    /// Adds a verified email of user `id`.
    pub fn add_user(&self, id: u64, email: &str) -> anyhow::Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO users (id, email) VALUES (?1, ?2)",
            params![id as i64, email],
        )?;
        Ok(())
    }

    /// Every group, by id.
    pub fn groups(&self) -> BTreeMap<u64, Group> {
        let conn = self.conn();
        let rows = conn
            .prepare("SELECT id, resolved, assignee FROM groups ORDER BY id")
            .and_then(|mut stmt| {
                stmt.query_map([], |row| {
                    Ok((
                        row.get::<_, i64>(0)? as u64,
                        group_of(row.get(1)?, row.get(2)?),
                    ))
                })?
                .collect::<rusqlite::Result<BTreeMap<_, _>>>()
            });
        report("list groups", rows)
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

impl SqliteStore {
    fn spec(&self, client_key: &str) -> Option<InstallationSpec> {
        let spec: Option<String> = report(
            "read installation",
            self.conn()
                .query_row(
                    "SELECT spec FROM installations WHERE client_key = ?1",
                    params![client_key],
                    |row| row.get(0),
                )
                .optional(),
        );
        serde_json::from_str(&spec?).ok()
    }
}

impl Platform for SqliteStore {
    fn installation(&self, client_key: &str) -> Option<(Installation, Limits)> {
        self.spec(client_key)
            .map(|spec| (Installation::from(&spec), spec.limits))
    }

    fn linked_groups(&self, client_key: &str, issue_key: &str) -> Vec<u64> {
        let conn = self.conn();
        let rows = conn
            .prepare(
                "SELECT group_id FROM links WHERE client_key = ?1 AND issue_key = ?2 ORDER BY group_id",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![client_key, issue_key], |row| {
                    Ok(row.get::<_, i64>(0)? as u64)
                })?
                .collect()
            });
        report("read links", rows)
    }

    fn user_by_email(&self, email: &str) -> Option<u64> {
        report(
            "find user",
            self.conn()
                .query_row(
                    "SELECT id FROM users WHERE email = ?1 ORDER BY id LIMIT 1",
                    params![email],
                    |row| row.get::<_, i64>(0),
                )
                .optional(),
        )
        .map(|id| id as u64)
    }

    fn set_assignee(&self, group: u64, user: Option<u64>) {
        report(
            "set assignee",
            self.conn().execute(
                "UPDATE groups SET assignee = ?2 WHERE id = ?1",
                params![group as i64, user.map(|u| u as i64)],
            ),
        );
    }

    fn set_status(&self, group: u64, status: GroupStatus) {
        report(
            "set status",
            self.conn().execute(
                "UPDATE groups SET resolved = ?2 WHERE id = ?1",
                params![group as i64, status == GroupStatus::Resolved],
            ),
        );
    }

    fn group(&self, group: u64) -> Option<Group> {
        report(
            "read group",
            self.conn()
                .query_row(
                    "SELECT resolved, assignee FROM groups WHERE id = ?1",
                    params![group as i64],
                    |row| Ok(group_of(row.get(0)?, row.get(1)?)),
                )
                .optional(),
        )
    }

    fn links_of_group(&self, group: u64) -> Vec<(String, String)> {
        let conn = self.conn();
        let rows = conn
            .prepare("SELECT client_key, issue_key FROM links WHERE group_id = ?1 ORDER BY 1, 2")
            .and_then(|mut stmt| {
                stmt.query_map(params![group as i64], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect()
            });
        report("read links of group", rows)
    }

    fn user_emails(&self, user: u64) -> Vec<String> {
        let conn = self.conn();
        let rows = conn
            .prepare("SELECT email FROM users WHERE id = ?1 ORDER BY email")
            .and_then(|mut stmt| {
                stmt.query_map(params![user as i64], |row| row.get(0))?
                    .collect()
            });
        report("read user emails", rows)
    }
}

impl DeliveryLog for SqliteStore {
    fn seen(&self, client_key: &str, id: &str) -> bool {
        report(
            "read delivery",
            self.conn()
                .query_row(
                    "SELECT 1 FROM deliveries WHERE client_key = ?1 AND id = ?2",
                    params![client_key, id],
                    |_| Ok(()),
                )
                .optional(),
        )
        .is_some()
    }

    fn mark_seen(&self, client_key: &str, id: &str) {
        report(
            "record delivery",
            self.conn().execute(
                "INSERT OR IGNORE INTO deliveries (client_key, id) VALUES (?1, ?2)",
                params![client_key, id],
            ),
        );
    }

    fn last_applied(&self, client_key: &str, issue_key: &str) -> Option<i64> {
        report(
            "read watermark",
            self.conn()
                .query_row(
                    "SELECT updated_ms FROM applied WHERE client_key = ?1 AND issue_key = ?2",
                    params![client_key, issue_key],
                    |row| row.get(0),
                )
                .optional(),
        )
    }

    fn set_last_applied(&self, client_key: &str, issue_key: &str, updated_ms: i64) {
        report(
            "record watermark",
            self.conn().execute(
                "INSERT OR REPLACE INTO applied (client_key, issue_key, updated_ms) VALUES (?1, ?2, ?3)",
                params![client_key, issue_key, updated_ms],
            ),
        );
    }
}
