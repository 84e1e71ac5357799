//! The webhook exports driven natively through an in-memory host that records every import call
//! in order, so that tests can compare traces as the host's replays do.

use super::*;
use crate::env::{Cache, Clock, Deliveries, Groups, Http, Installations, Links, Log};
use crate::model::{
    DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_EXACT_STATUS_MAPPING, DEFAULT_MAX_EMAIL_LOOKUPS,
    DEFAULT_MAX_TOKEN_LIFETIME_SECONDS, DEFAULT_MAX_TRANSITION_HOPS,
    DEFAULT_WEBHOOK_MAX_WAIT_SECONDS, HttpRequest, HttpResponse, OauthApp, ResolutionStrategy,
    RetryPolicy, SyncConfig,
};

const NOW: u64 = 1_700_000_000;
const CLIENT_KEY: &str = "jira:test";
const SECRET: &str = "test-secret";
const PATH: &str = "/extensions/jira/issue-updated/";
const DELIVERY: &str = "delivery-1";

/// The statuses Jira lists: "1" is not done, "2" is.
const STATUSES: &[u8] =
    br#"[{"id":"1","statusCategory":{"key":"new"}},{"id":"2","statusCategory":{"key":"done"}}]"#;

/// An in-memory host: one installation, a scripted Jira, and a trace of every import call.
struct Fake {
    installation: Option<Installation>,
    claim: Claim,
    last_applied: Option<i64>,
    /// Jira's answer to the email API.
    email: HttpResponse,
    /// Jira's answer to the status list.
    statuses: HttpResponse,
    trace: Vec<String>,
}

impl Default for Fake {
    fn default() -> Self {
        Fake {
            installation: Some(installation()),
            claim: Claim::Claimed,
            last_applied: None,
            email: ok(br#"{"accountId":"acc-1","email":"ada@example.com"}"#),
            statuses: ok(STATUSES),
            trace: Vec::new(),
        }
    }
}

impl Fake {
    /// The trace entries that are one of `kinds` (the first word of an entry).
    fn calls(&self, kinds: &[&str]) -> Vec<&str> {
        self.trace
            .iter()
            .map(String::as_str)
            .filter(|t| kinds.contains(&t.split(' ').next().unwrap_or_default()))
            .collect()
    }

    /// Every call that claims, or writes to the host's stores or the platform.
    fn writes(&self) -> Vec<&str> {
        self.calls(&[
            "claim",
            "mark-handled",
            "set-last-applied",
            "assign",
            "unassign",
            "resolve",
            "unresolve",
            "remove-links",
            "rename-links",
            "cache-set",
            "cache-delete",
        ])
    }

    /// The calls that apply a delivery: the platform's groups, watermarks, the handled mark.
    fn applied(&self) -> Vec<&str> {
        self.calls(&[
            "mark-handled",
            "set-last-applied",
            "assign",
            "unassign",
            "resolve",
            "unresolve",
            "remove-links",
            "rename-links",
        ])
    }

