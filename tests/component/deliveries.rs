//! A delivery another call is handling right now is answered 503 with `Retry-After`, with no
//! effect and no record, so that Jira redelivers it (docs/behaviour.md#7).

use jira_sync_host::backends::Platform as _;
use jira_sync_host::{Scenario, World};
use jira_sync_tests::{ada_delivery, runtime, scenario};

#[test]
fn a_delivery_in_progress_elsewhere_is_answered_503_with_retry_after() {
    let scenario: Scenario = serde_json::from_value(scenario("base")).unwrap();
    let world = World::new(&scenario);
    // Another server holds the claim for a minute.
    world
        .platform
        .claim("jira:1c4", "d-1", 42, 1_700_000_000, 1_700_000_060)
        .unwrap();
    let call = runtime()
        .blocking()
        .webhook(&world.backends, &ada_delivery("d-1"));
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
    let call = runtime()
        .blocking()
        .webhook(&world.backends, &ada_delivery("d-1"));
    assert_eq!(call.result.unwrap().status, 200);
    assert_eq!(world.platform.group(1).unwrap().assignee, Some(7));
    assert!(world.platform.handled("jira:1c4", "d-1"));
}
