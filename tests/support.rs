//! Shared helpers: one runtime per test binary, scenario files, and a trace reader.

use std::path::PathBuf;
use std::sync::OnceLock;

use jira_sync_host::{Runtime, Scenario, bundled_component, replay};
use serde_json::{Value, json};

/// The component, compiled once per test binary.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::load(&bundled_component()).expect("load the built component"))
}

pub fn scenario_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.json"))
}

/// A scenario file of `tests/scenarios/`, as JSON to tweak.
pub fn scenario(name: &str) -> Value {
    let path = scenario_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Replays `scenario` through the component.
pub fn run(scenario: &Value) -> Trace {
    let scenario: Scenario =
        serde_json::from_value(scenario.clone()).expect("the test's scenario is valid");
    Trace(replay(runtime(), &scenario))
}

/// `base` with its steps replaced by `steps`.
pub fn with_steps(mut base: Value, steps: Value) -> Value {
    base["steps"] = steps;
    base
}

/// A signed webhook step with this body.
pub fn signed(body: Value) -> Value {
    json!({"webhook": {"sign": true, "body": body}})
}

/// An `issue_updated` body for APP-123 with these changelog items and issue fields.
pub fn issue_updated(items: Value, fields: Value) -> Value {
    json!({
        "webhookEvent": "jira:issue_updated",
        "timestamp": 1_700_000_000_000u64,
        "changelog": {"id": "10172", "items": items},
        "issue": {"id": "101", "key": "APP-123", "fields": fields},
    })
}

/// Delivery `id` of the base scenario's site, signed like Jira at the base scenario's time:
/// APP-123 assigned to Ada, whose email is visible.
pub fn ada_delivery(id: &str) -> jira_sync_host::webhook::Request {
    const PATH: &str = "/extensions/jira/issue-updated/";
    let body = issue_updated(
        json!([assignee_item()]),
        json!({"assignee": {"accountId": "5f1a", "emailAddress": "ada@example.com"}}),
    );
    let authorization = jira_sync_host::signing::authorization(
        "jira:1c4",
        "s3cret",
        1_700_000_000,
        ("POST", PATH, ""),
        &Default::default(),
    );
    jira_sync_host::webhook::Request {
        method: "POST".into(),
        path: PATH.into(),
        query: String::new(),
        headers: vec![
            ("Authorization".into(), authorization),
            ("X-Atlassian-Webhook-Identifier".into(), id.into()),
        ],
        body: body.to_string().into_bytes(),
    }
}

pub fn assignee_item() -> Value {
    json!({"field": "assignee", "fieldId": "assignee", "from": null, "to": "5f1a", "toString": "Ada Byron"})
}

pub fn status_item(from: &str, to: &str) -> Value {
    json!({"field": "status", "fieldId": "status", "from": from, "to": to})
}

/// Reads a replay trace.
#[derive(Debug, Clone)]
pub struct Trace(pub Value);

impl Trace {
    pub fn step(&self, i: usize) -> &Value {
        &self.0["steps"][i]
    }

    pub fn status(&self, i: usize) -> u64 {
        self.step(i)["response"]["status"]
            .as_u64()
            .unwrap_or_else(|| panic!("step {i} has no response: {:#}", self.step(i)))
    }

    pub fn body(&self, i: usize) -> &Value {
        &self.step(i)["response"]["body"]
    }

    /// The value of header `name` (case-insensitive) of step `i`'s webhook answer.
    pub fn header(&self, i: usize, name: &str) -> Option<&str> {
        self.step(i)["response"]["headers"]
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    }

    pub fn outcome(&self, i: usize) -> &Value {
        &self.step(i)["outcome"]
    }

    pub fn events(&self, i: usize) -> Vec<String> {
        self.step(i)["logs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| l["event"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub fn has_event(&self, i: usize, event: &str) -> bool {
        self.events(i).iter().any(|e| e == event)
    }

    /// `METHOD path` of each request of step `i`.
    pub fn requests(&self, i: usize) -> Vec<String> {
        self.step(i)["http"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let url = r["url"].as_str().unwrap_or_default();
                let path = url.split_once("://").map_or(url, |(_, rest)| {
                    rest.find('/').map_or("/", |at| &rest[at..])
                });
                format!("{} {}", r["method"].as_str().unwrap_or_default(), path)
            })
            .collect()
    }

    pub fn assignments(&self, i: usize) -> &Value {
        &self.step(i)["assignments"]
    }

    pub fn resolutions(&self, i: usize) -> &Value {
        &self.step(i)["resolutions"]
    }

    pub fn group(&self, id: u64) -> &Value {
        &self.0["groups"][id.to_string()]
    }

    /// The step made no change to the platform's groups and called nothing outside.
    pub fn no_effect(&self, i: usize) -> bool {
        let empty = |v: &Value| v.as_array().is_some_and(Vec::is_empty);
        empty(self.assignments(i)) && empty(self.resolutions(i)) && empty(&self.step(i)["http"])
    }

    pub fn auth_failure(&self, i: usize) -> Option<String> {
        self.step(i)["logs"]
            .as_array()?
            .iter()
            .find(|l| l["event"] == "jira.webhook.auth-failed")
            .map(|l| {
                l["fields"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
    }
}

/// Verifies an outbound `Authorization: JWT ...` header without the guest's code: signature,
/// header, `exp - iat = 300`, and a qsh recomputed here from `method` and `url`. Returns the claims.
pub fn verify_outbound(
    authorization: &str,
    secret: &str,
    method: &str,
    url: &str,
    base_url: &str,
) -> Value {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::{Hmac, Mac};

    let token = authorization
        .strip_prefix("JWT ")
        .unwrap_or_else(|| panic!("not a JWT header: {authorization}"));
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
        .expect("signature verifies with the shared secret");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, json!({"typ": "JWT", "alg": "HS256"}));
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        300
    );
    assert_eq!(
        claims["qsh"],
        independent_qsh(method, url, base_url),
        "{url}"
    );
    claims
}

/// The qsh of docs/behaviour.md#4, written apart from the guest's (over the `url` crate's parser).
fn independent_qsh(method: &str, url: &str, base_url: &str) -> String {
    use sha2::Digest;
    use std::collections::BTreeMap;

    let url = url::Url::parse(url).unwrap();
    let base = url::Url::parse(base_url).unwrap();
    let path = url
        .path()
        .strip_prefix(base.path().trim_end_matches('/'))
        .unwrap_or(url.path())
        .trim_end_matches('/');
    let path = if path.is_empty() { "/" } else { path };
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in url.query_pairs() {
        if k != "jwt" {
            params.entry(encode(&k)).or_default().push(encode(&v));
        }
    }
    let query: Vec<String> = params
        .into_iter()
        .map(|(k, mut vs)| {
            vs.sort();
            format!("{k}={}", vs.join(","))
        })
        .collect();
    let canonical = format!(
        "{}&{}&{}",
        method.to_uppercase(),
        path.replace('&', "%26"),
        query.join("&")
    );
    sha2::Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
