//! Signs webhooks the way Jira does, with overrides to forge the bad tokens tests need.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jira_sync_plugin::qsh;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use serde::{Deserialize, Serialize};

/// Lifetime Jira gives its webhook tokens.
pub const JIRA_TOKEN_LIFETIME: i64 = 180;

/// The `Authorization` header Jira would send for this request, with every part open to
/// override (`SignOverrides::default()` signs exactly like Jira). Independent of the guest's
/// signer on purpose, so that the guest's verifier is tested against other code.
pub fn authorization(
    client_key: &str,
    secret: &str,
    now: u64,
    (method, path, query): (&str, &str, &str),
    o: &SignOverrides,
) -> String {
    let hash = qsh::qsh(
        o.qsh_method.as_deref().unwrap_or(method),
        o.qsh_path.as_deref().unwrap_or(path),
        o.qsh_query.as_deref().unwrap_or(query),
    );
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(o.iss.as_deref().unwrap_or(client_key)));
    claims.insert("iat".into(), json!(now));
    claims.insert(
        "exp".into(),
        // Saturating: a scenario may forge any `exp_in`, and must not panic the host.
        json!((now as i64).saturating_add(o.exp_in.unwrap_or(JIRA_TOKEN_LIFETIME))),
    );
    claims.insert("qsh".into(), json!(hash));
    for claim in &o.omit {
        claims.remove(claim);
    }
    let alg = o.alg.as_deref().unwrap_or("HS256");
    let header = URL_SAFE_NO_PAD.encode(json!({"typ": "JWT", "alg": alg}).to_string());
    let claims = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
    let signing_input = format!("{header}.{claims}");
    let signature = if alg == "none" {
        String::new()
    } else {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(o.secret.as_deref().unwrap_or(secret).as_bytes())
                .expect("HMAC takes keys of any length");
        mac.update(signing_input.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    };
    format!(
        "{} {signing_input}.{signature}",
        o.scheme.as_deref().unwrap_or("JWT")
    )
}

/// What to forge in a token; the default signs exactly like Jira.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignOverrides {
    /// Secret instead of the installation's.
    pub secret: Option<String>,
    /// `iss` instead of the client key.
    pub iss: Option<String>,
    /// Header `alg`: "none" leaves the signature empty; any other value is HMAC-signed as usual.
    pub alg: Option<String>,
    /// `exp` relative to now (default 180).
    pub exp_in: Option<i64>,
    /// Sign the qsh of another method.
    pub qsh_method: Option<String>,
    /// Sign the qsh of another path.
    pub qsh_path: Option<String>,
    /// Sign the qsh of another query.
    pub qsh_query: Option<String>,
    /// Leave these claims out.
    #[serde(default)]
    pub omit: Vec<String>,
    /// Authorization scheme (default "JWT"), e.g. "Bearer".
    pub scheme: Option<String>,
}