    /// The log events, by name, in order.
    fn events(&self) -> Vec<&str> {
        self.calls(&["log"])
            .into_iter()
            .map(|t| t.split(' ').nth(2).unwrap_or_default())
            .collect()
    }
}

fn ok(body: &[u8]) -> HttpResponse {
    status(200, body)
}

fn status(status: u16, body: &[u8]) -> HttpResponse {
    HttpResponse {
        status,
        headers: Vec::new(),
        body: body.to_vec(),
    }
}

pub(crate) fn installation() -> Installation {
    Installation {
        client_key: CLIENT_KEY.into(),
        credentials: Credentials::Connect(SECRET.into()),
        base_url: "https://acme.atlassian.net".into(),
        app_key: "test.app".into(),
        config: SyncConfig {
            use_email_scope: true,
            sync_status_forward: Vec::new(),
            sync_status_reverse: true,
            sync_forward_assignment: true,
            sync_reverse_assignment: true,
            resolution_strategy: ResolutionStrategy::Resolve,
            max_transition_hops: DEFAULT_MAX_TRANSITION_HOPS,
            retry: RetryPolicy::default(),
            clock_skew_seconds: DEFAULT_CLOCK_SKEW_SECONDS,
            max_token_lifetime_seconds: DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
            webhook_max_wait_seconds: DEFAULT_WEBHOOK_MAX_WAIT_SECONDS,
            exact_status_mapping: DEFAULT_EXACT_STATUS_MAPPING,
            max_email_lookups: DEFAULT_MAX_EMAIL_LOOKUPS,
        },
    }
}

impl Http for Fake {
    fn send(&mut self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.trace
            .push(format!("http {} {}", request.method.as_str(), request.url));
        if request.url.contains("/rest/api/2/status") {
            Ok(self.statuses.clone())
        } else {
            Ok(self.email.clone())
        }
    }
}

impl Cache for Fake {
    fn get(&mut self, key: &str) -> Option<String> {
        self.trace.push(format!("cache-get {key}"));
        None
    }
    fn set(&mut self, key: &str, _: &str, ttl_seconds: u32) {
        self.trace.push(format!("cache-set {key} {ttl_seconds}"));
    }
    fn delete(&mut self, key: &str) {
        self.trace.push(format!("cache-delete {key}"));
    }
}

impl Installations for Fake {
    fn by_client_key(&mut self, client_key: &str) -> Option<Installation> {
        self.trace.push(format!("installation {client_key}"));
        self.installation
            .clone()
            .filter(|i| i.client_key == client_key)
    }
}

impl Groups for Fake {
    fn assign(&mut self, client_key: &str, issue_key: &str, email: &str) -> AssignOutcome {
        self.trace
            .push(format!("assign {client_key} {issue_key} {email}"));
        AssignOutcome::Assigned(1)
    }
    fn unassign(&mut self, client_key: &str, issue_key: &str) -> UnassignOutcome {
        self.trace
            .push(format!("unassign {client_key} {issue_key}"));
        UnassignOutcome::Unassigned(1)
    }
    fn resolve(
        &mut self,
        client_key: &str,
        issue_key: &str,
        _: ResolutionStrategy,
    ) -> StatusChange {
        self.trace.push(format!("resolve {client_key} {issue_key}"));
        StatusChange::Changed(1)
    }
    fn unresolve(&mut self, client_key: &str, issue_key: &str) -> StatusChange {
        self.trace
            .push(format!("unresolve {client_key} {issue_key}"));
        StatusChange::Changed(1)
    }
}

impl Links for Fake {
    fn remove_links(&mut self, client_key: &str, issue_key: &str) -> u32 {
        self.trace
            .push(format!("remove-links {client_key} {issue_key}"));
        1
    }
    fn rename_links(&mut self, client_key: &str, from: &str, to: &str) -> u32 {
        self.trace
            .push(format!("rename-links {client_key} {from} {to}"));
        1
    }
}

impl Deliveries for Fake {
    fn claim(&mut self, client_key: &str, id: &str) -> Claim {
        self.trace.push(format!("claim {client_key} {id}"));
        self.claim
    }
    fn mark_handled(&mut self, client_key: &str, id: &str) {
        self.trace.push(format!("mark-handled {client_key} {id}"));
    }
    fn last_applied(&mut self, client_key: &str, issue_key: &str, field: Field) -> Option<i64> {
        self.trace.push(format!(
            "last-applied {client_key} {issue_key} {}",
            field.as_str()
        ));
        self.last_applied
    }
    fn set_last_applied(&mut self, client_key: &str, issue_key: &str, field: Field, at: i64) {
        self.trace.push(format!(
            "set-last-applied {client_key} {issue_key} {} {at}",
            field.as_str()
        ));
    }
}

impl Clock for Fake {
    fn now(&mut self) -> u64 {
        self.trace.push("now".into());
        NOW
    }
    fn sleep(&mut self, seconds: u32) {
        self.trace.push(format!("sleep {seconds}"));
    }
}

impl Log for Fake {
    fn log(&mut self, level: Level, event: &str, fields: &[(&str, &str)]) {
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.trace
            .push(format!("log {level:?} {event} {}", fields.join(" ")));
    }
}

/// An issue moved to a done status and assigned to an account that hides its email.
const BODY: &str = r#"{
    "webhookEvent": "jira:issue_updated",
    "issue": {"key": "PRJ-7", "fields": {
        "assignee": {"accountId": "acc-1"},
        "updated": "2023-11-14T22:13:20.000+0000"
    }},
    "changelog": {"items": [
        {"field": "assignee", "to": "acc-1"},
        {"field": "status", "from": "1", "to": "2"}
    ]}
}"#;

