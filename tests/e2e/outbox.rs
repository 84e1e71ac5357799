//! Platform → Jira pushes go through a durable outbox: a push that fails for a transient reason
//! is retried until it lands, even across a restart; one that cannot succeed is marked failed;
//! the admin API shows each push's state.

use std::time::{Duration, Instant};

use jira_sync_host::sim::Fault;
use serde_json::Value;

use super::{ISSUE, Stack};

/// Jira answers the next `times` reads of the issue with `status`.
fn fail_issue_reads(stack: &Stack, status: u16, times: u32) {
    stack.sim.inject(Fault {
        method: "GET".into(),
        path_contains: format!("/rest/api/2/issue/{ISSUE}"),
        status,
        times,
        ..Fault::default()
    });
}

fn syncs(stack: &Stack) -> Vec<Value> {
    let url = format!(
        "{}/admin/groups/1/syncs",
        stack.server.as_ref().unwrap().url()
    );
    let body = ureq::get(&url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let answer: Value = serde_json::from_str(&body).unwrap();
    answer["syncs"].as_array().cloned().unwrap_or_default()
}

fn metrics(stack: &Stack) -> String {
    let url = format!("{}/metrics", stack.server.as_ref().unwrap().url());
    ureq::get(&url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// Waits (bounded) until the newest push is no longer pending or running.
fn settled_push(stack: &Stack) -> Value {
    let started = Instant::now();
    loop {
        let newest = syncs(stack).first().cloned().unwrap();
        let state = newest["state"].as_str().unwrap_or_default().to_owned();
        if (state == "done" || state == "failed") || started.elapsed() > Duration::from_secs(30) {
            return newest;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_push_that_meets_a_jira_outage_is_retried_until_it_lands() {
    let stack = Stack::new("outbox-retry");
    fail_issue_reads(&stack, 503, 1);
    let answer = stack.admin("/admin/groups/1/resolve", "");
    let first = &answer["results"][0];
    assert_eq!(first["outcome"]["type"], "failed", "{answer}");
    assert_eq!(first["sync"]["state"], "pending", "{answer}");
    assert_eq!(
        stack.group().status,
        jira_sync_host::backends::GroupStatus::Resolved
    );
    // The retrier measures the backlog every second.
    std::thread::sleep(Duration::from_millis(1500));
    let text = metrics(&stack);
    assert!(text.contains("jira_sync_outbox_pushes 1"), "{text}");

    let push = settled_push(&stack);
    assert_eq!(push["state"], "done", "{push}");
    assert_eq!(push["attempts"], 2);
    assert_eq!(push["outcome"]["type"], "transitioned");
    assert_eq!(
        stack.sim.issue(ISSUE).unwrap().status,
        "10101",
        "Jira got there"
    );
}

#[test]
fn a_push_that_cannot_succeed_is_marked_failed() {
    let stack = Stack::new("outbox-failed");
    fail_issue_reads(&stack, 401, 1);
    let answer = stack.admin("/admin/groups/1/resolve", "");
    assert_eq!(answer["results"][0]["sync"]["state"], "failed", "{answer}");
    assert_eq!(syncs(&stack)[0]["outcome"]["type"], "unauthorized");
}

#[test]
fn a_pending_push_survives_a_restart() {
    let mut stack = Stack::new("outbox-restart");
    fail_issue_reads(&stack, 503, 1);
    let answer = stack.admin("/admin/groups/1/resolve", "");
    assert_eq!(answer["results"][0]["sync"]["state"], "pending", "{answer}");
    stack.restart_server();
    let push = settled_push(&stack);
    assert_eq!(push["state"], "done", "{push}");
    assert_eq!(stack.sim.issue(ISSUE).unwrap().status, "10101");
}
