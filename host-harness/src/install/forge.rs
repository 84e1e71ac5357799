//! Forge remote invocations: a request from Forge to the app's remote backend carries a Forge
//! Invocation Token (`Authorization: Bearer <FIT>`), RS256 under a key of Forge's JWKS
//! ([`ForgeKeys`]), saying which installation the call is for.

use serde_json::Value;

use super::keys::ForgeKeys;
use super::{Refusal, token};

/// The `iss` of every Forge Invocation Token.
pub const ISSUER: &str = "forge/invocation-token";

/// The header that may carry the app's system token, for calls back through Forge's API.
pub const SYSTEM_TOKEN_HEADER: &str = "x-forge-oauth-system";

/// The longest token accepted: larger than Connect's, because a FIT carries the invocation's
/// context, yet bounded so that a hostile header costs little.
pub const MAX_TOKEN_BYTES: usize = 32 * 1024;

/// A verified invocation: which installation calls, and how to call Atlassian back for it.
#[derive(Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `app.installationId`, e.g. `ari:cloud:ecosystem::installation/...`.
    pub installation_id: String,
    /// `app.apiBaseUrl`: where the app's calls to the product go.
    pub api_base_url: String,
    /// The site's cloud id, when the token names one.
    pub cloud_id: Option<String>,
    /// The app system token of [`SYSTEM_TOKEN_HEADER`], opaque and kept as it came.
    pub system_token: Option<String>,
}

