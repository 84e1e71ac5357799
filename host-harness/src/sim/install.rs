//! Atlassian's side of installing an app: the simulator's own RSA keys (test-only, committed in
//! `keys/`), the key servers that publish them, and the signed requests they make.
//!
//! - `GET /connect-keys/{kid}` answers Connect's install key as PEM, like
//!   `https://connect-install-keys.atlassian.com/{kid}` ([`crate::sim::Simulator::connect_keys_url`]);
//! - `GET /.well-known/jwks.json` answers Forge's invocation key as a JWKS
//!   ([`crate::sim::Simulator::forge_jwks_url`]);
//! - [`ConnectInstall`] makes the signed `installed` and `uninstalled` callbacks Jira posts to a
//!   Connect app, and [`ForgeInvocation`] the token Forge sends a remote backend.

use jira_sync_plugin::qsh;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::install::connect::{INSTALLED_PATH, UNINSTALLED_PATH};
use crate::install::forge::ISSUER;

/// The kid of the simulator's Connect install key.
pub const CONNECT_KID: &str = "sim-connect-install-1";
/// The simulator's Connect install key (PKCS#8 PEM). Test-only: public on purpose.
pub const CONNECT_PRIVATE_PEM: &str = include_str!("keys/connect-install.pem");
/// The public half of [`CONNECT_PRIVATE_PEM`], as the key server serves it.
pub const CONNECT_PUBLIC_PEM: &str = include_str!("keys/connect-install.pub.pem");
/// The kid of the simulator's Forge invocation key.
pub const FORGE_KID: &str = "sim-forge-invocation-1";
/// The simulator's Forge invocation key (PKCS#8 PEM). Test-only: public on purpose.
pub const FORGE_PRIVATE_PEM: &str = include_str!("keys/forge-invocation.pem");
/// The public half of [`FORGE_PRIVATE_PEM`].
pub const FORGE_PUBLIC_PEM: &str = include_str!("keys/forge-invocation.pub.pem");
/// The JWKS holding [`FORGE_PUBLIC_PEM`] under [`FORGE_KID`], as the simulator serves it.
pub const FORGE_JWKS: &str = include_str!("keys/jwks.json");

/// Where the simulator serves Connect's install keys: `{CONNECT_KEYS_PATH}/{kid}`.
pub const CONNECT_KEYS_PATH: &str = "/connect-keys";
/// Where the simulator serves Forge's JWKS.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// How long the simulator's tokens live: Connect's install tokens are short-lived.
const TOKEN_LIFETIME_SECONDS: u64 = 180;

/// The answer to a request for one of the key servers' paths (status, content type, body);
/// `None` for any other path.
pub(super) fn serve(method: &str, path: &str) -> Option<(u16, &'static str, &'static str)> {
    let found = if path == JWKS_PATH {
        Some(("application/json", FORGE_JWKS))
    } else {
        let kid = path.strip_prefix(CONNECT_KEYS_PATH)?.strip_prefix('/')?;
        (kid == CONNECT_KID).then_some(("application/x-pem-file", CONNECT_PUBLIC_PEM))
    };
    Some(match (method, found) {
        ("GET", Some((content_type, body))) => (200, content_type, body),
        ("GET", None) => (404, "text/plain", ""),
        _ => (405, "text/plain", ""),
    })
}

/// A Connect app installed on a site: what Jira's lifecycle callbacks say about it.
#[derive(Debug, Clone)]
pub struct ConnectInstall {
    /// The app's `baseUrl` from its descriptor; the callbacks go to its lifecycle paths.
    pub app_base_url: String,
    /// The app's `key` from its descriptor.
    pub app_key: String,
    /// The installation's id, the tokens' `iss`.
    pub client_key: String,
    /// The secret `installed` hands the app.
    pub shared_secret: String,
    /// The site, e.g. the simulator's [`crate::sim::Simulator::base_url`].
    pub site_base_url: String,
}

/// A request Jira makes to the app, ready to send or to hand to a verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleRequest {
    /// Always `POST`.
    pub method: String,
    /// The absolute URL: the app's base URL and the lifecycle path.
    pub url: String,
    /// The URL's path, as the app's server sees it.
    pub path: String,
    /// The URL's raw query (empty).
    pub query: String,
    /// `Authorization: JWT <RS256 token>` and `Content-Type`.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Vec<u8>,
}

