//! Who keeps OAuth installations' tokens and webhooks up, in PostgreSQL (docs/behaviour.md#10.2):
//! the same lease and compare-and-set as SQLite's (`oauth_upkeep.rs`), safe between servers.
//! Of servers leasing at once, the upsert's row lock lets exactly one see a free lease; the
//! installation is read after the lease, so the holder refreshes from the refresh token its
//! predecessor saved before releasing.

use super::{PgStore, col, exec, failed, row, rows};
use crate::backends::store::OauthLease;
use crate::backends::{BackendError, BackendResult};
use crate::installation::{InstallationSpec, OauthTokens};

fn parse(client_key: &str, json: &str) -> BackendResult<InstallationSpec> {
    serde_json::from_str(json).map_err(|e| {
        BackendError(format!(
            "postgres: installation {client_key} is unreadable: {e}"
        ))
    })
}

impl PgStore {
    pub(super) async fn oauth_installations_(
        &self,
        now: u64,
    ) -> BackendResult<Vec<InstallationSpec>> {
        const WHAT: &str = "read OAuth installations";
        let client = self.client(WHAT).await?;
        let found = rows(
            &client,
            WHAT,
            "SELECT i.client_key, i.spec FROM installations i
             LEFT JOIN oauth_upkeep u ON u.client_key = i.client_key
             WHERE i.spec::jsonb #>> '{credentials,kind}' = 'oauth'
               AND (u.lease_until IS NULL OR u.lease_until <= $1)
             ORDER BY i.client_key",
            &[&(now as i64)],
        )
        .await?;
        let mut specs = Vec::new();
        for found in &found {
            let client_key: String = col(found, 0, WHAT)?;
            let json: String = col(found, 1, WHAT)?;
            let spec = parse(&client_key, &json)?;
            if !spec.uninstalled {
                specs.push(spec);
            }
        }
        Ok(specs)
    }

    pub(super) async fn lease_oauth_(
        &self,
        client_key: &str,
        now: u64,
        until: u64,
    ) -> BackendResult<Option<OauthLease>> {
        const WHAT: &str = "lease OAuth upkeep";
        let mut client = self.client(WHAT).await?;
        let tx = client.transaction().await.map_err(failed(WHAT))?;
        let leased = row(
            &tx,
            WHAT,
            "INSERT INTO oauth_upkeep (client_key, lease_until)
             SELECT $1, $3 WHERE EXISTS (SELECT 1 FROM installations WHERE client_key = $1)
             ON CONFLICT (client_key) DO UPDATE SET lease_until = EXCLUDED.lease_until
             WHERE oauth_upkeep.lease_until <= $2
             RETURNING failures",
            &[&client_key, &(now as i64), &(until as i64)],
        )
        .await?;
        let Some(leased) = leased else {
            return Ok(None);
        };
        let failures: i32 = col(&leased, 0, WHAT)?;
        let found = row(
            &tx,
            WHAT,
            "SELECT spec FROM installations WHERE client_key = $1",
            &[&client_key],
        )
        .await?;
        let Some(found) = found else {
            return Ok(None);
        };
        let spec = parse(client_key, &col::<String>(&found, 0, WHAT)?)?;
        // Not an installation to keep up: the transaction rolls back, leaving no lease.
        if spec.uninstalled || spec.oauth_tokens().is_none() {
            return Ok(None);
        }
        tx.commit().await.map_err(failed(WHAT))?;
        Ok(Some(OauthLease {
            spec,
            until,
            failures: u32::try_from(failures).unwrap_or(0),
        }))
    }

    pub(super) async fn save_oauth_tokens_(
        &self,
        client_key: &str,
        expected: Option<&str>,
        tokens: &OauthTokens,
    ) -> BackendResult<bool> {
        const WHAT: &str = "save OAuth tokens";
        let mut client = self.client(WHAT).await?;
        let tx = client.transaction().await.map_err(failed(WHAT))?;
        let found = row(
            &tx,
            WHAT,
            "SELECT spec FROM installations WHERE client_key = $1 FOR UPDATE",
            &[&client_key],
        )
        .await?;
        let Some(found) = found else {
            return Ok(false);
        };
        let mut spec = parse(client_key, &col::<String>(&found, 0, WHAT)?)?;
        if !spec.replace_oauth_tokens(expected, tokens) {
            return Ok(false);
        }
        let json = serde_json::to_string(&spec)
            .map_err(|e| BackendError(format!("postgres: installation {client_key}: {e}")))?;
        exec(
            &tx,
            WHAT,
            "UPDATE installations SET spec = $2 WHERE client_key = $1",
            &[&client_key, &json],
        )
        .await?;
        tx.commit().await.map_err(failed(WHAT))?;
        Ok(true)
    }

    pub(super) async fn release_oauth_(
        &self,
        client_key: &str,
        held: u64,
        retry_at: u64,
        failed_now: bool,
    ) -> BackendResult<()> {
        const WHAT: &str = "release OAuth upkeep";
        let client = self.client(WHAT).await?;
        exec(
            &client,
            WHAT,
            "UPDATE oauth_upkeep SET lease_until = $3,
                 failures = CASE WHEN $4 THEN failures + 1 ELSE 0 END
             WHERE client_key = $1 AND lease_until = $2",
            &[&client_key, &(held as i64), &(retry_at as i64), &failed_now],
        )
        .await?;
        Ok(())
    }
}
