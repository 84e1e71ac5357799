//! docs/behaviour.md#2, #3 and #6 through the component: status transitions (direct, multi-hop, dry run),
//! assignee pushes, Jira's faults and rate limits, signing and egress.

use jira_sync_tests::{Trace, run, scenario, verify_outbound, with_steps};
use serde_json::{Value, json};

const ISSUE: &str = "/rest/api/2/issue/APP-123";
const TRANSITIONS: &str = "/rest/api/2/issue/APP-123/transitions";
const ASSIGNEE: &str = "/rest/api/2/issue/APP-123/assignee";
const SEARCH: &str = "/rest/api/2/user/assignable/search";

fn issue(status: &str) -> Value {
    json!({"method": "GET", "path": ISSUE, "body": {"id": "101", "key": "APP-123", "fields": {
        "project": {"id": "10100", "key": "APP"},
        "status": {"id": status, "name": "whatever", "statusCategory": {"key": "new"}}}}})
}

/// One answer of `GET .../transitions`: (transition id, target status, its category).
fn transitions(list: &[(&str, &str, &str)]) -> Value {
    let list: Vec<Value> = list
        .iter()
        .map(|(id, to, category)| {
            json!({"id": id, "name": format!("to {to}"),
                   "to": {"id": to, "statusCategory": {"key": category}}})
        })
        .collect();
    json!({"method": "GET", "path": TRANSITIONS, "body": {"transitions": list}})
}

fn post(status: u16) -> Value {
    json!({"method": "POST", "path": TRANSITIONS, "status": status, "repeat": true})
}

/// Every request of every step carries a valid Connect JWT for exactly that request.
fn assert_all_signed(trace: &Trace) {
    for step in trace.0["steps"].as_array().unwrap() {
        for exchange in step["http"].as_array().into_iter().flatten() {
            let claims = verify_outbound(
                exchange["headers"]["Authorization"].as_str().unwrap(),
                "s3cret",
                exchange["method"].as_str().unwrap(),
                exchange["url"].as_str().unwrap(),
                "https://acme.atlassian.net",
            );
            assert_eq!(claims["iss"], "acme-platform.jira");
        }
    }
}

fn run_checked(scenario: &Value) -> Trace {
    let trace = run(scenario);
    assert_all_signed(&trace);
    trace
}

/// The outbound scenario with these HTTP answers (the status list stays) and one status step.
fn status_sync(stubs: Vec<Value>, resolved: bool, dry_run: bool) -> Trace {
    status_sync_with(stubs, resolved, dry_run, |_| {})
}

/// [`status_sync`] for an installation that asks for exact status mapping (the reference's
/// echo guard): the walk tests start from statuses that the default would leave alone.
fn status_sync_exact(stubs: Vec<Value>, resolved: bool, dry_run: bool) -> Trace {
    status_sync_with(stubs, resolved, dry_run, |s| {
        s["installation"]["exact_status_mapping"] = json!(true)
    })
}

fn status_sync_with(
    stubs: Vec<Value>,
    resolved: bool,
    dry_run: bool,
    edit: impl FnOnce(&mut Value),
) -> Trace {
    let mut s = scenario("outbound");
    s["http"].as_array_mut().unwrap().extend(stubs);
    edit(&mut s);
    run_checked(&with_steps(
        s,
        json!([{"sync_status_outbound": {"issue_key": "APP-123", "resolved": resolved, "dry_run": dry_run}}]),
    ))
}

const STATUS_LIST: &str = "/rest/api/2/status";

/// Transition ids POSTed in step `i`, in order.
fn posted(trace: &Trace, i: usize) -> Vec<String> {
    trace.step(i)["http"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["method"] == "POST")
        .map(|e| e["body"]["transition"]["id"].as_str().unwrap().to_owned())
        .collect()
}

// --- status: the classic cases --------------------------------------------------------------

