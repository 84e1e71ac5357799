//! Connect's signed lifecycle callbacks, `installed` and `uninstalled`, and the app descriptor
//! that asks Jira for them.
//!
//! With `apiMigrations.signed-install`, Jira signs both callbacks with RS256 under a key served
//! by Atlassian ([`ConnectKeys`]), instead of HS256 under a shared secret the app would have to
//! trust on first use. The token covers the request (its `qsh`), not the body; so the body's
//! `eventType` must agree with the lifecycle path the token was made for, and its `clientKey`
//! with the token's `iss`.

use jira_sync_plugin::{jwt, qsh, webhook};
use serde::Deserialize;
use serde_json::{Value, json};

use super::keys::ConnectKeys;
use super::{Refusal, token};

/// Where Jira posts `installed`, relative to the app's base URL (the descriptor says so).
pub const INSTALLED_PATH: &str = "/atlassian-connect/installed";
/// Where Jira posts `uninstalled`, relative to the app's base URL (the descriptor says so).
pub const UNINSTALLED_PATH: &str = "/atlassian-connect/uninstalled";

/// A verified lifecycle callback: what the platform stores, or forgets, for an installation.
#[derive(Clone, PartialEq, Eq)]
pub enum Lifecycle {
    /// The app was installed (or reinstalled) on a site.
    Installed {
        /// The installation's id; the `iss` of the site's HS256 webhooks.
        client_key: String,
        /// The secret the site's webhooks are signed with, and the app's requests to it.
        shared_secret: String,
        /// The site, e.g. `https://acme.atlassian.net`.
        base_url: String,
        /// The app's key, as the site knows it.
        app_key: String,
    },
    /// The app was uninstalled from a site.
    Uninstalled {
        /// The installation's id.
        client_key: String,
        /// The site.
        base_url: String,
        /// The app's key, as the site knows it.
        app_key: String,
    },
}

/// Without the shared secret, so that a logged value leaks nothing.
impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lifecycle::Installed {
                client_key,
                base_url,
                app_key,
                ..
            } => f
                .debug_struct("Installed")
                .field("client_key", client_key)
                .field("shared_secret", &"<redacted>")
                .field("base_url", base_url)
                .field("app_key", app_key)
                .finish(),
            Lifecycle::Uninstalled {
                client_key,
                base_url,
                app_key,
            } => f
                .debug_struct("Uninstalled")
                .field("client_key", client_key)
                .field("base_url", base_url)
                .field("app_key", app_key)
                .finish(),
        }
    }
}

/// The fields of a lifecycle body this app reads; Connect sends more, which are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    key: String,
    client_key: String,
    shared_secret: Option<String>,
    base_url: String,
    event_type: String,
}

