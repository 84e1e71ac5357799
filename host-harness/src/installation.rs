//! An installation as the host stores and configures it: the Jira site, its credentials, its
//! sync configuration, and the host-side limits of one call for it. The defaults live here and
//! only here; scenario files, the admin API and the stock backends all read them from this type.

use std::collections::BTreeMap;

use jira_sync_plugin::model::{
    self, DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_EXACT_STATUS_MAPPING, DEFAULT_MAX_EMAIL_LOOKUPS,
    DEFAULT_MAX_TOKEN_LIFETIME_SECONDS, DEFAULT_MAX_TRANSITION_HOPS,
    DEFAULT_WEBHOOK_MAX_WAIT_SECONDS, RetryPolicy,
};
use serde::{Deserialize, Serialize};

use crate::limits::Limits;

/// One Jira site that installed the app, with everything the host keeps about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallationSpec {
    /// The installation's id: Atlassian Connect's `clientKey` (the `iss` of Jira's inbound
    /// tokens), or one the operator chose for another kind of credentials.
    pub client_key: String,
    /// Atlassian Connect `sharedSecret`: signs tokens both ways. Connect installations only;
    /// empty for the other kinds.
    #[serde(default)]
    pub shared_secret: String,
    /// How Jira and the app authenticate to each other (docs/behaviour.md#10); Connect, with
    /// `shared_secret`, when absent.
    #[serde(default, skip_serializing_if = "CredentialSpec::is_connect")]
    pub credentials: CredentialSpec,
    /// The base URL the guest reaches the site at; the only origin it may reach during a call
    /// for it.
    pub base_url: String,
    /// The app key, the `iss` of the tokens the component signs.
    pub app_key: String,
    /// The app may call Jira's email API for users who hide their email.
    #[serde(default)]
    pub use_email_scope: bool,
    /// Jira project id -> status ids.
    #[serde(default)]
    pub sync_status_forward: BTreeMap<String, StatusPair>,
    /// Jira -> platform status sync.
    #[serde(default = "yes")]
    pub sync_status_reverse: bool,
    /// Platform -> Jira assignee sync.
    #[serde(default = "yes")]
    pub sync_forward_assignment: bool,
    /// Jira -> platform assignee sync.
    #[serde(default = "yes")]
    pub sync_reverse_assignment: bool,
    /// How groups are resolved when Jira moves an issue into a done status.
    #[serde(default)]
    pub resolution_strategy: Strategy,
    /// Transitions one status sync may take (docs/behaviour.md#2.7).
    #[serde(default = "default_hops")]
    pub max_transition_hops: u32,
    /// How 429s are ridden out (docs/behaviour.md#6).
    #[serde(default)]
    pub retry: RetrySpec,
    /// Leeway on inbound tokens' `exp` and `iat`, in seconds (docs/behaviour.md#1.2).
    #[serde(default = "default_clock_skew")]
    pub clock_skew_seconds: u32,
    /// The longest an inbound token may live, `exp - iat`, in seconds (docs/behaviour.md#1.2).
    #[serde(default = "default_max_token_lifetime")]
    pub max_token_lifetime_seconds: u32,
    /// Seconds one webhook may wait out Jira's 429s in all (docs/behaviour.md#6).
    #[serde(default = "default_webhook_max_wait")]
    pub webhook_max_wait_seconds: u32,
    /// Only the exact mapped status counts as already there for a status sync
    /// (docs/behaviour.md#2.4).
    #[serde(default = "default_exact_status_mapping")]
    pub exact_status_mapping: bool,
    /// Hidden emails one assignee search may look up through the email API
    /// (docs/behaviour.md#3.2).
    #[serde(default = "default_max_email_lookups")]
    pub max_email_lookups: u32,
    /// What one call for this installation may consume (host-side; the guest never sees it).
    #[serde(default)]
    pub limits: Limits,
    /// Jira uninstalled the app from this site (Connect's `uninstalled` callback): calls find
    /// no installation, so its deliveries are refused and its outbound syncs stop; its links and
    /// settings stay for a reinstall.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uninstalled: bool,
}