#[test]
fn reference_resolve_posts_31_and_unresolve_posts_21() {
    let trace = run_checked(&scenario("reference-transitions"));
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "transitioned", "transitions": ["31"]})
    );
    assert_eq!(posted(&trace, 0), ["31"]);
    assert_eq!(
        trace.requests(0),
        [
            format!("GET {ISSUE}"),
            format!("GET {TRANSITIONS}"),
            format!("POST {TRANSITIONS}")
        ],
        "a direct transition costs three requests"
    );
    assert_eq!(
        trace.step(0)["http"][2]["body"],
        json!({"transition": {"id": "31"}})
    );
    assert_eq!(posted(&trace, 1), ["21"]);
    assert_eq!(
        trace.step(0)["cache"]["sets"],
        0,
        "issue and transitions are never cached"
    );
    assert!(trace.has_event(0, "jira.sync_status_outbound.transitioned"));
}

#[test]
fn already_in_the_target_status_requests_no_transitions() {
    let trace = status_sync(vec![issue("10101")], true, false);
    assert_eq!(trace.outcome(0), &json!({"type": "unchanged"}));
    assert_eq!(trace.requests(0), [format!("GET {ISSUE}")]);
    assert!(trace.has_event(0, "jira.sync_status_outbound.unchanged"));
}

#[test]
fn project_without_mapping_is_not_mapped() {
    let mut stub = issue("1");
    stub["body"]["fields"]["project"]["id"] = json!("99999");
    let trace = status_sync(vec![stub], true, false);
    assert_eq!(trace.outcome(0), &json!({"type": "not-mapped"}));
    assert_eq!(trace.requests(0).len(), 1);
    assert!(trace.has_event(0, "jira.external-project-not-found"));
}

// --- status: multi-hop -----------------------------------------------------------------------

#[test]
fn two_hops_when_no_transition_leads_straight_there() {
    let trace = status_sync(
        vec![
            issue("1"),
            transitions(&[("11", "2", "new"), ("12", "3", "indeterminate")]),
            transitions(&[("31", "10101", "done"), ("32", "1", "new")]),
            post(204),
        ],
        true,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "transitioned", "transitions": ["12", "31"]}),
        "prefers the status whose category is nearest the target's"
    );
    assert_eq!(posted(&trace, 0), ["12", "31"]);
    assert_eq!(
        trace.requests(0).len(),
        6,
        "issue, 2 x (transitions + POST), status list"
    );
}

#[test]
fn three_hops_with_a_workflow_that_changes_after_each_hop() {
    let trace = status_sync(
        vec![
            issue("1"),
            transitions(&[("11", "2", "new")]),
            transitions(&[("21", "1", "new"), ("22", "4", "indeterminate")]),
            transitions(&[("41", "5", "indeterminate"), ("43", "10101", "done")]),
            post(204),
        ],
        true,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "transitioned", "transitions": ["11", "22", "43"]}),
        "never goes back to a visited status (21 -> 1)"
    );
}

#[test]
fn unreachable_target_names_what_was_seen() {
    let trace = status_sync(
        vec![
            issue("1"),
            transitions(&[("11", "2", "new")]),
            transitions(&[("21", "1", "new")]),
            post(204),
        ],
        true,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "unreachable", "target": "10101", "transitions": ["11"], "statuses_seen": ["1", "2"]})
    );
    assert!(trace.has_event(0, "jira.status-sync-fail"));
}

#[test]
fn never_crosses_done_on_the_way_to_a_status_that_is_not_done() {
    // From Open, an unresolved group's issue is already on its side; exact mapping walks on.
    let trace = status_sync_exact(
        vec![
            issue("1"),
            transitions(&[("31", "10101", "done"), ("32", "10102", "done")]),
            post(204),
        ],
        false,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "unreachable", "target": "3", "transitions": [], "statuses_seen": ["1", "10101", "10102"]})
    );
    assert!(posted(&trace, 0).is_empty());
}

#[test]
fn another_done_status_is_only_a_last_resort() {
    let trace = status_sync(
        vec![
            issue("1"),
            transitions(&[("41", "10102", "done"), ("11", "3", "indeterminate")]),
            transitions(&[("21", "10101", "done")]),
            post(204),
        ],
        true,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "transitioned", "transitions": ["11", "21"]})
    );
}

