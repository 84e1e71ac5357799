//! The parts of Jira's issue events the flows read (docs/behaviour.md#1.3,
//! docs/behaviour.md#1.8, docs/behaviour.md#8), checked up front so that a malformed body is a
//! 400 before anything changes. Connect, OAuth and admin webhooks and Forge's product events
//! carry the same issue and changelog shapes; only the event's name differs.

use serde_json::{Map, Value};

/// What a verified delivery says happened to an issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The issue changed, with a truthy changelog.
    Updated(Update),
    /// Jira deleted the issue (`jira:issue_deleted`, Forge's `avi:jira:deleted:issue`).
    Deleted {
        /// `issue.key`; never empty.
        issue_key: String,
    },
}

/// An issue change with a truthy changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// `issue.key`, e.g. "PRJ-7"; never empty. After a move, the new key.
    pub issue_key: String,
    /// `issue.fields.assignee`; `None` when null or missing.
    pub assignee: Option<Assignee>,
    /// Some changelog item changes the assignee.
    pub assignee_changed: bool,
    /// The first changelog item that changes the status.
    pub status: Option<StatusItem>,
    /// The key the issue had before this change moved it to another project: the `fromString`
    /// of a changelog item that changes the key, when it differs from `issue.key`.
    pub moved_from: Option<String>,
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

/// Event names that mean the issue was deleted: Connect's (and the other webhooks') and Forge's.
const DELETED_EVENTS: [&str; 2] = ["jira:issue_deleted", "avi:jira:deleted:issue"];

/// `Ok(None)` for an update without a truthy `changelog`; `Err` names what is malformed.
///
/// The event's name is `webhookEvent` (webhooks) or `eventType` (Forge); a body whose event
/// sits under `payload` or `event` (how a Forge remote may wrap it: not confirmed) is unwrapped.
pub fn parse(body: &[u8]) -> Result<Option<Event>, String> {
    let body: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let body = body.as_object().ok_or("body is not a JSON object")?;
    let body = unwrap_event(body);
    let name = ["webhookEvent", "eventType"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str));
    if name.is_some_and(|name| DELETED_EVENTS.contains(&name)) {
        return Ok(Some(Event::Deleted {
            issue_key: issue_key(body)?,
        }));
    }
    let Some(changelog) = body.get("changelog").filter(|c| truthy(c)) else {
        return Ok(None);
    };
    let changes = read_changelog(changelog)?;
    let issue_key = issue_key(body)?;
    let fields = match body.get("issue").and_then(|issue| issue.get("fields")) {
        None | Some(Value::Null) => None,
        Some(Value::Object(fields)) => Some(fields),
        Some(_) => return Err("issue.fields is not an object".into()),
    };
    let assignee = read_assignee(fields)?;
    let updated = fields
        .and_then(|f| f.get("updated"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let moved_from = changes.key_from.filter(|from| *from != issue_key);
    Ok(Some(Event::Updated(Update {
        issue_key,
        assignee,
        assignee_changed: changes.assignee,
        status: changes.status,
        moved_from,
        updated,
    })))
}

/// The event itself: `body`, or the object under its `payload` or `event` when `body` has no
/// `issue` of its own.
fn unwrap_event(body: &Map<String, Value>) -> &Map<String, Value> {
    if body.contains_key("issue") {
        return body;
    }
    ["payload", "event"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_object))
        .filter(|inner| inner.contains_key("issue"))
        .unwrap_or(body)
}

/// `issue.key`, required and not empty.
fn issue_key(body: &Map<String, Value>) -> Result<String, String> {
    let issue = body.get("issue").ok_or("issue is missing")?;
    Ok(issue
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or("issue.key is missing or not a string")?
        .to_owned())
}

/// What a changelog changes, of what the flows read.
#[derive(Debug, Default)]
struct Changes {
    /// Some item changes the assignee.
    assignee: bool,
    /// The first item that changes the status.
    status: Option<StatusItem>,
    /// The `fromString` of the first item that changes the issue's key (a move).
    key_from: Option<String>,
}

