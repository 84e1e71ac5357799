//! A cache for long-running servers: at most a fixed number of entries (moka evicts the least
//! useful first), each kept until its TTL on the caller's clock. The plain [`super::MemoryCache`]
//! drops an expired entry only when it is read, so a server's cache would grow without bound.

use moka::sync::Cache;

use super::{BackendResult, BoxFuture, CacheBackend, ready};

/// A bounded in-memory cache.
pub struct BoundedCache {
    entries: Cache<String, (String, u64)>,
}

impl BoundedCache {
    /// A cache of at most `capacity` entries.
    pub fn new(capacity: u64) -> Self {
        BoundedCache {
            entries: Cache::new(capacity),
        }
    }

    /// Entries held now (after pending evictions).
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl BoundedCache {
    /// The value of `key` if it has not expired at `now`.
    pub fn get(&self, key: &str, now: u64) -> Option<String> {
        match self.entries.get(key) {
            Some((value, expires)) if expires > now => Some(value),
            Some(_) => {
                self.entries.invalidate(key);
                None
            }
            None => None,
        }
    }

    /// Stores `value` under `key` until `now + ttl_seconds`.
    pub fn set(&self, key: &str, value: &str, ttl_seconds: u32, now: u64) {
        let expires = now.saturating_add(u64::from(ttl_seconds));
        self.entries
            .insert(key.to_owned(), (value.to_owned(), expires));
    }
}

impl CacheBackend for BoundedCache {
    fn get<'a>(&'a self, key: &'a str, now: u64) -> BoxFuture<'a, BackendResult<Option<String>>> {
        ready(Ok(BoundedCache::get(self, key, now)))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl_seconds: u32,
        now: u64,
    ) -> BoxFuture<'a, BackendResult<()>> {
        BoundedCache::set(self, key, value, ttl_seconds, now);
        ready(Ok(()))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, BackendResult<()>> {
        self.entries.invalidate(key);
        ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_on_the_callers_clock_and_the_count_stays_bounded() {
        let cache = BoundedCache::new(100);
        cache.set("a", "1", 60, 1_000);
        assert_eq!(cache.get("a", 1_059).as_deref(), Some("1"));
        assert_eq!(cache.get("a", 1_060), None, "expired");
        for i in 0..10_000 {
            cache.set(&format!("k{i}"), "v", 600, 1_000);
        }
        assert!(cache.len() <= 100, "{} entries", cache.len());
    }
}
