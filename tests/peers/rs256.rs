//! Atlassian's RS256 dialects against tokens signed by jose (npm), run by `interop/tokens.mjs`:
//! Connect's signed lifecycle callbacks and Forge's invocation tokens, signed with the
//! simulator's private keys, verified with the public keys the simulator serves over loopback
//! HTTP. The valid ones must pass; each tampered one must be refused with its own code.

use jira_sync_host::install::connect::{INSTALLED_PATH, UNINSTALLED_PATH};
use jira_sync_host::install::{
    ConnectKeys, ForgeKeys, Invocation, Lifecycle, forge, verify_invocation, verify_lifecycle,
};
use jira_sync_host::sim::install::{
    CONNECT_KID, CONNECT_PRIVATE_PEM, CONNECT_PUBLIC_PEM, FORGE_KID, FORGE_PRIVATE_PEM,
    FORGE_PUBLIC_PEM,
};
use jira_sync_host::sim::{SimWorld, Simulator};
use jira_sync_plugin::qsh;
use serde_json::{Value, json};

const NOW: u64 = 1_700_000_000;
const SKEW: u64 = 5;
/// An app served under a path, so that the `qsh` must be relative to it.
const APP: &str = "https://app.example/jira-sync";
const CLIENT_KEY: &str = "jira:peer-site";
const ARI: &str = "ari:cloud:ecosystem::app/0b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3";

/// Runs `node interop/tokens.mjs rs256` over `cases`: one token per case.
fn jose(cases: &[Value]) -> Vec<String> {
    serde_json::from_value(super::node("tokens.mjs", "rs256", "jose", cases)).unwrap()
}

/// One token for jose to sign, and the code it must be refused with (`None`: accepted).
struct Case {
    name: &'static str,
    signing: Value,
    refused: Option<&'static str>,
}

/// A case signed RS256 with `private_pem` under `kid`, or HS256 keyed with `hs256_secret`.
fn case(
    name: &'static str,
    kid: &str,
    private_pem: &str,
    claims: Value,
    refused: Option<&'static str>,
) -> Case {
    Case {
        name,
        signing: json!({
            "private_pem": private_pem,
            "header": {"alg": "RS256", "kid": kid, "typ": "JWT"},
            "claims": claims,
        }),
        refused,
    }
}

fn hs256_case(name: &'static str, kid: &str, secret: &str, claims: Value) -> Case {
    let mut case = case(name, kid, CONNECT_PRIVATE_PEM, claims, Some("bad-alg"));
    case.signing["hs256_secret"] = json!(secret);
    case
}

