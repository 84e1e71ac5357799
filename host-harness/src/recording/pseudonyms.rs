//! Pseudonyms for the personal data of a recorded scenario: emails, Jira account ids and
//! display names are replaced, everywhere in the file, by stable stand-ins (the same value
//! always gets the same one, an email whatever its case, and a value percent-encoded in a URL or
//! a cache key gets the encoded stand-in), so that the replay still joins what the recording
//! joined. Linear in the file's size: one pass per kind of value, whatever their number.

use std::collections::BTreeSet;

use aho_corasick::{AhoCorasick, MatchKind};
use jira_sync_plugin::qsh;
use serde_json::{Map, Value};

/// Keys whose string values are a person's.
const ACCOUNT_KEYS: [&str; 2] = ["accountId", "assignee_account_id"];
const NAME_KEYS: [&str; 1] = ["displayName"];
const EMAIL_KEYS: [&str; 2] = ["emailAddress", "email"];
/// Top-level maps whose keys are data (an email, a cache key) rather than field names.
const KEYED_BY_DATA: [&str; 2] = ["users", "cache"];
/// The part of a scenario whose values are settings: replaced only where a whole value is a
/// person's (an admin webhook's account email), never inside another value.
const SETTINGS: &str = "installation";

/// Replaces the personal data in `document` (a whole scenario).
pub fn apply(document: &mut Value) {
    let mut found = Found::default();
    found.collect(document);
    let replacer = Replacer::new(&found);
    let Value::Object(fields) = document else {
        return;
    };
    for (key, value) in fields.iter_mut() {
        if key == SETTINGS {
            replacer.whole_values(value);
        } else {
            replacer.rewrite(value, KEYED_BY_DATA.contains(&key.as_str()));
        }
    }
}

/// Values in the order they were first found.
#[derive(Default)]
struct Ordered {
    seen: BTreeSet<String>,
    values: Vec<String>,
}

impl Ordered {
    fn push(&mut self, value: String) {
        if self.seen.insert(value.clone()) {
            self.values.push(value);
        }
    }
}