#[test]
fn hops_are_bounded() {
    let mut s = scenario("outbound");
    s["installation"]["max_transition_hops"] = json!(2);
    s["http"].as_array_mut().unwrap().extend([
        issue("1"),
        transitions(&[("11", "2", "new")]),
        transitions(&[("22", "4", "indeterminate")]),
        transitions(&[("41", "10101", "done")]),
        post(204),
    ]);
    let trace = run_checked(&with_steps(
        s,
        json!([{"sync_status_outbound": {"issue_key": "APP-123", "resolved": true}}]),
    ));
    assert_eq!(trace.outcome(0)["type"], "unreachable");
    assert_eq!(trace.outcome(0)["transitions"], json!(["11"]));
}

#[test]
fn dry_run_reports_the_first_hop_and_posts_nothing() {
    let trace = status_sync(
        vec![
            issue("1"),
            transitions(&[("11", "2", "new"), ("12", "3", "indeterminate")]),
        ],
        true,
        true,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "transitioned", "transitions": ["12"]})
    );
    assert!(posted(&trace, 0).is_empty());
    let trace = run_checked(&{
        let mut s = scenario("reference-transitions");
        s["steps"][0]["sync_status_outbound"]["dry_run"] = json!(true);
        s
    });
    assert_eq!(trace.outcome(0)["transitions"], json!(["31"]));
    assert!(posted(&trace, 0).is_empty());
    assert!(trace.has_event(0, "jira.sync_status_outbound.dry-run"));
}

// --- status: Jira's answers ------------------------------------------------------------------

#[test]
fn unknown_issue_is_issue_not_found() {
    let trace = status_sync(
        vec![
            json!({"method": "GET", "path": ISSUE, "status": 404, "body": {"errorMessages": ["Issue does not exist"]}}),
        ],
        true,
        false,
    );
    assert_eq!(trace.outcome(0), &json!({"type": "issue-not-found"}));
    assert_eq!(trace.requests(0).len(), 1, "not retried");
}

#[test]
fn refused_credentials_are_unauthorized() {
    for status in [401, 403] {
        let trace = status_sync(
            vec![json!({"method": "GET", "path": ISSUE, "status": status})],
            true,
            false,
        );
        assert_eq!(
            trace.outcome(0),
            &json!({"type": "unauthorized"}),
            "{status}"
        );
    }
}

#[test]
fn a_screen_that_requires_a_field_is_rejected_with_jiras_text() {
    let trace = status_sync(
        vec![
            issue("1"),
            transitions(&[("31", "10101", "done")]),
            json!({"method": "POST", "path": TRANSITIONS, "status": 400, "body": {
                "errorMessages": ["Transition failed."],
                "errors": {"resolution": "Resolution is required."}}}),
        ],
        true,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "rejected", "message": "Transition failed.; resolution: Resolution is required."})
    );
}

#[test]
fn a_walk_that_fails_midway_says_where_it_stopped() {
    let trace = status_sync(
        vec![
            issue("1"),
            transitions(&[("12", "3", "indeterminate")]),
            transitions(&[("31", "10101", "done")]),
            json!({"method": "POST", "path": TRANSITIONS, "status": 204}),
            json!({"method": "POST", "path": TRANSITIONS, "status": 400,
                   "body": {"errorMessages": ["Resolution is required."]}}),
        ],
        true,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "rejected", "message": "Resolution is required."})
    );
    let stopped = trace.step(0)["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["event"] == "jira.sync_status_outbound.stopped-midway")
        .unwrap();
    assert_eq!(stopped["fields"]["transitions"], "12");
    assert_eq!(stopped["fields"]["status"], "3");
}

#[test]
fn server_errors_and_bad_bodies_are_typed_failures() {
    let trace = status_sync(
        vec![
            json!({"method": "GET", "path": ISSUE, "status": 502, "body": "<html>bad gateway</html>"}),
        ],
        true,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "failed", "failure": {"type": "server-error", "status": 502}})
    );
    let trace = status_sync(
        vec![json!({"method": "GET", "path": ISSUE, "body": "<html>login</html>"})],
        true,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "failed", "failure": {"type": "bad-response", "endpoint": "issue"}})
    );
    let trace = status_sync(
        vec![
            issue("1"),
            json!({"method": "GET", "path": TRANSITIONS, "body": {"values": []}}),
        ],
        true,
        false,
    );
    assert_eq!(trace.outcome(0)["failure"]["endpoint"], "transitions");
    let trace = status_sync(
        vec![json!({"method": "GET", "path": ISSUE, "error": "timeout"})],
        true,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "failed", "failure": {"type": "http", "error": "timeout"}})
    );
}