/// A POST to the webhook path, signed for the test installation, with a delivery id.
fn request(body: &str) -> WebhookRequest {
    let hash = qsh::qsh("POST", PATH, "");
    let claims = jwt::Claims {
        iss: CLIENT_KEY,
        iat: NOW,
        exp: NOW + 180,
        qsh: &hash,
    };
    WebhookRequest {
        method: "POST".into(),
        path: PATH.into(),
        query: String::new(),
        headers: vec![
            (
                "Authorization".into(),
                format!("JWT {}", jwt::sign(&claims, SECRET)),
            ),
            ("X-Atlassian-Webhook-Identifier".into(), DELIVERY.into()),
        ],
        body: body.as_bytes().to_vec(),
    }
}

/// `request` without its delivery id.
fn anonymous(body: &str) -> WebhookRequest {
    let mut request = request(body);
    request
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("x-atlassian-webhook-identifier"));
    request
}

/// The ways of running handle that the baseline trace covers, each with its fake host.
fn handle_cases() -> Vec<(&'static str, Fake, WebhookRequest)> {
    let mut cases = Vec::new();
    cases.push(("happy", Fake::default(), request(BODY)));
    cases.push(("anonymous", Fake::default(), anonymous(BODY)));
    let mut not_found = request(BODY);
    not_found.path = "/elsewhere".into();
    cases.push(("404", Fake::default(), not_found));
    let mut get = request(BODY);
    get.method = "GET".into();
    cases.push(("405", Fake::default(), get));
    let mut unsigned = request(BODY);
    unsigned.headers.retain(|(n, _)| n != "Authorization");
    cases.push(("409", Fake::default(), unsigned));
    cases.push((
        "unknown",
        Fake {
            installation: None,
            ..Fake::default()
        },
        request(BODY),
    ));
    cases.push((
        "duplicate",
        Fake {
            claim: Claim::Handled,
            ..Fake::default()
        },
        request(BODY),
    ));
    cases.push((
        "in-progress",
        Fake {
            claim: Claim::InProgress,
            ..Fake::default()
        },
        request(BODY),
    ));
    cases.push(("malformed", Fake::default(), request("[1]")));
    cases.push(("no-changelog", Fake::default(), request("{}")));
    cases.push((
        "stale",
        Fake {
            last_applied: Some(i64::MAX),
            ..Fake::default()
        },
        request(BODY),
    ));
    cases.push((
        "503",
        Fake {
            statuses: status(503, b""),
            ..Fake::default()
        },
        request(BODY),
    ));
    let mut limited = status(429, b"");
    limited.headers.push(("Retry-After".into(), "30".into()));
    cases.push((
        "429",
        Fake {
            email: limited,
            ..Fake::default()
        },
        request(BODY),
    ));
    cases.push((
        "401",
        Fake {
            email: status(401, b""),
            ..Fake::default()
        },
        request(BODY),
    ));
    cases.push((
        "403",
        Fake {
            statuses: status(403, b""),
            ..Fake::default()
        },
        request(BODY),
    ));
    cases
}

