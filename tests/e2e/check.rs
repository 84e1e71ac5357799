//! The mapping check through the admin API: the component reads the simulator's project
//! statuses, workflow scheme and workflows, and reports the demo's deliberately broken mapping.

use jira_sync_host::demo::BROKEN_PROJECT;
use jira_sync_host::sim::Fault;
use serde_json::{Value, json};

use super::Stack;

/// `GET /admin/installations/{key}/check`: the status and the JSON answer.
fn check(stack: &Stack, client_key: &str) -> (u16, Value) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let url = format!(
        "{}/admin/installations/{}/check",
        stack.server.as_ref().unwrap().url(),
        jira_sync_plugin::qsh::encode(client_key)
    );
    let mut response = agent.get(&url).call().unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec().unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

fn project<'a>(answer: &'a Value, id: &str) -> &'a Value {
    answer["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["project_id"] == id)
        .unwrap_or_else(|| panic!("no project {id} in {answer}"))
}

#[test]
fn the_check_reports_the_sound_mapping_ok_and_names_what_is_broken_in_the_other() {
    let stack = Stack::new("check-broken");
    let (status, answer) = check(&stack, "jira:demo-site");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["problems"], 2, "{answer}");

    let sound = project(&answer, "10000");
    assert_eq!(sound["outcome"]["type"], "checked");
    let types = sound["outcome"]["issue_types"].as_array().unwrap();
    assert_eq!(types.len(), 2, "Task and Bug");
    for issue_type in types {
        assert_eq!(issue_type["workflow"], "APP workflow");
        assert_eq!(issue_type["resolved"], json!({"type": "ok"}));
        assert_eq!(issue_type["unresolved"], json!({"type": "ok"}));
    }

    let broken = project(&answer, BROKEN_PROJECT);
    assert_eq!(broken["resolved_status"], "10102");
    let task = &broken["outcome"]["issue_types"][0];
    assert_eq!(task["name"], "Task");
    assert_eq!(task["resolved"], json!({"type": "missing-status"}));
    assert_eq!(
        task["unresolved"],
        json!({"type": "unreachable-from", "statuses": ["10101"]}),
        "OPS's Done has no way back"
    );

    let exchanges = stack.sim.exchanges();
    assert!(!exchanges.is_empty());
    assert!(
        exchanges
            .iter()
            .all(|e| e.method == "GET" && e.auth_error.is_none()),
        "signed reads only"
    );
    assert_eq!(
        stack.sim.issue(super::ISSUE).unwrap().status,
        "1",
        "nothing moved"
    );
}

#[test]
fn a_refused_workflow_search_leaves_reachability_unknown_and_says_why() {
    let stack = Stack::new("check-scopes");
    stack.sim.inject(Fault {
        method: "GET".into(),
        path_contains: "/rest/api/3/workflow/search".into(),
        status: 403,
        body: r#"{"errorMessages":["You are not authorised to perform this action."]}"#.into(),
        times: 2,
        ..Fault::default()
    });
    let (status, answer) = check(&stack, "jira:demo-site");
    assert_eq!(status, 200, "{answer}");
    let unknown = json!({"type": "unknown-scopes", "endpoint": "workflow-search"});
    for issue_type in project(&answer, "10000")["outcome"]["issue_types"]
        .as_array()
        .unwrap()
    {
        assert_eq!(issue_type["resolved"], unknown);
        assert_eq!(issue_type["unresolved"], unknown);
        assert_eq!(
            issue_type["workflow"],
            Value::Null,
            "no workflow is guessed"
        );
    }
    let task = &project(&answer, BROKEN_PROJECT)["outcome"]["issue_types"][0];
    assert_eq!(
        task["resolved"],
        json!({"type": "missing-status"}),
        "a missing status needs no administration scope to show"
    );
    assert_eq!(task["unresolved"], unknown);
    assert_eq!(answer["problems"], 6);
}

#[test]
fn a_project_jira_does_not_know_and_an_unknown_installation_are_told_apart() {
    let stack = Stack::new("check-unknown");
    let client_key = "jira:demo-site";
    let mut spec = stack.store.installation_spec(client_key).unwrap().unwrap();
    spec.sync_status_forward.insert(
        "99999".into(),
        jira_sync_host::installation::StatusPair {
            resolved: "10101".into(),
            unresolved: "1".into(),
        },
    );
    stack.store.add_installation(&spec).unwrap();
    let (status, answer) = check(&stack, client_key);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        project(&answer, "99999")["outcome"],
        json!({"type": "project-not-found"})
    );
    assert_eq!(answer["problems"], 3);

    let (status, answer) = check(&stack, "jira:nobody");
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["check"], json!({"type": "unknown-installation"}));
}