impl InstallationSpec {
    /// An installation of `app_key` on the site at `base_url`, every other setting at its
    /// default.
    pub fn new(client_key: &str, shared_secret: &str, base_url: &str, app_key: &str) -> Self {
        InstallationSpec {
            client_key: client_key.to_owned(),
            shared_secret: shared_secret.to_owned(),
            credentials: CredentialSpec::Connect,
            base_url: base_url.to_owned(),
            app_key: app_key.to_owned(),
            use_email_scope: false,
            sync_status_forward: BTreeMap::new(),
            sync_status_reverse: yes(),
            sync_forward_assignment: yes(),
            sync_reverse_assignment: yes(),
            resolution_strategy: Strategy::default(),
            max_transition_hops: default_hops(),
            retry: RetrySpec::default(),
            clock_skew_seconds: default_clock_skew(),
            max_token_lifetime_seconds: default_max_token_lifetime(),
            webhook_max_wait_seconds: default_webhook_max_wait(),
            exact_status_mapping: default_exact_status_mapping(),
            max_email_lookups: default_max_email_lookups(),
            limits: Limits::default(),
            uninstalled: false,
        }
    }
}

impl InstallationSpec {
    /// The installation as calls see it, with its limits; `None` once uninstalled.
    pub fn for_calls(
        &self,
    ) -> Option<(crate::wit::jira_sync::plugin::types::Installation, Limits)> {
        (!self.uninstalled).then(|| (self.into(), self.limits))
    }

    /// Why the host cannot use this installation as given, if it cannot: limits it cannot
    /// honour, or credentials that lack what their kind needs.
    pub fn check(&self) -> Result<(), String> {
        self.limits
            .check()
            .map_err(|why| format!("limits: {why}"))?;
        let missing = |what: &str| Err(format!("credentials: {what} must not be empty"));
        match &self.credentials {
            CredentialSpec::Connect if self.shared_secret.is_empty() => {
                missing("a Connect installation's shared_secret")
            }
            CredentialSpec::Connect => Ok(()),
            _ if !self.shared_secret.is_empty() => Err(format!(
                "credentials: shared_secret is Connect's; a {} installation's secrets go in \
                 `credentials`",
                self.guest_credentials().kind()
            )),
            CredentialSpec::AdminWebhook {
                secret,
                email,
                api_token,
            } if secret.is_empty() || email.is_empty() || api_token.is_empty() => {
                missing("an admin webhook's secret, email and api_token")
            }
            CredentialSpec::Oauth {
                client_id,
                client_secret,
                ..
            } if client_id.is_empty() || client_secret.is_empty() => {
                missing("an OAuth app's client_id and client_secret")
            }
            // Without either token the host could never authorise a request.
            CredentialSpec::Oauth {
                access_token: None,
                refresh_token: None,
                ..
            } => Err("credentials: an OAuth app needs a refresh_token (or an access_token)".into()),
            CredentialSpec::Oauth {
                access_token,
                refresh_token,
                jql,
                ..
            } if [access_token, refresh_token, jql]
                .iter()
                .any(|given| given.as_deref().is_some_and(|v| v.trim().is_empty())) =>
            {
                missing("an OAuth app's access_token, refresh_token and jql, when given,")
            }
            _ => Ok(()),
        }
    }

    /// The credentials as the guest sees them: the secrets that verify deliveries, never the
    /// ones the host adds to the guest's requests.
    pub fn guest_credentials(&self) -> model::Credentials {
        match &self.credentials {
            CredentialSpec::Connect => model::Credentials::Connect(self.shared_secret.clone()),
            CredentialSpec::AdminWebhook { secret, .. } => {
                model::Credentials::AdminWebhook(secret.clone())
            }
            CredentialSpec::Oauth {
                client_id,
                client_secret,
                ..
            } => model::Credentials::Oauth(model::OauthApp {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
            }),
            CredentialSpec::Forge { .. } => model::Credentials::Forge,
        }
    }

    /// The `Authorization` value the host adds to the guest's requests for this installation
    /// (docs/behaviour.md#10): Basic with an admin webhook's API token, Bearer with the access
    /// or system token an OAuth or Forge installation holds; `None` for Connect (the guest signs
    /// each request itself) and for a kind whose token the host does not hold yet.
    pub fn outbound_authorization(&self) -> Option<String> {
        use base64::Engine as _;
        match &self.credentials {
            CredentialSpec::Connect => None,
            CredentialSpec::AdminWebhook {
                email, api_token, ..
            } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{email}:{api_token}"))
            )),
            CredentialSpec::Oauth { access_token, .. } | CredentialSpec::Forge { access_token } => {
                access_token.as_ref().map(|token| format!("Bearer {token}"))
            }
        }
    }
}

