//! `serve`'s configuration: a TOML file, every key optional, and every key also from a
//! `JIRA_SYNC_<KEY>` environment variable (which wins over the file).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

/// Most concurrent component calls a server may be configured for.
pub const MAX_WORKERS: usize = 4096;

/// `serve`'s configuration (a TOML file; every key optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Where the server keeps its state (the database and the compiled component) unless
    /// `database` or `cache_dir` say otherwise: `$XDG_STATE_HOME/jira-sync`, else
    /// `~/.local/state/jira-sync`.
    pub data_dir: PathBuf,
    /// Where the server's state is kept: a SQLite file (default `<data_dir>/jira-sync.db`), or
    /// a PostgreSQL URL (`postgres://user@host/db`) that several servers may share.
    pub database: Option<String>,
    /// Connections to PostgreSQL at most (a bounded pool).
    pub database_connections: usize,
    /// The guest's cache: in memory (default, bounded by `cache_entries`), or a Redis URL
    /// (`redis://host:6379/0`) that several servers may share.
    pub cache: Option<String>,
    /// Connections to Redis at most (a bounded pool).
    pub cache_connections: usize,
    /// What every Redis key of this deployment starts with, so that several deployments can
    /// share one Redis.
    pub cache_prefix: String,
    /// A component other than the bundled one.
    pub component: Option<PathBuf>,
    /// Component calls in flight at once, each in its own instance (the instance pool is sized
    /// to it). A call waiting on Jira holds its slot but no thread.
    pub workers: usize,
    /// Threads that run guest code and the database (the calls' runtime); the transport has
    /// threads of its own.
    pub call_threads: usize,
    /// Timeout of one request to Jira.
    pub http_timeout_ms: u64,
    /// Largest Jira response body accepted.
    pub max_response_bytes: u64,
    /// Longest single `Retry-After` wait the host honours.
    pub max_sleep_seconds: u64,
    /// Where the precompiled component is kept between starts (default `<data_dir>/cache`).
    pub cache_dir: Option<PathBuf>,
    /// Where recorded calls are written as scenario files (default `<data_dir>/recordings`);
    /// recording is switched on per installation through the admin API.
    pub recordings_dir: Option<PathBuf>,
    /// When set, `/admin/*` requires `Authorization: Bearer <admin_token>`.
    pub admin_token: Option<String>,
    /// Serve the admin API without a token on a non-loopback address anyway.
    pub allow_open_admin: bool,
    /// `text` (default) or `json` log lines on stderr.
    pub log_format: LogFormat,
    /// Days a handled delivery id is remembered (Jira redelivers within hours).
    pub retention_days: u64,
    /// Entries the in-memory cache holds at most.
    pub cache_entries: u64,
    /// Open connections at most; more are answered 503 and closed.
    pub max_connections: usize,
    /// Time a client has to send its request headers, in milliseconds.
    pub header_timeout_ms: u64,
    /// Time a client has to send its request body, in milliseconds; slower is answered 408.
    pub body_timeout_ms: u64,
    /// Requests that may wait for a worker beyond those running (more are answered 503 with
    /// `Retry-After`); also the accepted webhooks whose jobs may wait in memory for a worker
    /// (more wait in the database).
    pub queue: usize,
    /// Seconds a server holds a job it runs, or a push it attempts, before another may take it
    /// over (its server died). A job's lease is renewed while its call runs; a push attempt
    /// (three Jira calls at most, each within `http_timeout_ms`) must end within it, and so must
    /// the upkeep of an OAuth installation (three requests at most).
    pub job_lease_seconds: u64,
    /// Workers one installation's calls may hold at once (default: a quarter of them, at least
    /// one), so that one installation's slow or rate-limiting Jira never takes every worker
    /// from the others.
    pub tenant_workers: Option<usize>,
    /// How long shutdown waits for requests in flight, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// The app's public base URL, as Jira reaches it (e.g. `https://sync.example.com`): OAuth
    /// installations' dynamic webhooks are registered to `<public_url>/webhooks/oauth/<client
    /// key>`, and not at all while it is unset; the Connect descriptor's `baseUrl` and the
    /// audience of lifecycle tokens (the server's own address while it is unset).
    pub public_url: Option<String>,
    /// The app key: the Connect descriptor's `key`, and that of installations Forge creates.
    pub app_key: String,
    /// The app's name in the Connect descriptor.
    pub app_name: String,
    /// Connect's install-key server: `installed`/`uninstalled` tokens are verified with the key
    /// it serves at `<connect_key_server>/<kid>`.
    pub connect_key_server: String,
    /// The Forge app's ARI (`ari:cloud:ecosystem::app/<id>`): the audience of its invocation
    /// tokens. Unset, the server answers no Forge app (`/forge/events` is 404).
    pub forge_app_ari: Option<String>,
    /// Where Forge's invocation-token keys are published (a JWKS).
    pub forge_jwks_url: String,
    /// Atlassian's OAuth 2.0 token endpoint, where access tokens are refreshed.
    pub oauth_token_url: String,
    /// The JQL filter of the dynamic webhooks of OAuth installations that name none (Jira
    /// accepts only `=`, `!=`, `IN`, `NOT IN` on issueKey, project, issuetype, status,
    /// assignee and reporter); without one, such installations get no webhooks.
    pub oauth_webhook_jql: Option<String>,
    /// Seconds between two looks at OAuth installations' tokens and webhooks.
    pub oauth_interval_seconds: u64,
}

