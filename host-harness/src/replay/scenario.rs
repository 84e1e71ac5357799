//! The scenario file: the platform's state, Jira's scripted answers, and the steps to play.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backends::{Field, HttpStub};
use crate::installation::InstallationSpec;
use crate::signing::SignOverrides;
use crate::wit::exports::jira_sync::plugin::outbound;

/// A scenario file (README.md, "Scenarios and traces").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The host clock at the start, in Unix seconds.
    pub now: u64,
    /// The installation the steps run for.
    pub installation: InstallationSpec,
    /// More installations, e.g. to show that cache entries never cross installations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_installations: Vec<InstallationSpec>,
    /// Jira issue key -> linked group ids (of `installation`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub links: BTreeMap<String, Vec<u64>>,
    /// Verified email -> platform user id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, u64>,
    /// Group id -> its state at the start.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, GroupSpec>,
    /// Cache entries of the installation at the start, by the key the host stores them under.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cache: BTreeMap<String, String>,
    /// Deliveries (ids) of `installation` handled before the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handled_deliveries: Vec<String>,
    /// Deliveries (ids) of `installation` another call holds at the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries_in_progress: Vec<String>,
    /// Issue key -> field -> the `updated` (ms) of the newest event applied to it before the
    /// start (docs/behaviour.md#7).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub watermarks: BTreeMap<String, BTreeMap<Field, i64>>,
    /// Jira's scripted answers.
    #[serde(default)]
    pub http: Vec<HttpStub>,
    /// What happens, in order.
    pub steps: Vec<Step>,
    /// For a scenario a server recorded: what the recorded calls did, which replay must
    /// reproduce (docs/behaviour.md#12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<Recorded>,
}

/// What a recorded scenario's calls did on the server that recorded them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    /// When the call ran, in Unix seconds (the scenario's `now`).
    pub at: u64,
    /// The server's version.
    pub by: String,
    /// Emails, account ids and display names were replaced by pseudonyms.
    #[serde(default)]
    pub pseudonymised: bool,
    /// Each step's trace as recorded, without the requests' headers (they carry the tokens the
    /// guest signed with the real secret); replay compares its own trace with these.
    pub steps: Vec<Value>,
}

/// A group's state at the start of a scenario.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatusSpec {
    /// Open.
    #[default]
    Unresolved,
    /// Done.
    Resolved,
}

/// One step of a scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Jira sends a webhook, handled in one call (`webhook.handle`).
    Webhook(Box<WebhookStep>),
    /// Jira sends a webhook, verified and queued or answered (`webhook.accept`).
    Accept(Box<WebhookStep>),
    /// The host runs a queued job (`webhook.process`).
    Process(JobStep),
    /// The platform pushes a group's status to Jira.
    SyncStatusOutbound(StatusStep),
    /// The platform pushes a group's assignee to Jira.
    SyncAssigneeOutbound(AssigneeStep),
    /// The platform checks the installation's status mappings (`mapping-check.check`).
    CheckMappings(CheckStep),
    /// Moves the host clock forward by this many seconds.
    AdvanceClock(u64),
}

/// A job `accept` queued, as the host hands it to `process`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobStep {
    /// The installation whose token verified the delivery (default: the scenario's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// Jira's delivery identifier, if the delivery had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// The webhook body: JSON, or a string sent as it is.
    pub body: Value,
}

/// A mapping check.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckStep {
    /// The installation to check (default: the scenario's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
}

/// A webhook Jira sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Sign::is_unsigned")]
    pub sign: Sign,
}

fn post() -> String {
    "POST".to_owned()
}

fn webhook_path() -> String {
    "/extensions/jira/issue-updated/".to_owned()
}

/// `true` signs like Jira; an object signs with overrides, to forge the tokens tests need.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
}

/// An assignee push to Jira.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
}

/// Where an assignment or a group's new status came from.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Someone on the platform.
    #[default]
    Platform,
    /// This installation's own webhook (the echo, which is skipped).
    ThisInstallation,
}

impl Sign {
    fn is_unsigned(&self) -> bool {
        matches!(self, Sign::No | Sign::Jira(false))
    }
}

impl From<outbound::AssignmentSource> for Source {
    fn from(source: outbound::AssignmentSource) -> Self {
        match source {
            outbound::AssignmentSource::Platform => Source::Platform,
            outbound::AssignmentSource::ThisInstallation => Source::ThisInstallation,
        }
    }
}

impl From<Source> for outbound::AssignmentSource {
    fn from(source: Source) -> Self {
        match source {
            Source::Platform => outbound::AssignmentSource::Platform,
            Source::ThisInstallation => outbound::AssignmentSource::ThisInstallation,
        }
    }
}

/// A scenario's body as the bytes it stands for: a string is sent as it is, anything else as
/// JSON.
pub fn body_bytes(body: &Value) -> Vec<u8> {
    match body {
        Value::String(raw) => raw.clone().into_bytes(),
        json => json.to_string().into_bytes(),
    }
}

impl Scenario {
    /// Parses a scenario file.
    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        Ok(serde_json::from_str(text)?)
    }
}
