//! The webhook path of the native core (token + body) under libFuzzer. Whatever the input: no
//! panic, only 2xx/4xx answers, and a request whose token is not valid has no effect.
#![no_main]

use jira_sync_plugin::env::{Cache, Clock, Deliveries, Groups, Http, Installations, Log};
use jira_sync_plugin::model::{
    AssignOutcome, Claim, Field, HttpError, HttpRequest, HttpResponse, Installation, Level,
    ResolutionStrategy, RetryPolicy, StatusChange, SyncConfig, UnassignOutcome, WebhookRequest,
};
use jira_sync_plugin::{jwt, model, qsh, webhook};
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_700_000_000;
const PATH: &str = "/extensions/jira/issue-updated/";

/// Answers like a healthy Jira and counts everything that would change the platform.
#[derive(Default)]
struct Fake {
    effects: u32,
    requests: u32,
}

impl Http for Fake {
    fn send(&mut self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.requests += 1;
        let body = if request.url.contains("/rest/api/2/status") {
            br#"[{"id":"1","statusCategory":{"key":"new"}},{"id":"2","statusCategory":{"key":"done"}}]"#.to_vec()
        } else {
            br#"{"accountId":"a","email":"ada@example.com"}"#.to_vec()
        };
        Ok(HttpResponse { status: 200, headers: Vec::new(), body })
    }
}

impl Cache for Fake {
    fn get(&mut self, _: &str) -> Option<String> {
        None
    }
    fn set(&mut self, _: &str, _: &str, _: u32) {}
    fn delete(&mut self, _: &str) {}
}

impl Installations for Fake {
    fn by_client_key(&mut self, client_key: &str) -> Option<Installation> {
        (client_key == "jira:fuzz").then(|| Installation {
            client_key: "jira:fuzz".into(),
            shared_secret: "fuzz-secret".into(),
            base_url: "https://fuzz.atlassian.net".into(),
            app_key: "fuzz.app".into(),
            config: SyncConfig {
                use_email_scope: true,
                sync_status_forward: Vec::new(),
                sync_status_reverse: true,
                sync_forward_assignment: true,
                sync_reverse_assignment: true,
                resolution_strategy: ResolutionStrategy::Resolve,
                max_transition_hops: model::DEFAULT_MAX_TRANSITION_HOPS,
                retry: RetryPolicy::default(),
                clock_skew_seconds: model::DEFAULT_CLOCK_SKEW_SECONDS,
                max_token_lifetime_seconds: model::DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
                webhook_max_wait_seconds: model::DEFAULT_WEBHOOK_MAX_WAIT_SECONDS,
                exact_status_mapping: model::DEFAULT_EXACT_STATUS_MAPPING,
                max_email_lookups: model::DEFAULT_MAX_EMAIL_LOOKUPS,
            },
        })
    }
}

impl Groups for Fake {
    fn assign(&mut self, _: &str, _: &str, _: &str) -> AssignOutcome {
        self.effects += 1;
        AssignOutcome::Assigned(1)
    }
    fn unassign(&mut self, _: &str, _: &str) -> UnassignOutcome {
        self.effects += 1;
        UnassignOutcome::Unassigned(1)
    }
    fn resolve(&mut self, _: &str, _: &str, _: ResolutionStrategy) -> StatusChange {
        self.effects += 1;
        StatusChange::Changed(1)
    }
    fn unresolve(&mut self, _: &str, _: &str) -> StatusChange {
        self.effects += 1;
        StatusChange::Changed(1)
    }
}

impl Deliveries for Fake {
    fn claim(&mut self, _: &str, _: &str) -> Claim {
        Claim::Claimed
    }
    fn mark_handled(&mut self, _: &str, _: &str) {
        self.effects += 1;
    }
    fn last_applied(&mut self, _: &str, _: &str, _: Field) -> Option<i64> {
        None
    }
    fn set_last_applied(&mut self, _: &str, _: &str, _: Field, _: i64) {
        self.effects += 1;
    }
}

impl Clock for Fake {
    fn now(&mut self) -> u64 {
        NOW
    }
    fn sleep(&mut self, _: u32) {}
}

impl Log for Fake {
    fn log(&mut self, _: Level, _: &str, _: &[(&str, &str)]) {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let valid_token = mode & 1 == 1;
    let (token, body) = if valid_token {
        let hash = qsh::qsh("POST", PATH, "");
        let claims = jwt::Claims { iss: "jira:fuzz", iat: NOW, exp: NOW + 180, qsh: &hash };
        (jwt::sign(&claims, "fuzz-secret"), rest)
    } else {
        let cut = usize::from(mode >> 1).min(rest.len());
        (String::from_utf8_lossy(&rest[..cut]).into_owned(), &rest[cut..])
    };
    let request = WebhookRequest {
        method: "POST".into(),
        path: PATH.into(),
        query: String::new(),
        headers: vec![("Authorization".into(), format!("JWT {token}"))],
        body: body.to_vec(),
    };
    let mut fake = Fake::default();
    let response = webhook::handle(&mut fake, &request);
    assert!(
        matches!(response.status, 200..=299 | 400..=499),
        "answered {}",
        response.status
    );
    if !valid_token {
        assert_eq!(response.status, 409, "a forged token got through");
        assert_eq!((fake.effects, fake.requests), (0, 0));
    }
});
