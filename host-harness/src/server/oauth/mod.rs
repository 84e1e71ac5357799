//! The upkeep of OAuth 2.0 (3LO) installations (docs/behaviour.md#10.2): a background task of
//! `serve` that refreshes each installation's access token before it expires, and registers
//! its dynamic webhooks and extends them before Jira drops them.
//!
//! Atlassian rotates refresh tokens: a refresh answers a new one and disables the one used, so
//! two servers refreshing one installation at once would leave it with a dead token. Each
//! installation's upkeep is therefore leased to one server at a time ([`Store::lease_oauth`]),
//! the new tokens are stored before anything uses them, and they are stored only over the
//! refresh token they came from ([`Store::save_oauth_tokens`]). A failure holds the next
//! attempt back (doubling, up to an hour); `invalid_grant` is logged as an error that needs a
//! person: the app must be authorised again.
//!
//! - `atlassian.rs`: the requests (token endpoint, webhook registration and extension).

mod atlassian;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::backends::{BackendError, HttpBackend, Store};
use crate::installation::{CredentialSpec, InstallationSpec, OauthTokens};
use atlassian::{Extended, Failure};

use super::ServerConfig;

/// An access token is refreshed once it expires within this many seconds.
pub const REFRESH_MARGIN_SECONDS: u64 = 300;
/// Webhooks are extended once they expire within this many seconds (5 days).
pub const WEBHOOK_MARGIN_SECONDS: u64 = 5 * 86_400;
/// The longest the upkeep of an installation waits after failures in a row.
const MAX_BACKOFF_SECONDS: u64 = 3600;
/// Times the tokens of a refresh are written before giving up: they are the only copy of the
/// new refresh token, and the old one no longer works.
const SAVE_TRIES: u32 = 3;

/// What the upkeep needs from the server's configuration.
#[derive(Debug, Clone)]
pub struct OauthSettings {
    /// Atlassian's token endpoint.
    pub token_url: String,
    /// The app's public base URL; dynamic webhooks are registered only when it is known.
    pub public_url: Option<String>,
    /// The webhooks' JQL filter for installations that name none.
    pub default_jql: Option<String>,
    /// How long a server holds an installation's upkeep: longer than the upkeep's requests.
    pub lease_seconds: u64,
}

impl OauthSettings {
    /// The settings `config` gives.
    pub fn from_config(config: &ServerConfig) -> Self {
        OauthSettings {
            token_url: config.oauth_token_url.clone(),
            public_url: config.public_url.clone(),
            default_jql: config.oauth_webhook_jql.clone(),
            lease_seconds: config.job_lease_seconds,
        }
    }
}

/// What the upkeep did for one installation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upkept {
    /// Its access token was refreshed (and the new tokens stored).
    pub refreshed: bool,
    /// Its webhooks were registered (none were, or Jira no longer knew them).
    pub webhooks_registered: bool,
    /// Its webhooks were extended.
    pub webhooks_extended: bool,
    /// Its refresh token changed while the upkeep ran (someone added the installation again):
    /// what the upkeep got from the old one was dropped.
    pub reauthorised: bool,
}

/// Why the upkeep of an installation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpkeepError {
    /// A request to the token endpoint or the site failed.
    #[error(transparent)]
    Request(#[from] Failure),
    /// The store failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The installation holds no refresh token and its access token is gone or expiring.
    #[error("no refresh token: the app must be authorised again on the site")]
    NoRefreshToken,
}

/// The upkeep of one installation in a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The installation.
    pub client_key: String,
    /// What was done, or why it failed.
    pub result: Result<Upkept, UpkeepError>,
}

/// Keeps OAuth installations' tokens and webhooks up.
pub struct OauthUpkeep {
    store: Arc<dyn Store>,
    http: Arc<dyn HttpBackend>,
    settings: OauthSettings,
    /// Whether the operator was told that webhooks wait for `public_url` (once per process).
    told_no_public_url: AtomicBool,
}

/// Seconds to hold the upkeep back after `failures` failures in a row: 60, 120, 240, ... up to
/// an hour.
fn backoff(failures: u32) -> u64 {
    60u64
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF_SECONDS)
}

