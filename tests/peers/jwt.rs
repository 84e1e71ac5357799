//! Differential test against Atlassian's own `atlassian-jwt` (npm), run by `interop/jwt.mjs`.
//!
//! A seeded corpus of requests (methods, trailing slashes, encoded and unicode segments, reserved
//! characters, `+` and `%20`, empty values, repeated keys, a `jwt` parameter, base URLs with a
//! path) is hashed by both sides; tokens atlassian-jwt signs go through the component's webhook;
//! tokens the component signs for its outbound requests are decoded and checked by atlassian-jwt.

use std::sync::Arc;

use jira_sync_host::backends::{
    Backends, BoxFuture, HttpBackend, HttpResult, ManualClock, MemoryCache, MemoryPlatform,
    OutboundRequest, OutboundResponse,
};
use jira_sync_host::{Installation, InstallationSpec};
use jira_sync_host::{outbound, webhook};
use jira_sync_plugin::qsh;
use jira_sync_tests::runtime;
use serde_json::{Value, json};

const CORPUS: usize = 1200;
const NOW: u64 = 1_700_000_000;
const SECRET: &str = "s3cret-for-interop";

/// Runs `node interop/jwt.mjs MODE` over `cases`.
fn atlassian(mode: &str, cases: &[Value]) -> Vec<Value> {
    serde_json::from_value(super::node("jwt.mjs", mode, "atlassian-jwt", cases)).unwrap()
}

const SEGMENTS: &[&str] = &[
    "rest",
    "api",
    "2",
    "issue",
    "APP-123",
    "a%20b",
    "a+b",
    "%E2%9C%93",
    "~tilde",
    "*star",
    "semi;colon",
    "comma,",
    "at@",
    "dollar$",
    "a%26b",
    "eq%3D",
    "x.y",
    "-_",
    "%2F",
    "(paren)",
    "'q'",
    "!bang",
    "%C3%BC",
    "%25",
];
const KEYS: &[&str] = &[
    "a", "b", "c", "A", "jwt", "q", "issueKey", "query", "sp ace", "plus+", "tilde~", "star*", "ü",
    "✓", "é", "a~", "k[]", "", "e=q",
];
const VALUES: &[&str] = &[
    "1",
    "2",
    "x y",
    "a+b",
    "~",
    "*",
    "!'()",
    "",
    "ü",
    "✓",
    "bob@example.com",
    "a,b",
    "=",
    "%",
    "100%",
    "Z",
    "a&b",
    "#hash",
    "/slash/",
    "日本",
];
const BASES: &[&str] = &[
    "https://acme.atlassian.net",
    "https://acme.atlassian.net/",
    "https://host.example/jira",
    "https://host.example/jira/",
];

/// How a query string spells a key or value.
fn spell(s: &str, style: u8) -> String {
    let form = || qsh::encode(s).replace("%20", "+");
    match style {
        0 => qsh::encode(s),
        1 => form(),
        // Raw where a URL allows it, which exercises decoding of unencoded unicode and `~*!'()`.
        _ if s.chars().all(|c| !" &=#%+/?".contains(c)) => s.to_owned(),
        _ => form(),
    }
}

fn query(rng: &mut fastrand::Rng) -> String {
    let mut pairs = Vec::new();
    for _ in 0..rng.usize(0..6) {
        let key = KEYS[rng.usize(..KEYS.len())];
        let value = VALUES[rng.usize(..VALUES.len())];
        let style = rng.u8(0..3);
        let pair = match rng.u8(0..10) {
            0 => spell(key, style),
            _ => format!("{}={}", spell(key, style), spell(value, style)),
        };
        pairs.push(pair);
        if rng.u8(0..5) == 0 {
            // A repeated key.
            let value = VALUES[rng.usize(..VALUES.len())];
            pairs.push(format!("{}={}", spell(key, style), spell(value, style)));
        }
    }
    pairs.join("&")
}

fn path(rng: &mut fastrand::Rng) -> String {
    let segments: Vec<&str> = (0..rng.usize(1..5))
        .map(|_| SEGMENTS[rng.usize(..SEGMENTS.len())])
        .collect();
    let trailing = ["", "", "/"][rng.usize(..3)];
    format!("/{}{trailing}", segments.join("/"))
}

fn with_query(url: String, query: &str) -> String {
    if query.is_empty() {
        url
    } else {
        format!("{url}?{query}")
    }
}