/// `claims` with `changes` applied; a `null` change removes the claim.
fn with(claims: &Value, changes: Value) -> Value {
    let mut claims = claims.clone();
    for (name, value) in changes.as_object().unwrap() {
        claims[name] = value.clone();
    }
    claims
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn lifecycle_body(event: &str) -> Vec<u8> {
    json!({
        "key": "jira-sync",
        "clientKey": CLIENT_KEY,
        "sharedSecret": "peer-s3cret",
        "baseUrl": "https://peer.atlassian.net",
        "displayUrl": "https://peer.atlassian.net",
        "productType": "jira",
        "eventType": event,
    })
    .to_string()
    .into_bytes()
}

fn lifecycle_claims(lifecycle_path: &str) -> Value {
    json!({
        "iss": CLIENT_KEY,
        "aud": [APP],
        "iat": NOW,
        "exp": NOW + 180,
        "qsh": qsh::qsh_for_url("POST", &format!("{APP}{lifecycle_path}"), APP),
    })
}

#[test]
fn connect_lifecycle_tokens_signed_by_jose() {
    let sim = Simulator::start(SimWorld::demo()).unwrap();
    let keys = ConnectKeys::new(&sim.connect_keys_url());
    let installed = lifecycle_claims(INSTALLED_PATH);
    let uninstalled = lifecycle_claims(UNINSTALLED_PATH);
    let (kid, key) = (CONNECT_KID, CONNECT_PRIVATE_PEM);
    let cases = [
        case("valid install", kid, key, installed.clone(), None),
        case(
            "wrong kid",
            "sim-connect-install-2",
            key,
            installed.clone(),
            Some("unknown-key"),
        ),
        case(
            "other key pair",
            kid,
            FORGE_PRIVATE_PEM,
            installed.clone(),
            Some("bad-signature"),
        ),
        hs256_case(
            "public key as HMAC secret",
            kid,
            CONNECT_PUBLIC_PEM,
            installed.clone(),
        ),
        case(
            "wrong aud",
            kid,
            key,
            with(&installed, json!({"aud": ["https://app.example"]})),
            Some("bad-aud"),
        ),
        case(
            "expired",
            kid,
            key,
            with(&installed, json!({"exp": NOW - SKEW})),
            Some("expired"),
        ),
        case(
            "wrong iss",
            kid,
            key,
            with(&installed, json!({"iss": "jira:other"})),
            Some("bad-iss"),
        ),
        case(
            "uninstall's qsh",
            kid,
            key,
            uninstalled.clone(),
            Some("qsh-mismatch"),
        ),
    ];
    let tokens = jose(&cases.iter().map(|c| c.signing.clone()).collect::<Vec<_>>());
    let verify = |token: &str, lifecycle_path: &str, event: &str| {
        let headers = [("Authorization".to_owned(), format!("JWT {token}"))];
        block_on(verify_lifecycle(
            &keys,
            APP,
            "POST",
            &format!("/jira-sync{lifecycle_path}"),
            "",
            &headers,
            &lifecycle_body(event),
            NOW,
            SKEW,
        ))
    };
    for (case, token) in cases.iter().zip(&tokens) {
        let verified = verify(token, INSTALLED_PATH, "installed");
        match case.refused {
            None => assert_eq!(
                verified,
                Ok(Lifecycle::Installed {
                    client_key: CLIENT_KEY.into(),
                    shared_secret: "peer-s3cret".into(),
                    base_url: "https://peer.atlassian.net".into(),
                    app_key: "jira-sync".into(),
                }),
                "{}",
                case.name
            ),
            Some(code) => assert_eq!(
                verified.map_err(|e| e.code()).err(),
                Some(code),
                "{}",
                case.name
            ),
        }
    }
    let [uninstall] = &jose(&[case("valid uninstall", kid, key, uninstalled, None).signing])[..]
    else {
        panic!("one token per case");
    };
    assert_eq!(
        verify(uninstall, UNINSTALLED_PATH, "uninstalled"),
        Ok(Lifecycle::Uninstalled {
            client_key: CLIENT_KEY.into(),
            base_url: "https://peer.atlassian.net".into(),
            app_key: "jira-sync".into(),
        })
    );
}

#[test]
fn forge_invocation_tokens_signed_by_jose() {
    let sim = Simulator::start(SimWorld::demo()).unwrap();
    let keys = ForgeKeys::new(&sim.forge_jwks_url());
    let claims = json!({
        "iss": forge::ISSUER,
        "aud": ARI,
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 300,
        "jti": "peer-1",
        "app": {
            "id": ARI,
            "installationId": "ari:cloud:ecosystem::installation/peer",
            "apiBaseUrl": "https://api.atlassian.com/ex/jira/peer-cloud",
            "installation": {"contexts": [{"cloudId": "peer-cloud"}]},
        },
    });
    let (kid, key) = (FORGE_KID, FORGE_PRIVATE_PEM);
    let cases = [
        case("valid", kid, key, claims.clone(), None),
        case(
            "wrong kid",
            "sim-forge-invocation-2",
            key,
            claims.clone(),
            Some("unknown-key"),
        ),
        case(
            "other key pair",
            kid,
            CONNECT_PRIVATE_PEM,
            claims.clone(),
            Some("bad-signature"),
        ),
        hs256_case(
            "public key as HMAC secret",
            kid,
            FORGE_PUBLIC_PEM,
            claims.clone(),
        ),
        case(
            "wrong aud",
            kid,
            key,
            with(&claims, json!({"aud": "ari:cloud:ecosystem::app/other"})),
            Some("bad-aud"),
        ),
        case(
            "expired",
            kid,
            key,
            with(&claims, json!({"exp": NOW - SKEW})),
            Some("expired"),
        ),
        case(
            "not yet valid",
            kid,
            key,
            with(&claims, json!({"nbf": NOW + SKEW + 1})),
            Some("not-yet-valid"),
        ),
        case(
            "wrong iss",
            kid,
            key,
            with(&claims, json!({"iss": "forge/other"})),
            Some("bad-iss"),
        ),
    ];
    let tokens = jose(&cases.iter().map(|c| c.signing.clone()).collect::<Vec<_>>());
    for (case, token) in cases.iter().zip(&tokens) {
        let headers = [
            ("Authorization".to_owned(), format!("Bearer {token}")),
            (
                "x-forge-oauth-system".to_owned(),
                "opaque.system.token".to_owned(),
            ),
        ];
        let verified = block_on(verify_invocation(&keys, ARI, &headers, NOW, SKEW));
        match case.refused {
            None => assert_eq!(
                verified,
                Ok(Invocation {
                    installation_id: "ari:cloud:ecosystem::installation/peer".into(),
                    api_base_url: "https://api.atlassian.com/ex/jira/peer-cloud".into(),
                    cloud_id: Some("peer-cloud".into()),
                    system_token: Some("opaque.system.token".into()),
                }),
                "{}",
                case.name
            ),
            Some(code) => assert_eq!(
                verified.map_err(|e| e.code()).err(),
                Some(code),
                "{}",
                case.name
            ),
        }
    }
}
