//! The inbound credential of a recorded webhook, re-signed with the placeholder secret the
//! recorded installation carries: a scenario holds no token or signature made with a real
//! secret, and replaying it verifies exactly as the original did. A credential that verified
//! under the installation's secret is signed again with the placeholder; one that did not is
//! signed with a key that is neither, so that it fails as it failed; anything that is not shaped
//! like a signature at all is kept, since it proves nothing.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jira_sync_plugin::signature;
use jira_sync_plugin::webhook::Route;
use sha2::Sha256;

use crate::installation::{CredentialSpec, InstallationSpec};

/// The secret a recorded installation carries instead of its own.
pub const PLACEHOLDER_SECRET: &str = "recorded-placeholder-secret";

/// What signs a credential that did not verify when recorded: not the placeholder.
const NOT_THE_SECRET: &str = "not-the-installation-secret";

/// The bytes of an HS256 signature.
const HS256_BYTES: usize = 32;

/// Rewrites the credential among `headers` of a webhook on `path`: the `Authorization` token of
/// a Connect or OAuth delivery, or the `X-Hub-Signature` of an admin one. `recorded_body` is the
/// body the original signature covered; `written_body` the one the scenario sends (they differ
/// when pseudonyms replaced personal data).
pub fn credential(
    spec: &InstallationSpec,
    path: &str,
    headers: &mut BTreeMap<String, String>,
    recorded_body: &[u8],
    written_body: &[u8],
) {
    match Route::of(path) {
        Some(Route::Connect) => token(headers, Some(&spec.shared_secret)),
        Some(Route::Oauth(_)) => {
            let secret = match &spec.credentials {
                CredentialSpec::Oauth { client_secret, .. } => Some(client_secret),
                _ => None,
            };
            token(headers, secret);
        }
        Some(Route::Admin(_)) => {
            let secret = match &spec.credentials {
                CredentialSpec::AdminWebhook { secret, .. } => Some(secret.as_str()),
                _ => None,
            };
            hub_signature(headers, secret, recorded_body, written_body);
        }
        None => {}
    }
}

fn token(headers: &mut BTreeMap<String, String>, secret: Option<&String>) {
    for (_, value) in headers
        .iter_mut()
        .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"))
    {
        let Some(dot) = value.rfind('.') else {
            continue;
        };
        let signature = value[dot + 1..].trim_end();
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
            continue;
        };
        if signature.len() != HS256_BYTES {
            continue;
        }
        // What the guest verifies: the token after the scheme, up to its last dot.
        let prefix = &value[..dot];
        let signing_input = prefix
            .trim_start()
            .split_once(' ')
            .map_or(prefix, |(_, token)| token.trim_start());
        let verified = secret.is_some_and(|secret| {
            mac(secret, signing_input.as_bytes())
                .verify_slice(&signature)
                .is_ok()
        });
        let key = if verified {
            PLACEHOLDER_SECRET
        } else {
            NOT_THE_SECRET
        };
        let resigned =
            URL_SAFE_NO_PAD.encode(mac(key, signing_input.as_bytes()).finalize().into_bytes());
        *value = format!("{prefix}.{resigned}");
    }
}

fn hub_signature(
    headers: &mut BTreeMap<String, String>,
    secret: Option<&str>,
    recorded_body: &[u8],
    written_body: &[u8],
) {
    for (_, value) in headers
        .iter_mut()
        .filter(|(name, _)| name.eq_ignore_ascii_case(signature::HEADER))
    {
        let verified = match secret.map(|s| signature::verify(s, recorded_body, value)) {
            Some(Ok(())) => true,
            // Malformed: refused before any key is used, so it may stay as it is.
            None | Some(Err(signature::SignatureError::Malformed)) => false,
            Some(Err(signature::SignatureError::BadSignature)) => {
                *value = signature::sign(NOT_THE_SECRET, written_body);
                continue;
            }
        };
        if verified {
            *value = signature::sign(PLACEHOLDER_SECRET, written_body);
        }
    }
}

fn mac(key: &str, data: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(data);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{SignOverrides, authorization};

    const CONNECT: &str = "/extensions/jira/issue-updated/";

    fn spec() -> InstallationSpec {
        InstallationSpec::new("jira:1", "real-secret", "https://a.atlassian.net", "app")
    }

    fn signed(secret: &str) -> BTreeMap<String, String> {
        let overrides = SignOverrides {
            secret: Some(secret.to_owned()),
            ..SignOverrides::default()
        };
        let value = authorization("jira:1", "unused", 100, ("POST", CONNECT, ""), &overrides);
        BTreeMap::from([("Authorization".to_owned(), value)])
    }

    #[test]
    fn a_token_made_with_the_real_secret_is_made_again_with_the_placeholder() {
        let mut headers = signed("real-secret");
        credential(&spec(), CONNECT, &mut headers, b"{}", b"{}");
        assert_eq!(headers, signed(PLACEHOLDER_SECRET));
    }

    #[test]
    fn a_token_made_with_another_secret_stays_unverifiable() {
        let mut headers = signed("forged");
        credential(&spec(), CONNECT, &mut headers, b"{}", b"{}");
        assert_eq!(headers, signed(NOT_THE_SECRET));
        assert_ne!(headers, signed(PLACEHOLDER_SECRET));
    }

    #[test]
    fn what_is_not_shaped_like_a_signature_is_kept() {
        for value in [
            "JWT nodots",
            "JWT a.b.!!!",
            "JWT a.b.c2lnbg",
            "Basic dXNlcjpwYXNz",
        ] {
            let mut headers = BTreeMap::from([("Authorization".to_owned(), value.to_owned())]);
            credential(&spec(), CONNECT, &mut headers, b"{}", b"{}");
            assert_eq!(headers["Authorization"], value);
        }
    }

    #[test]
    fn an_admin_signature_is_made_again_over_the_body_the_scenario_sends() {
        let mut spec = spec();
        spec.shared_secret = String::new();
        spec.credentials = CredentialSpec::AdminWebhook {
            secret: "hub-secret".into(),
            email: "ops@example.com".into(),
            api_token: "token".into(),
        };
        let path = "/webhooks/admin/jira%3A1";
        let header = |value: String| BTreeMap::from([("X-Hub-Signature".to_owned(), value)]);
        let mut good = header(signature::sign("hub-secret", b"original"));
        credential(&spec, path, &mut good, b"original", b"written");
        assert_eq!(
            good,
            header(signature::sign(PLACEHOLDER_SECRET, b"written"))
        );
        let mut bad = header(signature::sign("other", b"original"));
        credential(&spec, path, &mut bad, b"original", b"written");
        assert_eq!(bad, header(signature::sign(NOT_THE_SECRET, b"written")));
        let mut malformed = header("sha1=abc".to_owned());
        credential(&spec, path, &mut malformed, b"original", b"written");
        assert_eq!(malformed, header("sha1=abc".to_owned()));
    }
}