/// Verifies one lifecycle callback posted to the app at `app_base_url` (as its descriptor
/// says), on `path` (as the server saw it: with the base URL's own path or without, when a
/// proxy removed it) and raw `query`. `now` is the clock in Unix seconds and `skew` the clock
/// difference allowed on `exp` and `nbf`.
///
/// The body's `eventType` says which event it is, and must be that of the lifecycle path
/// ([`INSTALLED_PATH`], [`UNINSTALLED_PATH`]). The token must be `JWT <RS256 token>` of at most
/// [`jwt::MAX_TOKEN_BYTES`], signed under the key of its `kid`, not expired, for `aud` this
/// app's base URL (a trailing `/` aside), from `iss` the body's `clientKey`, with the `qsh` of
/// this request relative to the app's base URL. Everything that can be checked without the key
/// is checked before it is fetched.
#[allow(clippy::too_many_arguments)] // a request's parts and the clock, as the server has them
pub async fn verify_lifecycle(
    keys: &ConnectKeys,
    app_base_url: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
    now: u64,
    skew: u64,
) -> Result<Lifecycle, Refusal> {
    let token = token::credential(headers, "JWT")?;
    let kid = token::rs256_kid(token, jwt::MAX_TOKEN_BYTES)?;
    let body: Body = serde_json::from_slice(body).map_err(|_| {
        Refusal::Body("not a JSON object with key, clientKey, baseUrl and eventType strings")
    })?;
    if body.client_key.is_empty() {
        return Err(Refusal::Body("clientKey is empty"));
    }
    let relative = relative_path(app_base_url, path);
    let event_path = match body.event_type.as_str() {
        "installed" => INSTALLED_PATH,
        "uninstalled" => UNINSTALLED_PATH,
        _ => {
            return Err(Refusal::Body(
                "eventType is neither installed nor uninstalled",
            ));
        }
    };
    if relative.trim_end_matches('/') != event_path {
        return Err(Refusal::EventPath {
            event: body.event_type,
            path: relative.to_owned(),
        });
    }
    let key = keys.key(&kid).await?;
    let claims = token::verified_claims(token, &key)?;
    token::check_times(&claims, now, skew)?;
    token::check_audience(&claims, |aud| {
        aud.trim_end_matches('/') == app_base_url.trim_end_matches('/')
    })?;
    if token::string_claim(&claims, "iss")? != body.client_key {
        return Err(Refusal::Issuer);
    }
    let claimed = token::string_claim(&claims, "qsh")?;
    if !qsh::accepted_qshs(method, relative, query)
        .iter()
        .any(|accepted| accepted == claimed)
    {
        return Err(Refusal::QshMismatch);
    }
    let Body {
        key: app_key,
        client_key,
        shared_secret,
        base_url,
        ..
    } = body;
    Ok(match event_path {
        INSTALLED_PATH => Lifecycle::Installed {
            shared_secret: shared_secret
                .filter(|secret| !secret.is_empty())
                .ok_or(Refusal::Body("installed without a sharedSecret"))?,
            client_key,
            base_url,
            app_key,
        },
        _ => Lifecycle::Uninstalled {
            client_key,
            base_url,
            app_key,
        },
    })
}

/// `path` without the path of `app_base_url`, when it starts with it: Connect's `qsh` is over
/// the path relative to the app's base URL.
fn relative_path<'a>(app_base_url: &str, path: &'a str) -> &'a str {
    let base = qsh::split_url(app_base_url).0.trim_end_matches('/');
    path.strip_prefix(base)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .unwrap_or(path)
}

