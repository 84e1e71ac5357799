//! The mapping check's report as the admin API answers it (JSON), counted and rendered for
//! people: the CLI's `check` and the demo print it.

use serde_json::Value;

/// Mapped statuses that are not `ok` (per issue type), plus projects that could not be checked.
pub fn problems(projects: &[Value]) -> usize {
    projects
        .iter()
        .map(|project| {
            let outcome = &project["outcome"];
            if outcome["type"] != "checked" {
                return 1;
            }
            outcome["issue_types"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|t| [&t["resolved"], &t["unresolved"]])
                .filter(|check| check["type"] != "ok")
                .count()
        })
        .sum()
}

/// The admin API's answer (`{"client_key", "problems", "projects"}`) as text: one block per
/// project, one line per issue type and mapped status.
pub fn render(answer: &Value) -> String {
    let mut out = format!(
        "mapping check of {}: {} problem(s)\n",
        answer["client_key"].as_str().unwrap_or("?"),
        answer["problems"]
    );
    for project in answer["projects"].as_array().into_iter().flatten() {
        let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
        out.push_str(&format!(
            "project {} (resolved → {}, unresolved → {})\n",
            text(&project["project_id"]),
            text(&project["resolved_status"]),
            text(&project["unresolved_status"])
        ));
        let outcome = &project["outcome"];
        if outcome["type"] != "checked" {
            out.push_str(&format!("  not checked: {outcome}\n"));
            continue;
        }
        for issue_type in outcome["issue_types"].as_array().into_iter().flatten() {
            let workflow = issue_type["workflow"]
                .as_str()
                .map_or_else(String::new, |w| format!(", workflow {w}"));
            for side in ["resolved", "unresolved"] {
                out.push_str(&format!(
                    "  {} ({}{workflow}) {side:<10} {}\n",
                    text(&issue_type["name"]),
                    text(&issue_type["id"]),
                    verdict(&issue_type[side])
                ));
            }
        }
    }
    out
}

/// One status check for people.
fn verdict(check: &Value) -> String {
    let list = |v: &Value| {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match check["type"].as_str() {
        Some("ok") => "ok".to_owned(),
        Some("missing-status") => "MISSING: not a status of this issue type".to_owned(),
        Some("unreachable-from") => format!("UNREACHABLE from {}", list(&check["statuses"])),
        Some("unknown-scopes") => format!(
            "unknown: Jira refused {} to the app's scopes",
            check["endpoint"].as_str().unwrap_or("?")
        ),
        Some("unknown-workflow") => match check["workflow"].as_str() {
            Some(name) => format!("unknown: workflow {name} not found"),
            None => "unknown: Jira names no workflow for it".to_owned(),
        },
        _ => check.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn problems_count_each_status_that_is_not_ok_and_each_project_not_checked() {
        let projects = [
            json!({"outcome": {"type": "checked", "issue_types": [
                {"resolved": {"type": "ok"}, "unresolved": {"type": "missing-status"}},
                {"resolved": {"type": "unknown-scopes", "endpoint": "workflow-search"},
                 "unresolved": {"type": "ok"}}]}}),
            json!({"outcome": {"type": "project-not-found"}}),
        ];
        assert_eq!(problems(&projects), 3);
        assert_eq!(problems(&projects[..0]), 0);
    }

    #[test]
    fn the_rendering_names_every_verdict() {
        let answer = json!({"client_key": "jira:1", "problems": 2, "projects": [
            {"project_id": "10", "resolved_status": "9", "unresolved_status": "3",
             "outcome": {"type": "checked", "issue_types": [
                {"id": "1", "name": "Task", "workflow": "W",
                 "resolved": {"type": "unreachable-from", "statuses": ["4", "5"]},
                 "unresolved": {"type": "unknown-workflow", "workflow": null}}]}},
            {"project_id": "11", "resolved_status": "9", "unresolved_status": "3",
             "outcome": {"type": "unauthorized"}}]});
        let text = render(&answer);
        assert!(
            text.starts_with("mapping check of jira:1: 2 problem(s)\n"),
            "{text}"
        );
        assert!(
            text.contains("Task (1, workflow W) resolved   UNREACHABLE from 4, 5"),
            "{text}"
        );
        assert!(
            text.contains("unknown: Jira names no workflow for it"),
            "{text}"
        );
        assert!(
            text.contains("not checked: {\"type\":\"unauthorized\"}"),
            "{text}"
        );
    }
}