/// Without the system token, so that a logged value leaks nothing.
impl std::fmt::Debug for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invocation")
            .field("installation_id", &self.installation_id)
            .field("api_base_url", &self.api_base_url)
            .field("cloud_id", &self.cloud_id)
            .field(
                "system_token",
                &self.system_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Verifies the invocation token in `headers` for the app whose ARI is `app_ari`
/// (`ari:cloud:ecosystem::app/<uuid>`), at `now` in Unix seconds with `skew` seconds allowed on
/// `exp` and `nbf`.
///
/// The token must be `Bearer <RS256 token>` of at most [`MAX_TOKEN_BYTES`], signed under the key
/// of its `kid`, with `iss` [`ISSUER`] and `aud` `app_ari`. Its claim `app` must hold the strings
/// `installationId` and `apiBaseUrl`; the cloud id is read from
/// `app.installation.contexts[].cloudId` (the first that has one), else from `context.cloudId`,
/// and may be absent. Other claims are ignored.
pub async fn verify_invocation(
    keys: &ForgeKeys,
    app_ari: &str,
    headers: &[(String, String)],
    now: u64,
    skew: u64,
) -> Result<Invocation, Refusal> {
    let token = token::credential(headers, "Bearer")?;
    let kid = token::rs256_kid(token, MAX_TOKEN_BYTES)?;
    let key = keys.key(&kid).await?;
    let claims = token::verified_claims(token, &key)?;
    token::check_times(&claims, now, skew)?;
    if token::string_claim(&claims, "iss")? != ISSUER {
        return Err(Refusal::Issuer);
    }
    token::check_audience(&claims, |aud| aud == app_ari)?;
    let app = claims.get("app").ok_or(Refusal::MissingClaim("app"))?;
    let app_string = |name: &'static str, claim: &'static str| {
        app.get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(Refusal::MissingClaim(claim))
    };
    let installation_id = app_string("installationId", "app.installationId")?;
    let api_base_url = app_string("apiBaseUrl", "app.apiBaseUrl")?;
    let from_installation = app["installation"]["contexts"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|context| context["cloudId"].as_str());
    let cloud_id = from_installation
        .or_else(|| claims.get("context")?["cloudId"].as_str())
        .map(str::to_owned);
    let system_token = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(SYSTEM_TOKEN_HEADER))
        .map(|(_, value)| value.clone())
        .filter(|value| !value.is_empty());
    Ok(Invocation {
        installation_id,
        api_base_url,
        cloud_id,
        system_token,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::install::test_support::{
        KEY_A_PRIVATE, KEY_B_JWKS, KEY_B_KID, KEY_B_PRIVATE, KeyServer, block_on, hs256_with,
        rs256, unsigned,
    };
    use serde_json::json;

    const ARI: &str = "ari:cloud:ecosystem::app/0b1c2d3e-0000-4000-8000-000000000001";
    const NOW: u64 = 1_700_000_000;
    const JWKS_PATH: &str = "/.well-known/jwks.json";

    fn server() -> KeyServer {
        let server = KeyServer::start();
        server.serve(JWKS_PATH, 200, KEY_B_JWKS);
        server
    }

    fn keys(server: &KeyServer) -> ForgeKeys {
        ForgeKeys::new(&format!("{}{JWKS_PATH}", server.url()))
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER,
            "aud": ARI,
            "iat": NOW,
            "nbf": NOW,
            "exp": NOW + 300,
            "jti": "a1",
            "app": {
                "id": ARI,
                "installationId": "ari:cloud:ecosystem::installation/i-1",
                "apiBaseUrl": "https://api.atlassian.com/ex/jira/c-1",
                "installation": {"contexts": [{"type": "site"}, {"cloudId": "c-1"}]},
            },
            "context": {"cloudId": "c-from-context"},
        })
    }

    fn verify_with(keys: &ForgeKeys, headers: &[(String, String)]) -> Result<Invocation, Refusal> {
        block_on(verify_invocation(keys, ARI, headers, NOW, 5))
    }

    fn bearer(token: &str) -> Vec<(String, String)> {
        vec![("Authorization".into(), format!("Bearer {token}"))]
    }

    fn code(token: &str) -> &'static str {
        match verify_with(&keys(&server()), &bearer(token)) {
            Ok(invocation) => panic!("accepted: {invocation:?}"),
            Err(refusal) => refusal.code(),
        }
    }

    #[test]
    fn a_signed_invocation_is_accepted() {
        let mut headers = bearer(&rs256(KEY_B_KID, &claims(), KEY_B_PRIVATE));
        headers.push(("X-Forge-OAuth-System".into(), "sys.token.opaque".into()));
        assert_eq!(
            verify_with(&keys(&server()), &headers),
            Ok(Invocation {
                installation_id: "ari:cloud:ecosystem::installation/i-1".into(),
                api_base_url: "https://api.atlassian.com/ex/jira/c-1".into(),
                cloud_id: Some("c-1".into()),
                system_token: Some("sys.token.opaque".into()),
            })
        );
    }

    #[test]
    fn the_cloud_id_is_optional_and_may_come_from_the_context() {
        let mut claims = claims();
        claims["app"]
            .as_object_mut()
            .unwrap()
            .remove("installation");
        let token = rs256(KEY_B_KID, &claims, KEY_B_PRIVATE);
        let invocation = verify_with(&keys(&server()), &bearer(&token)).unwrap();
        assert_eq!(invocation.cloud_id.as_deref(), Some("c-from-context"));
        assert_eq!(invocation.system_token, None);
        claims.as_object_mut().unwrap().remove("context");
        let token = rs256(KEY_B_KID, &claims, KEY_B_PRIVATE);
        let invocation = verify_with(&keys(&server()), &bearer(&token)).unwrap();
        assert_eq!(invocation.cloud_id, None);
    }

    #[test]
    fn forged_tokens_are_refused() {
        assert_eq!(
            code(&rs256("unknown", &claims(), KEY_B_PRIVATE)),
            "unknown-key"
        );
        assert_eq!(
            code(&rs256(KEY_B_KID, &claims(), KEY_A_PRIVATE)),
            "bad-signature"
        );
        let public_jwk = KEY_B_JWKS;
        assert_eq!(
            code(&hs256_with(KEY_B_KID, &claims(), public_jwk)),
            "bad-alg"
        );
        assert_eq!(code(&unsigned(KEY_B_KID, &claims())), "bad-alg");
        assert_eq!(code(&"a".repeat(MAX_TOKEN_BYTES + 1)), "oversized");
        assert_eq!(code("a.b.c"), "malformed");
    }

    #[test]
    fn claims_are_checked() {
        let cases: [(&str, Value, &str); 10] = [
            ("aud", json!("ari:cloud:ecosystem::app/another"), "bad-aud"),
            ("aud", json!([ARI, "x"]), ""),
            ("iss", json!("forge/other"), "bad-iss"),
            ("iss", json!(null), "missing-claim"),
            ("exp", json!(NOW - 6), "expired"),
            ("nbf", json!(NOW + 60), "not-yet-valid"),
            ("app", json!(null), "missing-claim"),
            ("app", json!({"apiBaseUrl": "https://x"}), "missing-claim"),
            ("app", json!({"installationId": "i"}), "missing-claim"),
            (
                "app",
                json!({"installationId": 1, "apiBaseUrl": "https://x"}),
                "missing-claim",
            ),
        ];
        for (claim, value, expected) in cases {
            let mut claims = claims();
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(claim);
            } else {
                claims[claim] = value.clone();
            }
            let token = rs256(KEY_B_KID, &claims, KEY_B_PRIVATE);
            let result = verify_with(&keys(&server()), &bearer(&token));
            assert_eq!(
                result.map(|_| "").map_err(|e| e.code()),
                if expected.is_empty() {
                    Ok("")
                } else {
                    Err(expected)
                },
                "{claim} = {value}"
            );
        }
    }

    #[test]
    fn a_connect_style_credential_is_refused() {
        let token = rs256(KEY_B_KID, &claims(), KEY_B_PRIVATE);
        let headers = [("Authorization".to_owned(), format!("JWT {token}"))];
        assert_eq!(
            verify_with(&keys(&server()), &headers).map_err(|e| e.code()),
            Err("no-credential")
        );
    }

    #[test]
    fn the_jwks_is_fetched_once_and_an_unknown_kid_refetches_at_most_once_per_interval() {
        let server = server();
        let keys = keys(&server);
        let good = bearer(&rs256(KEY_B_KID, &claims(), KEY_B_PRIVATE));
        let rotated = bearer(&rs256("rotated-in", &claims(), KEY_A_PRIVATE));
        assert!(verify_with(&keys, &good).is_ok());
        assert!(verify_with(&keys, &good).is_ok());
        assert_eq!(server.fetches().len(), 1);
        // An unknown kid within the interval: refused without a fetch.
        assert_eq!(
            verify_with(&keys, &rotated).map_err(|e| e.code()),
            Err("unknown-key")
        );
        assert_eq!(server.fetches().len(), 1);
    }

    #[test]
    fn a_rotated_key_is_found_by_a_refetch_and_a_withdrawn_one_dropped() {
        let server = server();
        let keys = keys(&server).with_refetch_interval(Duration::ZERO);
        let old = bearer(&rs256(KEY_B_KID, &claims(), KEY_B_PRIVATE));
        let new = bearer(&rs256("rotated-in", &claims(), KEY_B_PRIVATE));
        assert!(verify_with(&keys, &old).is_ok());
        assert_eq!(
            verify_with(&keys, &new).map_err(|e| e.code()),
            Err("unknown-key")
        );
        // Atlassian publishes the key under a new kid and withdraws the old one.
        let mut jwks: Value = serde_json::from_str(KEY_B_JWKS).unwrap();
        jwks["keys"][0]["kid"] = json!("rotated-in");
        server.serve(JWKS_PATH, 200, &jwks.to_string());
        assert!(verify_with(&keys, &new).is_ok());
        assert_eq!(
            verify_with(&keys, &old).map_err(|e| e.code()),
            Err("unknown-key")
        );
        assert_eq!(server.fetches().len(), 4);
    }

    #[test]
    fn unusable_keys_in_the_jwks_are_skipped() {
        let server = KeyServer::start();
        let mut jwks: Value = serde_json::from_str(KEY_B_JWKS).unwrap();
        let key_b = jwks["keys"][0].clone();
        let mut for_encryption = key_b.clone();
        for_encryption["use"] = json!("enc");
        for_encryption["kid"] = json!("enc");
        let mut other_alg = key_b.clone();
        other_alg["alg"] = json!("RS512");
        other_alg["kid"] = json!("rs512");
        jwks["keys"] = json!([
            {"kty": "weird", "kid": "w"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            for_encryption,
            other_alg,
            key_b,
        ]);
        server.serve(JWKS_PATH, 200, &jwks.to_string());
        let keys = keys(&server).with_refetch_interval(Duration::ZERO);
        assert!(verify_with(&keys, &bearer(&rs256(KEY_B_KID, &claims(), KEY_B_PRIVATE))).is_ok());
        for kid in ["w", "hmac", "enc", "rs512"] {
            let token = rs256(kid, &claims(), KEY_B_PRIVATE);
            assert_eq!(
                verify_with(&keys, &bearer(&token)).map_err(|e| e.code()),
                Err("unknown-key"),
                "{kid}"
            );
        }
    }

    #[test]
    fn a_broken_jwks_is_transient() {
        let token = rs256(KEY_B_KID, &claims(), KEY_B_PRIVATE);
        for (status, body) in [(200, "{}"), (200, "not json"), (404, ""), (503, "")] {
            let server = KeyServer::start();
            server.serve(JWKS_PATH, status, body);
            let refusal = verify_with(&keys(&server), &bearer(&token)).unwrap_err();
            assert!(refusal.is_transient(), "{status} {body}: {refusal}");
        }
    }

    #[test]
    fn after_a_failed_fetch_an_unknown_kid_stays_unavailable_until_the_next() {
        let server = KeyServer::start();
        server.serve(JWKS_PATH, 503, "");
        let keys = keys(&server);
        let token = bearer(&rs256(KEY_B_KID, &claims(), KEY_B_PRIVATE));
        for _ in 0..2 {
            let refusal = verify_with(&keys, &token).unwrap_err();
            assert_eq!(refusal.code(), "key-unavailable", "{refusal}");
        }
        assert_eq!(server.fetches().len(), 1);
    }

    #[test]
    fn the_system_token_is_not_in_debug_output() {
        let invocation = Invocation {
            installation_id: "i".into(),
            api_base_url: "https://x".into(),
            cloud_id: None,
            system_token: Some("sys-secret".into()),
        };
        let shown = format!("{invocation:?}");
        assert!(
            !shown.contains("sys-secret") && shown.contains("redacted"),
            "{shown}"
        );
    }
}