impl ConnectInstall {
    /// The signed `installed` callback, as Jira posts it at `now` (Unix seconds).
    pub fn installed(&self, now: u64) -> LifecycleRequest {
        self.lifecycle("installed", INSTALLED_PATH, now)
    }

    /// The signed `uninstalled` callback, as Jira posts it at `now` (Unix seconds).
    pub fn uninstalled(&self, now: u64) -> LifecycleRequest {
        self.lifecycle("uninstalled", UNINSTALLED_PATH, now)
    }

    fn lifecycle(&self, event: &str, lifecycle_path: &str, now: u64) -> LifecycleRequest {
        let url = format!(
            "{}{lifecycle_path}",
            self.app_base_url.trim_end_matches('/')
        );
        let claims = json!({
            "iss": self.client_key,
            "aud": [self.app_base_url],
            "iat": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "qsh": qsh::qsh_for_url("POST", &url, &self.app_base_url),
        });
        let token = sign(CONNECT_KID, &claims, CONNECT_PRIVATE_PEM);
        let mut body = json!({
            "key": self.app_key,
            "clientKey": self.client_key,
            "baseUrl": self.site_base_url,
            "displayUrl": self.site_base_url,
            "productType": "jira",
            "description": "Jira simulator",
            "eventType": event,
        });
        if event == "installed" {
            body["sharedSecret"] = json!(self.shared_secret);
        }
        let (path, query) = qsh::split_url(&url);
        LifecycleRequest {
            method: "POST".into(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers: vec![
                ("Authorization".into(), format!("JWT {token}")),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: body.to_string().into_bytes(),
            url,
        }
    }
}

/// A Forge invocation of the app's remote backend.
#[derive(Debug, Clone)]
pub struct ForgeInvocation {
    /// The app's ARI, the token's `aud`.
    pub app_ari: String,
    /// The installation invoking the app.
    pub installation_id: String,
    /// Where the app's calls to the product go.
    pub api_base_url: String,
    /// The site's cloud id.
    pub cloud_id: Option<String>,
}

impl ForgeInvocation {
    /// The Forge Invocation Token Forge sends at `now` (Unix seconds), for the header
    /// `Authorization: Bearer <token>`.
    pub fn token(&self, now: u64) -> String {
        let contexts: Vec<Value> = self
            .cloud_id
            .iter()
            .map(|cloud_id| json!({"cloudId": cloud_id}))
            .collect();
        let claims = json!({
            "iss": ISSUER,
            "aud": self.app_ari,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "app": {
                "id": self.app_ari,
                "installationId": self.installation_id,
                "apiBaseUrl": self.api_base_url,
                "installation": {"contexts": contexts},
            },
        });
        sign(FORGE_KID, &claims, FORGE_PRIVATE_PEM)
    }
}

/// `claims` signed RS256 with the private PEM `key` under `kid`.
fn sign(kid: &str, claims: &Value, key: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_rsa_pem(key.as_bytes())
        .expect("the simulator's keys are RSA PEMs (tested)");
    jsonwebtoken::encode(&header, claims, &key).expect("RS256 signing of JSON claims")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::{ConnectKeys, ForgeKeys, Lifecycle, verify_invocation, verify_lifecycle};
    use crate::sim::{SimWorld, Simulator};

    const NOW: u64 = 1_700_000_000;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn install(app_base_url: &str) -> ConnectInstall {
        ConnectInstall {
            app_base_url: app_base_url.into(),
            app_key: "jira-sync".into(),
            client_key: "jira:sim".into(),
            shared_secret: "sim-s3cret".into(),
            site_base_url: "https://acme.atlassian.net".into(),
        }
    }

    fn verify(sim: &Simulator, app: &str, request: &LifecycleRequest) -> Result<Lifecycle, String> {
        let keys = ConnectKeys::new(&sim.connect_keys_url());
        block_on(verify_lifecycle(
            &keys,
            app,
            &request.method,
            &request.path,
            &request.query,
            &request.headers,
            &request.body,
            NOW,
            0,
        ))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn lifecycle_callbacks_verify_against_the_simulators_key_server() {
        let sim = Simulator::start(SimWorld::demo()).unwrap();
        for app in ["http://127.0.0.1:9/", "https://app.example/jira-sync"] {
            let installed = install(app).installed(NOW);
            assert_eq!(
                installed.url.trim_start_matches(app.trim_end_matches('/')),
                INSTALLED_PATH
            );
            assert_eq!(
                verify(&sim, app, &installed),
                Ok(Lifecycle::Installed {
                    client_key: "jira:sim".into(),
                    shared_secret: "sim-s3cret".into(),
                    base_url: "https://acme.atlassian.net".into(),
                    app_key: "jira-sync".into(),
                })
            );
            assert_eq!(
                verify(&sim, app, &install(app).uninstalled(NOW)),
                Ok(Lifecycle::Uninstalled {
                    client_key: "jira:sim".into(),
                    base_url: "https://acme.atlassian.net".into(),
                    app_key: "jira-sync".into(),
                })
            );
        }
        // Another app's callback is not this one's.
        let other = install("https://other.example").installed(NOW);
        assert!(verify(&sim, "https://app.example", &other).is_err());
    }

    #[test]
    fn invocation_tokens_verify_against_the_simulators_jwks() {
        let sim = Simulator::start(SimWorld::demo()).unwrap();
        let keys = ForgeKeys::new(&sim.forge_jwks_url());
        let ari = "ari:cloud:ecosystem::app/0b1c";
        let invocation = ForgeInvocation {
            app_ari: ari.into(),
            installation_id: "ari:cloud:ecosystem::installation/1".into(),
            api_base_url: "https://api.atlassian.com/ex/jira/c-1".into(),
            cloud_id: Some("c-1".into()),
        };
        let headers = [(
            "Authorization".to_owned(),
            format!("Bearer {}", invocation.token(NOW)),
        )];
        let verified = block_on(verify_invocation(&keys, ari, &headers, NOW, 0)).unwrap();
        assert_eq!(verified.installation_id, invocation.installation_id);
        assert_eq!(verified.api_base_url, invocation.api_base_url);
        assert_eq!(verified.cloud_id, invocation.cloud_id);
        let refused = block_on(verify_invocation(&keys, "ari:other", &headers, NOW, 0));
        assert_eq!(refused.map_err(|e| e.code()).err(), Some("bad-aud"));
    }

    #[test]
    fn the_key_servers_answer_only_their_paths() {
        assert_eq!(
            serve("GET", &format!("{CONNECT_KEYS_PATH}/{CONNECT_KID}")),
            Some((200, "application/x-pem-file", CONNECT_PUBLIC_PEM))
        );
        assert_eq!(
            serve("GET", JWKS_PATH),
            Some((200, "application/json", FORGE_JWKS))
        );
        assert_eq!(serve("GET", "/connect-keys/other").map(|a| a.0), Some(404));
        assert_eq!(serve("POST", JWKS_PATH).map(|a| a.0), Some(405));
        assert_eq!(serve("GET", "/connect-keysx/a"), None);
        assert_eq!(serve("GET", "/rest/api/2/status"), None);
    }

    #[test]
    fn the_committed_jwks_is_the_public_half_of_the_forge_key() {
        let jwks: Value = serde_json::from_str(FORGE_JWKS).unwrap();
        let key = &jwks["keys"][0];
        assert_eq!(key["kid"], FORGE_KID);
        assert_eq!((&key["alg"], &key["use"]), (&json!("RS256"), &json!("sig")));
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone()).unwrap();
        let from_jwk = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let from_pem =
            jsonwebtoken::DecodingKey::from_rsa_pem(FORGE_PUBLIC_PEM.as_bytes()).unwrap();
        let token = sign(FORGE_KID, &json!({"x": 1}), FORGE_PRIVATE_PEM);
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.required_spec_claims.clear();
        for key in [from_jwk, from_pem] {
            assert!(jsonwebtoken::decode::<Value>(&token, &key, &validation).is_ok());
        }
        let other = sign(FORGE_KID, &json!({"x": 1}), CONNECT_PRIVATE_PEM);
        let from_jwk = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        assert!(jsonwebtoken::decode::<Value>(&other, &from_jwk, &validation).is_err());
    }
}