/// Every configuration key, as `JIRA_SYNC_<KEY>` variables may set it.
const KEYS: &[&str] = &[
    "app_key",
    "app_name",
    "connect_key_server",
    "forge_app_ari",
    "forge_jwks_url",
    "listen",
    "data_dir",
    "database",
    "database_connections",
    "cache",
    "cache_connections",
    "cache_prefix",
    "component",
    "workers",
    "call_threads",
    "http_timeout_ms",
    "max_response_bytes",
    "max_sleep_seconds",
    "cache_dir",
    "recordings_dir",
    "admin_token",
    "allow_open_admin",
    "log_format",
    "retention_days",
    "cache_entries",
    "max_connections",
    "header_timeout_ms",
    "body_timeout_ms",
    "queue",
    "job_lease_seconds",
    "tenant_workers",
    "shutdown_grace_ms",
    "public_url",
    "oauth_token_url",
    "oauth_webhook_jql",
    "oauth_interval_seconds",
];

/// Where a server keeps its state (see [`ServerConfig::database`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file of this server's own.
    Sqlite(PathBuf),
    /// A PostgreSQL database, by URL, that several servers may share.
    Postgres(String),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people: plain text, coloured only on a terminal.
    Text,
    /// For log pipelines: one JSON object per line.
    Json,
}

fn default_data_dir() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state")));
    state.map_or_else(
        || PathBuf::from("jira-sync-data"),
        |dir| dir.join("jira-sync"),
    )
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            data_dir: default_data_dir(),
            database: None,
            database_connections: 16,
            cache: None,
            cache_connections: 16,
            cache_prefix: "jira-sync:".into(),
            component: None,
            workers: 256,
            call_threads: 2,
            http_timeout_ms: 10_000,
            max_response_bytes: 1024 * 1024,
            max_sleep_seconds: 30,
            cache_dir: None,
            recordings_dir: None,
            admin_token: None,
            allow_open_admin: false,
            log_format: LogFormat::Text,
            retention_days: 14,
            cache_entries: 100_000,
            max_connections: 1024,
            header_timeout_ms: 5_000,
            body_timeout_ms: 10_000,
            queue: 1024,
            job_lease_seconds: 120,
            tenant_workers: None,
            shutdown_grace_ms: 30_000,
            public_url: None,
            app_key: "jira-sync".into(),
            app_name: "jira-sync".into(),
            connect_key_server: crate::install::keys::CONNECT_KEY_SERVER.into(),
            forge_app_ari: None,
            forge_jwks_url: crate::install::keys::FORGE_JWKS_URL.into(),
            oauth_token_url: "https://auth.atlassian.com/oauth/token".into(),
            oauth_webhook_jql: None,
            oauth_interval_seconds: 60,
        }
    }
}

