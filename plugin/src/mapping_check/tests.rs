//! The mapping check's parsing, its reachability analysis, and the whole check driven natively
//! against a scripted Jira that answers with Jira's shapes.

use serde_json::{Value, json};

use super::*;
use crate::env::{Cache, Clock, Deliveries, Groups, Http, Installations, Links, Log};
use crate::model::{
    AssignOutcome, Claim, Field, HttpError, HttpRequest, HttpResponse, ResolutionStrategy,
    StatusChange, UnassignOutcome,
};

const CLIENT_KEY: &str = "jira:check";

/// Jira's project statuses for a project with two issue types: Task (Open, In Progress, Done,
/// Won't Do) and Bug (Open, Done).
fn project_statuses() -> Value {
    let status = |id: &str, name: &str, key: &str| {
        json!({"id": id, "name": name, "self": format!("https://x/status/{id}"),
               "statusCategory": {"id": 2, "key": key, "name": key, "colorName": "blue-gray"}})
    };
    json!([
        {"id": "10001", "name": "Task", "subtask": false, "self": "https://x/issuetype/10001",
         "statuses": [status("1", "Open", "new"), status("3", "In Progress", "indeterminate"),
                      status("10101", "Done", "done"), status("10102", "Won't Do", "done")]},
        {"id": "10004", "name": "Bug", "subtask": false,
         "statuses": [status("1", "Open", "new"), status("10101", "Done", "done")]},
    ])
}

/// Jira's workflow scheme answer: Bug uses "Bug flow", everything else "Main flow".
fn scheme_json() -> Value {
    json!({"isLast": true, "maxResults": 50, "startAt": 0, "total": 1, "values": [
        {"projectIds": ["10000", "10002"], "workflowScheme": {
            "id": 101010, "name": "Scheme", "description": "", "defaultWorkflow": "Main flow",
            "issueTypeMappings": {"10004": "Bug flow"}, "draft": false,
            "self": "https://x/workflowscheme/101010"}}]})
}

fn transition(id: &str, from: &[&str], to: &str, kind: &str) -> Value {
    json!({"id": id, "name": format!("t{id}"), "description": "", "from": from, "to": to,
           "type": kind})
}

/// "Main flow": create → Open; Open → In Progress → Done; Won't Do from anywhere; Done is a dead
/// end. "Bug flow": Open ⇄ Done.
fn workflows_page() -> Value {
    json!({"isLast": true, "maxResults": 50, "startAt": 0, "total": 2, "values": [
        {"id": {"name": "Main flow", "entityId": "e1"}, "description": "",
         "statuses": [{"id": "1"}, {"id": "3"}, {"id": "10101"}, {"id": "10102"}],
         "transitions": [transition("1", &[], "1", "initial"),
                         transition("11", &["1"], "3", "directed"),
                         transition("21", &["3"], "10101", "directed"),
                         transition("41", &[], "10102", "global")]},
        {"id": {"name": "Bug flow", "entityId": "e2"}, "description": "",
         "statuses": [{"id": "1"}, {"id": "10101"}],
         "transitions": [transition("1", &[], "1", "initial"),
                         transition("5", &["1"], "10101", "directed"),
                         transition("6", &["10101"], "1", "directed")]}]})
}

/// An in-memory host: one installation and a Jira scripted by URL path.
struct Fake {
    installation: Installation,
    /// `(path, status, body)`: the first entry whose path the request's path contains answers.
    answers: Vec<(String, u16, Value)>,
    requests: Vec<String>,
    logs: Vec<String>,
}

