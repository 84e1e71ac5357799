//! Property test: the built component, fed mutated webhook bodies and tokens, never traps, answers
//! only 2xx/4xx (or a 503 when Jira itself gave no answer, docs/behaviour.md#1.6), and takes no
//! action for a request whose token does not verify.

use std::sync::Arc;

use jira_sync_host::backends::MemoryPlatform;
use jira_sync_host::bench::Fixture;
use jira_sync_host::webhook;
use jira_sync_tests::runtime;
use proptest::prelude::*;
use serde_json::json;

const PATH: &str = "/extensions/jira/issue-updated/";

/// The `Authorization` header Jira would send for the fixture's webhooks.
fn valid_token() -> String {
    Fixture::new().webhooks[0].1.headers[0].1.clone()
}

fn valid_body() -> String {
    json!({"changelog": {"items": [{"field": "assignee"}, {"field": "status", "from": "3", "to": "10101"}]},
           "issue": {"key": "APP-123", "fields": {"assignee": {"accountId": "5f1a"},
                     "updated": "2023-01-01T00:00:00.000+0000"}}})
    .to_string()
}

/// What one delivery answered and did.
struct Delivered {
    status: u16,
    /// Requests sent, and assignments and status changes asked for.
    actions: usize,
    /// Some request to Jira got no answer (the fixture scripts only the requests of its own
    /// webhooks; a mutated body may ask for others).
    jira_unanswered: bool,
    platform: Arc<MemoryPlatform>,
}

impl Delivered {
    /// 2xx or 4xx; a 503 only for a transient Jira failure, with its `Retry-After`.
    fn answered_cleanly(&self) -> bool {
        matches!(self.status, 200..=299 | 400..=499) || (self.status == 503 && self.jira_unanswered)
    }
}

fn deliver(authorization: &str, body: &[u8]) -> Delivered {
    let fixture = Fixture::new();
    let call = runtime().blocking().webhook(
        &fixture.backends,
        &webhook::Request {
            method: "POST".into(),
            path: PATH.into(),
            query: String::new(),
            headers: vec![("Authorization".into(), authorization.to_owned())],
            body: body.to_vec(),
        },
    );
    let response = call.result.expect("the component never traps");
    let actions =
        call.record.http.len() + call.record.assignments.len() + call.record.resolutions.len();
    if response.status == 503 {
        assert!(
            response
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("retry-after")),
            "a 503 carries Retry-After"
        );
    }
    Delivered {
        status: response.status,
        actions,
        jira_unanswered: call.record.http.iter().any(|e| e.error.is_some()),
        platform: fixture.platform,
    }
}

/// A byte string with some bytes replaced, removed or inserted.
fn mutated(original: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = original.len();
    prop::collection::vec((0..len.max(1), any::<u8>(), 0u8..3), 1..8).prop_map(move |edits| {
        let mut bytes = original.clone();
        for (at, byte, kind) in edits {
            let at = at.min(bytes.len().saturating_sub(1));
            match kind {
                0 if !bytes.is_empty() => bytes[at] = byte,
                1 if !bytes.is_empty() => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, byte),
            }
        }
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_tokens_are_refused_without_effect(token in mutated(valid_token().into_bytes())) {
        let token = String::from_utf8_lossy(&token).into_owned();
        // docs/behaviour.md#1.1: `JWT` or `Bearer` in any case, one space, then the token;
        // whitespace around the whole value does not count. Mutations that keep an equivalent
        // header (`jWT`, a trailing space) are not refusals to expect.
        let credential = |header: &str| {
            let (scheme, token) = header.trim().split_once(' ')?;
            let scheme_ok = ["jwt", "bearer"].contains(&scheme.to_ascii_lowercase().as_str());
            (scheme_ok && !token.contains(|c: char| c.is_ascii_whitespace()))
                .then(|| token.to_owned())
        };
        prop_assume!(credential(&token) != credential(&valid_token()));
        let delivered = deliver(&token, valid_body().as_bytes());
        prop_assert!(delivered.status == 409, "{token} answered {}", delivered.status);
        prop_assert_eq!(delivered.actions, 0);
        prop_assert_eq!(delivered.platform.group(1).unwrap().assignee, None);
    }

    #[test]
    fn mutated_bodies_never_fail_the_server(body in mutated(valid_body().into_bytes())) {
        let delivered = deliver(&valid_token(), &body);
        prop_assert!(delivered.answered_cleanly(), "answered {}", delivered.status);
    }

    #[test]
    fn arbitrary_bodies_never_fail_the_server(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let delivered = deliver(&valid_token(), &body);
        prop_assert!(delivered.answered_cleanly(), "answered {}", delivered.status);
    }
}

/// A scenario file is input too: extreme numbers anywhere in it end in an answer or a typed
/// error, never a panic of the host (debug builds check every overflow).
#[test]
fn extreme_numbers_in_a_scenario_never_panic_the_host() {
    use jira_sync_tests::{issue_updated, run, scenario, status_item};
    for (now, exp_in, advance) in [
        (u64::MAX, i64::MAX, u64::MAX),
        (0, i64::MIN, 1),
        (1_700_000_000, i64::MAX, 300),
        (i64::MAX as u64 + 1, i64::MAX, u64::MAX - 1),
    ] {
        let mut s = scenario("base");
        s["now"] = json!(now);
        s["installation"]["max_transition_hops"] = json!(u32::MAX);
        s["installation"]["clock_skew_seconds"] = json!(u32::MAX);
        s["installation"]["retry"] = json!({"max_retries": u32::MAX, "max_total_wait": u32::MAX});
        s["installation"]["limits"] = json!({"cpu_ms": u64::MAX, "memory_bytes": usize::MAX});
        let body = issue_updated(json!([status_item("3", "10101")]), json!({}));
        s["steps"] = json!([
            {"webhook": {"sign": {"exp_in": exp_in}, "body": body}},
            {"advance_clock": advance},
            {"webhook": {"sign": true, "body": body}},
            {"advance_clock": advance},
            {"sync_status_outbound": {"issue_key": "APP-123", "resolved": true}},
        ]);
        let trace = run(&s);
        assert_eq!(
            trace.0["steps"].as_array().map(Vec::len),
            Some(5),
            "every step ran"
        );
    }
}