impl OauthUpkeep {
    /// The upkeep of `store`'s installations, with requests through `http`.
    pub fn new(store: Arc<dyn Store>, http: Arc<dyn HttpBackend>, settings: OauthSettings) -> Self {
        OauthUpkeep {
            store,
            http,
            settings,
            told_no_public_url: AtomicBool::new(false),
        }
    }

    /// The JQL of `spec`'s webhooks, if the host can register them at all.
    fn webhook_jql<'s>(&'s self, spec: &'s InstallationSpec) -> Option<&'s str> {
        self.settings.public_url.as_ref()?;
        match &spec.credentials {
            CredentialSpec::Oauth { jql: Some(jql), .. } => Some(jql),
            _ => self.settings.default_jql.as_deref(),
        }
    }

    fn token_due(tokens: &OauthTokens, now: u64) -> bool {
        tokens.access_token.is_none()
            || (tokens.refresh_token.is_some()
                && tokens.access_expires_at <= now + REFRESH_MARGIN_SECONDS)
    }

    fn webhooks_due(&self, spec: &InstallationSpec, tokens: &OauthTokens, now: u64) -> bool {
        self.webhook_jql(spec).is_some()
            && (tokens.webhook_ids.is_empty()
                || tokens.webhooks_expire_at <= now + WEBHOOK_MARGIN_SECONDS)
    }

    /// Whether `spec` needs its upkeep at `now`.
    fn due(&self, spec: &InstallationSpec, now: u64) -> bool {
        spec.oauth_tokens().is_some_and(|tokens| {
            Self::token_due(&tokens, now) || self.webhooks_due(spec, &tokens, now)
        })
    }

    /// One round at `now` (Unix seconds): every installation whose token or webhooks are due,
    /// and whose upkeep this server could lease, is kept up. What was done, per installation.
    pub async fn round(&self, now: u64) -> Vec<Outcome> {
        let specs = match self.store.oauth_installations(now).await {
            Ok(specs) => specs,
            Err(e) => {
                tracing::warn!(target: "jira_sync::oauth", "read OAuth installations: {e}");
                return Vec::new();
            }
        };
        if self.settings.public_url.is_none()
            && specs
                .iter()
                .any(|s| s.oauth_tokens().is_some_and(|t| t.webhook_ids.is_empty()))
            && !self.told_no_public_url.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                target: "jira_sync::oauth",
                event = "oauth.no-public-url",
                "public_url is not set: OAuth installations' dynamic webhooks are not registered"
            );
        }
        let mut outcomes = Vec::new();
        for spec in specs.iter().filter(|spec| self.due(spec, now)) {
            let key = spec.client_key.as_str();
            let until = now + self.settings.lease_seconds;
            let lease = match self.store.lease_oauth(key, now, until).await {
                Ok(Some(lease)) => lease,
                // Another server holds it, or it went since it was listed.
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(target: "jira_sync::oauth", client_key = key, "lease: {e}");
                    continue;
                }
            };
            // Read again under the lease: the server that held it last may have done it all.
            let result = if self.due(&lease.spec, now) {
                self.keep_up(&lease.spec, now).await
            } else {
                Ok(Upkept::default())
            };
            let (retry_at, failed) = match &result {
                Ok(_) => (0, false),
                Err(_) => (now + backoff(lease.failures + 1), true),
            };
            report(
                key,
                &result,
                lease.failures + 1,
                retry_at.saturating_sub(now),
            );
            if let Err(e) = self.store.release_oauth(key, until, retry_at, failed).await {
                // The lease runs out and the next round tries again.
                tracing::warn!(target: "jira_sync::oauth", client_key = key, "release: {e}");
            }
            outcomes.push(Outcome {
                client_key: key.to_owned(),
                result,
            });
        }
        outcomes
    }

    /// Refreshes `spec`'s access token if due, then registers or extends its webhooks if due.
    async fn keep_up(&self, spec: &InstallationSpec, now: u64) -> Result<Upkept, UpkeepError> {
        let CredentialSpec::Oauth {
            client_id,
            client_secret,
            ..
        } = &spec.credentials
        else {
            return Ok(Upkept::default());
        };
        let key = spec.client_key.as_str();
        let mut tokens = spec.oauth_tokens().unwrap_or_default();
        let mut upkept = Upkept::default();
        if Self::token_due(&tokens, now) {
            let used = tokens
                .refresh_token
                .clone()
                .ok_or(UpkeepError::NoRefreshToken)?;
            let grant = atlassian::refresh(
                &*self.http,
                &self.settings.token_url,
                client_id,
                client_secret,
                &used,
            )
            .await?;
            tokens.access_token = Some(grant.access_token);
            tokens.access_expires_at = now + grant.expires_in;
            if grant.refresh_token.is_some() {
                tokens.refresh_token = grant.refresh_token;
            }
            // Stored before anything uses it: the old refresh token no longer works.
            if !self.save(key, Some(&used), &tokens).await? {
                upkept.reauthorised = true;
                return Ok(upkept);
            }
            upkept.refreshed = true;
        }
        if self.webhooks_due(spec, &tokens, now)
            && let (Some(jql), Some(public_url), Some(access)) = (
                self.webhook_jql(spec),
                &self.settings.public_url,
                tokens.access_token.clone(),
            )
        {
            let extended = if tokens.webhook_ids.is_empty() {
                Extended::Gone
            } else {
                atlassian::extend_webhooks(
                    &*self.http,
                    &spec.base_url,
                    &access,
                    &tokens.webhook_ids,
                    now,
                )
                .await?
            };
            match extended {
                Extended::Until(at) => {
                    tokens.webhooks_expire_at = at;
                    upkept.webhooks_extended = true;
                }
                Extended::Gone => {
                    let url = format!(
                        "{}{}{key}",
                        public_url.trim_end_matches('/'),
                        jira_sync_plugin::webhook::OAUTH_WEBHOOK_PREFIX
                    );
                    tokens.webhook_ids = atlassian::register_webhooks(
                        &*self.http,
                        &spec.base_url,
                        &access,
                        &url,
                        jql,
                    )
                    .await?;
                    tokens.webhooks_expire_at = now + atlassian::WEBHOOK_LIFETIME_SECONDS;
                    upkept.webhooks_registered = true;
                }
            }
            let current = tokens.refresh_token.clone();
            if !self.save(key, current.as_deref(), &tokens).await? {
                upkept.reauthorised = true;
            }
        }
        Ok(upkept)
    }

    /// [`Store::save_oauth_tokens`], tried again on a failing store: after a refresh these
    /// tokens are the only copy of the refresh token that works.
    async fn save(
        &self,
        key: &str,
        expected: Option<&str>,
        tokens: &OauthTokens,
    ) -> Result<bool, BackendError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.store.save_oauth_tokens(key, expected, tokens).await {
                Err(e) if tries < SAVE_TRIES => {
                    tracing::warn!(target: "jira_sync::oauth", client_key = key, "save tokens: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                saved => return saved,
            }
        }
    }
}