impl Fake {
    fn new(mapping: &[(&str, &str, &str)]) -> Self {
        let mut installation = installation();
        installation.config.sync_status_forward = mapping
            .iter()
            .map(|(project, resolved, unresolved)| StatusMapping {
                project_id: (*project).into(),
                resolved_status: (*resolved).into(),
                unresolved_status: (*unresolved).into(),
            })
            .collect();
        Fake {
            installation,
            answers: vec![
                ("/project/10000/statuses".into(), 200, project_statuses()),
                ("/workflowscheme/project".into(), 200, scheme_json()),
                ("/workflow/search".into(), 200, workflows_page()),
            ],
            requests: Vec::new(),
            logs: Vec::new(),
        }
    }

    /// Answers requests to `path` with `status` and `body` from now on.
    fn answer(mut self, path: &str, status: u16, body: Value) -> Self {
        self.answers.insert(0, (path.into(), status, body));
        self
    }

    fn check(&mut self) -> Vec<ProjectReport> {
        check(self, CLIENT_KEY).expect("the installation is known")
    }
}

/// The webhook tests' installation, under this file's client key.
fn installation() -> Installation {
    Installation {
        client_key: CLIENT_KEY.into(),
        ..crate::webhook::tests::installation()
    }
}

impl Http for Fake {
    fn send(&mut self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        assert_eq!(request.method.as_str(), "GET", "the check only reads");
        self.requests.push(request.url.clone());
        let path = request.url.split('?').next().unwrap_or_default();
        let (status, body) = self
            .answers
            .iter()
            .find(|(p, _, _)| path.contains(p.as_str()))
            .map_or(
                (404, json!({"errorMessages": ["nothing here"]})),
                |(_, s, b)| (*s, b.clone()),
            );
        Ok(HttpResponse {
            status,
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        })
    }
}

impl Cache for Fake {
    fn get(&mut self, _: &str) -> Option<String> {
        None
    }
    fn set(&mut self, key: &str, _: &str, _: u32) {
        panic!("the check caches nothing, yet set {key}");
    }
    fn delete(&mut self, _: &str) {}
}

impl Installations for Fake {
    fn by_client_key(&mut self, client_key: &str) -> Option<Installation> {
        (client_key == CLIENT_KEY).then(|| self.installation.clone())
    }
}

impl Groups for Fake {
    fn assign(&mut self, _: &str, _: &str, _: &str) -> AssignOutcome {
        panic!("the check changes no group")
    }
    fn unassign(&mut self, _: &str, _: &str) -> UnassignOutcome {
        panic!("the check changes no group")
    }
    fn resolve(&mut self, _: &str, _: &str, _: ResolutionStrategy) -> StatusChange {
        panic!("the check changes no group")
    }
    fn unresolve(&mut self, _: &str, _: &str) -> StatusChange {
        panic!("the check changes no group")
    }
}

impl Links for Fake {
    fn remove_links(&mut self, _: &str, _: &str) -> u32 {
        panic!("the check changes no link")
    }
    fn rename_links(&mut self, _: &str, _: &str, _: &str) -> u32 {
        panic!("the check changes no link")
    }
}

impl Deliveries for Fake {
    fn claim(&mut self, _: &str, _: &str) -> Claim {
        panic!("the check claims nothing")
    }
    fn mark_handled(&mut self, _: &str, _: &str) {
        panic!("the check claims nothing")
    }
    fn last_applied(&mut self, _: &str, _: &str, _: Field) -> Option<i64> {
        None
    }
    fn set_last_applied(&mut self, _: &str, _: &str, _: Field, _: i64) {
        panic!("the check moves no watermark")
    }
}

impl Clock for Fake {
    fn now(&mut self) -> u64 {
        1_700_000_000
    }
    fn sleep(&mut self, _: u32) {}
}

impl Log for Fake {
    fn log(&mut self, _: Level, event: &str, fields: &[(&str, &str)]) {
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.logs.push(format!("{event} {}", fields.join(" ")));
    }
}

fn checked(report: &ProjectReport) -> &[IssueTypeCheck] {
    match &report.outcome {
        ProjectOutcome::Checked(checks) => checks,
        other => panic!("not checked: {other:?}"),
    }
}

