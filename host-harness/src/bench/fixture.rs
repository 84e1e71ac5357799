//! The benchmark's fixture: one platform, Jira's answers, and the webhooks measured.

use std::sync::Arc;

use serde_json::json;

use super::native::NativeEnv;
use crate::backends::{Backends, HttpStub, ManualClock, MemoryCache, MemoryPlatform, ScriptedHttp};
use crate::installation::InstallationSpec;
use crate::runtime::Runtime;
use crate::signing::{self, SignOverrides};
use crate::wit::exports::jira_sync::plugin::webhook;
use crate::wit::jira_sync::plugin::types::Installation;

const NOW: u64 = 1_700_000_000;
const PATH: &str = "/extensions/jira/issue-updated/";

/// A platform (installation `jira:1c4`, APP-123 linked to groups 1 and 2, user 7
/// `ada@example.com`), Jira's status list and email API, and three signed webhooks.
pub struct Fixture {
    /// The platform's records, to look at after a run.
    pub platform: Arc<MemoryPlatform>,
    /// The backends every run uses.
    pub backends: Backends,
    /// The measured webhooks, by name.
    pub webhooks: Vec<(&'static str, webhook::Request)>,
}

impl Fixture {
    /// The fixture, ready to run.
    pub fn new() -> Self {
        let platform = Arc::new(MemoryPlatform::default());
        let spec: InstallationSpec = serde_json::from_value(json!({
            "client_key": "jira:1c4", "shared_secret": "s3cret", "use_email_scope": true,
            "base_url": "https://acme.atlassian.net", "app_key": "acme-platform.jira"
        }))
        .expect("a valid installation");
        platform.add_installation(Installation::from(&spec));
        platform.link("jira:1c4", "APP-123", &[1, 2]);
        platform.add_user("ada@example.com", 7);
        let stubs: Vec<HttpStub> = serde_json::from_value(json!([
            {"method": "GET", "path": "/rest/api/2/status", "repeat": true,
             "body": [{"id": "3", "statusCategory": {"key": "indeterminate"}},
                      {"id": "10101", "statusCategory": {"key": "done"}}]},
            {"method": "GET", "path": "/rest/api/3/user/email", "query": {"accountId": "5f1a"},
             "repeat": true, "body": {"accountId": "5f1a", "email": "ada@example.com"}}
        ]))
        .expect("valid stubs");
        let backends = Backends {
            http: Arc::new(ScriptedHttp::new(stubs)),
            cache: Arc::new(MemoryCache::default()),
            platform: platform.clone(),
            clock: Arc::new(ManualClock::new(NOW)),
        };
        let hook = |body: serde_json::Value| webhook::Request {
            method: "POST".into(),
            path: PATH.into(),
            query: String::new(),
            headers: vec![(
                "Authorization".into(),
                signing::authorization(
                    "jira:1c4",
                    "s3cret",
                    NOW,
                    ("POST", PATH, ""),
                    &SignOverrides::default(),
                ),
            )],
            body: body.to_string().into_bytes(),
        };
        let assignee = |assignee: serde_json::Value| {
            hook(json!({"changelog": {"items": [{"field": "assignee"}]},
                        "issue": {"key": "APP-123", "fields": {"assignee": assignee}}}))
        };
        let webhooks = vec![
            (
                "assignee, visible email",
                assignee(json!({"accountId": "5f1a", "emailAddress": "ada@example.com"})),
            ),
            (
                "assignee, hidden email, warm cache",
                assignee(json!({"accountId": "5f1a"})),
            ),
            (
                "status change",
                hook(
                    json!({"changelog": {"items": [{"field": "status", "from": "3", "to": "10101"}]},
                            "issue": {"key": "APP-123", "fields": {}}}),
                ),
            ),
        ];
        Fixture {
            platform,
            backends,
            webhooks,
        }
    }

    /// The webhook through the native core.
    pub fn native(&self, request: &webhook::Request) -> u16 {
        let request = jira_sync_plugin::model::WebhookRequest::from(request);
        let mut env = NativeEnv::new(&self.backends);
        let status = jira_sync_plugin::webhook::handle(&mut env, &request).status;
        env.commit();
        status
    }

    /// The webhook through a fresh instance of the component.
    pub fn wasm(&self, runtime: &Runtime, request: &webhook::Request) -> u16 {
        runtime
            .blocking()
            .webhook(&self.backends, request)
            .result
            .map_or(0, |r| r.status)
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}
