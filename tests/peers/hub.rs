//! Admin webhooks' `X-Hub-Signature` (docs/behaviour.md#10.3) against `@octokit/webhooks-methods`
//! (npm), run by `interop/tokens.mjs hub`: over a seeded corpus of secrets and UTF-8 bodies, the
//! component's signature is octokit's, and every delivery octokit signs is accepted by the
//! component through the runtime, while the same delivery with one byte changed is refused.

use std::sync::Arc;

use jira_sync_host::backends::{Backends, ManualClock, MemoryCache, MemoryPlatform};
use jira_sync_host::installation::CredentialSpec;
use jira_sync_host::{Installation, InstallationSpec, webhook};
use jira_sync_plugin::signature;
use jira_sync_tests::runtime;
use serde_json::{Value, json};

const CORPUS: usize = 300;
const CLIENT_KEY: &str = "site-hub";

/// Runs `node interop/tokens.mjs hub` over `cases`: one `sha256=<hex>` per case.
fn octokit(cases: &[Value]) -> Vec<String> {
    serde_json::from_value(super::node(
        "tokens.mjs",
        "hub",
        "@octokit/webhooks-methods",
        cases,
    ))
    .unwrap()
}

/// A string of up to `max` characters (fewer than `min` never) drawn from ASCII, punctuation,
/// whitespace and multi-byte UTF-8.
fn text(rng: &mut fastrand::Rng, min: usize, max: usize) -> String {
    let len = rng.usize(min..max);
    const PIECES: &[&str] = &[
        "a", "Z", "0", " ", "\n", "\t", "\"", "\\", "{", "}", ":", ",", "é", "ü", "日本", "🙂",
        "\u{feff}", "'", "%", "+", "=",
    ];
    (0..len)
        .map(|_| PIECES[rng.usize(..PIECES.len())])
        .collect()
}

/// The platform of one admin webhook installation with `secret`.
fn backends(secret: &str) -> Backends {
    let platform = Arc::new(MemoryPlatform::default());
    let mut spec = InstallationSpec::new(CLIENT_KEY, "", "https://acme.invalid", "app");
    spec.credentials = CredentialSpec::AdminWebhook {
        secret: secret.into(),
        email: "bot@example.com".into(),
        api_token: "t".into(),
    };
    platform.add_installation(Installation::from(&spec));
    Backends {
        http: Arc::new(jira_sync_host::backends::ScriptedHttp::new(Vec::new())),
        cache: Arc::new(MemoryCache::default()),
        platform,
        clock: Arc::new(ManualClock::new(1_700_000_000)),
    }
}

fn delivery(body: &[u8], signature: &str) -> webhook::Request {
    webhook::Request {
        method: "POST".into(),
        path: format!("/webhooks/admin/{CLIENT_KEY}"),
        query: String::new(),
        headers: vec![("X-Hub-Signature".into(), signature.into())],
        body: body.to_vec(),
    }
}

#[test]
fn hub_signatures_agree_with_octokit_and_verify_in_the_component() {
    let mut rng = fastrand::Rng::with_seed(0x4b1d);
    let corpus: Vec<(String, String)> = (0..CORPUS)
        .map(|i| {
            let secret = match i {
                0 => "It's a Secret to Everybody".to_owned(),
                _ => text(&mut rng, 1, 40),
            };
            let body = match i {
                0 => "Hello World!".to_owned(),
                // octokit refuses to sign an empty payload; the shortest JSON body instead.
                1 => "{}".to_owned(),
                _ => {
                    let key = text(&mut rng, 0, 12);
                    let value = text(&mut rng, 0, 200);
                    json!({"webhookEvent": "jira:issue_updated", key: value}).to_string()
                }
            };
            (secret, body)
        })
        .collect();
    let cases: Vec<Value> = corpus
        .iter()
        .map(|(secret, body)| {
            use base64::Engine as _;
            let body = base64::engine::general_purpose::STANDARD.encode(body);
            json!({"secret": secret, "body_base64": body})
        })
        .collect();
    let theirs = octokit(&cases);
    assert_eq!(theirs.len(), CORPUS);
    assert_eq!(
        theirs[0], "sha256=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9",
        "the published test vector"
    );
    for ((secret, body), theirs) in corpus.iter().zip(&theirs) {
        assert_eq!(
            &signature::sign(secret, body.as_bytes()),
            theirs,
            "{secret:?} {body:?}"
        );
    }

    // Through the component: every 10th case as a delivery, as signed and with its body changed.
    for ((secret, body), theirs) in corpus.iter().zip(&theirs).step_by(10) {
        let backends = backends(secret);
        let call = runtime()
            .blocking()
            .accept(&backends, &delivery(body.as_bytes(), theirs));
        match call.result.unwrap() {
            // A body that is not an issue event is answered, but only once verified (400, or
            // 200 without changelog), never 409.
            webhook::Acceptance::Answered(response) => {
                assert_ne!(response.status, 409, "{secret:?} {body:?}")
            }
            webhook::Acceptance::Queued(job) => assert_eq!(job.client_key, CLIENT_KEY),
        }
        let mut tampered = body.as_bytes().to_vec();
        tampered.push(b' ');
        let call = runtime()
            .blocking()
            .accept(&backends, &delivery(&tampered, theirs));
        assert!(
            matches!(
                call.result.unwrap(),
                webhook::Acceptance::Answered(webhook::Response { status: 409, .. })
            ),
            "{secret:?} {body:?}"
        );
    }
}
