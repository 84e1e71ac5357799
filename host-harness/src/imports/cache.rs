//! `cache`: the guest's short-lived values, on the host's clock, in a namespace of the call's
//! installation: no call reads or writes another installation's entries (docs/behaviour.md#9).

use super::CallState;
use crate::wit::jira_sync::plugin::cache;

impl cache::Host for CallState {
    fn get(&mut self, key: String) -> Option<String> {
        let key = self.cache_key(&key)?;
        let value = self.backends.cache.get(&key, self.backends.clock.now());
        match value {
            Some(_) => self.record.cache.hits += 1,
            None => self.record.cache.misses += 1,
        }
        value
    }

    fn set(&mut self, key: String, value: String, ttl_seconds: u32) {
        let Some(key) = self.cache_key(&key) else {
            return;
        };
        self.record.cache.sets += 1;
        let now = self.backends.clock.now();
        self.backends.cache.set(&key, &value, ttl_seconds, now);
    }

    fn delete(&mut self, key: String) {
        let Some(key) = self.cache_key(&key) else {
            return;
        };
        self.record.cache.deletes += 1;
        self.backends.cache.delete(&key);
    }
}