/// Logs what the upkeep of `key` came to; never a token.
fn report(key: &str, result: &Result<Upkept, UpkeepError>, failures: u32, retry_in: u64) {
    match result {
        Ok(upkept) => {
            if upkept.refreshed {
                tracing::info!(target: "jira_sync::oauth", client_key = key, event = "oauth.token-refreshed", "refreshed the access token");
            }
            if upkept.webhooks_registered {
                tracing::info!(target: "jira_sync::oauth", client_key = key, event = "oauth.webhooks-registered", "registered the dynamic webhooks");
            }
            if upkept.webhooks_extended {
                tracing::info!(target: "jira_sync::oauth", client_key = key, event = "oauth.webhooks-extended", "extended the dynamic webhooks");
            }
            if upkept.reauthorised {
                tracing::info!(target: "jira_sync::oauth", client_key = key, event = "oauth.reauthorised", "the installation was authorised again meanwhile: kept its new tokens");
            }
        }
        Err(e @ (UpkeepError::Request(Failure::InvalidGrant(_)) | UpkeepError::NoRefreshToken)) => {
            tracing::error!(
                target: "jira_sync::oauth",
                client_key = key, event = "oauth.reauthorisation-needed", failures, retry_in,
                "{e}"
            )
        }
        Err(e) => tracing::warn!(
            target: "jira_sync::oauth",
            client_key = key, event = "oauth.upkeep-failed", failures, retry_in,
            "{e}"
        ),
    }
}

/// Runs a round at start and every `every`, until the server stops.
pub(super) async fn keep_up_every(upkeep: OauthUpkeep, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        upkeep.round(super::outbox::now()).await;
    }
}

#[cfg(test)]
mod tests;