/// The fields the changelog's items change (docs/behaviour.md#1.3): an item names its field by
/// `fieldId` when it has one, else by `field` in any case (Jira writes `"Status"` in some
/// changelogs and `"status"` in others, and `"Key"` for a move).
fn read_changelog(changelog: &Value) -> Result<Changes, String> {
    let items = changelog
        .get("items")
        .and_then(Value::as_array)
        .ok_or("changelog.items is not a list")?;
    let mut changes = Changes::default();
    for item in items {
        let item = item
            .as_object()
            .ok_or("changelog.items has an entry that is not an object")?;
        let name = match item.get("fieldId").and_then(Value::as_str) {
            Some(id) => id.to_ascii_lowercase(),
            None => item
                .get("field")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_ascii_lowercase(),
        };
        match name.as_str() {
            "assignee" => changes.assignee = true,
            "status" if changes.status.is_none() => {
                changes.status = Some(StatusItem {
                    from: item.get("from").and_then(id),
                    to: item.get("to").and_then(id),
                });
            }
            "key" | "issuekey" if changes.key_from.is_none() => {
                changes.key_from = item
                    .get("fromString")
                    .and_then(Value::as_str)
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned);
            }
            _ => {}
        }
    }
    Ok(changes)
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
        let Some(Event::Updated(update)) = parse(body.as_bytes()).unwrap() else {
            panic!("an update")
        };
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

    fn update(body: &str) -> Update {
        match parse(body.as_bytes()) {
            Ok(Some(Event::Updated(update))) => update,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn items_are_named_by_field_id_else_by_field_in_any_case() {
        // Jira Cloud's `issue_created` changelog writes "Status"; `fieldId` wins over `field`.
        let created = update(
            r#"{"changelog": {"items": [
                {"field": "Status", "fieldId": "status", "from": null, "to": "10001"},
                {"field": "Assignee", "fieldtype": "jira", "to": "x"}]},
              "issue": {"key": "A-1"}}"#,
        );
        assert_eq!(created.status.and_then(|s| s.to).as_deref(), Some("10001"));
        assert!(created.assignee_changed);
        let renamed = update(
            r#"{"changelog": {"items": [{"field": "status", "fieldId": "customfield_1", "to": "3"}]},
              "issue": {"key": "A-1"}}"#,
        );
        assert_eq!(
            renamed.status, None,
            "a custom field called status is not the status"
        );
    }

    #[test]
    fn a_key_item_is_a_move_from_its_old_key() {
        let moved = update(
            r#"{"webhookEvent": "jira:issue_updated", "issue_event_type_name": "issue_moved",
              "changelog": {"items": [
                {"field": "project", "from": "10000", "to": "10001"},
                {"field": "Key", "fieldtype": "jira", "from": null, "fromString": "OLD-1",
                 "to": null, "toString": "NEW-5"}]},
              "issue": {"id": "101", "key": "NEW-5"}}"#,
        );
        assert_eq!(moved.moved_from.as_deref(), Some("OLD-1"));
        assert_eq!(moved.issue_key, "NEW-5");
        let same = update(
            r#"{"changelog": {"items": [{"field": "Key", "fromString": "NEW-5"}]},
              "issue": {"key": "NEW-5"}}"#,
        );
        assert_eq!(
            same.moved_from, None,
            "a key item naming the same key moves nothing"
        );
    }

    #[test]
    fn deletions_need_no_changelog_and_forge_events_read_alike() {
        for body in [
            r#"{"webhookEvent": "jira:issue_deleted", "issue": {"id": "1", "key": "A-1"}}"#,
            r#"{"eventType": "avi:jira:deleted:issue", "issue": {"key": "A-1"}, "atlassianId": "x"}"#,
            r#"{"payload": {"eventType": "avi:jira:deleted:issue", "issue": {"key": "A-1"}}}"#,
        ] {
            assert_eq!(
                parse(body.as_bytes()),
                Ok(Some(Event::Deleted {
                    issue_key: "A-1".into()
                })),
                "{body}"
            );
        }
        assert!(parse(br#"{"webhookEvent": "jira:issue_deleted", "issue": {}}"#).is_err());
        let forge = update(
            r#"{"eventType": "avi:jira:updated:issue", "atlassianId": "5f1a",
              "issue": {"id": "101", "key": "A-2", "fields": {"updated": "2023-01-01T00:00:00.000+0000"}},
              "changelog": {"items": [{"field": "status", "fieldId": "status", "from": "1", "to": "2"}]}}"#,
        );
        assert_eq!(forge.issue_key, "A-2");
        assert!(forge.status.is_some());
    }
}
