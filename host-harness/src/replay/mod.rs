//! Replay: plays a scenario file ([`scenario`]) against the component in an in-memory
//! [`World`] and returns its JSON trace (`trace.rs`). Used by the CLI's `replay`, the test
//! suites and the interop runs, which compare traces across runtimes.

pub mod scenario;
pub mod trace;

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::backends::{
    Backends, Clock as _, Effect, Group, GroupStatus, HttpBackend, ManualClock, MemoryCache,
    MemoryPlatform, ScriptedHttp,
};
use crate::runtime::Runtime;
use crate::signing::{self, SignOverrides};
use crate::wit::exports::jira_sync::plugin::{outbound, webhook};
use crate::wit::jira_sync::plugin::types::Installation;
use scenario::{GroupStatusSpec, Scenario, Sign, Step, WebhookStep, body_bytes};

/// Whose claim holds a scenario's `deliveries_in_progress`: no call of the replay.
const ANOTHER_CALL: u64 = u64::MAX;
/// How long the scenario's cache entries live: past any replay (they were live when recorded).
const CACHE_TTL_SECONDS: u32 = u32::MAX;

/// The in-memory world a scenario runs in; kept so that tests can look inside after a replay.
pub struct World {
    /// Installations, groups, links, users, deliveries.
    pub platform: Arc<MemoryPlatform>,
    /// The guest's cache.
    pub cache: Arc<MemoryCache>,
    /// The scenario's clock, moved by `advance_clock` steps and the guest's sleeps.
    pub clock: Arc<ManualClock>,
    /// Jira's scripted answers, and what nothing answered.
    pub http: Arc<ScriptedHttp>,
    /// All of the above, as the runtime takes them.
    pub backends: Backends,
}

impl World {
    /// The scenario's world, with Jira answering from its `http` script.
    pub fn new(scenario: &Scenario) -> Self {
        let http = Arc::new(ScriptedHttp::new(scenario.http.clone()));
        Self::with_http(scenario, http.clone(), http)
    }

    /// The scenario's world with another HTTP backend (e.g. real requests to a simulator);
    /// `script` still reports what it was asked and could not answer.
    pub fn with_http(
        scenario: &Scenario,
        backend: Arc<dyn HttpBackend>,
        script: Arc<ScriptedHttp>,
    ) -> Self {
        let platform = Arc::new(MemoryPlatform::default());
        for spec in std::iter::once(&scenario.installation).chain(&scenario.other_installations) {
            // An uninstalled site's calls find no installation, as on the server.
            if spec.uninstalled {
                continue;
            }
            platform.add_installation(Installation::from(spec));
            platform.set_limits(&spec.client_key, spec.limits);
        }
        let client_key = &scenario.installation.client_key;
        for (issue_key, groups) in &scenario.links {
            platform.link(client_key, issue_key, groups);
        }
        for (email, id) in &scenario.users {
            platform.add_user(email, *id);
        }
        for (id, spec) in &scenario.groups {
            if let Ok(id) = id.parse() {
                platform.put_group(
                    id,
                    Group {
                        status: match spec.status {
                            GroupStatusSpec::Unresolved => GroupStatus::Unresolved,
                            GroupStatusSpec::Resolved => GroupStatus::Resolved,
                        },
                        assignee: spec.assignee,
                    },
                );
            }
        }
        let mut effects: Vec<Effect> = scenario
            .handled_deliveries
            .iter()
            .map(|id| Effect::Handled(client_key.clone(), id.clone()))
            .collect();
        for (issue_key, fields) in &scenario.watermarks {
            for (field, updated_ms) in fields {
                effects.push(Effect::Watermark {
                    issue: (client_key.clone(), issue_key.clone()),
                    fields: vec![*field],
                    updated_ms: *updated_ms,
                });
            }
        }
        // Handled deliveries and watermarks, set as a commit sets them (memory never fails).
        let _ = platform.commit_now(&effects);
        for id in &scenario.deliveries_in_progress {
            // A delivery also listed as handled stays handled.
            platform.claim(client_key, id, ANOTHER_CALL, scenario.now, u64::MAX);
        }
        let cache = Arc::new(MemoryCache::default());
        for (key, value) in &scenario.cache {
            cache.set(key, value, CACHE_TTL_SECONDS, scenario.now);
        }
        let clock = Arc::new(ManualClock::new(scenario.now));
        let backends = Backends {
            http: backend,
            cache: cache.clone(),
            platform: platform.clone(),
            clock: clock.clone(),
        };
        World {
            platform,
            cache,
            clock,
            http: script,
            backends,
        }
    }
}

/// Runs every step and returns the trace (see README for its shape).
pub fn replay(runtime: &Runtime, scenario: &Scenario) -> Value {
    let world = World::new(scenario);
    replay_in(runtime, scenario, &world)
}

