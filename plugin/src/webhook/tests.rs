//! The webhook exports driven natively through an in-memory host that records every import call
//! in order, so that tests can compare traces as the host's replays do.

use super::*;
use crate::env::{Cache, Clock, Deliveries, Groups, Http, Installations, Log};
use crate::model::{
    DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_EXACT_STATUS_MAPPING, DEFAULT_MAX_EMAIL_LOOKUPS,
    DEFAULT_MAX_TOKEN_LIFETIME_SECONDS, DEFAULT_MAX_TRANSITION_HOPS,
    DEFAULT_WEBHOOK_MAX_WAIT_SECONDS, HttpRequest, HttpResponse, ResolutionStrategy, RetryPolicy,
    SyncConfig,
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

fn installation() -> Installation {
    Installation {
        client_key: CLIENT_KEY.into(),
        shared_secret: SECRET.into(),
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