/// The Connect app descriptor, served at `/atlassian-connect.json`: the app `app_key` named
/// `name` at `app_base_url`, with signed lifecycle callbacks and the webhooks the guest answers.
///
/// Scopes: `READ` and `WRITE` for issues, statuses and transitions; `ACT_AS_USER` to act for a
/// user; `ACCESS_EMAIL_ADDRESSES` because the guest reads users' emails
/// (`/rest/api/3/user/email`), which Connect apps may only with that scope.
pub fn descriptor(app_key: &str, app_base_url: &str, name: &str) -> Value {
    let webhook_url = format!("{}/", webhook::WEBHOOK_PATH);
    json!({
        "key": app_key,
        "name": name,
        "baseUrl": app_base_url,
        "authentication": {"type": "jwt"},
        "apiMigrations": {"signed-install": true},
        "lifecycle": {"installed": INSTALLED_PATH, "uninstalled": UNINSTALLED_PATH},
        "scopes": ["READ", "WRITE", "ACT_AS_USER", "ACCESS_EMAIL_ADDRESSES"],
        "modules": {
            "webhooks": [
                {"event": "jira:issue_updated", "url": webhook_url},
                {"event": "jira:issue_deleted", "url": webhook_url},
            ],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::test_support::{
        KEY_A_PRIVATE, KEY_A_PUBLIC, KEY_B_PRIVATE, KeyServer, block_on, hs256_with, rs256,
        unsigned,
    };

    const APP: &str = "https://app.example/jira-sync";
    const KID: &str = "install-key-1";
    const NOW: u64 = 1_700_000_000;
    const CLIENT_KEY: &str = "jira:1c4";

    fn server() -> KeyServer {
        let server = KeyServer::start();
        server.serve(&format!("/{KID}"), 200, KEY_A_PUBLIC);
        server
    }

    fn claims(path: &str) -> Value {
        json!({
            "iss": CLIENT_KEY,
            "aud": [APP],
            "iat": NOW,
            "exp": NOW + 180,
            "qsh": qsh::qsh("POST", path, ""),
        })
    }

    fn body(event: &str) -> Vec<u8> {
        json!({
            "key": "jira-sync",
            "clientKey": CLIENT_KEY,
            "sharedSecret": "s3cret",
            "baseUrl": "https://acme.atlassian.net",
            "eventType": event,
            "productType": "jira",
            "serverVersion": "100",
        })
        .to_string()
        .into_bytes()
    }

    /// Posts `body` with `authorization` to `path` (relative to [`APP`]) and verifies it.
    fn verify(
        server: &KeyServer,
        path: &str,
        authorization: &str,
        body: &[u8],
    ) -> Result<Lifecycle, Refusal> {
        let keys = ConnectKeys::new(server.url());
        let headers = [("Authorization".to_owned(), authorization.to_owned())];
        block_on(verify_lifecycle(
            &keys,
            APP,
            "POST",
            &format!("/jira-sync{path}"),
            "",
            &headers,
            body,
            NOW,
            5,
        ))
    }

    fn installed_with(token: &str) -> Result<Lifecycle, Refusal> {
        verify(
            &server(),
            INSTALLED_PATH,
            &format!("JWT {token}"),
            &body("installed"),
        )
    }

    fn code(result: Result<Lifecycle, Refusal>) -> &'static str {
        match result {
            Ok(lifecycle) => panic!("accepted: {lifecycle:?}"),
            Err(refusal) => refusal.code(),
        }
    }

    #[test]
    fn a_signed_install_is_accepted() {
        let token = rs256(KID, &claims(INSTALLED_PATH), KEY_A_PRIVATE);
        assert_eq!(
            installed_with(&token),
            Ok(Lifecycle::Installed {
                client_key: CLIENT_KEY.into(),
                shared_secret: "s3cret".into(),
                base_url: "https://acme.atlassian.net".into(),
                app_key: "jira-sync".into(),
            })
        );
    }

    #[test]
    fn a_signed_uninstall_is_accepted_with_a_string_aud() {
        let mut claims = claims(UNINSTALLED_PATH);
        claims["aud"] = json!(format!("{APP}/"));
        let token = rs256(KID, &claims, KEY_A_PRIVATE);
        assert_eq!(
            verify(
                &server(),
                UNINSTALLED_PATH,
                &format!("JWT {token}"),
                &body("uninstalled")
            ),
            Ok(Lifecycle::Uninstalled {
                client_key: CLIENT_KEY.into(),
                base_url: "https://acme.atlassian.net".into(),
                app_key: "jira-sync".into(),
            })
        );
    }

    #[test]
    fn the_path_may_come_without_the_base_urls_own() {
        let server = server();
        let keys = ConnectKeys::new(server.url());
        let token = rs256(KID, &claims(INSTALLED_PATH), KEY_A_PRIVATE);
        let headers = [("authorization".to_owned(), format!("JWT {token}"))];
        let verified = block_on(verify_lifecycle(
            &keys,
            APP,
            "POST",
            INSTALLED_PATH,
            "",
            &headers,
            &body("installed"),
            NOW,
            0,
        ));
        assert!(verified.is_ok(), "{verified:?}");
    }

    #[test]
    fn keys_are_fetched_once_per_kid() {
        let server = server();
        let keys = ConnectKeys::new(&format!("{}/", server.url()));
        let token = rs256(KID, &claims(INSTALLED_PATH), KEY_A_PRIVATE);
        let headers = [("Authorization".to_owned(), format!("JWT {token}"))];
        for _ in 0..3 {
            let verified = block_on(verify_lifecycle(
                &keys,
                APP,
                "POST",
                INSTALLED_PATH,
                "",
                &headers,
                &body("installed"),
                NOW,
                0,
            ));
            assert!(verified.is_ok(), "{verified:?}");
        }
        assert_eq!(server.fetches(), [format!("/{KID}")]);
    }

    #[test]
    fn an_unknown_kid_is_asked_for_once_then_remembered() {
        let server = server();
        let keys = ConnectKeys::new(server.url());
        let token = rs256("made-up-kid", &claims(INSTALLED_PATH), KEY_A_PRIVATE);
        let headers = [("Authorization".to_owned(), format!("JWT {token}"))];
        for _ in 0..5 {
            let refused = block_on(verify_lifecycle(
                &keys,
                APP,
                "POST",
                INSTALLED_PATH,
                "",
                &headers,
                &body("installed"),
                NOW,
                0,
            ));
            assert_eq!(refused.unwrap_err().code(), "unknown-key");
        }
        assert_eq!(
            server.fetches(),
            ["/made-up-kid"],
            "one request to the key server"
        );
    }

    #[test]
    fn an_unknown_kid_is_refused() {
        let token = rs256("other-kid", &claims(INSTALLED_PATH), KEY_A_PRIVATE);
        assert_eq!(code(installed_with(&token)), "unknown-key");
    }

    #[test]
    fn a_kid_that_is_not_a_plain_token_is_never_fetched() {
        let server = server();
        for kid in [
            "../install-key-1",
            "..",
            "a/b",
            "a%2Fb",
            "",
            &"k".repeat(129),
        ] {
            let token = rs256(kid, &claims(INSTALLED_PATH), KEY_A_PRIVATE);
            let result = verify(
                &server,
                INSTALLED_PATH,
                &format!("JWT {token}"),
                &body("installed"),
            );
            assert_eq!(code(result), "bad-kid", "{kid:?}");
        }
        assert_eq!(server.fetches(), Vec::<String>::new());
    }

    #[test]
    fn a_key_from_another_pair_is_refused() {
        let token = rs256(KID, &claims(INSTALLED_PATH), KEY_B_PRIVATE);
        assert_eq!(code(installed_with(&token)), "bad-signature");
    }

    #[test]
    fn hs256_keyed_with_the_public_key_is_refused() {
        let token = hs256_with(KID, &claims(INSTALLED_PATH), KEY_A_PUBLIC);
        assert_eq!(code(installed_with(&token)), "bad-alg");
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        let token = unsigned(KID, &claims(INSTALLED_PATH));
        assert_eq!(code(installed_with(&token)), "bad-alg");
    }

    #[test]
    fn claims_are_checked() {
        let cases: [(&str, Value, &str); 8] = [
            ("aud", json!(["https://evil.example"]), "bad-aud"),
            ("aud", json!(null), "missing-claim"),
            ("exp", json!(NOW - 10), "expired"),
            ("exp", json!(null), "missing-claim"),
            ("nbf", json!(NOW + 60), "not-yet-valid"),
            ("iss", json!("jira:someone-else"), "bad-iss"),
            (
                "qsh",
                json!(qsh::qsh("POST", UNINSTALLED_PATH, "")),
                "qsh-mismatch",
            ),
            ("qsh", json!(null), "missing-claim"),
        ];
        for (claim, value, expected) in cases {
            let mut claims = claims(INSTALLED_PATH);
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(claim);
            } else {
                claims[claim] = value.clone();
            }
            let token = rs256(KID, &claims, KEY_A_PRIVATE);
            assert_eq!(code(installed_with(&token)), expected, "{claim} = {value}");
        }
    }

    #[test]
    fn the_skew_is_allowed_on_exp() {
        let mut claims = claims(INSTALLED_PATH);
        claims["exp"] = json!(NOW - 4);
        let token = rs256(KID, &claims, KEY_A_PRIVATE);
        assert!(installed_with(&token).is_ok());
    }

    #[test]
    fn the_qsh_binds_the_query_too() {
        let server = server();
        let keys = ConnectKeys::new(server.url());
        let token = rs256(KID, &claims(INSTALLED_PATH), KEY_A_PRIVATE);
        let headers = [("Authorization".to_owned(), format!("JWT {token}"))];
        let verified = block_on(verify_lifecycle(
            &keys,
            APP,
            "POST",
            INSTALLED_PATH,
            "user_id=x",
            &headers,
            &body("installed"),
            NOW,
            0,
        ));
        assert_eq!(verified.map_err(|e| e.code()), Err("qsh-mismatch"));
    }

    #[test]
    fn malformed_credentials_are_refused_without_a_fetch() {
        let server = server();
        let huge = format!("JWT {}", "a".repeat(jwt::MAX_TOKEN_BYTES + 1));
        let cases = [
            ("", "no-credential"),
            ("Bearer abc", "no-credential"),
            ("JWT", "no-credential"),
            ("JWT a.b", "malformed"),
            ("JWT !!!.e30.x", "malformed"),
            ("JWT e30.e30.x", "malformed"),
            ("JWT bm90IGpzb24.e30.x", "malformed"),
            (huge.as_str(), "oversized"),
        ];
        for (authorization, expected) in cases {
            let result = verify(&server, INSTALLED_PATH, authorization, &body("installed"));
            assert_eq!(code(result), expected, "{authorization:.40}");
        }
        assert_eq!(server.fetches(), Vec::<String>::new());
    }

    #[test]
    fn a_garbled_signature_or_payload_is_refused() {
        let token = rs256(KID, &claims(INSTALLED_PATH), KEY_A_PRIVATE);
        let (head, signature) = token.rsplit_once('.').unwrap();
        let (header, _) = head.split_once('.').unwrap();
        let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
        assert_eq!(
            code(installed_with(&format!(
                "{head}.{flipped}{}",
                &signature[1..]
            ))),
            "bad-signature"
        );
        assert_eq!(code(installed_with(&format!("{head}.!!"))), "malformed");
        assert_eq!(
            code(installed_with(&format!("{header}.e30.{signature}"))),
            "bad-signature"
        );
    }

    #[test]
    fn the_body_must_be_connects_and_agree_with_the_path() {
        let server = server();
        let token = rs256(KID, &claims(INSTALLED_PATH), KEY_A_PRIVATE);
        let authorization = format!("JWT {token}");
        let mut no_secret: Value = serde_json::from_slice(&body("installed")).unwrap();
        no_secret.as_object_mut().unwrap().remove("sharedSecret");
        let no_secret = no_secret.to_string();
        let mut empty_client: Value = serde_json::from_slice(&body("installed")).unwrap();
        empty_client["clientKey"] = json!("");
        let empty_client = empty_client.to_string();
        let cases: [(&[u8], &str); 6] = [
            (b"not json", "bad-body"),
            (b"{}", "bad-body"),
            (&body("enabled"), "bad-body"),
            (&body("uninstalled"), "event-path-mismatch"),
            (no_secret.as_bytes(), "bad-body"),
            (empty_client.as_bytes(), "bad-body"),
        ];
        for (body, expected) in cases {
            let result = verify(&server, INSTALLED_PATH, &authorization, body);
            assert_eq!(code(result), expected, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn an_uninstall_token_cannot_install() {
        // A token made for `uninstalled`, posted with an `installed` body to either path.
        let token = rs256(KID, &claims(UNINSTALLED_PATH), KEY_A_PRIVATE);
        let server = server();
        let authorization = format!("JWT {token}");
        assert_eq!(
            code(verify(
                &server,
                UNINSTALLED_PATH,
                &authorization,
                &body("installed")
            )),
            "event-path-mismatch"
        );
        assert_eq!(
            code(verify(
                &server,
                INSTALLED_PATH,
                &authorization,
                &body("installed")
            )),
            "qsh-mismatch"
        );
    }

    #[test]
    fn an_unreachable_or_broken_key_server_is_transient() {
        let token = rs256(KID, &claims(INSTALLED_PATH), KEY_A_PRIVATE);
        let authorization = format!("JWT {token}");
        let broken = KeyServer::start();
        broken.serve(&format!("/{KID}"), 500, "");
        let garbage = KeyServer::start();
        garbage.serve(&format!("/{KID}"), 200, "not a PEM");
        let huge = KeyServer::start();
        huge.serve(&format!("/{KID}"), 200, &"a".repeat(17 * 1024));
        for server in [broken, garbage, huge] {
            let refusal =
                verify(&server, INSTALLED_PATH, &authorization, &body("installed")).unwrap_err();
            assert!(refusal.is_transient(), "{refusal}");
        }
        // A closed port: nothing listens there once the listener is dropped.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let headers = [("Authorization".to_owned(), authorization)];
        let refusal = block_on(verify_lifecycle(
            &ConnectKeys::new(&url),
            APP,
            "POST",
            INSTALLED_PATH,
            "",
            &headers,
            &body("installed"),
            NOW,
            0,
        ))
        .unwrap_err();
        assert_eq!(refusal.code(), "key-unavailable");
    }

    #[test]
    fn a_forbidden_key_is_unknown_as_s3_says_it() {
        let server = KeyServer::start();
        server.serve(&format!("/{KID}"), 403, "AccessDenied");
        let token = rs256(KID, &claims(INSTALLED_PATH), KEY_A_PRIVATE);
        let result = verify(
            &server,
            INSTALLED_PATH,
            &format!("JWT {token}"),
            &body("installed"),
        );
        assert_eq!(code(result), "unknown-key");
    }

    #[test]
    fn the_shared_secret_is_not_in_debug_output() {
        let token = rs256(KID, &claims(INSTALLED_PATH), KEY_A_PRIVATE);
        let installed = installed_with(&token).unwrap();
        let shown = format!("{installed:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains(CLIENT_KEY),
            "{shown}"
        );
    }

    #[test]
    fn relative_paths_drop_the_base_urls_path() {
        assert_eq!(relative_path(APP, "/jira-sync/a"), "/a");
        assert_eq!(relative_path(APP, "/jira-sync"), "");
        assert_eq!(relative_path(APP, "/jira-syncer/a"), "/jira-syncer/a");
        assert_eq!(relative_path("https://app.example", "/a"), "/a");
        assert_eq!(relative_path("https://app.example/", "/a"), "/a");
    }

    #[test]
    fn the_descriptor_asks_for_signed_lifecycle_and_the_webhooks() {
        let d = descriptor("jira-sync", "https://app.example", "Jira Sync");
        assert_eq!(d["key"], "jira-sync");
        assert_eq!(d["name"], "Jira Sync");
        assert_eq!(d["baseUrl"], "https://app.example");
        assert_eq!(d["authentication"], json!({"type": "jwt"}));
        assert_eq!(d["apiMigrations"]["signed-install"], true);
        assert_eq!(d["lifecycle"]["installed"], INSTALLED_PATH);
        assert_eq!(d["lifecycle"]["uninstalled"], UNINSTALLED_PATH);
        assert_eq!(
            d["modules"]["webhooks"],
            json!([
                {"event": "jira:issue_updated", "url": "/extensions/jira/issue-updated/"},
                {"event": "jira:issue_deleted", "url": "/extensions/jira/issue-updated/"},
            ])
        );
        for scope in ["READ", "WRITE", "ACT_AS_USER", "ACCESS_EMAIL_ADDRESSES"] {
            assert!(d["scopes"].as_array().unwrap().contains(&json!(scope)));
        }
    }
}