fn issue_type(statuses: &[(&str, &str)]) -> IssueType {
    IssueType {
        id: "1".into(),
        name: "Task".into(),
        statuses: statuses.iter().map(|(id, _)| (*id).into()).collect(),
        categories: statuses
            .iter()
            .map(|(id, key)| ((*id).into(), (*key).into()))
            .collect(),
    }
}

fn workflow(transitions: &[(&[&str], &str)]) -> Workflow {
    Workflow {
        name: "w".into(),
        transitions: transitions
            .iter()
            .map(|(from, to)| (from.iter().map(|s| (*s).to_owned()).collect(), (*to).into()))
            .collect(),
    }
}

#[test]
fn project_statuses_parse_per_issue_type_with_categories() {
    let types = parse_issue_types(&project_statuses()).unwrap();
    assert_eq!(types.len(), 2);
    assert_eq!(types[0].id, "10001");
    assert_eq!(types[0].name, "Task");
    assert_eq!(types[0].statuses, ["1", "3", "10101", "10102"]);
    assert_eq!(types[1].categories[1], ("10101".into(), "done".into()));
    assert_eq!(parse_issue_types(&json!({"values": []})), None);
    let numeric = parse_issue_types(&json!([{"id": 7, "statuses": [{"id": 1}]}])).unwrap();
    assert_eq!(numeric[0].statuses, ["1"], "numeric ids read as strings");
    assert!(numeric[0].categories.is_empty());
}

#[test]
fn the_scheme_names_each_issue_types_workflow_or_its_default() {
    let scheme = parse_scheme(&scheme_json(), "10002").unwrap().unwrap();
    assert_eq!(scheme.workflow_of("10004"), Some("Bug flow"));
    assert_eq!(scheme.workflow_of("10001"), Some("Main flow"));
    assert_eq!(
        parse_scheme(&scheme_for_none(), "10000"),
        Some(None),
        "a team-managed project has no scheme"
    );
    assert_eq!(parse_scheme(&scheme_json(), "99"), Some(None));
    assert_eq!(parse_scheme(&json!([]), "10000"), None);
}

fn scheme_for_none() -> Value {
    json!({"isLast": true, "values": []})
}

#[test]
fn workflows_parse_without_initial_transitions_and_with_global_ones_from_anywhere() {
    let (workflows, last) = parse_workflows(&workflows_page()).unwrap();
    assert!(last);
    assert_eq!(workflows[0].name, "Main flow");
    assert_eq!(
        workflows[0].transitions,
        [
            (vec!["1".to_owned()], "3".to_owned()),
            (vec!["3".to_owned()], "10101".to_owned()),
            (vec![], "10102".to_owned()),
        ]
    );
    let (_, last) = parse_workflows(&json!({"isLast": false, "values": []})).unwrap();
    assert!(!last);
    let (objects, _) = parse_workflows(&json!({"values": [{"id": {"name": "o"}, "transitions": [
            {"from": [{"x": 1}, "1"], "to": {"id": "2"}, "type": "directed"}]}]}))
    .unwrap();
    assert_eq!(
        objects[0].transitions,
        [(vec!["1".to_owned()], "2".to_owned())],
        "a `to` object reads as its id; a `from` entry without an id is skipped"
    );
    assert_eq!(parse_workflows(&json!({"isLast": true})), None);
}

#[test]
fn a_dead_end_status_cannot_reach_an_unresolved_target() {
    let statuses = issue_type(&[("1", "new"), ("3", "indeterminate"), ("9", "done")]);
    let flow = workflow(&[(&["1"], "3"), (&["3"], "9")]);
    assert!(unreachable_from(&flow, &statuses, "9", true, false, 5).is_empty());
    assert_eq!(
        unreachable_from(&flow, &statuses, "3", false, false, 5),
        ["9"]
    );
    assert_eq!(
        unreachable_from(&flow, &statuses, "1", false, false, 5),
        ["9"]
    );
    assert_eq!(
        unreachable_from(&flow, &statuses, "1", false, true, 5),
        ["3", "9"],
        "with exact mapping, a status on the target's side must reach it too"
    );
    assert_eq!(
        unreachable_from(&flow, &statuses, "9", true, false, 1),
        ["1"],
        "two hops are past a budget of one"
    );
}