/// What the host keeps up for an OAuth 2.0 installation: its tokens and its dynamic webhooks
/// (docs/behaviour.md#10.2). Never logged: it holds secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OauthTokens {
    /// The access token, if the host holds one.
    pub access_token: Option<String>,
    /// The refresh token, if the host holds one.
    pub refresh_token: Option<String>,
    /// When the access token expires (Unix seconds; 0 when unknown).
    pub access_expires_at: u64,
    /// The registered dynamic webhooks.
    pub webhook_ids: Vec<u64>,
    /// When they expire (Unix seconds; 0 when none are registered).
    pub webhooks_expire_at: u64,
}

impl std::fmt::Debug for OauthTokens {
    // The tokens are secrets: a debug print says whether they are there, not what they are.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OauthTokens")
            .field("access_token", &self.access_token.as_ref().map(|_| "***"))
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("access_expires_at", &self.access_expires_at)
            .field("webhook_ids", &self.webhook_ids)
            .field("webhooks_expire_at", &self.webhooks_expire_at)
            .finish()
    }
}

impl InstallationSpec {
    /// The tokens and webhooks of an OAuth installation; `None` for another kind.
    pub fn oauth_tokens(&self) -> Option<OauthTokens> {
        match &self.credentials {
            CredentialSpec::Oauth {
                access_token,
                refresh_token,
                access_expires_at,
                webhook_ids,
                webhooks_expire_at,
                ..
            } => Some(OauthTokens {
                access_token: access_token.clone(),
                refresh_token: refresh_token.clone(),
                access_expires_at: *access_expires_at,
                webhook_ids: webhook_ids.clone(),
                webhooks_expire_at: *webhooks_expire_at,
            }),
            _ => None,
        }
    }

    /// Replaces an OAuth installation's tokens and webhooks with `tokens` if its refresh token
    /// is still `expected` (a compare-and-set: a refresh token changed since it was read means
    /// someone re-authorised the installation, whose tokens must not be overwritten with ones
    /// from the old grant). The app's id, secret and JQL stay. Whether it replaced them.
    pub fn replace_oauth_tokens(&mut self, expected: Option<&str>, tokens: &OauthTokens) -> bool {
        let CredentialSpec::Oauth {
            access_token,
            refresh_token,
            access_expires_at,
            webhook_ids,
            webhooks_expire_at,
            ..
        } = &mut self.credentials
        else {
            return false;
        };
        if refresh_token.as_deref() != expected {
            return false;
        }
        access_token.clone_from(&tokens.access_token);
        refresh_token.clone_from(&tokens.refresh_token);
        *access_expires_at = tokens.access_expires_at;
        webhook_ids.clone_from(&tokens.webhook_ids);
        *webhooks_expire_at = tokens.webhooks_expire_at;
        true
    }
}

/// How Jira and the app authenticate to each other, in the host's configuration format
/// (docs/behaviour.md#10). Tagged by `kind`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CredentialSpec {
    /// Atlassian Connect, with the installation's `shared_secret`.
    #[default]
    Connect,
    /// A webhook a site administrator registered with a secret; the app calls Jira with an API
    /// token (Basic auth of the account's email and the token).
    AdminWebhook {
        /// The webhook's secret: `X-Hub-Signature` is keyed with it.
        secret: String,
        /// The email of the account the API token belongs to.
        email: String,
        /// The API token.
        api_token: String,
    },
    /// An OAuth 2.0 (3LO) app with dynamic webhooks.
    Oauth {
        /// The app's client id.
        client_id: String,
        /// The app's client secret: signs the deliveries' tokens.
        client_secret: String,
        /// The access token the host adds to the guest's requests, once it holds one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access_token: Option<String>,
        /// The refresh token that gets the next access token. Atlassian rotates it: each
        /// refresh answers a new one and disables this one, so the host stores the new one
        /// before anything uses it (docs/behaviour.md#10.2).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refresh_token: Option<String>,
        /// When the access token expires (Unix seconds); 0 when unknown, which the host takes
        /// as expired.
        #[serde(default, skip_serializing_if = "is_zero")]
        access_expires_at: u64,
        /// The ids of the dynamic webhooks the host registered for this site.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        webhook_ids: Vec<u64>,
        /// When those webhooks expire (Unix seconds).
        #[serde(default, skip_serializing_if = "is_zero")]
        webhooks_expire_at: u64,
        /// The JQL filter of the dynamic webhooks; the server's `oauth_webhook_jql` when absent.
        /// Jira accepts only a subset: fields issueKey, project, issuetype, status, assignee,
        /// reporter; operators `=`, `!=`, `IN`, `NOT IN`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jql: Option<String>,
    },
    /// A Forge app: the host verifies its invocation tokens.
    Forge {
        /// The latest app system token Forge sent, which the host adds to the guest's
        /// requests.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access_token: Option<String>,
    },
}