#[test]
fn unknown_installation_is_a_typed_failure() {
    let s = with_steps(
        scenario("outbound"),
        json!([{"sync_status_outbound": {"issue_key": "APP-123", "resolved": true, "client_key": "jira:nobody"}}]),
    );
    let trace = run(&s);
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "failed", "failure": {"type": "unknown-installation"}})
    );
    assert!(trace.requests(0).is_empty());
}

// --- status: the echo guard and the source of a change (docs/behaviour.md#2.4) ---------------

#[test]
fn a_direct_transition_reads_the_status_list_first() {
    let trace = status_sync(
        vec![
            issue("1"),
            transitions(&[("31", "10101", "done")]),
            post(204),
        ],
        true,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "transitioned", "transitions": ["31"]})
    );
    assert_eq!(
        trace.requests(0),
        [
            format!("GET {ISSUE}"),
            format!("GET {STATUS_LIST}"),
            format!("GET {TRANSITIONS}"),
            format!("POST {TRANSITIONS}")
        ],
        "four requests, the status list usually from the cache"
    );
}

#[test]
fn a_walk_reads_the_status_list_only_once() {
    let trace = status_sync(
        vec![
            issue("1"),
            transitions(&[("11", "2", "new"), ("12", "3", "indeterminate")]),
            transitions(&[("31", "10101", "done")]),
            post(204),
        ],
        true,
        false,
    );
    assert_eq!(trace.outcome(0)["transitions"], json!(["12", "31"]));
    let reads = trace
        .requests(0)
        .iter()
        .filter(|r| r.ends_with(STATUS_LIST))
        .count();
    assert_eq!(reads, 1);
    assert_eq!(
        trace.step(0)["cache"]["hits"],
        0,
        "nor from the cache again"
    );
}

#[test]
fn a_done_status_a_person_chose_is_not_overruled_by_the_echo() {
    // The defect of issue 10: closed as "Won't Do", the echo of the group's resolve moved the
    // issue to the mapped "Done".
    for dry_run in [false, true] {
        let trace = status_sync(vec![issue("10102")], true, dry_run);
        assert_eq!(trace.outcome(0), &json!({"type": "unchanged"}));
        assert_eq!(
            trace.requests(0),
            [format!("GET {ISSUE}"), format!("GET {STATUS_LIST}")]
        );
        let log = trace.step(0)["logs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["event"] == "jira.sync_status_outbound.same-category")
            .unwrap();
        assert_eq!(
            log["fields"],
            json!({"issue_key": "APP-123", "status": "10102", "target": "10101", "category": "done"})
        );
    }
}

#[test]
fn an_open_status_a_person_chose_is_not_overruled_either() {
    // "In Review" and "Open" are on an unresolved group's side as much as "In Progress".
    for current in ["4", "1"] {
        let trace = status_sync(vec![issue(current)], false, false);
        assert_eq!(trace.outcome(0), &json!({"type": "unchanged"}), "{current}");
        assert!(trace.has_event(0, "jira.sync_status_outbound.same-category"));
        assert!(posted(&trace, 0).is_empty());
    }
}

#[test]
fn the_other_side_is_still_moved() {
    // Done while the group is unresolved: reopened to the mapped status.
    let trace = status_sync(
        vec![
            issue("10102"),
            transitions(&[("61", "3", "indeterminate")]),
            post(204),
        ],
        false,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "transitioned", "transitions": ["61"]})
    );
}

#[test]
fn exact_status_mapping_moves_the_issue_to_the_mapped_status() {
    let trace = status_sync_exact(
        vec![
            issue("10102"),
            transitions(&[("51", "10101", "done")]),
            post(204),
        ],
        true,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "transitioned", "transitions": ["51"]})
    );
    assert!(!trace.requests(0).iter().any(|r| r.ends_with(STATUS_LIST)));
    assert!(!trace.has_event(0, "jira.sync_status_outbound.same-category"));
}

