//! The platform state a scenario may start from besides groups, links and users — handled
//! deliveries, deliveries another call holds, ordering watermarks — as recordings write it
//! (docs/behaviour.md#12), played through `accept` and `process` steps.

use jira_sync_tests::{issue_updated, run, scenario, with_steps};
use serde_json::{Value, json};

/// Ada became APP-123's assignee at `updated` (2023-01-01T00:00:00Z).
fn assigned_to_ada() -> Value {
    issue_updated(
        json!([{"field": "assignee", "fieldId": "assignee", "to": "5f1a"}]),
        json!({"assignee": {"accountId": "5f1a", "emailAddress": "ada@example.com"},
               "updated": "2023-01-01T00:00:00.000+0000"}),
    )
}

fn process(id: &str) -> Value {
    json!({"process": {"delivery_id": id, "body": assigned_to_ada()}})
}

#[test]
fn accept_then_process_applies_a_delivery() {
    let base = scenario("base");
    let accept = json!({"accept": {"sign": true, "body": assigned_to_ada(),
        "headers": {"X-Atlassian-Webhook-Identifier": "d-1"}}});
    let trace = run(&with_steps(base, json!([accept, process("d-1")])));
    assert_eq!(trace.outcome(0)["queued"]["delivery_id"], json!("d-1"));
    assert_eq!(trace.outcome(0)["queued"]["body"], assigned_to_ada());
    assert!(trace.no_effect(0), "accept changes nothing");
    assert_eq!(trace.outcome(1), &json!({"type": "done"}));
    assert_eq!(trace.group(1)["assignee"], json!(7));
}

#[test]
fn a_delivery_handled_before_the_scenario_is_done_without_effect() {
    let mut base = scenario("base");
    base["handled_deliveries"] = json!(["d-1"]);
    let trace = run(&with_steps(base, json!([process("d-1"), process("d-2")])));
    assert_eq!(trace.outcome(0), &json!({"type": "done"}));
    assert!(trace.no_effect(0));
    assert_eq!(
        trace.assignments(1)[0]["result"],
        json!("assigned"),
        "another delivery runs"
    );
}

#[test]
fn a_delivery_another_call_holds_is_retried_later() {
    let mut base = scenario("base");
    base["deliveries_in_progress"] = json!(["d-1"]);
    let trace = run(&with_steps(base, json!([process("d-1")])));
    assert_eq!(trace.outcome(0)["type"], json!("retry-after"));
    assert!(trace.no_effect(0));
    assert_eq!(trace.group(1)["assignee"], Value::Null);
}

#[test]
fn a_field_watermarked_newer_than_the_event_is_left_alone() {
    let mut base = scenario("base");
    // 2023-01-01T00:01:00Z, a minute after the event.
    base["watermarks"] = json!({"APP-123": {"assignee": 1_672_531_260_000i64}});
    let trace = run(&with_steps(base.clone(), json!([process("d-1")])));
    assert_eq!(trace.outcome(0), &json!({"type": "done"}));
    assert!(
        trace.has_event(0, "jira.stale-event"),
        "{:?}",
        trace.events(0)
    );
    assert_eq!(trace.group(1)["assignee"], Value::Null);

    // The same watermark on the other field leaves the assignee free to change.
    base["watermarks"] = json!({"APP-123": {"status": 1_672_531_260_000i64}});
    let trace = run(&with_steps(base, json!([process("d-1")])));
    assert_eq!(trace.group(1)["assignee"], json!(7));
}
