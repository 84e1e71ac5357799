//! The scenario file: the platform's state, Jira's scripted answers, and the steps to play.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::backends::HttpStub;
use crate::installation::InstallationSpec;
use crate::signing::SignOverrides;
use crate::wit::exports::jira_sync::plugin::outbound;

/// A scenario file (README.md, "Scenarios and traces").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The host clock at the start, in Unix seconds.
    pub now: u64,
    /// The installation the steps run for.
    pub installation: InstallationSpec,
    /// More installations, e.g. to show that cache entries never cross installations.
    #[serde(default)]
    pub other_installations: Vec<InstallationSpec>,
    /// Jira issue key -> linked group ids (of `installation`).
    #[serde(default)]
    pub links: BTreeMap<String, Vec<u64>>,
    /// Verified email -> platform user id.
    #[serde(default)]
    pub users: BTreeMap<String, u64>,
    /// Group id -> its state at the start.
    #[serde(default)]
    pub groups: BTreeMap<String, GroupSpec>,
    /// Jira's scripted answers.
    #[serde(default)]
    pub http: Vec<HttpStub>,
    /// What happens, in order.
    pub steps: Vec<Step>,
}

/// A group's state at the start of a scenario.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Unresolved unless given.
    #[serde(default)]
    pub status: GroupStatusSpec,
    /// Unassigned unless given.
    #[serde(default)]
    pub assignee: Option<u64>,
}

/// A group's status in a scenario file.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatusSpec {
    /// Open.
    #[default]
    Unresolved,
    /// Done.
    Resolved,
}

/// One step of a scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Jira sends a webhook.
    Webhook(Box<WebhookStep>),
    /// The platform pushes a group's status to Jira.
    SyncStatusOutbound(StatusStep),
    /// The platform pushes a group's assignee to Jira.
    SyncAssigneeOutbound(AssigneeStep),
    /// Moves the host clock forward by this many seconds.
    AdvanceClock(u64),
}

/// A webhook Jira sends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookStep {
    /// Default `POST`.
    #[serde(default = "post")]
    pub method: String,
    /// Default: Jira's issue-updated endpoint.
    #[serde(default = "webhook_path")]
    pub path: String,
    /// Raw query string, without the `?`.
    #[serde(default)]
    pub query: String,
    /// Headers; an `Authorization` here is sent as given.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON, or a string sent as it is (e.g. a malformed body).
    #[serde(default)]
    pub body: Value,
    /// How to sign it.
    #[serde(default)]
    pub sign: Sign,
}

fn post() -> String {
    "POST".to_owned()
}

fn webhook_path() -> String {
    "/extensions/jira/issue-updated/".to_owned()
}

/// `true` signs like Jira; an object signs with overrides, to forge the tokens tests need.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub enum Sign {
    /// Unsigned.
    #[default]
    No,
    /// `true`: signed like Jira; `false`: unsigned.
    Jira(bool),
    /// Signed with these forgeries.
    With(Box<SignOverrides>),
}

/// A status push to Jira.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusStep {
    /// The Jira issue to move.
    pub issue_key: String,
    /// The group's new state.
    pub resolved: bool,
    /// Plan only; POST nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Where the group's new status came from.
    #[serde(default)]
    pub source: Source,
    /// Another installation's client key (default: the scenario's).
    #[serde(default)]
    pub client_key: Option<String>,
}

/// An assignee push to Jira.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssigneeStep {
    /// The Jira issue to assign.
    pub issue_key: String,
    /// The assignee's verified emails, in order of preference.
    #[serde(default)]
    pub emails: Vec<String>,
    /// Unassign instead.
    #[serde(default)]
    pub unassign: bool,
    /// Where the assignment came from.
    #[serde(default)]
    pub source: Source,
    /// Another installation's client key (default: the scenario's).
    #[serde(default)]
    pub client_key: Option<String>,
}

/// Where an assignment or a group's new status came from.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Someone on the platform.
    #[default]
    Platform,
    /// This installation's own webhook (the echo, which is skipped).
    ThisInstallation,
}

impl From<Source> for outbound::AssignmentSource {
    fn from(source: Source) -> Self {
        match source {
            Source::Platform => outbound::AssignmentSource::Platform,
            Source::ThisInstallation => outbound::AssignmentSource::ThisInstallation,
        }
    }
}

impl Scenario {
    /// Parses a scenario file.
    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        Ok(serde_json::from_str(text)?)
    }
}
