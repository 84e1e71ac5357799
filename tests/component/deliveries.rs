//! A delivery another call is handling right now is answered 503 with `Retry-After`, with no
//! effect and no record, so that Jira redelivers it (docs/behaviour.md#7).

use jira_sync_host::backends::Platform as _;
use jira_sync_host::signing::{SignOverrides, authorization};
use jira_sync_host::{Scenario, World, webhook};
use jira_sync_tests::{assignee_item, issue_updated, runtime, scenario};
use serde_json::json;

const PATH: &str = "/extensions/jira/issue-updated/";

fn delivery(id: &str) -> webhook::Request {
    let body = issue_updated(
        json!([assignee_item()]),
        json!({"assignee": {"accountId": "5f1a", "emailAddress": "ada@example.com"}}),
    );
    webhook::Request {
        method: "POST".into(),
        path: PATH.into(),
        query: String::new(),
        headers: vec![
            (
                "Authorization".into(),
                authorization(
                    "jira:1c4",
                    "s3cret",
                    1_700_000_000,
                    ("POST", PATH, ""),
                    &SignOverrides::default(),
                ),
            ),
            ("X-Atlassian-Webhook-Identifier".into(), id.into()),
        ],
        body: body.to_string().into_bytes(),
    }
}

#[test]
fn a_delivery_in_progress_elsewhere_is_answered_503_with_retry_after() {
    let scenario: Scenario = serde_json::from_value(scenario("base")).unwrap();
    let world = World::new(&scenario);
    // Another server holds the claim for a minute.
    world
        .platform
        .claim("jira:1c4", "d-1", 42, 1_700_000_000, 1_700_000_060)
        .unwrap();
    let call = runtime().webhook(&world.backends, &delivery("d-1"));
    let response = call.result.unwrap();
    assert_eq!(response.status, 503);
    assert!(
        response
            .headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("retry-after") && v == "5"),
        "{:?}",
        response.headers
    );
    assert!(call.record.assignments.is_empty() && call.record.http.is_empty());
    assert!(!world.platform.handled("jira:1c4", "d-1"));

    // Once the other holder's lease has run out, the redelivery runs.
    world.clock.advance(61);
    let call = runtime().webhook(&world.backends, &delivery("d-1"));
    assert_eq!(call.result.unwrap().status, 200);
    assert_eq!(world.platform.group(1).unwrap().assignee, Some(7));
    assert!(world.platform.handled("jira:1c4", "d-1"));
}
