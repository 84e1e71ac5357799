//! The simulator's other dialects end to end (docs/behaviour.md#1.8, #10.3): an admin webhook
//! site, whose deliveries carry `X-Hub-Signature` and whose REST API takes Basic auth, and
//! issues that Jira deletes or moves.

use jira_sync_host::backends::GroupStatus;
use jira_sync_host::demo;
use jira_sync_host::installation::CredentialSpec;
use jira_sync_host::sim::{SimWorld, Webhook};
use jira_sync_plugin::signature;
use serde_json::json;

use super::{ISSUE, Stack};

const CLIENT_KEY: &str = "jira:demo-site";
const SECRET: &str = "It's a Secret to Everybody";
const EMAIL: &str = "bot@example.com";
const API_TOKEN: &str = "api-token";

/// The demo stack with its site an admin webhook's, on both sides: the installation's
/// credentials and the simulator's proofs and delivery URL.
fn admin_stack(name: &str) -> Stack {
    let stack = Stack::new(name);
    let mut spec = demo::installation(&SimWorld::demo(), &stack.sim.base_url());
    spec.shared_secret.clear();
    spec.credentials = CredentialSpec::AdminWebhook {
        secret: SECRET.into(),
        email: EMAIL.into(),
        api_token: API_TOKEN.into(),
    };
    spec.check().unwrap();
    stack.store.add_installation(&spec).unwrap();
    stack.sim.make_admin_site(EMAIL, API_TOKEN, SECRET);
    let server = stack.server.as_ref().unwrap().url();
    stack
        .sim
        .set_webhook_url(&format!("{server}/webhooks/admin/{CLIENT_KEY}"));
    stack
}

/// Someone takes transition `id` of `key` in Jira's UI; the control API's status.
fn take_transition(stack: &Stack, key: &str, id: &str) -> u16 {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    agent
        .post(&format!(
            "{}/_sim/issues/{key}/transitions",
            stack.sim.base_url()
        ))
        .send(json!({"transition": {"id": id}}).to_string().as_bytes())
        .unwrap()
        .status()
        .as_u16()
}

/// Open (1) to Won't Do (10102, a done status): one hop.
const WONT_DO: &str = "41";

#[test]
fn an_admin_site_signs_its_deliveries_and_takes_basic_auth() {
    let stack = admin_stack("sim-admin");
    let item = |to: &str| {
        json!([{"field": "status", "fieldtype": "jira", "fieldId": "status",
                                  "from": "1", "to": to}])
    };
    let signed = stack.sim.webhook_body(ISSUE, item("10101")).unwrap();
    stack.sim.send(Webhook {
        id: "tampered".into(),
        body: stack.sim.webhook_body(ISSUE, item("10102")).unwrap(),
        authorization: Some(signature::sign(SECRET, signed.to_string().as_bytes())),
    });
    stack.settle();
    assert_eq!(stack.last_delivery_status(), Some(409));
    assert_eq!(stack.group().status, GroupStatus::Unresolved);
    assert!(
        stack.sim.exchanges().is_empty(),
        "the refused delivery never reached the component's requests"
    );
    assert!(!stack.store.handled(CLIENT_KEY, "tampered").unwrap());

    assert_eq!(take_transition(&stack, ISSUE, WONT_DO), 204);
    stack.settle();
    assert_eq!(stack.last_delivery_status(), Some(200));
    assert_eq!(stack.group().status, GroupStatus::Resolved);
    let exchanges = stack.sim.exchanges();
    assert!(
        exchanges
            .iter()
            .any(|e| e.path == "/rest/api/2/status" && e.status == 200),
        "the status list was read: {exchanges:?}"
    );
    assert!(
        exchanges.iter().all(|e| e.auth_error.is_none()),
        "every request carried the account's Basic auth: {exchanges:?}"
    );

    // The site takes no other proof: a bearer token is refused and recorded as such.
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let status = agent
        .get(&format!("{}/rest/api/2/status", stack.sim.base_url()))
        .header("Authorization", "Bearer api-token")
        .call()
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 401);
    assert!(stack.sim.exchanges().last().unwrap().auth_error.is_some());
}

#[test]
fn links_follow_a_moved_issue_to_its_new_key() {
    let stack = Stack::new("sim-move");
    stack.sim.move_issue(ISSUE, "NEW-1").unwrap();
    stack.settle();
    let moved = stack.sim.deliveries().last().unwrap().clone();
    assert_eq!(
        (moved.issue_key.as_str(), moved.status),
        ("NEW-1", Some(200))
    );
    assert_eq!(moved.fields, ["Key", "project"], "APP-123 left project APP");
    assert_eq!(stack.store.linked_groups(CLIENT_KEY, "NEW-1").unwrap(), [1]);
    assert!(
        stack
            .store
            .linked_groups(CLIENT_KEY, ISSUE)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        stack.sim.issue(ISSUE).unwrap().key,
        "NEW-1",
        "Jira still answers the old key with the moved issue"
    );

    assert_eq!(take_transition(&stack, "NEW-1", WONT_DO), 204);
    stack.settle();
    let last = stack.sim.deliveries().last().unwrap().clone();
    assert_eq!((last.issue_key.as_str(), last.status), ("NEW-1", Some(200)));
    assert_eq!(
        stack.group().status,
        GroupStatus::Resolved,
        "the group linked to APP-123 heard of NEW-1's change"
    );
}

#[test]
fn a_deleted_issue_loses_its_links_and_its_groups_keep_their_state() {
    let stack = admin_stack("sim-delete");
    assert_eq!(take_transition(&stack, ISSUE, WONT_DO), 204);
    stack.settle();
    assert_eq!(stack.group().status, GroupStatus::Resolved);

    stack.sim.delete_issue(ISSUE).unwrap();
    stack.settle();
    let deleted = stack.sim.deliveries().last().unwrap().clone();
    assert_eq!(
        (deleted.issue_key.as_str(), deleted.status),
        (ISSUE, Some(200))
    );
    assert!(stack.store.handled(CLIENT_KEY, &deleted.id).unwrap());
    assert!(stack.sim.issue(ISSUE).is_none(), "the issue left the world");
    assert!(
        stack
            .store
            .linked_groups(CLIENT_KEY, ISSUE)
            .unwrap()
            .is_empty()
    );
    assert_eq!(stack.group().status, GroupStatus::Resolved);
}