#[test]
fn a_status_the_list_does_not_know_is_not_taken_for_either_side() {
    let trace = status_sync(
        vec![
            issue("777"),
            transitions(&[("21", "3", "indeterminate")]),
            post(204),
        ],
        false,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "transitioned", "transitions": ["21"]})
    );
}

#[test]
fn a_failing_status_list_is_a_typed_failure_before_any_transition() {
    let mut s = scenario("outbound");
    s["http"] = json!([
        issue("10102"),
        {"method": "GET", "path": STATUS_LIST, "status": 503},
        transitions(&[("51", "10101", "done")]),
        post(204),
    ]);
    let trace = run_checked(&with_steps(
        s,
        json!([{"sync_status_outbound": {"issue_key": "APP-123", "resolved": true}}]),
    ));
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "failed", "failure": {"type": "server-error", "status": 503}})
    );
    assert!(posted(&trace, 0).is_empty());
}

#[test]
fn status_changes_from_this_installation_are_not_pushed_back() {
    let s = with_steps(
        scenario("outbound"),
        json!([
            {"sync_status_outbound": {"issue_key": "APP-123", "resolved": true, "source": "this-installation"}},
            {"sync_status_outbound": {"issue_key": "APP-123", "resolved": false, "dry_run": true, "source": "this-installation"}},
        ]),
    );
    let trace = run(&s);
    for step in [0, 1] {
        assert_eq!(trace.outcome(step), &json!({"type": "skipped-loop"}));
        assert!(trace.requests(step).is_empty());
        assert!(trace.has_event(step, "jira.sync_status_outbound.skipped-loop"));
    }
    assert_eq!(trace.0["unmatched_http"], json!([]));
}

#[test]
fn an_unknown_installation_fails_before_the_loop_guard() {
    let trace = run(&with_steps(
        scenario("outbound"),
        json!([{"sync_status_outbound": {"issue_key": "APP-123", "resolved": true,
                 "source": "this-installation", "client_key": "jira:nobody"}}]),
    ));
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "failed", "failure": {"type": "unknown-installation"}})
    );
}

// --- rate limits -----------------------------------------------------------------------------

fn limited(retry_after: Option<&str>, reason: Option<&str>) -> Value {
    let mut headers = serde_json::Map::new();
    if let Some(after) = retry_after {
        headers.insert("Retry-After".into(), json!(after));
    }
    if let Some(reason) = reason {
        headers.insert("RateLimit-Reason".into(), json!(reason));
    }
    json!({"method": "POST", "path": TRANSITIONS, "status": 429, "headers": headers})
}

#[test]
fn a_429_with_retry_after_is_retried_after_that_delay() {
    let trace = status_sync(
        vec![
            issue("1"),
            transitions(&[("31", "10101", "done")]),
            limited(Some("7"), Some("jira-per-issue-on-write")),
            post(204),
        ],
        true,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "transitioned", "transitions": ["31"]})
    );
    assert_eq!(posted(&trace, 0), ["31", "31"]);
    assert_eq!(trace.step(0)["slept"], 7, "the host slept, not the guest");
    let retry = trace.step(0)["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["event"] == "jira.rate-limit-retry")
        .unwrap();
    assert_eq!(retry["fields"]["reason"], "jira-per-issue-on-write");
    // A fresh token for the retry: the clock moved on by the delay.
    let tokens: Vec<&Value> = trace.step(0)["http"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["method"] == "POST")
        .map(|e| &e["headers"]["Authorization"])
        .collect();
    assert_ne!(tokens[0], tokens[1]);
}

#[test]
fn a_429_without_retry_after_backs_off_exponentially() {
    let trace = status_sync(
        vec![
            issue("1"),
            transitions(&[("31", "10101", "done")]),
            limited(None, None),
            limited(None, None),
            limited(None, None),
            post(204),
        ],
        true,
        false,
    );
    assert_eq!(trace.outcome(0)["type"], "transitioned");
    assert_eq!(trace.step(0)["slept"], 1 + 2 + 4);
}