#[test]
fn a_walk_to_a_status_not_done_never_passes_through_a_done_one() {
    let statuses = issue_type(&[("1", "new"), ("3", "indeterminate"), ("9", "done")]);
    // The only way from Open to In Progress is through Done.
    let flow = workflow(&[(&["1"], "9"), (&["9"], "3")]);
    assert_eq!(
        unreachable_from(&flow, &statuses, "3", false, true, 5),
        ["1"],
        "Open would have to pass through Done"
    );
    let reopen = workflow(&[(&["9"], "3")]);
    assert!(
        unreachable_from(&reopen, &statuses, "3", false, false, 5).is_empty(),
        "a done start may leave; Open is on the target's side"
    );
    let global = workflow(&[(&[], "3")]);
    assert!(unreachable_from(&global, &statuses, "3", false, true, 5).is_empty());
}

#[test]
fn a_sound_mapping_checks_ok_for_every_issue_type() {
    let mut jira = Fake::new(&[("10000", "10101", "1")]).answer(
        "/workflow/search",
        200,
        reopenable_workflows(),
    );
    let reports = jira.check();
    assert_eq!(reports.len(), 1);
    let checks = checked(&reports[0]);
    assert_eq!(checks.len(), 2);
    for check in checks {
        assert_eq!(check.resolved, StatusCheck::Ok, "{check:?}");
        assert_eq!(check.unresolved, StatusCheck::Ok, "{check:?}");
    }
    assert_eq!(checks[0].workflow.as_deref(), Some("Main flow"));
    assert_eq!(checks[1].workflow.as_deref(), Some("Bug flow"));
    assert!(jira.logs.is_empty(), "{:?}", jira.logs);
    assert_eq!(jira.requests.len(), 3);
    assert!(jira.requests[1].ends_with("/rest/api/3/workflowscheme/project?projectId=10000"));
    assert!(
        jira.requests[2].contains(
            "/rest/api/3/workflow/search?workflowName=Bug%20flow&workflowName=Main%20flow\
             &expand=transitions%2Cstatuses&startAt=0&maxResults=50"
        ),
        "{}",
        jira.requests[2]
    );
}

/// [`workflows_page`] with a reopen transition from Done to In Progress in "Main flow".
fn reopenable_workflows() -> Value {
    let mut page = workflows_page();
    page["values"][0]["transitions"]
        .as_array_mut()
        .unwrap()
        .push(transition("31", &["10101", "10102"], "1", "directed"));
    page
}

#[test]
fn a_broken_mapping_names_the_missing_status_and_the_statuses_that_cannot_reach_the_target() {
    // Bug has no In Progress; Main flow's Done and Won't Do are dead ends.
    let mut jira = Fake::new(&[("10000", "10101", "3")]);
    let checks = jira.check();
    let checks = checked(&checks[0]);
    assert_eq!(checks[0].resolved, StatusCheck::Ok);
    assert_eq!(
        checks[0].unresolved,
        StatusCheck::UnreachableFrom(vec!["10101".into(), "10102".into()])
    );
    assert_eq!(checks[1].resolved, StatusCheck::Ok);
    assert_eq!(checks[1].unresolved, StatusCheck::MissingStatus);
    assert_eq!(
        jira.logs,
        [
            "jira.mapping-check.problem project_id=10000 issue_type=10001 target=3 \
             problem=unreachable-from",
            "jira.mapping-check.problem project_id=10000 issue_type=10004 target=3 \
             problem=missing-status",
        ]
    );
}