/// Every case's answer and trace, as text.
fn handle_traces() -> String {
    let mut out = String::new();
    for (name, mut fake, request) in handle_cases() {
        let response = handle(&mut fake, &request);
        out.push_str(&format!(
            "== {name}: {} {:?} {}\n",
            response.status,
            response.headers,
            String::from_utf8_lossy(&response.body)
        ));
        for line in &fake.trace {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `handle`'s answers, import calls and log events, in order, for every case above, as recorded
/// in `handle-traces.txt`: the host's replays compare the same things. Set
/// `UPDATE_HANDLE_TRACES=1` to rewrite the file after a deliberate change of behaviour.
#[test]
fn handle_traces_are_unchanged() {
    let traces = handle_traces();
    if std::env::var_os("UPDATE_HANDLE_TRACES").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/webhook/handle-traces.txt");
        std::fs::write(path, &traces).expect("handle-traces.txt is writable");
        return;
    }
    assert_eq!(traces, include_str!("handle-traces.txt"));
}

fn body_json(response: &WebhookResponse) -> Value {
    serde_json::from_slice(&response.body).expect("a JSON body")
}

/// `accept`'s answer, which must be an `Answered`.
fn answered(acceptance: Acceptance) -> WebhookResponse {
    match acceptance {
        Acceptance::Answered(response) => response,
        Acceptance::Queued(job) => panic!("queued {job:?}"),
    }
}

/// The job `process` is given for [`BODY`], with a delivery id.
fn job() -> Job {
    Job {
        client_key: CLIENT_KEY.into(),
        delivery_id: Some(DELIVERY.into()),
        body: BODY.as_bytes().to_vec(),
    }
}

#[test]
fn accept_answers_what_handle_answers_before_the_claim() {
    // Routing and authentication: the same answers, log events and calls as handle.
    let cases = handle_cases().into_iter().zip(handle_cases());
    for ((name, mut by_handle, request), (_, mut by_accept, _)) in cases {
        if !["404", "405", "409", "unknown"].contains(&name) {
            continue;
        }
        let expected = handle(&mut by_handle, &request);
        let response = answered(accept(&mut by_accept, request));
        assert_eq!(response, expected, "{name}");
        assert_eq!(by_accept.trace, by_handle.trace, "{name}");
    }
}

#[test]
fn accept_routes_and_authenticates() {
    let mut not_found = request(BODY);
    not_found.path = "/extensions/jira/other".into();
    let response = answered(accept(&mut Fake::default(), not_found));
    assert_eq!(response.status, 404);

    let mut put = request(BODY);
    put.method = "PUT".into();
    let response = answered(accept(&mut Fake::default(), put));
    assert_eq!(response.status, 405);
    assert_eq!(header(&response.headers, "allow"), Some("POST"));

    let mut forged = request(BODY);
    forged.headers[0].1.push('x');
    let mut fake = Fake::default();
    let response = answered(accept(&mut fake, forged));
    assert_eq!(response.status, 409);
    assert_eq!(
        body_json(&response),
        json!({"error": "signature does not match"})
    );
    assert_eq!(fake.events(), [events::WEBHOOK_AUTH_FAILED]);
}

#[test]
fn accept_answers_a_malformed_body_400() {
    let mut fake = Fake::default();
    let response = answered(accept(
        &mut fake,
        request(r#"{"changelog": {"items": []}}"#),
    ));
    assert_eq!(response.status, 400);
    assert_eq!(body_json(&response), json!({"error": "issue is missing"}));
    assert_eq!(fake.events(), [events::WEBHOOK_BAD_PAYLOAD]);
    assert_eq!(fake.writes(), Vec::<&str>::new());
}

#[test]
fn accept_answers_a_body_without_changelog_200() {
    let mut fake = Fake::default();
    let response = answered(accept(&mut fake, request(r#"{"changelog": null}"#)));
    assert_eq!(response, empty(200));
    assert_eq!(fake.events(), [events::MISSING_CHANGELOG]);
    assert_eq!(fake.writes(), Vec::<&str>::new());
}

#[test]
fn accept_queues_a_verified_delivery_as_received() {
    let mut fake = Fake::default();
    assert_eq!(accept(&mut fake, request(BODY)), Acceptance::Queued(job()));

    let mut fake = Fake::default();
    let queued = accept(&mut fake, anonymous(BODY));
    let expected = Job {
        delivery_id: None,
        ..job()
    };
    assert_eq!(queued, Acceptance::Queued(expected));
}

#[test]
fn accept_claims_nothing_calls_no_jira_and_writes_nothing() {
    let mut fake = Fake::default();
    accept(&mut fake, request(BODY));
    // Only the installation lookup and the clock, for the token.
    assert_eq!(fake.trace, ["installation jira:test", "now"]);
    assert_eq!(fake.writes(), Vec::<&str>::new());
    assert_eq!(fake.calls(&["http"]), Vec::<&str>::new());
    assert_eq!(fake.events(), Vec::<&str>::new());
}

#[test]
fn process_applies_the_job_and_marks_it_handled() {
    let mut fake = Fake::default();
    assert_eq!(process(&mut fake, &job()), JobOutcome::Done);
    assert_eq!(
        fake.applied(),
        [
            "assign jira:test PRJ-7 ada@example.com",
            "resolve jira:test PRJ-7",
            "set-last-applied jira:test PRJ-7 assignee 1700000000000",
            "set-last-applied jira:test PRJ-7 status 1700000000000",
            "mark-handled jira:test delivery-1",
        ]
    );
    assert_eq!(fake.calls(&["claim"]), ["claim jira:test delivery-1"]);
}

#[test]
fn process_does_what_handle_does_after_the_token() {
    // Same work, same calls and events from the installation lookup on, in the same order; handle
    // only adds the token's clock read.
    let mut by_handle = Fake::default();
    handle(&mut by_handle, &request(BODY));
    let mut by_process = Fake::default();
    process(&mut by_process, &job());
    let mut expected = by_handle.trace.clone();
    expected.remove(1);
    assert_eq!(by_process.trace, expected);
}

#[test]
fn process_without_a_delivery_id_claims_and_marks_nothing() {
    let mut fake = Fake::default();
    let job = Job {
        delivery_id: None,
        ..job()
    };
    assert_eq!(process(&mut fake, &job), JobOutcome::Done);
    assert_eq!(fake.calls(&["claim", "mark-handled"]), Vec::<&str>::new());
    assert_eq!(fake.calls(&["assign", "resolve"]).len(), 2);
}

#[test]
fn process_of_a_handled_delivery_is_done_without_effects() {
    let mut fake = Fake {
        claim: Claim::Handled,
        ..Fake::default()
    };
    assert_eq!(process(&mut fake, &job()), JobOutcome::Done);
    assert_eq!(fake.events(), [events::WEBHOOK_DUPLICATE]);
    assert_eq!(fake.writes(), ["claim jira:test delivery-1"]);
    assert_eq!(fake.calls(&["http"]), Vec::<&str>::new());
}

#[test]
fn process_of_a_delivery_in_progress_retries_after_5_seconds() {
    let mut fake = Fake {
        claim: Claim::InProgress,
        ..Fake::default()
    };
    assert_eq!(process(&mut fake, &job()), JobOutcome::RetryAfter(5));
    assert_eq!(fake.events(), [events::WEBHOOK_IN_PROGRESS]);
    assert_eq!(fake.writes(), ["claim jira:test delivery-1"]);
}

#[test]
fn process_retries_a_jira_5xx_after_the_default_wait_applying_nothing() {
    let mut fake = Fake {
        statuses: status(503, b""),
        ..Fake::default()
    };
    assert_eq!(
        process(&mut fake, &job()),
        JobOutcome::RetryAfter(TRANSIENT_RETRY_AFTER_SECONDS)
    );
    assert_eq!(fake.applied(), Vec::<&str>::new());
    assert_eq!(fake.events(), [events::WEBHOOK_JIRA_ERROR]);
}

#[test]
fn process_retries_a_rate_limit_after_jiras_wait_applying_nothing() {
    let mut limited = status(429, b"");
    limited.headers.push(("Retry-After".into(), "30".into()));
    let mut fake = Fake {
        email: limited,
        ..Fake::default()
    };
    assert_eq!(process(&mut fake, &job()), JobOutcome::RetryAfter(30));
    assert_eq!(fake.applied(), Vec::<&str>::new());
}

#[test]
fn process_fails_on_an_unexpected_jira_answer_applying_nothing() {
    let mut fake = Fake {
        email: status(401, b""),
        ..Fake::default()
    };
    assert_eq!(
        process(&mut fake, &job()),
        JobOutcome::Failed("Error getting email from Jira.".into())
    );
    assert_eq!(fake.applied(), Vec::<&str>::new());
    assert_eq!(fake.events(), [events::WEBHOOK_JIRA_ERROR]);
}

#[test]
fn process_is_done_after_a_permanent_failure_and_applies_the_rest() {
    let mut fake = Fake {
        statuses: status(403, b""),
        ..Fake::default()
    };
    assert_eq!(process(&mut fake, &job()), JobOutcome::Done);
    assert!(
        fake.applied()
            .contains(&"assign jira:test PRJ-7 ada@example.com")
    );
    assert!(
        fake.applied()
            .contains(&"mark-handled jira:test delivery-1")
    );
}

#[test]
fn process_fails_a_body_that_no_longer_parses() {
    let mut fake = Fake::default();
    let job = Job {
        body: b"[1]".to_vec(),
        ..job()
    };
    assert_eq!(
        process(&mut fake, &job),
        JobOutcome::Failed("malformed body: body is not a JSON object".into())
    );
    assert_eq!(fake.applied(), Vec::<&str>::new());
    assert_eq!(fake.events(), [events::WEBHOOK_BAD_PAYLOAD]);
}

#[test]
fn process_of_a_body_without_changelog_is_done_and_handled() {
    let mut fake = Fake::default();
    let job = Job {
        body: b"{}".to_vec(),
        ..job()
    };
    assert_eq!(process(&mut fake, &job), JobOutcome::Done);
    assert_eq!(fake.applied(), ["mark-handled jira:test delivery-1"]);
}

#[test]
fn process_fails_for_an_unknown_installation() {
    let mut fake = Fake {
        installation: None,
        ..Fake::default()
    };
    assert_eq!(
        process(&mut fake, &job()),
        JobOutcome::Failed("unknown installation".into())
    );
    assert_eq!(
        fake.trace,
        [
            "installation jira:test",
            "log Warn jira.job.unknown-installation client_key=jira:test delivery=delivery-1",
        ]
    );
}

/// `body` as the job of a verified delivery.
fn job_of(body: &str) -> Job {
    Job {
        body: body.as_bytes().to_vec(),
        ..job()
    }
}

#[test]
fn a_deleted_issue_loses_its_links_and_nothing_else() {
    let body = r#"{"webhookEvent": "jira:issue_deleted", "issue": {"id": "101", "key": "PRJ-7"}}"#;
    let mut fake = Fake::default();
    assert!(matches!(
        accept(&mut fake, request(body)),
        Acceptance::Queued(_)
    ));
    assert_eq!(process(&mut fake, &job_of(body)), JobOutcome::Done);
    assert_eq!(
        fake.applied(),
        [
            "remove-links jira:test PRJ-7",
            "mark-handled jira:test delivery-1"
        ]
    );
    assert_eq!(fake.events(), [events::ISSUE_DELETED]);
    assert_eq!(fake.calls(&["http"]), Vec::<&str>::new());
}

/// BODY, moved from OLD-1 to PRJ-7 by the same change.
const MOVED: &str = r#"{
    "webhookEvent": "jira:issue_updated", "issue_event_type_name": "issue_moved",
    "issue": {"id": "101", "key": "PRJ-7", "fields": {
        "assignee": {"accountId": "acc-1"},
        "updated": "2023-11-14T22:13:20.000+0000"
    }},
    "changelog": {"items": [
        {"field": "Key", "fieldtype": "jira", "fromString": "OLD-1", "toString": "PRJ-7"},
        {"field": "assignee", "to": "acc-1"},
        {"field": "status", "from": "1", "to": "2"}
    ]}
}"#;

#[test]
fn a_moved_issue_takes_its_links_along_before_the_steps_apply() {
    let mut fake = Fake::default();
    assert_eq!(process(&mut fake, &job_of(MOVED)), JobOutcome::Done);
    assert_eq!(
        fake.applied(),
        [
            "rename-links jira:test OLD-1 PRJ-7",
            "assign jira:test PRJ-7 ada@example.com",
            "resolve jira:test PRJ-7",
            "set-last-applied jira:test PRJ-7 assignee 1700000000000",
            "set-last-applied jira:test PRJ-7 status 1700000000000",
            "mark-handled jira:test delivery-1",
        ]
    );
    assert!(
        fake.calls(&["last-applied"])
            .contains(&"last-applied jira:test OLD-1 status"),
        "the old key's watermarks order the event too"
    );
}

#[test]
fn a_stale_move_still_moves_the_links() {
    let mut fake = Fake {
        last_applied: Some(i64::MAX),
        ..Fake::default()
    };
    assert_eq!(process(&mut fake, &job_of(MOVED)), JobOutcome::Done);
    assert_eq!(
        fake.applied(),
        [
            "rename-links jira:test OLD-1 PRJ-7",
            "mark-handled jira:test delivery-1"
        ]
    );
}

#[test]
fn a_move_that_fails_transiently_applies_nothing() {
    let mut fake = Fake {
        statuses: status(503, b""),
        ..Fake::default()
    };
    assert_eq!(
        process(&mut fake, &job_of(MOVED)),
        JobOutcome::RetryAfter(TRANSIENT_RETRY_AFTER_SECONDS)
    );
    assert_eq!(fake.applied(), Vec::<&str>::new());
}

/// An installation whose deliveries come through `credentials`' route.
fn fake_with(credentials: Credentials) -> Fake {
    let mut fake = Fake::default();
    if let Some(installation) = &mut fake.installation {
        installation.credentials = credentials;
    }
    fake
}

/// A POST of BODY to `path` with these headers.
fn post(path: &str, headers: Vec<(String, String)>) -> WebhookRequest {
    WebhookRequest {
        method: "POST".into(),
        path: path.into(),
        query: String::new(),
        headers,
        body: BODY.as_bytes().to_vec(),
    }
}

#[test]
fn an_admin_webhook_is_proved_by_its_hub_signature_only() {
    let secret = "admin-secret";
    let path = "/webhooks/admin/jira%3Atest";
    let signed = |secret: &str| {
        vec![(
            "X-Hub-Signature".to_owned(),
            signature::sign(secret, BODY.as_bytes()),
        )]
    };
    let mut fake = fake_with(Credentials::AdminWebhook(secret.into()));
    assert!(matches!(
        accept(&mut fake, post(path, signed(secret))),
        Acceptance::Queued(Job { ref client_key, .. }) if client_key == CLIENT_KEY
    ));
    for (why, request) in [
        ("another secret", post(path, signed("other"))),
        ("no signature", post(path, Vec::new())),
        (
            "another installation",
            post("/webhooks/admin/jira:other", signed(secret)),
        ),
        ("the Connect route", post(PATH, signed(secret))),
    ] {
        let mut fake = fake_with(Credentials::AdminWebhook(secret.into()));
        let Acceptance::Answered(response) = accept(&mut fake, request) else {
            panic!("{why}: accepted");
        };
        assert_eq!(response.status, 409, "{why}");
    }
    let mut body_changed = post(path, signed(secret));
    body_changed.body.push(b' ');
    let mut fake = fake_with(Credentials::AdminWebhook(secret.into()));
    assert!(matches!(
        accept(&mut fake, body_changed),
        Acceptance::Answered(WebhookResponse { status: 409, .. })
    ));
}

#[test]
fn a_connect_token_does_not_verify_for_an_installation_of_another_kind() {
    // The admin webhook's secret is the same string as the Connect secret the token was signed
    // with: the kind still refuses it.
    let mut fake = fake_with(Credentials::AdminWebhook(SECRET.into()));
    let Acceptance::Answered(response) = accept(&mut fake, request(BODY)) else {
        panic!("accepted");
    };
    assert_eq!(response.status, 409);
    assert!(fake.events().contains(&events::WEBHOOK_AUTH_FAILED));
    assert!(
        fake.trace.iter().any(|t| t.contains("reason=wrong-kind")),
        "{:?}",
        fake.trace
    );
}

#[test]
fn an_oauth_webhook_is_proved_by_a_client_secret_token_without_qsh() {
    let app = OauthApp {
        client_id: "client-id".into(),
        client_secret: "client-secret".into(),
    };
    let token = |iss: &str, secret: &str, exp: u64| {
        use base64::Engine as _;
        use hmac::Mac as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
        let claims =
            b64.encode(serde_json::json!({"iss": iss, "iat": NOW - 10, "exp": exp}).to_string());
        let input = format!("{header}.{claims}");
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        let signature = b64.encode(mac.finalize().into_bytes());
        vec![(
            "Authorization".to_owned(),
            format!("Bearer {input}.{signature}"),
        )]
    };
    let path = "/webhooks/oauth/jira:test/";
    let mut fake = fake_with(Credentials::Oauth(app.clone()));
    assert!(matches!(
        accept(
            &mut fake,
            post(path, token("client-id", "client-secret", NOW + 60))
        ),
        Acceptance::Queued(_)
    ));
    for (why, headers, code) in [
        (
            "wrong secret",
            token("client-id", "other", NOW + 60),
            "bad-signature",
        ),
        (
            "wrong issuer",
            token("other-app", "client-secret", NOW + 60),
            "wrong-issuer",
        ),
        (
            "expired",
            token("client-id", "client-secret", NOW),
            "expired",
        ),
        ("no token", Vec::new(), "no-header"),
    ] {
        let mut fake = fake_with(Credentials::Oauth(app.clone()));
        assert!(
            matches!(
                accept(&mut fake, post(path, headers)),
                Acceptance::Answered(WebhookResponse { status: 409, .. })
            ),
            "{why}"
        );
        assert!(
            fake.trace
                .iter()
                .any(|t| t.contains(&format!("reason={code}"))),
            "{why}: {:?}",
            fake.trace
        );
    }
}

#[test]
fn webhook_routes_name_their_installation_in_the_path() {
    assert_eq!(
        Route::of("/extensions/jira/issue-updated/"),
        Some(Route::Connect)
    );
    assert_eq!(
        Route::of("/webhooks/admin/jira%3A1c4"),
        Some(Route::Admin("jira:1c4".into()))
    );
    assert_eq!(
        Route::of("/webhooks/oauth/cloud-1/"),
        Some(Route::Oauth("cloud-1".into()))
    );
    for path in [
        "/webhooks/admin/",
        "/webhooks/admin/a/b",
        "/webhooks/admin/%2F",
        "/webhooks/x/a",
        "/",
    ] {
        assert_eq!(Route::of(path), None, "{path}");
    }
}