#[derive(Default)]
struct Found {
    /// Lower-cased emails.
    emails: Ordered,
    accounts: Ordered,
    names: Ordered,
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
                    self.emails_in(key);
                    self.collect(value);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| self.collect(item)),
            Value::String(text) => {
                // A body or cache value kept as text may be JSON with people in it.
                if text.starts_with(['{', '['])
                    && let Ok(json) = serde_json::from_str::<Value>(text)
                {
                    self.collect(&json);
                }
                self.emails_in(text);
            }
            _ => {}
        }
    }

    /// Emails inside text (log fields, cache keys, query strings).
    fn emails_in(&mut self, text: &str) {
        if !text.contains('@') {
            return;
        }
        for word in text.split(|c: char| !(c.is_alphanumeric() || "@.+-_".contains(c))) {
            if looks_like_email(word) {
                self.emails.push(word.to_ascii_lowercase());
            }
        }
    }

    fn note(&mut self, key: &str, text: &str) {
        if text.is_empty() {
            return;
        }
        if ACCOUNT_KEYS.contains(&key) || key.eq_ignore_ascii_case("accountid") {
            self.accounts.push(text.to_owned());
        } else if NAME_KEYS.contains(&key) {
            self.names.push(text.to_owned());
        } else if EMAIL_KEYS.contains(&key) && looks_like_email(text) {
            self.emails.push(text.to_ascii_lowercase());
        }
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

/// One kind of value and its stand-ins, found in one pass over a text.
struct Patterns {
    automaton: Option<AhoCorasick>,
    replacements: Vec<String>,
}

impl Patterns {
    /// `pairs` of (value, stand-in); each value also matches percent-encoded, and, when
    /// `quoted`, only as a whole JSON string (`"value"`).
    fn new(pairs: Vec<(String, String)>, any_case: bool, quoted: bool) -> Self {
        let mut patterns = Vec::new();
        let mut replacements = Vec::new();
        for (value, stand_in) in pairs {
            let mut add = |value: String, stand_in: String| {
                if quoted {
                    patterns.push(Value::String(value).to_string());
                    replacements.push(Value::String(stand_in).to_string());
                } else {
                    patterns.push(value);
                    replacements.push(stand_in);
                }
            };
            let encoded = qsh::encode(&value);
            if encoded != value {
                add(encoded, qsh::encode(&stand_in));
            }
            add(value, stand_in);
        }
        let automaton = (!patterns.is_empty()).then(|| {
            AhoCorasick::builder()
                .ascii_case_insensitive(any_case)
                .match_kind(MatchKind::LeftmostLongest)
                .build(&patterns)
                .expect("literal patterns of a scenario's size build")
        });
        Patterns {
            automaton,
            replacements,
        }
    }

    fn replace(&self, text: &str) -> Option<String> {
        let automaton = self.automaton.as_ref()?;
        automaton
            .is_match(text)
            .then(|| automaton.replace_all(text, &self.replacements))
    }
}

struct Replacer {
    emails: Patterns,
    accounts: Patterns,
    /// Names as whole JSON strings inside text kept as JSON.
    quoted_names: Patterns,
    /// Names as whole values.
    names: Vec<(String, String)>,
    /// Every value and its stand-in, for whole values.
    whole: Vec<(String, String)>,
}

impl Replacer {
    fn new(found: &Found) -> Self {
        let numbered = |values: &Ordered, stand_in: &dyn Fn(usize) -> String| {
            values
                .values
                .iter()
                .enumerate()
                .map(|(i, value)| (value.clone(), stand_in(i + 1)))
                .collect::<Vec<_>>()
        };
        let emails = numbered(&found.emails, &|n| format!("person-{n}@example.invalid"));
        let accounts = numbered(&found.accounts, &|n| format!("pseudonym-account-{n}"));
        let names = numbered(&found.names, &|n| format!("Person {n}"));
        let whole = emails
            .iter()
            .chain(&accounts)
            .chain(&names)
            .cloned()
            .collect();
        Replacer {
            emails: Patterns::new(emails, true, false),
            accounts: Patterns::new(accounts, false, false),
            quoted_names: Patterns::new(names.clone(), false, true),
            names,
            whole,
        }
    }

    /// `text` with every email and account id replaced, and names where they are a whole JSON
    /// string of it.
    fn text(&self, text: &str) -> String {
        if let Some((_, stand_in)) = self.names.iter().find(|(name, _)| name == text) {
            return stand_in.clone();
        }
        let mut text = text.to_owned();
        for patterns in [&self.emails, &self.accounts, &self.quoted_names] {
            if let Some(replaced) = patterns.replace(&text) {
                text = replaced;
            }
        }
        text
    }

    fn rewrite(&self, value: &mut Value, keys_too: bool) {
        match value {
            Value::Object(fields) => {
                let old = std::mem::take(fields);
                let mut new = Map::new();
                for (key, mut value) in old {
                    self.rewrite(&mut value, false);
                    let key = if keys_too { self.text(&key) } else { key };
                    new.insert(key, value);
                }
                *fields = new;
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.rewrite(item, false)),
            Value::String(text) => *text = self.text(text),
            _ => {}
        }
    }

    fn whole_values(&self, value: &mut Value) {
        match value {
            Value::Object(fields) => fields.values_mut().for_each(|v| self.whole_values(v)),
            Value::Array(items) => items.iter_mut().for_each(|v| self.whole_values(v)),
            Value::String(text) => {
                let found = self
                    .whole
                    .iter()
                    .find(|(value, _)| value.eq_ignore_ascii_case(text));
                if let Some((_, stand_in)) = found {
                    *text = stand_in.clone();
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_occurrence_gets_the_same_pseudonym_whatever_its_case_or_encoding() {
        let mut document = json!({
            "installation": {"client_key": "jira:1", "shared_secret": "recorded-placeholder-secret",
                             "credentials": {"email": "Ops@Example.com"}},
            "users": {"ada@example.com": 7},
            "http": [{"path": "/rest/api/3/user/search", "query": {"query": "ada@example.com"},
                      "body": "[{\"accountId\":\"557058:ab-cd\",\"displayName\":\"Ada Byron\"}]"},
                     {"query": {"accountId": "5f1a"},
                      "body": {"accountId": "5f1a", "email": "Ada@Example.com",
                               "displayName": "Ada Byron"}}],
            "steps": [{"webhook": {"body": {"changelog": {"items": [
                {"field": "assignee", "to": "5f1a", "toString": "Ada Byron"},
                {"fieldId": "assignee", "from": "70121:gone", "fromString": "Old Owner"}]}}}}],
            "cache": {
                "1:j:jira-sync/v1/j/GET https://a.net/rest/api/3/user/search?query=ada%40example.com": "[]",
                "1:j:jira-sync/v1/j/hidden-email/557058%3Aab-cd": "{\"email\":\"ADA@example.com\"}"
            },
            "recorded": {"steps": [{"http": [{"url": "https://a.net/rest/api/3/user/search?query=ada%40example.com"}],
                                    "logs": [{"fields": {"project": "Ada Byron's team"}}]}]},
            "keep": ["Done", "10101", "APP-123", "recorded-placeholder-secret"]
        });
        apply(&mut document);
        let text = document.to_string();
        for personal in [
            "ada@example.com",
            "ada%40example.com",
            "ops@example.com",
            "5f1a",
            "557058:ab-cd",
            "557058%3Aab-cd",
            "70121:gone",
            "Old Owner",
        ] {
            assert!(
                !text
                    .to_ascii_lowercase()
                    .contains(&personal.to_ascii_lowercase()),
                "{personal} left in {text}"
            );
        }
        let ada = "person-1@example.invalid";
        assert_eq!(document["users"][ada], 7);
        assert_eq!(document["http"][1]["body"]["email"], json!(ada));
        assert_eq!(
            document["recorded"]["steps"][0]["http"][0]["url"],
            json!("https://a.net/rest/api/3/user/search?query=person-1%40example.invalid")
        );
        let account = document["http"][1]["query"]["accountId"].clone();
        assert_eq!(
            document["steps"][0]["webhook"]["body"]["changelog"]["items"][0]["to"],
            account
        );
        assert_eq!(
            document["installation"]["credentials"]["email"],
            json!("person-2@example.invalid")
        );
        assert_eq!(
            document["installation"]["shared_secret"],
            json!("recorded-placeholder-secret")
        );
        // A name is replaced where it is a whole value, not inside other text.
        assert_eq!(
            document["steps"][0]["webhook"]["body"]["changelog"]["items"][0]["toString"],
            json!("Person 1")
        );
        assert!(
            document["http"][0]["body"]
                .as_str()
                .unwrap()
                .contains("\"Person 1\"")
        );
        assert_eq!(
            document["recorded"]["steps"][0]["logs"][0]["fields"]["project"],
            json!("Ada Byron's team")
        );
        assert_eq!(
            document["keep"],
            json!(["Done", "10101", "APP-123", "recorded-placeholder-secret"])
        );
    }
}
