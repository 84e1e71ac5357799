//! Jira's status list and status categories (docs/behaviour.md#1.5, docs/behaviour.md#2.7).

use serde_json::Value;

use crate::env::Env;
use crate::jira::{Endpoint, Jira, JiraError};
use crate::payload;

/// Jira's status categories in workflow order; unknown keys sit in the middle.
pub fn category_rank(key: Option<&str>) -> u8 {
    match key {
        Some("new") => 0,
        Some("done") => 2,
        _ => 1,
    }
}

/// Every status id with its category key, from the cached status list.
pub fn categories<E: Env>(jira: &mut Jira<'_, E>) -> Result<Vec<(String, String)>, JiraError> {
    let statuses = jira.get_json(Endpoint::StatusList, "/rest/api/2/status", &[], true)?;
    let statuses = statuses
        .as_array()
        .ok_or(JiraError::BadResponse(Endpoint::StatusList))?;
    Ok(statuses
        .iter()
        .filter_map(|s| {
            let id = payload::id(s.get("id")?)?;
            let category = s.pointer("/statusCategory/key").and_then(Value::as_str)?;
            Some((id, category.to_owned()))
        })
        .collect())
}

/// Ids of the statuses in the `done` category.
pub fn done<E: Env>(jira: &mut Jira<'_, E>) -> Result<Vec<String>, JiraError> {
    Ok(categories(jira)?
        .into_iter()
        .filter(|(_, category)| category == "done")
        .map(|(id, _)| id)
        .collect())
}