impl CredentialSpec {
    /// Whether these are Connect's (the default, left out when written).
    pub fn is_connect(&self) -> bool {
        matches!(self, CredentialSpec::Connect)
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn default_hops() -> u32 {
    DEFAULT_MAX_TRANSITION_HOPS
}

fn default_clock_skew() -> u32 {
    DEFAULT_CLOCK_SKEW_SECONDS
}

fn default_max_token_lifetime() -> u32 {
    DEFAULT_MAX_TOKEN_LIFETIME_SECONDS
}

fn default_webhook_max_wait() -> u32 {
    DEFAULT_WEBHOOK_MAX_WAIT_SECONDS
}

fn default_exact_status_mapping() -> bool {
    DEFAULT_EXACT_STATUS_MAPPING
}

fn default_max_email_lookups() -> u32 {
    DEFAULT_MAX_EMAIL_LOOKUPS
}

fn yes() -> bool {
    true
}

/// Bounds on riding out Jira's rate limits, in the host's configuration format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Retries of one request after its first attempt.
    pub max_retries: u32,
    /// Seconds the component may wait in total across the retries of one request.
    pub max_total_wait: u32,
}

impl Default for RetrySpec {
    fn default() -> Self {
        let policy = RetryPolicy::default();
        RetrySpec {
            max_retries: policy.max_retries,
            max_total_wait: policy.max_total_wait,
        }
    }
}

/// The Jira status ids of one project's two group states.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusPair {
    /// The status a resolved group's issue is moved to.
    pub resolved: String,
    /// The status an unresolved group's issue is moved to.
    pub unresolved: String,
}

