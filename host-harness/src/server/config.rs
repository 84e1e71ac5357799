//! `serve`'s configuration: a TOML file, every key optional.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::runtime::POOL_SLOTS;

/// `serve`'s configuration (a TOML file; every key optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// The SQLite file that keeps the server's state.
    pub database: PathBuf,
    /// A component other than the bundled one.
    pub component: Option<PathBuf>,
    /// Threads serving requests (each call gets its own instance).
    pub workers: usize,
    /// Timeout of one request to Jira.
    pub http_timeout_ms: u64,
    /// Largest Jira response body accepted.
    pub max_response_bytes: u64,
    /// Longest single `Retry-After` wait the host honours.
    pub max_sleep_seconds: u64,
    /// Where the precompiled component is kept between starts.
    pub cache_dir: PathBuf,
    /// When set, `/admin/*` requires `Authorization: Bearer <admin_token>`.
    pub admin_token: Option<String>,
    /// Open connections at most; more are answered 503 and closed.
    pub max_connections: usize,
    /// Time a client has to send its request headers, in milliseconds.
    pub header_timeout_ms: u64,
    /// Time a client has to send its request body, in milliseconds; slower is answered 408.
    pub body_timeout_ms: u64,
    /// Requests that may wait for a worker beyond those running; more are answered 503 with
    /// `Retry-After`.
    pub queue: usize,
    /// How long shutdown waits for requests in flight, in milliseconds.
    pub shutdown_grace_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            database: "jira-sync.db".into(),
            component: None,
            workers: 4,
            http_timeout_ms: 10_000,
            max_response_bytes: 1024 * 1024,
            max_sleep_seconds: 30,
            cache_dir: "jira-sync-cache".into(),
            admin_token: None,
            max_connections: 1024,
            header_timeout_ms: 5_000,
            body_timeout_ms: 10_000,
            queue: 64,
            shutdown_grace_ms: 30_000,
        }
    }
}

impl ServerConfig {
    /// Refuses, at start, a configuration the host cannot honour, rather than failing under
    /// load.
    pub fn check(&self) -> anyhow::Result<()> {
        let slots = POOL_SLOTS as usize;
        if self.workers == 0 || self.workers > slots {
            anyhow::bail!(
                "workers = {} cannot be honoured: each worker runs one instance at a time and the \
                 instance pool has {slots} slots; choose 1 to {slots}",
                self.workers
            );
        }
        Ok(())
    }

    /// Reads the TOML file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{} is not a valid config", path.display()))
    }
}