#[test]
fn a_429_beyond_the_budget_is_rate_limited() {
    let trace = status_sync(
        vec![
            issue("1"),
            transitions(&[("31", "10101", "done")]),
            json!({"method": "POST", "path": TRANSITIONS, "status": 429, "headers": {"Retry-After": "5"}, "repeat": true}),
        ],
        true,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "rate-limited", "retry_after": 5})
    );
    assert_eq!(
        posted(&trace, 0).len(),
        4,
        "the first attempt and 3 retries"
    );
    assert_eq!(trace.step(0)["slept"], 15);
    assert!(trace.has_event(0, "jira.rate-limited"));

    let trace = status_sync(
        vec![
            issue("1"),
            transitions(&[("31", "10101", "done")]),
            limited(Some("120"), None),
        ],
        true,
        false,
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "rate-limited", "retry_after": 120}),
        "a wait beyond the total budget is handed to the host at once"
    );
    assert_eq!(trace.step(0)["slept"], 0);
}

// --- egress ----------------------------------------------------------------------------------

#[test]
fn requests_outside_the_installation_origin_are_denied() {
    let mut s = scenario("reference-transitions");
    s["installation"]["base_url"] = json!("ftp://acme.atlassian.net");
    let trace = run(&s);
    let outcome = trace.outcome(0);
    assert_eq!(outcome["failure"]["type"], "http");
    assert!(
        outcome["failure"]["error"]
            .as_str()
            .unwrap()
            .starts_with("denied:"),
        "{outcome}"
    );
    assert_eq!(
        trace.step(0)["http"][0]["error"].as_str().unwrap()[..7].to_owned(),
        "denied:"
    );
    assert_eq!(
        trace.0["unmatched_http"],
        json!([]),
        "nothing left the sandbox"
    );
}

// --- assignee --------------------------------------------------------------------------------

fn assignee_sync(stubs: Vec<Value>, step: Value, edit: impl FnOnce(&mut Value)) -> Trace {
    let mut s = scenario("outbound");
    s["http"].as_array_mut().unwrap().extend(stubs);
    edit(&mut s);
    run_checked(&with_steps(s, json!([{"sync_assignee_outbound": step}])))
}

fn search(query: &str, users: Value) -> Value {
    json!({"method": "GET", "path": SEARCH, "query": {"issueKey": "APP-123", "query": query}, "body": users})
}

fn put(status: u16) -> Value {
    json!({"method": "PUT", "path": ASSIGNEE, "status": status})
}

#[test]
fn search_matches_case_insensitively_and_puts_the_account_id() {
    let trace = assignee_sync(
        vec![
            search(
                "bob@example.com",
                json!([
                {"accountId": "0000", "displayName": "Bobby", "emailAddress": "bobby@example.com"},
                {"accountId": "deadbeef123", "displayName": "Bob", "emailAddress": "Bob@example.com"}]),
            ),
            put(204),
        ],
        json!({"issue_key": "APP-123", "emails": ["bob@example.com"]}),
        |_| {},
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "assigned", "account_id": "deadbeef123"})
    );
    let put = &trace.step(0)["http"][1];
    assert_eq!(put["method"], "PUT");
    assert_eq!(put["body"], json!({"accountId": "deadbeef123"}));
    assert_eq!(
        trace.requests(0),
        [
            format!("GET {SEARCH}?issueKey=APP-123&query=bob%40example.com"),
            format!("PUT {ASSIGNEE}")
        ]
    );
}

#[test]
fn the_first_matching_email_wins() {
    let trace = assignee_sync(
        vec![
            search(
                "a@example.com",
                json!([{"accountId": "aaa", "emailAddress": "a@example.com"}]),
            ),
            search(
                "b@example.com",
                json!([{"accountId": "bbb", "emailAddress": "b@example.com"}]),
            ),
            put(204),
        ],
        json!({"issue_key": "APP-123", "emails": ["a@example.com", "b@example.com"]}),
        |_| {},
    );
    assert_eq!(trace.outcome(0)["account_id"], "aaa");
    assert_eq!(trace.requests(0).len(), 2, "no search for the second email");
}