/// Runs every step in `world` (e.g. one whose HTTP goes to a real site) and returns the trace.
pub fn replay_in(runtime: &Runtime, scenario: &Scenario, world: &World) -> Value {
    let steps: Vec<Value> = scenario
        .steps
        .iter()
        .map(|step| run_step(runtime, scenario, world, step))
        .collect();
    let groups: Map<String, Value> = world
        .platform
        .groups()
        .into_iter()
        .map(|(id, group)| (id.to_string(), json!(group)))
        .collect();
    json!({
        "steps": steps,
        "groups": groups,
        "unmatched_http": world.http.unmatched(),
    })
}

/// What a replayed scenario's trace does not reproduce of its recording, if anything: one line
/// per differing step, naming the first key that differs.
pub fn recording_mismatch(scenario: &Scenario, trace: &Value) -> Option<String> {
    let recorded = scenario.recorded.as_ref()?;
    let replayed: Vec<Value> = trace["steps"]
        .as_array()
        .map(|steps| steps.iter().map(trace::comparable).collect())
        .unwrap_or_default();
    if replayed.len() != recorded.steps.len() {
        return Some(format!(
            "{} steps replayed, {} recorded",
            replayed.len(),
            recorded.steps.len()
        ));
    }
    let differences: Vec<String> = recorded
        .steps
        .iter()
        .zip(&replayed)
        .enumerate()
        .filter(|(_, (recorded, replayed))| recorded != replayed)
        .map(|(i, (recorded, replayed))| {
            let key = recorded
                .as_object()
                .and_then(|fields| {
                    fields
                        .iter()
                        .find(|(k, v)| replayed.get(k.as_str()) != Some(v))
                        .map(|(k, _)| k.clone())
                })
                .unwrap_or_else(|| "the step".to_owned());
            format!(
                "step {i}: `{key}` was {} when recorded, {} replayed",
                recorded.get(&key).unwrap_or(recorded),
                replayed.get(&key).unwrap_or(replayed)
            )
        })
        .collect();
    (!differences.is_empty()).then(|| differences.join("\n"))
}

fn run_step(runtime: &Runtime, scenario: &Scenario, world: &World, step: &Step) -> Value {
    let default_key = &scenario.installation.client_key;
    let blocking = runtime.blocking();
    match step {
        Step::Webhook(hook) => {
            let request = webhook_request(scenario, world, hook);
            trace::webhook(&blocking.webhook(&world.backends, &request))
        }
        Step::Accept(hook) => {
            let request = webhook_request(scenario, world, hook);
            trace::accept(&blocking.accept(&world.backends, &request))
        }
        Step::Process(job) => {
            let job = webhook::Job {
                client_key: job
                    .client_key
                    .clone()
                    .unwrap_or_else(|| default_key.clone()),
                delivery_id: job.delivery_id.clone(),
                body: body_bytes(&job.body),
            };
            trace::process(&blocking.process(&world.backends, &job))
        }
        Step::SyncStatusOutbound(s) => {
            let request = outbound::StatusRequest {
                client_key: s.client_key.clone().unwrap_or_else(|| default_key.clone()),
                issue_key: s.issue_key.clone(),
                resolved: s.resolved,
                dry_run: s.dry_run,
                source: s.source.into(),
            };
            trace::sync_status(&blocking.sync_status(&world.backends, &request))
        }
        Step::SyncAssigneeOutbound(s) => {
            let request = outbound::AssigneeRequest {
                client_key: s.client_key.clone().unwrap_or_else(|| default_key.clone()),
                issue_key: s.issue_key.clone(),
                target: if s.unassign {
                    outbound::AssigneeTarget::Unassign
                } else {
                    outbound::AssigneeTarget::Emails(s.emails.clone())
                },
                source: s.source.into(),
            };
            trace::sync_assignee(&blocking.sync_assignee(&world.backends, &request))
        }
        Step::CheckMappings(check) => {
            let client_key = check.client_key.as_ref().unwrap_or(default_key);
            trace::check_mappings(&blocking.check_mappings(&world.backends, client_key))
        }
        Step::AdvanceClock(seconds) => {
            world.clock.advance(*seconds);
            json!({"kind": "advance_clock", "seconds": seconds})
        }
    }
}

fn webhook_request(scenario: &Scenario, world: &World, hook: &WebhookStep) -> webhook::Request {
    let mut headers: Vec<(String, String)> = hook
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let has_authorization = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
    let overrides = match &hook.sign {
        Sign::No | Sign::Jira(false) => None,
        Sign::Jira(true) => Some(SignOverrides::default()),
        Sign::With(overrides) => Some((**overrides).clone()),
    };
    if let (Some(overrides), false) = (overrides, has_authorization) {
        let installation = &scenario.installation;
        headers.push((
            "Authorization".to_owned(),
            signing::authorization(
                &installation.client_key,
                &installation.shared_secret,
                world.clock.now(),
                (&hook.method, &hook.path, &hook.query),
                &overrides,
            ),
        ));
    }
    webhook::Request {
        method: hook.method.clone(),
        path: hook.path.clone(),
        query: hook.query.clone(),
        headers,
        body: body_bytes(&hook.body),
    }
}
