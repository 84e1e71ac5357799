//! docs/behaviour.md#1.1, #1.2 and #4: every way a webhook's token can fail, through the component.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jira_sync_tests::{Trace, run, scenario};
use serde_json::{Value, json};

/// The auth scenario's clock.
const NOW: u64 = 1_700_000_000;
const PATH: &str = "/extensions/jira/issue-updated/";

/// `JWT <token>` over any `claims` (plus the qsh of the scenario's webhook), signed HS256 with
/// the installation's secret: for claims the scenario's signer does not forge (e.g. `iat`).
fn forge(mut claims: Value) -> String {
    claims["qsh"] = json!(jira_sync_plugin::qsh::qsh("POST", PATH, ""));
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{claims}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("JWT {input}.{signature}")
}

/// The `Authorization` value Jira sends for the scenario's webhook.
fn jira_authorization() -> String {
    forge(json!({"iss": "jira:1c4", "iat": NOW, "exp": NOW + 180}))
}

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
fn the_scheme_compares_case_insensitively() {
    for scheme in ["jwt", "Jwt", "BEARER", "bearer"] {
        let trace = sign_with(json!({"scheme": scheme}));
        assert_eq!(trace.status(0), 200, "{scheme}");
    }
}

#[test]
fn any_other_scheme_is_409() {
    // Before issue 10 any word before the space was accepted.
    for scheme in ["Basic", "Digest", "JWT:", "Token", "xJWT", "Bearer,"] {
        let trace = sign_with(json!({"scheme": scheme}));
        assert_rejected(&trace, "bad-scheme");
        assert_eq!(
            trace.body(0)["error"],
            "Authorization scheme must be JWT or Bearer",
            "{scheme}"
        );
    }
}

#[test]
fn exactly_one_space_separates_scheme_and_token() {
    let signed = sign_with(json!(true));
    assert_eq!(signed.status(0), 200);
    let good = jira_authorization();
    let token = good.strip_prefix("JWT ").unwrap();
    for value in [
        format!("JWT  {token}"),
        format!("JWT\t{token}"),
        format!("JWT {token} extra"),
    ] {
        assert_rejected(&header(&value), "no-token");
    }
    // Whitespace after the value is not part of it (HTTP's optional whitespace).
    assert_eq!(header(&format!("{good}  ")).status(0), 200);
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
fn iat_in_the_future_is_409() {
    let now = NOW;
    let trace = header(&forge(
        json!({"iss": "jira:1c4", "iat": now + 1, "exp": now + 180}),
    ));
    assert_rejected(&trace, "issued-in-future");
    assert_eq!(
        header(&forge(
            json!({"iss": "jira:1c4", "iat": now, "exp": now + 180})
        ))
        .status(0),
        200
    );
    // A fraction is truncated, as for `exp`.
    assert_eq!(
        header(&forge(
            json!({"iss": "jira:1c4", "iat": now as f64 + 0.9, "exp": now + 180})
        ))
        .status(0),
        200
    );
}

#[test]
fn the_clock_skew_gives_leeway_on_iat_too() {
    let mut s = scenario("auth");
    s["installation"]["clock_skew_seconds"] = json!(30);
    let at = |iat: u64| {
        let mut s = s.clone();
        s["steps"][0]["webhook"]["sign"] = json!(false);
        s["steps"][0]["webhook"]["headers"] = json!({"Authorization": forge(json!({"iss": "jira:1c4", "iat": iat, "exp": NOW + 180}))});
        run(&s)
    };
    assert_eq!(at(NOW + 30).status(0), 200);
    assert_rejected(&at(NOW + 31), "issued-in-future");
}

#[test]
fn a_non_numeric_iat_is_409() {
    for iat in [json!("now"), json!(-1), json!(null), json!([NOW])] {
        let trace = header(&forge(
            json!({"iss": "jira:1c4", "iat": iat, "exp": NOW + 180}),
        ));
        assert_rejected(&trace, "missing-claim");
    }
}

#[test]
fn a_token_living_longer_than_the_maximum_is_409() {
    // Before issue 10 a token could live for years.
    assert_eq!(sign_with(json!({"exp_in": 3600})).status(0), 200);
    let trace = sign_with(json!({"exp_in": 3601}));
    assert_rejected(&trace, "lifetime-too-long");
    assert_eq!(
        trace.body(0)["error"],
        "token lives 3601 s, longer than 3600 s"
    );
    assert_rejected(
        &sign_with(json!({"exp_in": 100_i64 * 365 * 86_400})),
        "lifetime-too-long",
    );
}

#[test]
fn the_maximum_lifetime_is_per_installation() {
    let mut s = scenario("auth");
    s["installation"]["max_token_lifetime_seconds"] = json!(180);
    s["steps"][0]["webhook"]["sign"] = json!(true);
    assert_eq!(run(&s).status(0), 200, "Jira's own tokens live 180 s");
    s["steps"][0]["webhook"]["sign"] = json!({"exp_in": 181});
    let trace = run(&s);
    assert_rejected(&trace, "lifetime-too-long");
}

#[test]
fn without_iat_the_lifetime_counts_from_now() {
    assert_eq!(
        sign_with(json!({"omit": ["iat"], "exp_in": 3600})).status(0),
        200
    );
    assert_rejected(
        &sign_with(json!({"omit": ["iat"], "exp_in": 3601})),
        "lifetime-too-long",
    );
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
    // 8 KiB exactly is still decoded (and is malformed); one byte more is not.
    assert_rejected(
        &header(&format!("JWT {}", "a".repeat(8 * 1024))),
        "malformed",
    );
    assert_rejected(
        &header(&format!("JWT {}", "a".repeat(8 * 1024 + 1))),
        "oversized",
    );
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