#[test]
fn refused_workflow_endpoints_make_reachability_unknown_but_missing_statuses_still_show() {
    for (path, endpoint) in [
        ("/workflow/search", "workflow-search"),
        ("/workflowscheme/project", "workflow-scheme"),
    ] {
        for status in [401, 403] {
            let mut jira = Fake::new(&[("10000", "10101", "3")]).answer(
                path,
                status,
                json!({"errorMessages": ["You are not authorised to perform this action."]}),
            );
            let reports = jira.check();
            let checks = checked(&reports[0]);
            let unknown = StatusCheck::UnknownScopes(endpoint.into());
            assert_eq!(checks[0].resolved, unknown, "{path} {status}");
            assert_eq!(checks[0].unresolved, unknown);
            assert_eq!(checks[0].workflow, None, "no workflow is guessed");
            assert_eq!(checks[1].unresolved, StatusCheck::MissingStatus);
        }
    }
}

#[test]
fn without_a_scheme_or_a_named_workflow_reachability_is_unknown() {
    let mut jira = Fake::new(&[("10000", "10101", "1")]).answer(
        "/workflowscheme/project",
        200,
        scheme_for_none(),
    );
    let checks = jira.check();
    let checks = checked(&checks[0]);
    assert_eq!(checks[0].resolved, StatusCheck::UnknownWorkflow(None));
    assert_eq!(jira.requests.len(), 2, "no workflow to search for");

    let mut only_main = workflows_page();
    only_main["values"].as_array_mut().unwrap().pop();
    let mut jira = Fake::new(&[("10000", "10101", "1")]).answer("/workflow/search", 200, only_main);
    let checks = jira.check();
    let checks = checked(&checks[0]);
    assert_eq!(
        checks[1].resolved,
        StatusCheck::UnknownWorkflow(Some("Bug flow".into()))
    );
}

#[test]
fn the_workflow_search_is_read_page_by_page() {
    let mut first = reopenable_workflows();
    first["values"].as_array_mut().unwrap().pop();
    first["isLast"] = json!(false);
    let jira = Fake::new(&[("10000", "10101", "1")]).answer("/workflow/search", 200, first);
    let mut paged = PagedFake(jira);
    let reports = check(&mut paged, CLIENT_KEY).unwrap();
    for check in checked(&reports[0]) {
        assert_eq!(check.resolved, StatusCheck::Ok, "{check:?}");
    }
    assert_eq!(paged.0.requests.len(), 4);
    assert!(paged.0.requests[3].contains("startAt=1&maxResults=50"));
}

/// [`Fake`] whose workflow search answers its second page (`startAt=1`) with "Bug flow".
struct PagedFake(Fake);

impl Http for PagedFake {
    fn send(&mut self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        if request.url.contains("startAt=1&") {
            self.0.requests.push(request.url);
            let bug = workflows_page()["values"][1].clone();
            let body = json!({"isLast": true, "startAt": 1, "values": [bug]});
            return Ok(HttpResponse {
                status: 200,
                headers: Vec::new(),
                body: body.to_string().into_bytes(),
            });
        }
        self.0.send(request)
    }
}

impl Cache for PagedFake {
    fn get(&mut self, key: &str) -> Option<String> {
        self.0.get(key)
    }
    fn set(&mut self, key: &str, value: &str, ttl: u32) {
        self.0.set(key, value, ttl)
    }
    fn delete(&mut self, key: &str) {
        self.0.delete(key)
    }
}

impl Installations for PagedFake {
    fn by_client_key(&mut self, client_key: &str) -> Option<Installation> {
        self.0.by_client_key(client_key)
    }
}

