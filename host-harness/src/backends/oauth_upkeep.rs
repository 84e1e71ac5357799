//! Who keeps OAuth installations' tokens and webhooks up, in the server's SQLite file
//! (docs/behaviour.md#10.2): a lease per installation, so that one refresh runs at a time, and
//! the compare-and-set that stores a refresh's tokens.

use rusqlite::{OptionalExtension, params};

use super::sqlite::{failed, parse_spec, read_spec};
use super::store::OauthLease;
use super::{BackendError, BackendResult, SqliteStore};
use crate::installation::{InstallationSpec, OauthTokens};

impl SqliteStore {
    /// See [`super::Store::oauth_installations`].
    pub fn oauth_installations(&self, now: u64) -> BackendResult<Vec<InstallationSpec>> {
        let conn = self.conn();
        let rows: Vec<(String, String)> = conn
            .prepare_cached(
                "SELECT i.client_key, i.spec FROM installations i
                 LEFT JOIN oauth_upkeep u ON u.client_key = i.client_key
                 WHERE json_extract(i.spec, '$.credentials.kind') = 'oauth'
                   AND (u.lease_until IS NULL OR u.lease_until <= ?1)
                 ORDER BY i.client_key",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![now as i64], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect()
            })
            .map_err(failed("read OAuth installations"))?;
        let mut specs = Vec::new();
        for (client_key, json) in rows {
            let spec = parse_spec(&client_key, &json)?;
            if !spec.uninstalled {
                specs.push(spec);
            }
        }
        Ok(specs)
    }

    /// See [`super::Store::lease_oauth`].
    pub fn lease_oauth(
        &self,
        client_key: &str,
        now: u64,
        until: u64,
    ) -> BackendResult<Option<OauthLease>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(failed("begin OAuth lease"))?;
        let Some(spec) = read_spec(&tx, client_key)? else {
            return Ok(None);
        };
        if spec.uninstalled || spec.oauth_tokens().is_none() {
            return Ok(None);
        }
        let failures: Option<u32> = tx
            .query_row(
                "INSERT INTO oauth_upkeep (client_key, lease_until) VALUES (?1, ?3)
                 ON CONFLICT (client_key) DO UPDATE SET lease_until = excluded.lease_until
                 WHERE oauth_upkeep.lease_until <= ?2
                 RETURNING failures",
                params![client_key, now as i64, until as i64],
                |row| row.get(0),
            )
            .optional()
            .map_err(failed("lease OAuth upkeep"))?;
        tx.commit().map_err(failed("commit OAuth lease"))?;
        Ok(failures.map(|failures| OauthLease {
            spec,
            until,
            failures,
        }))
    }

    /// See [`super::Store::save_oauth_tokens`].
    pub fn save_oauth_tokens(
        &self,
        client_key: &str,
        expected: Option<&str>,
        tokens: &OauthTokens,
    ) -> BackendResult<bool> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(failed("begin saving OAuth tokens"))?;
        let Some(mut spec) = read_spec(&tx, client_key)? else {
            return Ok(false);
        };
        if !spec.replace_oauth_tokens(expected, tokens) {
            return Ok(false);
        }
        let json = serde_json::to_string(&spec)
            .map_err(|e| BackendError(format!("installation {client_key}: {e}")))?;
        tx.execute(
            "UPDATE installations SET spec = ?2 WHERE client_key = ?1",
            params![client_key, json],
        )
        .map_err(failed("save OAuth tokens"))?;
        let committed = tx.commit().map_err(failed("commit OAuth tokens"));
        self.forget_spec(&conn, client_key);
        committed.map(|()| true)
    }

    /// See [`super::Store::release_oauth`].
    pub fn release_oauth(
        &self,
        client_key: &str,
        held: u64,
        retry_at: u64,
        failed_now: bool,
    ) -> BackendResult<()> {
        self.conn()
            .execute(
                "UPDATE oauth_upkeep SET lease_until = ?3,
                     failures = CASE WHEN ?4 THEN failures + 1 ELSE 0 END
                 WHERE client_key = ?1 AND lease_until = ?2",
                params![client_key, held as i64, retry_at as i64, failed_now],
            )
            .map(drop)
            .map_err(failed("release OAuth upkeep"))
    }
}