/// How the platform resolves its groups when Jira moves an issue into a done status.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Resolve now.
    #[default]
    Resolve,
    /// Resolve in the release currently deployed.
    ResolveCurrentRelease,
    /// Resolve in the next release.
    ResolveNextRelease,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> InstallationSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn credentials_default_to_connect_and_are_written_only_for_other_kinds() {
        let connect = spec(serde_json::json!({
            "client_key": "jira:1", "shared_secret": "s", "base_url": "https://a.example",
            "app_key": "app"
        }));
        assert_eq!(connect.credentials, CredentialSpec::Connect);
        assert_eq!(connect.check(), Ok(()));
        assert_eq!(connect.outbound_authorization(), None, "the guest signs");
        assert!(
            !serde_json::to_string(&connect)
                .unwrap()
                .contains("credentials")
        );

        let admin = spec(serde_json::json!({
            "client_key": "site-1", "base_url": "https://a.example", "app_key": "app",
            "credentials": {"kind": "admin-webhook", "secret": "It's a Secret to Everybody",
                "email": "bot@example.com", "api_token": "t0ken"}
        }));
        assert_eq!(admin.check(), Ok(()));
        assert_eq!(
            admin.guest_credentials(),
            model::Credentials::AdminWebhook("It's a Secret to Everybody".into()),
            "the API token stays in the host"
        );
        assert_eq!(
            admin.outbound_authorization().as_deref(),
            Some("Basic Ym90QGV4YW1wbGUuY29tOnQwa2Vu")
        );
        let round_trip: InstallationSpec =
            serde_json::from_str(&serde_json::to_string(&admin).unwrap()).unwrap();
        assert_eq!(round_trip.credentials, admin.credentials);

        let oauth = spec(serde_json::json!({
            "client_key": "cloud-1", "base_url": "https://api.atlassian.com/ex/jira/cloud-1",
            "app_key": "app",
            "credentials": {"kind": "oauth", "client_id": "id", "client_secret": "cs",
                "access_token": "at"}
        }));
        assert_eq!(oauth.outbound_authorization().as_deref(), Some("Bearer at"));
        assert_eq!(
            oauth.check(),
            Ok(()),
            "an installation of WIT 0.4.0's shape still reads"
        );
    }

    fn oauth_spec(credentials: serde_json::Value) -> InstallationSpec {
        spec(serde_json::json!({
            "client_key": "cloud-1", "base_url": "https://api.atlassian.com/ex/jira/cloud-1",
            "app_key": "app", "credentials": credentials
        }))
    }

    #[test]
    fn an_oauth_installation_keeps_its_tokens_and_webhooks_and_needs_a_way_to_a_token() {
        let oauth = oauth_spec(serde_json::json!({"kind": "oauth", "client_id": "id",
            "client_secret": "cs", "refresh_token": "rt", "access_expires_at": 1700000000,
            "webhook_ids": [1000, 1001], "webhooks_expire_at": 1702592000,
            "jql": "project = APP"}));
        assert_eq!(oauth.check(), Ok(()));
        assert_eq!(oauth.outbound_authorization(), None, "no access token yet");
        let tokens = oauth.oauth_tokens().unwrap();
        assert_eq!(tokens.refresh_token.as_deref(), Some("rt"));
        assert_eq!(tokens.webhook_ids, [1000, 1001]);
        assert_eq!(tokens.webhooks_expire_at, 1702592000);
        let round_trip: InstallationSpec =
            serde_json::from_str(&serde_json::to_string(&oauth).unwrap()).unwrap();
        assert_eq!(round_trip.credentials, oauth.credentials);
        let printed = format!("{tokens:?}");
        assert!(
            !printed.contains("\"rt\"") && printed.contains("***"),
            "{printed}"
        );

        let tokenless = oauth_spec(
            serde_json::json!({"kind": "oauth", "client_id": "id", "client_secret": "cs"}),
        );
        assert!(tokenless.check().unwrap_err().contains("refresh_token"));
        let blank = oauth_spec(serde_json::json!({"kind": "oauth", "client_id": "id",
            "client_secret": "cs", "refresh_token": "rt", "jql": " "}));
        assert!(blank.check().unwrap_err().contains("jql"));
    }

    #[test]
    fn oauth_tokens_are_replaced_only_over_the_refresh_token_they_came_from() {
        let mut oauth = oauth_spec(serde_json::json!({"kind": "oauth", "client_id": "id",
            "client_secret": "cs", "refresh_token": "rt-1", "jql": "project = APP"}));
        let next = OauthTokens {
            access_token: Some("at-2".into()),
            refresh_token: Some("rt-2".into()),
            access_expires_at: 5,
            webhook_ids: vec![7],
            webhooks_expire_at: 9,
        };
        assert!(
            !oauth.replace_oauth_tokens(Some("rt-0"), &next),
            "re-authorised since"
        );
        assert_eq!(
            oauth.oauth_tokens().unwrap().refresh_token.as_deref(),
            Some("rt-1")
        );
        assert!(oauth.replace_oauth_tokens(Some("rt-1"), &next));
        assert_eq!(oauth.oauth_tokens().unwrap(), next);
        assert_eq!(
            oauth.outbound_authorization().as_deref(),
            Some("Bearer at-2")
        );
        assert!(
            matches!(&oauth.credentials, CredentialSpec::Oauth { jql: Some(j), client_secret, .. }
                if j == "project = APP" && client_secret == "cs"),
            "the app's own settings stay"
        );
        let mut connect = InstallationSpec::new("jira:1", "s", "https://a.example", "app");
        assert!(
            !connect.replace_oauth_tokens(None, &next),
            "not an OAuth installation"
        );
    }

    #[test]
    fn memory_bounds_the_host_cannot_honour_are_refused() {
        let mut spec = InstallationSpec::new("jira:1", "s", "https://a.example", "app");
        spec.limits.memory_bytes = 1024 * 1024;
        assert!(
            spec.check()
                .unwrap_err()
                .contains("below the component's initial memory"),
            "a call could never start"
        );
        spec.limits.memory_bytes = crate::limits::MAX_MEMORY_BYTES + 1;
        assert!(
            spec.check()
                .unwrap_err()
                .contains("above the host's instance slot")
        );
        spec.limits.memory_bytes = crate::limits::MIN_MEMORY_BYTES;
        assert_eq!(spec.check(), Ok(()));
    }

    #[test]
    fn credentials_that_lack_what_their_kind_needs_are_refused() {
        let mut connect = InstallationSpec::new("jira:1", "", "https://a.example", "app");
        assert!(connect.check().unwrap_err().contains("shared_secret"));
        connect.shared_secret = "s".into();
        connect.credentials = CredentialSpec::Forge { access_token: None };
        assert!(
            connect.check().unwrap_err().contains("Connect's"),
            "a Connect secret on another kind is a mistake"
        );
        connect.shared_secret.clear();
        assert_eq!(connect.check(), Ok(()));
        connect.credentials = CredentialSpec::AdminWebhook {
            secret: "s".into(),
            email: String::new(),
            api_token: "t".into(),
        };
        assert!(connect.check().unwrap_err().contains("admin webhook"));
    }
}