impl Groups for PagedFake {
    fn assign(&mut self, c: &str, i: &str, e: &str) -> AssignOutcome {
        self.0.assign(c, i, e)
    }
    fn unassign(&mut self, c: &str, i: &str) -> UnassignOutcome {
        self.0.unassign(c, i)
    }
    fn resolve(&mut self, c: &str, i: &str, s: ResolutionStrategy) -> StatusChange {
        self.0.resolve(c, i, s)
    }
    fn unresolve(&mut self, c: &str, i: &str) -> StatusChange {
        self.0.unresolve(c, i)
    }
}

impl Links for PagedFake {
    fn remove_links(&mut self, c: &str, i: &str) -> u32 {
        self.0.remove_links(c, i)
    }
    fn rename_links(&mut self, c: &str, f: &str, t: &str) -> u32 {
        self.0.rename_links(c, f, t)
    }
}

impl Deliveries for PagedFake {
    fn claim(&mut self, c: &str, id: &str) -> Claim {
        self.0.claim(c, id)
    }
    fn mark_handled(&mut self, c: &str, id: &str) {
        self.0.mark_handled(c, id)
    }
    fn last_applied(&mut self, c: &str, i: &str, f: Field) -> Option<i64> {
        self.0.last_applied(c, i, f)
    }
    fn set_last_applied(&mut self, c: &str, i: &str, f: Field, at: i64) {
        self.0.set_last_applied(c, i, f, at)
    }
}

impl Clock for PagedFake {
    fn now(&mut self) -> u64 {
        self.0.now()
    }
    fn sleep(&mut self, s: u32) {
        self.0.sleep(s)
    }
}

impl Log for PagedFake {
    fn log(&mut self, level: Level, event: &str, fields: &[(&str, &str)]) {
        self.0.log(level, event, fields)
    }
}

#[test]
fn a_project_jira_cannot_show_or_fails_on_is_reported_as_such() {
    let cases = [
        (404, ProjectOutcome::ProjectNotFound, "project-not-found"),
        (401, ProjectOutcome::Unauthorized, "unauthorized"),
        (403, ProjectOutcome::Unauthorized, "unauthorized"),
        (
            502,
            ProjectOutcome::Failed(Failure::ServerError(502)),
            "failed",
        ),
    ];
    for (status, outcome, problem) in cases {
        let mut jira = Fake::new(&[("10000", "10101", "1")]).answer(
            "/project/10000/statuses",
            status,
            json!({"errorMessages": ["No project could be found with key '10000'."]}),
        );
        let reports = jira.check();
        assert_eq!(reports[0].outcome, outcome, "{status}");
        assert_eq!(jira.requests.len(), 1, "nothing more is asked");
        assert_eq!(
            jira.logs,
            [format!(
                "jira.mapping-check.problem project_id=10000 issue_type= target= problem={problem}"
            )]
        );
    }
    let mut jira = Fake::new(&[("10000", "10101", "1")]).answer(
        "/project/10000/statuses",
        200,
        json!({"not": "a list"}),
    );
    assert_eq!(
        jira.check()[0].outcome,
        ProjectOutcome::Failed(Failure::BadResponse("project-statuses".into()))
    );
    let mut jira = Fake::new(&[("10000", "10101", "1")]).answer("/workflow/search", 500, json!({}));
    assert_eq!(
        jira.check()[0].outcome,
        ProjectOutcome::Failed(Failure::ServerError(500)),
        "only a refusal of the workflow endpoints means scopes"
    );
}

#[test]
fn every_mapped_project_is_checked_in_order_and_an_unknown_installation_is_an_error() {
    let mut jira = Fake::new(&[("10000", "10101", "1"), ("20000", "1", "2")]);
    let reports = jira.check();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].mapping.project_id, "10000");
    assert_eq!(reports[1].mapping.project_id, "20000");
    assert_eq!(reports[1].outcome, ProjectOutcome::ProjectNotFound);
    assert_eq!(
        check(&mut jira, "jira:other"),
        Err(CheckError::UnknownInstallation)
    );
    let mut none = Fake::new(&[]);
    assert_eq!(none.check(), []);
    assert!(none.requests.is_empty());
}
