//! The parts of Jira's `issue_updated` payload the flows read (docs/behaviour.md#1.3,
//! docs/behaviour.md#8), checked up front so that a malformed body is a 400 before anything
//! changes.

use serde_json::{Map, Value};

/// A verified webhook with a truthy changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// `issue.key`, e.g. "PRJ-7"; never empty.
    pub issue_key: String,
    /// `issue.fields.assignee`; `None` when null or missing.
    pub assignee: Option<Assignee>,
    /// Some changelog item has `field == "assignee"`.
    pub assignee_changed: bool,
    /// The first changelog item with `field == "status"`.
    pub status: Option<StatusItem>,
    /// `issue.fields.updated`, for ordering (docs/behaviour.md#7).
    pub updated: Option<String>,
}

/// The new Jira assignee, `issue.fields.assignee`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignee {
    /// `accountId`, for the email API when the email is hidden.
    pub account_id: Option<String>,
    /// `emailAddress`, `None` when empty or missing.
    pub email: Option<String>,
}

/// A changelog item for `status`: the status ids the issue moved between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusItem {
    /// The previous status id, if Jira sent one.
    pub from: Option<String>,
    /// The new status id, if Jira sent one.
    pub to: Option<String>,
}

/// `Ok(None)` for a body without a truthy `changelog`; `Err` names what is malformed.
pub fn parse(body: &[u8]) -> Result<Option<Update>, String> {
    let body: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let body = body.as_object().ok_or("body is not a JSON object")?;
    let Some(changelog) = body.get("changelog").filter(|c| truthy(c)) else {
        return Ok(None);
    };
    let (assignee_changed, status) = read_changelog(changelog)?;
    let issue = body.get("issue").ok_or("issue is missing")?;
    let issue_key = issue
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or("issue.key is missing or not a string")?
        .to_owned();
    let fields = match issue.get("fields") {
        None | Some(Value::Null) => None,
        Some(Value::Object(fields)) => Some(fields),
        Some(_) => return Err("issue.fields is not an object".into()),
    };
    let assignee = read_assignee(fields)?;
    let updated = fields
        .and_then(|f| f.get("updated"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Some(Update {
        issue_key,
        assignee,
        assignee_changed,
        status,
        updated,
    }))
}

/// Whether some item changes the assignee, and the first item that changes the status.
fn read_changelog(changelog: &Value) -> Result<(bool, Option<StatusItem>), String> {
    let items = changelog
        .get("items")
        .and_then(Value::as_array)
        .ok_or("changelog.items is not a list")?;
    let mut assignee_changed = false;
    let mut status = None;
    for item in items {
        let item = item
            .as_object()
            .ok_or("changelog.items has an entry that is not an object")?;
        match item.get("field").and_then(Value::as_str) {
            Some("assignee") => assignee_changed = true,
            Some("status") if status.is_none() => {
                status = Some(StatusItem {
                    from: item.get("from").and_then(id),
                    to: item.get("to").and_then(id),
                });
            }
            _ => {}
        }
    }
    Ok((assignee_changed, status))
}

/// `issue.fields.assignee`: `None` when the fields or the assignee are null or missing.
fn read_assignee(fields: Option<&Map<String, Value>>) -> Result<Option<Assignee>, String> {
    match fields.and_then(|f| f.get("assignee")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(a)) => Ok(Some(Assignee {
            account_id: a.get("accountId").and_then(id),
            email: a
                .get("emailAddress")
                .and_then(Value::as_str)
                .filter(|e| !e.is_empty())
                .map(str::to_owned),
        })),
        Some(_) => Err("issue.fields.assignee is not an object".into()),
    }
}

/// An id that Jira sends as a string, tolerating a number.
pub fn id(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Python-style truthiness: a `changelog` that is null, `false`, `0`, `""`, `[]` or `{}` means "no
/// changelog", the same as a missing one (docs/behaviour.md#1.3).
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falsy_changelogs_are_none() {
        for body in [
            r#"{}"#,
            r#"{"changelog": null}"#,
            r#"{"changelog": {}}"#,
            r#"{"changelog": []}"#,
            r#"{"changelog": 0}"#,
        ] {
            assert_eq!(parse(body.as_bytes()), Ok(None), "{body}");
        }
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for body in [
            "not json",
            "[]",
            r#"{"changelog": {"items": {}}, "issue": {"key": "A-1"}}"#,
            r#"{"changelog": {"items": [1]}, "issue": {"key": "A-1"}}"#,
            r#"{"changelog": {"items": []}, "issue": {"key": 5}}"#,
            r#"{"changelog": {"items": []}}"#,
            r#"{"changelog": {"items": []}, "issue": {"key": "A-1", "fields": {"assignee": "x"}}}"#,
        ] {
            assert!(parse(body.as_bytes()).is_err(), "{body}");
        }
    }

    #[test]
    fn reads_first_status_item_and_assignee() {
        let body = r#"{"changelog": {"items": [
            {"field": "status", "from": "1", "to": "2"},
            {"field": "status", "from": "3", "to": "4"},
            {"field": "assignee", "to": "ignored"}]},
          "issue": {"key": "A-1", "fields": {"assignee": {"accountId": "x", "emailAddress": ""}}}}"#;
        let update = parse(body.as_bytes()).unwrap().unwrap();
        assert_eq!(
            update.status,
            Some(StatusItem {
                from: Some("1".into()),
                to: Some("2".into())
            })
        );
        assert!(update.assignee_changed);
        assert_eq!(
            update.assignee,
            Some(Assignee {
                account_id: Some("x".into()),
                email: None
            })
        );
    }
}