#[test]
fn qsh_and_tokens_agree_with_atlassian_jwt() {
    let mut rng = fastrand::Rng::with_seed(0x7a17);
    let methods = ["GET", "POST", "PUT", "DELETE", "get", "patch"];

    // 1. The qsh of arbitrary requests, and tokens atlassian-jwt signs for webhooks.
    let mut cases = Vec::new();
    for _ in 0..CORPUS {
        let base = BASES[rng.usize(..BASES.len())];
        let url = with_query(
            format!("{}{}", base.trim_end_matches('/'), path(&mut rng)),
            &query(&mut rng),
        );
        cases.push(
            json!({"method": methods[rng.usize(..methods.len())], "url": url,
                          "base_url": base, "iss": "jira:interop", "secret": SECRET,
                          "iat": NOW, "exp": NOW + 180}),
        );
    }
    let webhook_queries: Vec<(String, String)> = (0..CORPUS)
        .map(|i| {
            let path = [
                "/extensions/jira/issue-updated",
                "/extensions/jira/issue-updated/",
            ][i % 2];
            (path.to_owned(), query(&mut rng))
        })
        .collect();
    for (path, query) in &webhook_queries {
        cases.push(json!({"method": "POST",
                          "url": with_query(format!("https://app.example{path}"), query),
                          "base_url": "https://app.example", "iss": "jira:interop",
                          "secret": SECRET, "iat": NOW, "exp": NOW + 180}));
    }
    let signed = atlassian("sign", &cases);

    let mut disagreements = Vec::new();
    for (case, theirs) in cases.iter().zip(&signed) {
        let ours = qsh::qsh_for_url(
            case["method"].as_str().unwrap(),
            case["url"].as_str().unwrap(),
            case["base_url"].as_str().unwrap(),
        );
        if ours != theirs["qsh"] {
            disagreements.push(format!("{} {}", case["method"], case["url"]));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} qsh differ from atlassian-jwt, e.g.:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements[..disagreements.len().min(15)].join("\n")
    );

    let world = world(&[("jira:interop", "https://acme.atlassian.net")]);
    let mut refused = Vec::new();
    for ((path, query), theirs) in webhook_queries.iter().zip(&signed[CORPUS..]) {
        let request = webhook::Request {
            method: "POST".into(),
            path: path.clone(),
            query: query.clone(),
            headers: vec![(
                "Authorization".into(),
                format!("JWT {}", theirs["token"].as_str().unwrap()),
            )],
            body: b"{}".to_vec(),
        };
        let call = runtime().blocking().webhook(&world, &request);
        let status = call.result.unwrap().status;
        if status != 200 {
            refused.push(format!("{status} {path}?{query}"));
        }
    }
    assert!(
        refused.is_empty(),
        "{} atlassian-jwt tokens refused, e.g.:\n{}",
        refused.len(),
        refused[..refused.len().min(15)].join("\n")
    );
}

/// Answers every search with no users and every other request with 404.
struct NoOneHome;

impl HttpBackend for NoOneHome {
    fn send(&self, request: OutboundRequest) -> BoxFuture<'_, HttpResult> {
        let search = request.url.contains("/user/assignable/search");
        Box::pin(std::future::ready(Ok(OutboundResponse {
            status: if search { 200 } else { 404 },
            headers: Vec::new(),
            body: if search {
                b"[]".to_vec()
            } else {
                b"{}".to_vec()
            },
        })))
    }
}

fn world(installations: &[(&str, &str)]) -> Backends {
    let platform = Arc::new(MemoryPlatform::default());
    for (client_key, base_url) in installations {
        let spec: InstallationSpec = serde_json::from_value(json!({
            "client_key": client_key, "shared_secret": SECRET, "base_url": base_url,
            "app_key": "acme-platform.jira",
            "sync_status_forward": {"10000": {"resolved": "10101", "unresolved": "3"}}
        }))
        .unwrap();
        platform.add_installation(Installation::from(&spec));
    }
    Backends {
        http: Arc::new(NoOneHome),
        cache: Arc::new(MemoryCache::default()),
        platform: platform.clone(),
        clock: Arc::new(ManualClock::new(NOW)),
    }
}

#[test]
fn tokens_the_component_signs_pass_atlassian_jwt() {
    let installations: Vec<(String, &str)> = BASES
        .iter()
        .enumerate()
        .map(|(i, base)| (format!("jira:site-{i}"), *base))
        .collect();
    let refs: Vec<(&str, &str)> = installations
        .iter()
        .map(|(k, b)| (k.as_str(), *b))
        .collect();
    let world = world(&refs);
    let mut rng = fastrand::Rng::with_seed(0xb0b);
    let key_parts = [
        "APP", "A B", "ü", "a/b", "x?y", "k&v", "~*", "100%", "日本", "Z-9",
    ];
    let emails = [
        "bob@example.com",
        "o'brien+tag@example.com",
        "名@例え.jp",
        "sp ace@example.com",
        "~t*!(x)@example.com",
        "a=b&c@example.com",
    ];
    let mut requests = Vec::new();
    while requests.len() < CORPUS {
        let (client_key, base) = &installations[rng.usize(..installations.len())];
        let issue_key = format!(
            "{}-{}",
            key_parts[rng.usize(..key_parts.len())],
            rng.u32(1..10_000)
        );
        let email = emails[rng.usize(..emails.len())].to_owned();
        let assign = runtime().blocking().sync_assignee(
            &world,
            &outbound::AssigneeRequest {
                client_key: client_key.clone(),
                issue_key: issue_key.clone(),
                target: outbound::AssigneeTarget::Emails(vec![email]),
                source: outbound::AssignmentSource::Platform,
            },
        );
        let status = runtime().blocking().sync_status(
            &world,
            &outbound::StatusRequest {
                client_key: client_key.clone(),
                issue_key,
                resolved: true,
                dry_run: false,
                source: outbound::AssignmentSource::Platform,
            },
        );
        for exchange in assign.record.http.iter().chain(&status.record.http) {
            requests.push(json!({
                "method": exchange.method,
                "url": exchange.url,
                "base_url": base,
                "authorization": exchange.headers["Authorization"],
                "secret": SECRET,
            }));
        }
    }
    let verdicts = atlassian("verify", &requests);
    let failures: Vec<String> = requests
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| v["ok"] != true)
        .map(|(r, v)| format!("{} {}: {}", r["method"], r["url"], v["error"]))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} outbound tokens fail atlassian-jwt, e.g.:\n{}",
        failures.len(),
        requests.len(),
        failures[..failures.len().min(15)].join("\n")
    );
}
