//! The simulated Jira site's data: statuses, workflows, issues, users, and its installation.

use serde::{Deserialize, Serialize};

/// A Jira status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimStatus {
    /// Status id, e.g. "10101".
    pub id: String,
    /// Display name, e.g. "Done".
    pub name: String,
    /// `new`, `indeterminate` or `done`.
    pub category: String,
}

/// A workflow transition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimTransition {
    /// Transition id, e.g. "31".
    pub id: String,
    /// Display name.
    pub name: String,
    /// Statuses it is open from; empty means from every status (a global transition).
    #[serde(default)]
    pub from: Vec<String>,
    /// The status it leads to.
    pub to: String,
}

/// An issue type of a project.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimIssueType {
    /// Issue type id, e.g. "10001".
    pub id: String,
    /// Its name, e.g. "Task".
    pub name: String,
}

/// A Jira project and its workflow, which all its issue types share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimProject {
    /// Project id, e.g. "10000".
    pub id: String,
    /// Project key, e.g. "APP".
    pub key: String,
    /// Its transitions.
    pub workflow: Vec<SimTransition>,
    /// Its issue types (default: one, Task).
    #[serde(default = "SimProject::default_issue_types")]
    pub issue_types: Vec<SimIssueType>,
}

impl SimProject {
    fn default_issue_types() -> Vec<SimIssueType> {
        vec![SimIssueType {
            id: "10001".into(),
            name: "Task".into(),
        }]
    }

    /// The name of its workflow, as the workflow scheme and the workflow search give it.
    pub fn workflow_name(&self) -> String {
        format!("{} workflow", self.key)
    }

    /// Whether `status` is one of its workflow's: a transition leads to or from it.
    pub fn has_status(&self, status: &str) -> bool {
        self.workflow
            .iter()
            .any(|t| t.to == status || t.from.iter().any(|f| f == status))
    }
}

/// A Jira issue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimIssue {
    /// Issue id.
    pub id: String,
    /// Issue key, e.g. "APP-123".
    pub key: String,
    /// The keys it had before it was moved: Jira still answers them (a redirect).
    #[serde(default)]
    pub former_keys: Vec<String>,
    /// Its project's id.
    pub project_id: String,
    /// Its status id.
    pub status: String,
    /// The assignee's account id.
    #[serde(default)]
    pub assignee: Option<String>,
    /// `issue.fields.updated`, Unix milliseconds; set by the simulator on every change.
    #[serde(default)]
    pub updated_ms: i64,
}

impl SimIssue {
    /// Whether Jira answers `key` with this issue: its key, or one it had before a move.
    pub fn answers_to(&self, key: &str) -> bool {
        self.key == key || self.former_keys.iter().any(|k| k == key)
    }
}

/// A Jira user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimUser {
    /// Atlassian account id.
    pub account_id: String,
    /// Display name.
    pub display_name: String,
    /// Email address.
    pub email: String,
    /// The user hides their email: only the email API reveals it.
    #[serde(default)]
    pub hide_email: bool,
}

/// The Connect installation as the Jira side knows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimInstallation {
    /// The site's `clientKey`.
    pub client_key: String,
    /// The shared secret both sides sign with.
    pub shared_secret: String,
    /// The app key: the `iss` the simulator expects on the app's requests.
    pub app_key: String,
}

/// Everything the simulated site holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimWorld {
    /// The app's installation on this site.
    pub installation: SimInstallation,
    /// Every status.
    pub statuses: Vec<SimStatus>,
    /// Every project.
    pub projects: Vec<SimProject>,
    /// Every issue.
    pub issues: Vec<SimIssue>,
    /// Every user.
    pub users: Vec<SimUser>,
}

impl SimWorld {
    /// One project whose workflow needs two hops from Open to Done, one issue, and a user who
    /// hides their email: the seed's round trip. A second project, OPS, whose Done is a dead end
    /// and which has no Won't Do, is there for the mapping check: the demo maps it so that the
    /// check finds both problems.
    pub fn demo() -> Self {
        let status = |id: &str, name: &str, category: &str| SimStatus {
            id: id.into(),
            name: name.into(),
            category: category.into(),
        };
        let transition = |id: &str, name: &str, from: &[&str], to: &str| SimTransition {
            id: id.into(),
            name: name.into(),
            from: from.iter().map(|s| (*s).to_owned()).collect(),
            to: to.into(),
        };
        SimWorld {
            installation: SimInstallation {
                client_key: "jira:demo-site".into(),
                shared_secret: "demo-shared-secret".into(),
                app_key: "acme-platform.jira".into(),
            },
            statuses: vec![
                status("1", "Open", "new"),
                status("3", "In Progress", "indeterminate"),
                status("10101", "Done", "done"),
                status("10102", "Won't Do", "done"),
            ],
            projects: vec![
                SimProject {
                    id: "10000".into(),
                    key: "APP".into(),
                    workflow: vec![
                        transition("11", "Start progress", &["1"], "3"),
                        transition("21", "Done", &["3"], "10101"),
                        transition("22", "Stop progress", &["3"], "1"),
                        transition("31", "Reopen", &["10101", "10102"], "3"),
                        transition("41", "Won't do", &["1", "3"], "10102"),
                    ],
                    issue_types: vec![
                        SimIssueType {
                            id: "10001".into(),
                            name: "Task".into(),
                        },
                        SimIssueType {
                            id: "10004".into(),
                            name: "Bug".into(),
                        },
                    ],
                },
                SimProject {
                    id: "10010".into(),
                    key: "OPS".into(),
                    workflow: vec![
                        transition("11", "Start progress", &["1"], "3"),
                        transition("21", "Done", &["3"], "10101"),
                    ],
                    issue_types: SimProject::default_issue_types(),
                },
            ],
            issues: vec![SimIssue {
                id: "10001".into(),
                key: "APP-123".into(),
                former_keys: Vec::new(),
                project_id: "10000".into(),
                status: "1".into(),
                assignee: None,
                updated_ms: 0,
            }],
            users: vec![
                SimUser {
                    account_id: "5f1a".into(),
                    display_name: "Ada Byron".into(),
                    email: "ada@example.com".into(),
                    hide_email: true,
                },
                SimUser {
                    account_id: "deadbeef123".into(),
                    display_name: "Bob".into(),
                    email: "Bob@example.com".into(),
                    hide_email: false,
                },
            ],
        }
    }
}
