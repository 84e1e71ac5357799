//! Pseudonyms for the personal data of a recorded scenario: emails, Jira account ids and
//! display names are replaced, everywhere in the file, by stable stand-ins (the same value
//! always gets the same one, an email whatever its case), so that the replay still joins what
//! the recording joined.

use serde_json::{Map, Value};

/// Keys whose string values are a person's: collected first, then replaced wherever they occur.
const ACCOUNT_KEYS: [&str; 2] = ["accountId", "assignee_account_id"];
const NAME_KEYS: [&str; 1] = ["displayName"];
const EMAIL_KEYS: [&str; 2] = ["emailAddress", "email"];

/// Replaces the personal data in `document` (a whole scenario).
pub fn apply(document: &mut Value) {
    let mut found = Found::default();
    found.collect(document);
    let replacements = found.replacements();
    rewrite(document, &replacements);
}

#[derive(Default)]
struct Found {
    /// Lower-cased emails.
    emails: Vec<String>,
    accounts: Vec<String>,
    names: Vec<String>,
}

impl Found {
    fn collect(&mut self, value: &Value) {
        match value {
            Value::Object(fields) => {
                // A changelog item of the assignee: account ids and names under generic keys.
                let field = fields
                    .get("fieldId")
                    .or_else(|| fields.get("field"))
                    .and_then(Value::as_str);
                if field.is_some_and(|f| f.eq_ignore_ascii_case("assignee")) {
                    for (key, kind) in [
                        ("from", "accountId"),
                        ("to", "accountId"),
                        ("fromString", "displayName"),
                        ("toString", "displayName"),
                    ] {
                        if let Some(text) = fields.get(key).and_then(Value::as_str) {
                            self.note(kind, text);
                        }
                    }
                }
                for (key, value) in fields {
                    if let Value::String(text) = value {
                        self.note(key, text);
                    }
                    if looks_like_email(key) {
                        push(&mut self.emails, key.to_ascii_lowercase());
                    }
                    self.collect(value);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| self.collect(item)),
            Value::String(text) => {
                // Emails inside text (log fields, cache values, query strings).
                for word in text.split(|c: char| !(c.is_alphanumeric() || "@.+-_".contains(c))) {
                    if looks_like_email(word) {
                        push(&mut self.emails, word.to_ascii_lowercase());
                    }
                }
            }
            _ => {}
        }
    }

    fn note(&mut self, key: &str, text: &str) {
        if text.is_empty() {
            return;
        }
        if ACCOUNT_KEYS.contains(&key) || key.eq_ignore_ascii_case("accountid") {
            push(&mut self.accounts, text.to_owned());
        } else if NAME_KEYS.contains(&key) {
            push(&mut self.names, text.to_owned());
        } else if EMAIL_KEYS.contains(&key) && looks_like_email(text) {
            push(&mut self.emails, text.to_ascii_lowercase());
        }
    }

    /// Each value and its pseudonym, longest first, so that no value is replaced inside a
    /// longer one that contains it.
    fn replacements(&self) -> Vec<(String, String, bool)> {
        let mut all: Vec<(String, String, bool)> = Vec::new();
        for (i, email) in self.emails.iter().enumerate() {
            all.push((
                email.clone(),
                format!("person-{}@example.invalid", i + 1),
                true,
            ));
        }
        for (i, account) in self.accounts.iter().enumerate() {
            all.push((
                account.clone(),
                format!("pseudonym-account-{}", i + 1),
                false,
            ));
        }
        for (i, name) in self.names.iter().enumerate() {
            all.push((name.clone(), format!("Person {}", i + 1), false));
        }
        all.sort_by_key(|(value, _, _)| std::cmp::Reverse(value.len()));
        all
    }
}

fn push(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

fn looks_like_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
}

fn rewrite(value: &mut Value, replacements: &[(String, String, bool)]) {
    match value {
        Value::Object(fields) => {
            let old = std::mem::take(fields);
            let mut new = Map::new();
            for (key, mut value) in old {
                rewrite(&mut value, replacements);
                new.insert(replace(&key, replacements), value);
            }
            *fields = new;
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite(item, replacements)),
        Value::String(text) => *text = replace(text, replacements),
        _ => {}
    }
}

/// `text` with every value replaced by its pseudonym (emails matched whatever their case).
fn replace(text: &str, replacements: &[(String, String, bool)]) -> String {
    let mut text = text.to_owned();
    for (value, pseudonym, any_case) in replacements {
        text = if *any_case {
            replace_any_case(&text, value, pseudonym)
        } else {
            text.replace(value.as_str(), pseudonym)
        };
    }
    text
}

fn replace_any_case(text: &str, lower: &str, with: &str) -> String {
    // ASCII lower-casing keeps every byte where it was, so positions carry over.
    let folded = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in folded.match_indices(lower) {
        out.push_str(&text[last..at]);
        out.push_str(with);
        last = at + lower.len();
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use serde_json::json;

    /// The pseudonyms given, to look them up.
    fn table(document: &Value) -> BTreeMap<String, String> {
        let mut found = Found::default();
        found.collect(document);
        found
            .replacements()
            .into_iter()
            .map(|(value, pseudonym, _)| (value, pseudonym))
            .collect()
    }

    #[test]
    fn every_occurrence_gets_the_same_pseudonym_whatever_its_case() {
        let mut document = json!({
            "users": {"ada@example.com": 7},
            "http": [{"query": {"accountId": "5f1a"},
                      "body": {"accountId": "5f1a", "email": "Ada@Example.com",
                               "displayName": "Ada Byron"}}],
            "steps": [{"webhook": {"body": {"changelog": {"items": [
                {"field": "assignee", "to": "5f1a", "toString": "Ada Byron"},
                {"fieldId": "assignee", "from": "70121:gone", "fromString": "Old Owner"}]}}}}],
            "cache": {"jira:1\u{0}email:5f1a": "{\"email\":\"ADA@example.com\"}"},
            "keep": ["Done", "10101", "APP-123"]
        });
        let table = table(&document);
        apply(&mut document);
        let text = document.to_string();
        for personal in [
            "ada@example.com",
            "Ada@Example.com",
            "5f1a",
            "Ada Byron",
            "70121:gone",
            "Old Owner",
        ] {
            assert!(!text.contains(personal), "{personal} left in {text}");
        }
        let email = &table["ada@example.com"];
        assert_eq!(document["users"][email], 7);
        assert_eq!(document["http"][0]["body"]["email"], json!(email));
        let account = &table["5f1a"];
        assert_eq!(document["http"][0]["query"]["accountId"], json!(account));
        assert_eq!(
            document["steps"][0]["webhook"]["body"]["changelog"]["items"][0]["to"],
            json!(account)
        );
        assert_eq!(document["keep"], json!(["Done", "10101", "APP-123"]));
    }
}
