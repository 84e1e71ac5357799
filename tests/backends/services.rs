//! The real servers the shared backends' tests run against: PostgreSQL at
//! `JIRA_SYNC_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`) and Redis at
//! `JIRA_SYNC_TEST_REDIS` (default `redis://127.0.0.1:6379`). A test that cannot reach one fails
//! and says how to point it elsewhere: these suites never skip silently.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jira_sync_host::backends::{PgStore, RedisCache};

/// The PostgreSQL the tests use.
pub fn postgres_url() -> String {
    std::env::var("JIRA_SYNC_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var("JIRA_SYNC_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A name no other test (or test run) uses.
pub fn unique(kind: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "js_{kind}_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    )
}

/// A schema of this test's own in the test PostgreSQL; dropped with everything in it when this
/// goes, even when the test panicked.
pub struct PgSchema {
    name: String,
}

async fn admin() -> tokio_postgres::Client {
    let url = postgres_url();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {url} is not reachable ({e}): start it, or point \
                 JIRA_SYNC_TEST_POSTGRES at one (README, \"Tests\")"
            )
        });
    tokio::spawn(connection);
    client
}

impl PgSchema {
    pub async fn new() -> Self {
        let name = unique("pg");
        admin()
            .await
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create the test's schema");
        PgSchema { name }
    }

    /// The URL of this schema: every connection of a pool opened on it works inside it.
    pub fn url(&self) -> String {
        let base = postgres_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        format!("{base}{separator}options=-c%20search_path%3D{}", self.name)
    }

    /// A store on this schema (migrated on first open), with a pool of its own: two stores
    /// are two servers.
    pub async fn store(&self) -> Arc<PgStore> {
        Arc::new(
            PgStore::connect(&self.url(), 8)
                .await
                .expect("open the store"),
        )
    }

    /// Drops every table, as a database restored from the wrong backup would.
    pub async fn drop_tables(&self) {
        admin()
            .await
            .batch_execute(&format!(
                "DROP SCHEMA {0} CASCADE; CREATE SCHEMA {0}",
                self.name
            ))
            .await
            .expect("drop the tables");
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // A runtime of its own on a thread of its own: drop may run inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the schema");
            runtime.block_on(async {
                let _ = admin()
                    .await
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await;
            });
        })
        .join();
    }
}

/// A key prefix of this test's own in the test Redis; its keys are deleted when this goes.
pub struct RedisPrefix(String);

impl RedisPrefix {
    pub fn new() -> Self {
        RedisPrefix(format!("{}:", unique("redis")))
    }

    /// The prefix itself.
    pub fn name(&self) -> String {
        self.0.clone()
    }

    pub async fn cache(&self) -> Arc<RedisCache> {
        let url = redis_url();
        Arc::new(
            RedisCache::connect(&url, &self.0, 4)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "Redis at {url} is not reachable ({e:#}): start it, or point \
                 JIRA_SYNC_TEST_REDIS at one (README, \"Tests\")"
                    )
                }),
        )
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(redis_url()) else {
            return;
        };
        let Ok(mut connection) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.0))
            .query(&mut connection)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut connection);
        }
    }
}

/// A SQLite file of this test's own, removed (with its journal) when this goes.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(name: &str) -> Self {
        TempFile(std::env::temp_dir().join(format!("{}-{name}.db", unique("sqlite"))))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}