impl ServerConfig {
    /// Refuses, at start, a configuration the host cannot honour, rather than failing under
    /// load.
    pub fn check(&self) -> anyhow::Result<()> {
        if self
            .admin_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            anyhow::bail!(
                "admin_token is empty: no request could use the admin API; set a token or leave \
                 it out"
            );
        }
        let loopback = self
            .listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|address| address.ip().is_loopback())
            || self.listen.starts_with("localhost:");
        if !loopback && self.admin_token.is_none() && !self.allow_open_admin {
            anyhow::bail!(
                "listen = {} is reachable from other machines and the admin API has no token: set \
                 admin_token (or JIRA_SYNC_ADMIN_TOKEN), or allow_open_admin = true if a proxy \
                 guards /admin",
                self.listen
            );
        }
        if self.workers == 0 || self.workers > MAX_WORKERS {
            anyhow::bail!(
                "workers = {} cannot be honoured: each call in flight holds an instance slot, \
                 each slot reserves address space; choose 1 to {MAX_WORKERS}",
                self.workers
            );
        }
        if self.database_connections == 0 || self.cache_connections == 0 {
            anyhow::bail!("database_connections and cache_connections must be at least 1");
        }
        if let Some(cache) = &self.cache
            && !cache.starts_with("redis://")
            && !cache.starts_with("rediss://")
        {
            anyhow::bail!("cache = {cache:?}: only a redis:// URL, or no cache key (in memory)");
        }
        for (key, url) in [
            ("public_url", self.public_url.as_deref()),
            ("oauth_token_url", Some(self.oauth_token_url.as_str())),
            ("connect_key_server", Some(self.connect_key_server.as_str())),
            ("forge_jwks_url", Some(self.forge_jwks_url.as_str())),
        ] {
            if let Some(url) = url
                && !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
            {
                anyhow::bail!("{key} = {url:?} is not an http:// or https:// URL");
            }
        }
        if self
            .oauth_webhook_jql
            .as_deref()
            .is_some_and(|jql| jql.trim().is_empty())
        {
            anyhow::bail!("oauth_webhook_jql is empty: set a filter or leave it out");
        }
        if self.oauth_interval_seconds == 0 {
            anyhow::bail!("oauth_interval_seconds must be at least 1");
        }
        if self.call_threads == 0 || self.call_threads > 256 {
            anyhow::bail!(
                "call_threads = {} cannot be honoured; choose 1 to 256",
                self.call_threads
            );
        }
        Ok(())
    }

    /// Workers one installation may hold at once.
    pub fn workers_per_tenant(&self) -> usize {
        self.tenant_workers
            .unwrap_or(self.workers / 4)
            .clamp(1, self.workers.max(1))
    }

    /// The database the server keeps its state in.
    pub fn database(&self) -> Database {
        match self.database.as_deref() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Database::Postgres(url.to_owned())
            }
            Some(path) => Database::Sqlite(PathBuf::from(path)),
            None => Database::Sqlite(self.data_dir.join("jira-sync.db")),
        }
    }

    /// The directory of the compiled component.
    pub fn cache_path(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("cache"))
    }

    /// The directory recordings are written under.
    pub fn recordings_path(&self) -> PathBuf {
        self.recordings_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("recordings"))
    }

    /// The configuration from the TOML file at `path` (if any), then every `JIRA_SYNC_<KEY>`
    /// variable of `environment` over it. A variable's value is read as a TOML value (`8`,
    /// `true`), else as a string.
    pub fn from_sources(
        path: Option<&Path>,
        environment: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let mut table: toml::Table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("read {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("{} is not a valid config", path.display()))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in environment {
            let Some(key) = name.strip_prefix("JIRA_SYNC_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            if !KEYS.contains(&key.as_str()) {
                continue;
            }
            let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            table.insert(key, value);
        }
        table
            .try_into()
            .context("the configuration (file and JIRA_SYNC_* variables) is not valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_key_comes_from_the_environment_over_the_file() {
        let file =
            std::env::temp_dir().join(format!("jira-sync-config-{}.toml", std::process::id()));
        std::fs::write(&file, "workers = 2\nlisten = \"127.0.0.1:9000\"\n").unwrap();
        let config = ServerConfig::from_sources(
            Some(&file),
            vars(&[
                ("JIRA_SYNC_WORKERS", "8"),
                ("JIRA_SYNC_ADMIN_TOKEN", "s3cret"),
                ("JIRA_SYNC_LOG_FORMAT", "json"),
                ("JIRA_SYNC_DATA_DIR", "/var/lib/jira-sync"),
                ("JIRA_SYNC_ALLOW_OPEN_ADMIN", "true"),
                ("JIRA_SYNC_NOT_A_KEY", "ignored"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(config.workers, 8, "the environment wins");
        assert_eq!(config.listen, "127.0.0.1:9000", "the file's key stays");
        assert_eq!(config.admin_token.as_deref(), Some("s3cret"));
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(config.allow_open_admin);
        assert_eq!(
            config.database(),
            Database::Sqlite(PathBuf::from("/var/lib/jira-sync/jira-sync.db"))
        );
        assert_eq!(
            config.cache_path(),
            PathBuf::from("/var/lib/jira-sync/cache")
        );
    }

    #[test]
    fn the_database_is_a_file_or_a_postgres_url_and_the_cache_memory_or_redis() {
        let config = ServerConfig::from_sources(
            None,
            vars(&[
                ("JIRA_SYNC_DATABASE", "postgres://root@127.0.0.1/test"),
                ("JIRA_SYNC_CACHE", "redis://127.0.0.1:6379/0"),
            ]),
        )
        .unwrap();
        assert_eq!(
            config.database(),
            Database::Postgres("postgres://root@127.0.0.1/test".into())
        );
        assert!(config.check().is_ok());
        let file = ServerConfig {
            database: Some("state/js.db".into()),
            ..ServerConfig::default()
        };
        assert_eq!(file.database(), Database::Sqlite("state/js.db".into()));
        let memcached = ServerConfig {
            cache: Some("memcached://x".into()),
            ..ServerConfig::default()
        };
        let message = format!("{:#}", memcached.check().unwrap_err());
        assert!(message.contains("redis://"), "{message}");
    }

    #[test]
    fn the_oauth_settings_come_from_the_environment_and_are_checked() {
        let config = ServerConfig::from_sources(
            None,
            vars(&[
                ("JIRA_SYNC_PUBLIC_URL", "https://sync.example.com"),
                (
                    "JIRA_SYNC_OAUTH_TOKEN_URL",
                    "http://127.0.0.1:9/oauth/token",
                ),
                ("JIRA_SYNC_OAUTH_WEBHOOK_JQL", "project IN (APP, OPS)"),
                ("JIRA_SYNC_OAUTH_INTERVAL_SECONDS", "5"),
            ]),
        )
        .unwrap();
        assert_eq!(
            config.public_url.as_deref(),
            Some("https://sync.example.com")
        );
        assert_eq!(config.oauth_token_url, "http://127.0.0.1:9/oauth/token");
        assert_eq!(
            config.oauth_webhook_jql.as_deref(),
            Some("project IN (APP, OPS)")
        );
        assert_eq!(config.oauth_interval_seconds, 5);
        assert!(config.check().is_ok());
        assert_eq!(
            ServerConfig::default().oauth_token_url,
            "https://auth.atlassian.com/oauth/token"
        );
        for (bad, named) in [
            (
                ServerConfig {
                    public_url: Some("sync.example.com".into()),
                    ..ServerConfig::default()
                },
                "public_url",
            ),
            (
                ServerConfig {
                    oauth_token_url: "ftp://auth.example".into(),
                    ..ServerConfig::default()
                },
                "oauth_token_url",
            ),
            (
                ServerConfig {
                    oauth_webhook_jql: Some(" ".into()),
                    ..ServerConfig::default()
                },
                "oauth_webhook_jql",
            ),
            (
                ServerConfig {
                    oauth_interval_seconds: 0,
                    ..ServerConfig::default()
                },
                "oauth_interval_seconds",
            ),
        ] {
            let message = format!("{:#}", bad.check().unwrap_err());
            assert!(message.contains(named), "{message}");
        }
    }

    #[test]
    fn a_bad_value_is_a_clear_error() {
        let error =
            ServerConfig::from_sources(None, vars(&[("JIRA_SYNC_WORKERS", "many")])).unwrap_err();
        assert!(format!("{error:#}").contains("workers"), "{error:#}");
    }

    #[test]
    fn an_open_admin_api_on_a_public_address_is_refused_unless_asked_for() {
        let open = ServerConfig {
            listen: "0.0.0.0:8080".into(),
            ..ServerConfig::default()
        };
        let message = format!("{:#}", open.check().unwrap_err());
        assert!(message.contains("admin_token"), "{message}");
        let blank = ServerConfig {
            admin_token: Some("  ".into()),
            listen: "127.0.0.1:0".into(),
            ..ServerConfig::default()
        };
        let message = format!("{:#}", blank.check().unwrap_err());
        assert!(message.contains("admin_token is empty"), "{message}");
        for accepted in [
            ServerConfig {
                admin_token: Some("t".into()),
                ..open.clone()
            },
            ServerConfig {
                allow_open_admin: true,
                ..open.clone()
            },
            ServerConfig {
                listen: "127.0.0.1:0".into(),
                ..open.clone()
            },
            ServerConfig {
                listen: "[::1]:8080".into(),
                ..open.clone()
            },
        ] {
            assert!(accepted.check().is_ok(), "{}", accepted.listen);
        }
    }
}
