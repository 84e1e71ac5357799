//! A delivery another call is handling right now is answered 503 with `Retry-After`, with no
//! effect and no record, so that Jira redelivers it (docs/behaviour.md#7).

use jira_sync_host::{Scenario, World};
use jira_sync_tests::{ada_delivery, runtime, scenario};

#[test]
fn a_delivery_in_progress_elsewhere_is_answered_503_with_retry_after() {
    let scenario: Scenario = serde_json::from_value(scenario("base")).unwrap();
    let world = World::new(&scenario);
    // Another server holds the claim for a minute.
    world
        .platform
        .claim("jira:1c4", "d-1", 42, 1_700_000_000, 1_700_000_060);
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

/// The job `accept` queues for a delivery, through the real component.
fn accepted_job(world: &World, id: &str) -> jira_sync_host::webhook::Job {
    match runtime()
        .blocking()
        .accept(&world.backends, &ada_delivery(id))
        .result
        .unwrap()
    {
        jira_sync_host::webhook::Acceptance::Queued(job) => job,
        other => panic!("not queued: {other:?}"),
    }
}

#[test]
fn accept_queues_a_verified_delivery_with_no_effect_and_process_applies_it_once() {
    use jira_sync_host::webhook::JobOutcome;
    let scenario: Scenario = serde_json::from_value(scenario("base")).unwrap();
    let world = World::new(&scenario);
    let job = accepted_job(&world, "d-1");
    assert_eq!(
        (job.client_key.as_str(), job.delivery_id.as_deref()),
        ("jira:1c4", Some("d-1"))
    );
    assert_eq!(
        world.platform.group(1).unwrap().assignee,
        None,
        "accept changed nothing"
    );
    assert!(!world.platform.handled("jira:1c4", "d-1"));

    let call = runtime().blocking().process(&world.backends, &job);
    assert!(matches!(call.result.unwrap(), JobOutcome::Done));
    assert_eq!(world.platform.group(1).unwrap().assignee, Some(7));
    assert!(world.platform.handled("jira:1c4", "d-1"));
    // The same job again (a redelivery queued after the first was done): done, no effect.
    let again = runtime().blocking().process(&world.backends, &job);
    assert!(matches!(again.result.unwrap(), JobOutcome::Done));
    assert!(again.record.assignments.is_empty());
}

#[test]
fn a_leased_job_writes_no_claim_but_still_skips_a_handled_delivery() {
    use jira_sync_host::backends::Claim;
    use jira_sync_host::webhook::JobOutcome;
    let scenario: Scenario = serde_json::from_value(scenario("base")).unwrap();
    let world = World::new(&scenario);
    let job = accepted_job(&world, "d-1");
    // A leased job does not consult claims at all: the queue's lease is the claim (a claim
    // left by a `handle` call elsewhere does not hold it up).
    world
        .platform
        .claim("jira:1c4", "d-1", 42, 1_700_000_000, 1_700_000_060);
    let call = runtime().blocking().process_leased(&world.backends, &job);
    assert!(matches!(call.result.unwrap(), JobOutcome::Done));
    assert_eq!(world.platform.group(1).unwrap().assignee, Some(7));
    assert!(world.platform.handled("jira:1c4", "d-1"));
    // Marked handled in the commit: any later claimer finds it handled.
    assert_eq!(
        world
            .platform
            .claim("jira:1c4", "d-1", 43, 1_700_000_000, 1_700_000_060),
        Claim::Handled
    );
    let again = runtime().blocking().process_leased(&world.backends, &job);
    assert!(matches!(again.result.unwrap(), JobOutcome::Done));
    assert!(
        again.record.assignments.is_empty(),
        "handled: no second effect"
    );
}
