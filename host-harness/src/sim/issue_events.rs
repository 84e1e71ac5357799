//! Issues that go away or change their key (docs/behaviour.md#1.8): someone deletes an issue
//! and Jira sends `jira:issue_deleted`, or moves it (a new key, maybe another project) and Jira
//! sends `jira:issue_updated` as `issue_moved` with a `Key` changelog item.

use std::sync::atomic::AtomicU64;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::jira_api::{self, issue_json, queued};
use super::world::SimProject;
use super::{SimState, Simulator, Webhook};

impl Simulator {
    /// Someone deletes the issue in Jira: it leaves the world and Jira sends
    /// `jira:issue_deleted`.
    pub fn delete_issue(&self, key: &str) -> anyhow::Result<()> {
        let webhook = deleted(&mut self.shared.lock(), key, &self.shared.next_id)?;
        if let Some(webhook) = webhook {
            self.send(webhook);
        }
        Ok(())
    }

    /// Someone moves the issue to `new_key` (to that key's project, created with the issue's
    /// workflow when the world has none): it answers under `new_key` and, as Jira redirects,
    /// under its old keys too; Jira sends `jira:issue_updated` as `issue_moved`.
    pub fn move_issue(&self, key: &str, new_key: &str) -> anyhow::Result<()> {
        let webhook = moved(&mut self.shared.lock(), key, new_key, &self.shared.next_id)?;
        if let Some(webhook) = webhook {
            self.send(webhook);
        }
        Ok(())
    }
}

fn position(state: &SimState, key: &str) -> anyhow::Result<usize> {
    state
        .world
        .issues
        .iter()
        .position(|i| i.answers_to(key))
        .with_context(|| format!("the simulator has no issue {key}"))
}

fn deleted(state: &mut SimState, key: &str, ids: &AtomicU64) -> anyhow::Result<Option<Webhook>> {
    let at = position(state, key)?;
    // The payload shows the issue as it was when it went.
    let body = json!({
        "timestamp": super::now_ms(),
        "webhookEvent": "jira:issue_deleted",
        "user": {"accountId": "557058:jira-user", "displayName": "Someone in Jira"},
        "issue": issue_json(state, &state.world.issues[at]),
    });
    state.world.issues.remove(at);
    Ok(queued(state, body, ids))
}

fn moved(
    state: &mut SimState,
    key: &str,
    new_key: &str,
    ids: &AtomicU64,
) -> anyhow::Result<Option<Webhook>> {
    let at = position(state, key)?;
    if state
        .world
        .issues
        .iter()
        .enumerate()
        .any(|(i, issue)| i != at && issue.answers_to(new_key))
    {
        bail!("another issue answers to {new_key}");
    }
    let Some((project_key, _)) = new_key
        .rsplit_once('-')
        .filter(|(project, n)| !project.is_empty() && n.parse::<u64>().is_ok())
    else {
        bail!("{new_key} is not an issue key");
    };
    let (old_key, from) = {
        let issue = &state.world.issues[at];
        (issue.key.clone(), issue.project_id.clone())
    };
    if old_key == new_key {
        bail!("{key} is {new_key} already");
    }
    let to = project(state, project_key, &from);
    let mut items = vec![json!({"field": "Key", "fieldtype": "jira", "from": null,
                                "fromString": old_key, "to": null, "toString": new_key})];
    if to != from {
        let name = |id: &str| {
            state
                .world
                .projects
                .iter()
                .find(|p| p.id == id)
                .map(|p| p.key.clone())
        };
        items.push(json!({"field": "project", "fieldtype": "jira", "fieldId": "project",
                          "from": from, "fromString": name(&from), "to": to, "toString": name(&to)}));
    }
    let updated = jira_api::touch(state);
    let issue = &mut state.world.issues[at];
    // Moving back to a key it had makes that key its own again.
    issue.former_keys.retain(|k| k != new_key);
    issue.former_keys.push(old_key);
    issue.key = new_key.to_owned();
    issue.project_id = to;
    issue.updated_ms = updated;
    let Some(mut body) = jira_api::issue_updated_body(state, new_key, Value::Array(items)) else {
        return Ok(None);
    };
    body["issue_event_type_name"] = json!("issue_moved");
    Ok(queued(state, body, ids))
}

/// The id of the project keyed `key`. One the world lacks is created with the workflow of
/// project `like`, so the moved issue keeps its transitions.
fn project(state: &mut SimState, key: &str, like: &str) -> String {
    let projects = &mut state.world.projects;
    if let Some(project) = projects.iter().find(|p| p.key == key) {
        return project.id.clone();
    }
    let id = projects
        .iter()
        .filter_map(|p| p.id.parse::<u64>().ok())
        .max()
        .map_or(10_000, |n| n + 1)
        .to_string();
    let (workflow, issue_types) = projects
        .iter()
        .find(|p| p.id == like)
        .map(|p| (p.workflow.clone(), p.issue_types.clone()))
        .unwrap_or_default();
    projects.push(SimProject {
        id: id.clone(),
        key: key.to_owned(),
        workflow,
        issue_types,
    });
    id
}
