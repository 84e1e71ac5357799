//! docs/behaviour.md#1.1, #1.2 and #4: every way a webhook's token can fail, through the component.

use jira_sync_tests::{Trace, run, scenario};
use serde_json::{Value, json};

/// The auth scenario with its one webhook changed by `edit`.
fn webhook(edit: impl FnOnce(&mut Value)) -> Trace {
    let mut s = scenario("auth");
    edit(&mut s["steps"][0]["webhook"]);
    run(&s)
}

fn sign_with(overrides: Value) -> Trace {
    webhook(|w| w["sign"] = overrides)
}

fn header(value: &str) -> Trace {
    let value = value.to_owned();
    webhook(move |w| {
        w["sign"] = json!(false);
        w["headers"] = json!({"Authorization": value});
    })
}

/// A rejected webhook: 409, a reason, the given log reason, and nothing changed or fetched.
fn assert_rejected(trace: &Trace, reason: &str) {
    assert_eq!(trace.status(0), 409, "{:#}", trace.step(0));
    assert!(trace.body(0)["error"].is_string(), "{:#}", trace.body(0));
    assert!(trace.no_effect(0), "{:#}", trace.step(0));
    assert_eq!(trace.auth_failure(0).as_deref(), Some(reason));
    assert_eq!(trace.group(1)["assignee"], Value::Null);
}

#[test]
fn a_jira_signed_webhook_is_accepted() {
    let trace = webhook(|_| {});
    assert_eq!(trace.status(0), 200);
    assert_eq!(trace.group(1)["assignee"], 7);
    assert_eq!(trace.auth_failure(0), None);
}

#[test]
fn bearer_scheme_is_accepted_too() {
    let trace = sign_with(json!({"scheme": "Bearer"}));
    assert_eq!(trace.status(0), 200);
    assert_eq!(trace.group(1)["assignee"], 7);
}

#[test]
fn missing_header_is_409() {
    assert_rejected(&webhook(|w| w["sign"] = json!(false)), "no-header");
}

#[test]
fn header_without_space_is_409() {
    assert_rejected(&header("JWTeyJhbGciOiJIUzI1NiJ9.e30.x"), "no-token");
}

#[test]
fn unknown_issuer_is_409() {
    let trace = sign_with(json!({"iss": "jira:someone-else"}));
    assert_eq!(trace.status(0), 409);
    assert!(trace.no_effect(0));
    assert!(trace.has_event(0, "jira.webhook.unknown-installation"));
}

#[test]
fn alg_none_is_409() {
    assert_rejected(&sign_with(json!({"alg": "none"})), "unsupported-algorithm");
}

#[test]
fn alg_rs256_is_409() {
    assert_rejected(&sign_with(json!({"alg": "RS256"})), "unsupported-algorithm");
}

#[test]
fn wrong_secret_is_409() {
    assert_rejected(&sign_with(json!({"secret": "guess"})), "bad-signature");
}

#[test]
fn expired_token_is_409() {
    assert_rejected(&sign_with(json!({"exp_in": -1})), "expired");
    // `exp` equal to now is already expired: there is no leeway by default.
    assert_rejected(&sign_with(json!({"exp_in": 0})), "expired");
}

#[test]
fn the_installation_clock_skew_gives_leeway_on_exp() {
    let mut s = scenario("auth");
    s["installation"]["clock_skew_seconds"] = json!(10);
    s["steps"][0]["webhook"]["sign"] = json!({"exp_in": -9});
    assert_eq!(run(&s).status(0), 200);
    s["steps"][0]["webhook"]["sign"] = json!({"exp_in": -10});
    assert_eq!(run(&s).status(0), 409);
}

#[test]
fn token_expiring_in_one_second_is_accepted() {
    assert_eq!(sign_with(json!({"exp_in": 1})).status(0), 200);
}

#[test]
fn qsh_of_another_path_is_409() {
    assert_rejected(
        &sign_with(json!({"qsh_path": "/extensions/jira/other/"})),
        "qsh-mismatch",
    );
}

#[test]
fn qsh_of_another_query_is_409() {
    assert_rejected(
        &webhook(|w| {
            w["query"] = json!("user_id=1");
            w["sign"] = json!({"qsh_query": "user_id=2"});
        }),
        "qsh-mismatch",
    );
}

#[test]
fn qsh_of_another_method_is_409() {
    assert_rejected(&sign_with(json!({"qsh_method": "GET"})), "qsh-mismatch");
}

#[test]
fn signed_query_string_is_accepted() {
    let trace = webhook(|w| w["query"] = json!("b=2&a=1+1&jwt=ignored"));
    assert_eq!(trace.status(0), 200);
}

#[test]
fn missing_claims_are_409() {
    for claim in ["qsh", "exp", "iss"] {
        assert_rejected(&sign_with(json!({"omit": [claim]})), "missing-claim");
    }
}

#[test]
fn malformed_tokens_are_409_not_500() {
    for token in [
        "JWT abc",
        "JWT a.b.c",
        "JWT !!!.###.$$$",
        "JWT e30.e30.e30.e30",
        // header `{}` and claims `[]`: valid base64 and JSON, wrong shapes.
        "JWT e30.W10.c2ln",
        "JWT bm90IGpzb24.e30.c2ln",
        "JWT  ",
    ] {
        let trace = header(token);
        assert_eq!(trace.status(0), 409, "{token}");
        assert!(trace.no_effect(0), "{token}");
        assert!(trace.auth_failure(0).is_some(), "{token}");
    }
}

#[test]
fn oversized_token_is_409() {
    let token = format!("JWT {}", "a".repeat(9 * 1024));
    assert_rejected(&header(&token), "oversized");
}

#[test]
fn rejected_webhooks_do_not_reach_the_body() {
    // Even a malformed body answers 409 when the token is bad: auth comes first.
    let trace = webhook(|w| {
        w["sign"] = json!({"secret": "guess"});
        w["body"] = json!("not json");
    });
    assert_rejected(&trace, "bad-signature");
}
