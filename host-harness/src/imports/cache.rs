//! `cache`: the guest's short-lived values, on the host's clock, in a namespace of the call's
//! installation: no call reads or writes another installation's entries (docs/behaviour.md#9).

use super::CallState;
use crate::wit::jira_sync::plugin::cache;

impl cache::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        let Some(key) = self.cache_key(&key) else {
            return Ok(None);
        };
        let now = self.backends.clock.now();
        let value = self
            .backends
            .cache
            .get(&key, now)
            .await
            .map_err(|e| self.fail(e))?;
        match value {
            Some(_) => self.record.cache.hits += 1,
            None => self.record.cache.misses += 1,
        }
        Ok(value)
    }

    async fn set(&mut self, key: String, value: String, ttl_seconds: u32) -> wasmtime::Result<()> {
        let Some(key) = self.cache_key(&key) else {
            return Ok(());
        };
        self.record.cache.sets += 1;
        let now = self.backends.clock.now();
        self.backends
            .cache
            .set(&key, &value, ttl_seconds, now)
            .await
            .map_err(|e| self.fail(e))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        let Some(key) = self.cache_key(&key) else {
            return Ok(());
        };
        self.record.cache.deletes += 1;
        self.backends
            .cache
            .delete(&key)
            .await
            .map_err(|e| self.fail(e))
    }
}