#[test]
fn searches_are_cached() {
    let mut s = scenario("outbound");
    s["http"].as_array_mut().unwrap().extend([
        search(
            "bob@example.com",
            json!([{"accountId": "b0b", "emailAddress": "bob@example.com"}]),
        ),
        json!({"method": "PUT", "path": ASSIGNEE, "status": 204, "repeat": true}),
    ]);
    let step =
        json!({"sync_assignee_outbound": {"issue_key": "APP-123", "emails": ["bob@example.com"]}});
    let trace = run_checked(&with_steps(s, json!([step, step])));
    assert_eq!(trace.outcome(1)["account_id"], "b0b");
    assert_eq!(trace.requests(1), [format!("PUT {ASSIGNEE}")]);
}

#[test]
fn hidden_emails_use_the_email_api_only_with_the_scope() {
    let stubs = || {
        vec![
            search(
                "bob@example.com",
                json!([{"accountId": "b0b", "displayName": "Bob", "emailAddress": ""}]),
            ),
            json!({"method": "GET", "path": "/rest/api/3/user/email", "query": {"accountId": "b0b"},
                   "body": {"accountId": "b0b", "email": "BOB@example.com"}}),
            put(204),
        ]
    };
    let step = json!({"issue_key": "APP-123", "emails": ["bob@example.com"]});
    let with_scope = assignee_sync(stubs(), step.clone(), |s| {
        s["installation"]["use_email_scope"] = json!(true)
    });
    assert_eq!(with_scope.outcome(0)["account_id"], "b0b");
    assert_eq!(with_scope.requests(0).len(), 3, "search, email API, PUT");

    let without = assignee_sync(stubs(), step, |_| {});
    assert_eq!(without.outcome(0), &json!({"type": "no-matching-user"}));
    assert_eq!(without.requests(0).len(), 1, "search only");
    assert!(without.has_event(0, "jira.assignee-not-found"));
}

#[test]
fn unassign_puts_a_null_account() {
    let trace = assignee_sync(
        vec![put(204)],
        json!({"issue_key": "APP-123", "unassign": true}),
        |_| {},
    );
    assert_eq!(trace.outcome(0), &json!({"type": "unassigned"}));
    assert_eq!(trace.step(0)["http"][0]["body"], json!({"accountId": null}));
}

#[test]
fn no_emails_is_no_verified_email() {
    let trace = assignee_sync(
        vec![],
        json!({"issue_key": "APP-123", "emails": []}),
        |_| {},
    );
    assert_eq!(trace.outcome(0), &json!({"type": "no-verified-email"}));
    assert!(trace.requests(0).is_empty());
}

#[test]
fn put_401_is_unauthorized_and_400_is_failed() {
    let step = json!({"issue_key": "APP-123", "unassign": true});
    let trace = assignee_sync(vec![put(401)], step.clone(), |_| {});
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "unauthorized", "message": "Insufficient permissions to assign user to the Jira issue."})
    );
    let trace = assignee_sync(vec![put(400)], step, |_| {});
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "failed", "message": "There was an error assigning the issue.",
                "failure": {"type": "unexpected-status", "status": 400}})
    );
}

#[test]
fn assignments_from_this_installation_are_not_pushed_back() {
    let trace = assignee_sync(
        vec![],
        json!({"issue_key": "APP-123", "emails": ["bob@example.com"], "source": "this-installation"}),
        |_| {},
    );
    assert_eq!(trace.outcome(0), &json!({"type": "skipped-loop"}));
    assert!(trace.requests(0).is_empty());
}

#[test]
fn forward_assignment_off_is_disabled() {
    let trace = assignee_sync(
        vec![],
        json!({"issue_key": "APP-123", "unassign": true}),
        |s| s["installation"]["sync_forward_assignment"] = json!(false),
    );
    assert_eq!(trace.outcome(0), &json!({"type": "disabled"}));
    assert!(trace.requests(0).is_empty());
}

// --- assignee: the email lookup budget (docs/behaviour.md#3.2) -------------------------------

/// The email API's answer for `account`.
fn email_api(account: &str, email: &str) -> Value {
    json!({"method": "GET", "path": "/rest/api/3/user/email", "query": {"accountId": account},
           "body": {"accountId": account, "email": email}})
}

