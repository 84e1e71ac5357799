//! One behaviour suite for every backend (docs/decisions/0009): the same contract tests run
//! against memory, SQLite, PostgreSQL and Redis, with real concurrency (many tasks at once on a
//! multi-threaded runtime) against the real servers. PostgreSQL tests each work in a schema of
//! their own and Redis tests under a key prefix of their own, dropped at the end.

mod contract;
mod oauth;
mod services;

use std::sync::Arc;

use jira_sync_host::backends::{BoundedCache, MemoryCache, MemoryPlatform, SqliteStore};

use services::{PgSchema, RedisPrefix, TempFile};

fn sqlite(name: &str) -> (Arc<SqliteStore>, TempFile) {
    let file = TempFile::new(name);
    (Arc::new(SqliteStore::open(&file.0).unwrap()), file)
}

macro_rules! platform_contract {
    ($($test:ident),* $(,)?) => {
        mod memory_platform {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                super::contract::$test(std::sync::Arc::new(super::MemoryPlatform::default())).await;
            })*
        }
        mod sqlite_platform {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                let (store, _file) = super::sqlite(stringify!($test));
                super::contract::$test(store).await;
            })*
        }
        mod postgres_platform {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                let schema = super::PgSchema::new().await;
                super::contract::$test(schema.store().await).await;
            })*
        }
    };
}

macro_rules! store_contract {
    ($($test:ident),* $(,)?) => {
        mod sqlite_store {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                let (store, _file) = super::sqlite(stringify!($test));
                let other = std::sync::Arc::new(
                    jira_sync_host::backends::SqliteStore::open(&_file.0).unwrap(),
                );
                super::contract::$test(store, other).await;
            })*
        }
        mod postgres_store {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                let schema = super::PgSchema::new().await;
                super::contract::$test(schema.store().await, schema.store().await).await;
            })*
        }
    };
}

macro_rules! cache_contract {
    ($($test:ident),* $(,)?) => {
        mod memory_cache {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                super::contract::$test(std::sync::Arc::new(super::MemoryCache::default())).await;
            })*
        }
        mod bounded_cache {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                super::contract::$test(std::sync::Arc::new(super::BoundedCache::new(10_000))).await;
            })*
        }
        mod redis_cache {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                let prefix = super::RedisPrefix::new();
                super::contract::$test(prefix.cache().await).await;
            })*
        }
    };
}

platform_contract!(
    one_claim_of_many_at_once_wins,
    watermarks_only_move_forward_under_concurrent_commits,
    a_delivery_is_marked_handled_once,
    a_commit_applies_all_or_nothing,
    reads_answer_what_was_written,
    a_rename_moves_links_and_watermarks_and_merges_them,
    a_rename_comes_before_the_watermarks_of_its_commit,
    an_unlink_removes_links_and_watermarks_but_not_groups,
    a_failing_commit_applies_neither_rename_nor_unlink,
    a_rename_racing_watermark_commits_ends_consistent,
);

store_contract!(
    two_servers_never_claim_one_job,
    a_job_whose_lease_ran_out_is_taken_over_and_the_old_lease_is_fenced,
    jobs_are_claimed_round_robin_per_installation,
    a_redelivered_job_is_recorded_once,
    outbox_retries_come_due_at_their_time_one_per_installation,
    an_installation_s_credentials_and_uninstall_reach_every_server,
    oauth_upkeep_is_leased_to_one_server_at_a_time_and_backs_off_after_failures,
    oauth_tokens_are_saved_only_over_the_refresh_token_they_came_from,
);

cache_contract!(
    the_cache_round_trips_and_expires,
    the_cache_serves_many_calls_at_once,
);

#[tokio::test]
async fn an_unreachable_postgres_fails_at_start_with_a_clear_error() {
    let error = jira_sync_host::backends::PgStore::connect("postgres://nobody@127.0.0.1:9/x", 2)
        .await
        .err()
        .expect("nothing listens on port 9");
    let message = format!("{error:#}");
    assert!(message.contains("127.0.0.1"), "{message}");
}

#[tokio::test]
async fn an_unreachable_redis_fails_at_start_with_a_clear_error() {
    let error = jira_sync_host::backends::RedisCache::connect("redis://127.0.0.1:9", "x:", 2)
        .await
        .err()
        .expect("nothing listens on port 9");
    let message = format!("{error:#}");
    assert!(message.to_lowercase().contains("redis"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_that_loses_its_tables_fails_calls_with_a_backend_error() {
    let schema = PgSchema::new().await;
    let store = schema.store().await;
    schema.drop_tables().await;
    use jira_sync_host::backends::Platform as _;
    let error = store.group(1).await.unwrap_err();
    assert!(error.0.starts_with("postgres"), "{error}");
}

/// A Redis that stops answering mid-use (a proxy in front of the real one stops forwarding)
/// fails each cache call with a backend error instead of hanging it; one that goes away
/// altogether (the proxy closes) fails them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_stalls_or_goes_away_mid_use_fails_calls_instead_of_hanging_them() {
    use jira_sync_host::backends::CacheBackend as _;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let upstream = services::redis_url()
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let stalled = Arc::new(AtomicBool::new(false));
    let proxy = tokio::spawn({
        let stalled = stalled.clone();
        async move {
            let mut pumps = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_in, client_out) = client.into_split();
                let (server_in, server_out) = server.into_split();
                for (mut from, mut to) in [(client_in, server_out), (server_in, client_out)] {
                    let stalled = stalled.clone();
                    pumps.spawn(async move {
                        let mut buffer = [0u8; 16 * 1024];
                        while let Ok(read @ 1..) = from.read(&mut buffer).await {
                            if stalled.load(Ordering::SeqCst) {
                                std::future::pending::<()>().await;
                            }
                            if to.write_all(&buffer[..read]).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        }
    });
    let prefix = RedisPrefix::new();
    let cache = jira_sync_host::backends::RedisCache::connect(
        &format!("redis://{address}"),
        &prefix.name(),
        2,
    )
    .await
    .unwrap();
    cache.set("k", "v", 60, 0).await.unwrap();
    assert_eq!(cache.get("k", 0).await.unwrap().as_deref(), Some("v"));

    stalled.store(true, Ordering::SeqCst);
    let guard = std::time::Duration::from_secs(30);
    let stalled_get = tokio::time::timeout(guard, cache.get("k", 0)).await;
    let error = stalled_get
        .expect("a stalled Redis fails the call")
        .unwrap_err();
    assert!(error.0.starts_with("redis: get"), "{error}");

    proxy.abort();
    let gone = tokio::time::timeout(guard, cache.set("k", "w", 60, 0)).await;
    let error = gone.expect("a Redis gone fails the call").unwrap_err();
    assert!(error.0.starts_with("redis: set"), "{error}");
}