/// `n` assignable users, all hiding their email, whose email API answers are other people's.
fn hidden_users(n: usize) -> (Value, Vec<Value>) {
    let users: Vec<Value> = (0..n)
        .map(|i| json!({"accountId": format!("acc-{i}"), "displayName": format!("User {i}"), "emailAddress": ""}))
        .collect();
    let answers = (0..n)
        .map(|i| email_api(&format!("acc-{i}"), &format!("user{i}@example.com")))
        .collect();
    (json!(users), answers)
}

fn email_lookups(trace: &Trace, i: usize) -> usize {
    trace
        .requests(i)
        .iter()
        .filter(|r| r.contains("/rest/api/3/user/email"))
        .count()
}

#[test]
fn forty_hidden_emails_end_as_no_matching_user_after_ten_lookups() {
    // The defect of issue 10: the search asked the email API for every user and broke the
    // host's limit of 32 requests (`limit: http-calls`) instead of ending with an outcome.
    let (users, answers) = hidden_users(40);
    let mut stubs = vec![search("bob@example.com", users)];
    stubs.extend(answers);
    let trace = assignee_sync(
        stubs,
        json!({"issue_key": "APP-123", "emails": ["bob@example.com"]}),
        |s| s["installation"]["use_email_scope"] = json!(true),
    );
    assert_eq!(trace.step(0)["error"], Value::Null, "no limit broken");
    assert_eq!(trace.outcome(0), &json!({"type": "no-matching-user"}));
    assert_eq!(email_lookups(&trace, 0), 10);
    assert_eq!(trace.requests(0).len(), 11, "the search and ten lookups");
    let exhausted = trace.step(0)["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["event"] == "jira.assignee-search.lookups-exhausted")
        .unwrap();
    assert_eq!(exhausted["fields"]["skipped"], "30");
    assert_eq!(exhausted["fields"]["max_email_lookups"], "10");
    assert!(trace.has_event(0, "jira.assignee-not-found"));
}

#[test]
fn the_lookup_budget_is_per_installation_and_cached_answers_are_free() {
    let (users, answers) = hidden_users(2);
    let mut s = scenario("outbound");
    s["installation"]["use_email_scope"] = json!(true);
    s["installation"]["max_email_lookups"] = json!(1);
    s["http"].as_array_mut().unwrap().extend([
        search("user1@example.com", users),
        answers[0].clone(),
        answers[1].clone(),
        put(204),
    ]);
    let step = json!({"sync_assignee_outbound": {"issue_key": "APP-123", "emails": ["user1@example.com"]}});
    let trace = run_checked(&with_steps(s, json!([step, step])));
    // acc-0 is looked up (someone else); acc-1 is past the budget.
    assert_eq!(trace.outcome(0), &json!({"type": "no-matching-user"}));
    assert_eq!(email_lookups(&trace, 0), 1);
    assert!(trace.has_event(0, "jira.assignee-search.lookups-exhausted"));
    // Again: the search and acc-0's email come from the cache, so the budget reaches acc-1.
    assert_eq!(
        trace.outcome(1),
        &json!({"type": "assigned", "account_id": "acc-1"})
    );
    assert_eq!(
        trace.requests(1),
        [
            "GET /rest/api/3/user/email?accountId=acc-1".to_owned(),
            format!("PUT {ASSIGNEE}")
        ]
    );
    assert!(!trace.has_event(1, "jira.assignee-search.lookups-exhausted"));
}

#[test]
fn a_listed_email_still_matches_once_the_budget_is_spent() {
    let mut users = hidden_users(3).0;
    users
        .as_array_mut()
        .unwrap()
        .push(json!({"accountId": "b0b", "emailAddress": "bob@example.com"}));
    let trace = assignee_sync(
        vec![search("bob@example.com", users), put(204)],
        json!({"issue_key": "APP-123", "emails": ["bob@example.com"]}),
        |s| {
            s["installation"]["use_email_scope"] = json!(true);
            s["installation"]["max_email_lookups"] = json!(0);
        },
    );
    assert_eq!(
        trace.outcome(0),
        &json!({"type": "assigned", "account_id": "b0b"})
    );
    assert_eq!(email_lookups(&trace, 0), 0);
}
