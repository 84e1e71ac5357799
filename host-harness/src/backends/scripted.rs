//! An [`HttpBackend`] that answers from a scenario's script and remembers what nothing answered.

use std::sync::Mutex;

use url::Url;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{BoxFuture, HttpBackend, HttpResult, OutboundRequest, OutboundResponse};
use crate::wit::jira_sync::plugin::http::Error as HttpError;

/// Cap on a scripted response, like a real backend's.
pub const MAX_SCRIPTED_BODY: u64 = 4 * 1024 * 1024;

/// A scripted Jira answer, matched by method, path and query (in any order).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpStub {
    /// The method to match (default `GET`).
    #[serde(default = "get")]
    pub method: String,
    /// The path to match, exactly.
    pub path: String,
    /// The query parameters to match, in any order.
    #[serde(default, skip_serializing_if = "Query::is_empty")]
    pub query: Query,
    /// The answer's status (default 200).
    #[serde(default = "ok")]
    pub status: u16,
    /// The answer's headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// JSON, or a string sent as it is.
    #[serde(default)]
    pub body: Value,
    /// Answer every match instead of the first one only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeat: bool,
    /// Answer with this transport error instead: "timeout", "connection", "too-large", or an
    /// error as traces write it ("connection: refused", "response-too-large: 1024",
    /// "invalid-request: why").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A stub's query parameters: an object, or a list of `[name, value]` pairs where a name
/// repeats (e.g. `workflowName` once per workflow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Query {
    /// Each name once.
    Map(BTreeMap<String, String>),
    /// Names that may repeat.
    Pairs(Vec<(String, String)>),
}

impl Default for Query {
    fn default() -> Self {
        Query::Map(BTreeMap::new())
    }
}

impl Query {
    /// The parameters of a URL: an object unless a name repeats.
    pub fn of(pairs: Vec<(String, String)>) -> Self {
        let names: std::collections::BTreeSet<&str> =
            pairs.iter().map(|(name, _)| name.as_str()).collect();
        if names.len() == pairs.len() {
            Query::Map(pairs.into_iter().collect())
        } else {
            Query::Pairs(pairs)
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Query::Map(map) => map.is_empty(),
            Query::Pairs(pairs) => pairs.is_empty(),
        }
    }

    /// The parameters, sorted.
    fn sorted(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = match self {
            Query::Map(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Query::Pairs(pairs) => pairs.clone(),
        };
        pairs.sort();
        pairs
    }
}

fn get() -> String {
    "GET".to_owned()
}

fn ok() -> u16 {
    200
}

/// Answers each request with the first unused stub that matches it.
pub struct ScriptedHttp {
    stubs: Vec<HttpStub>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    used: Vec<bool>,
    unmatched: Vec<String>,
}

impl ScriptedHttp {
    /// A backend answering from `stubs`.
    pub fn new(stubs: Vec<HttpStub>) -> Self {
        let used = vec![false; stubs.len()];
        ScriptedHttp {
            stubs,
            state: Mutex::new(State {
                used,
                unmatched: Vec::new(),
            }),
        }
    }

    /// `METHOD URL` of every request no stub answered, in order.
    pub fn unmatched(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.unmatched.clone())
            .unwrap_or_default()
    }

    fn matches(stub: &HttpStub, method: &str, url: &Url) -> bool {
        if !stub.method.eq_ignore_ascii_case(method) || stub.path != url.path() {
            return false;
        }
        let mut got: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        got.sort();
        stub.query.sorted() == got
    }
}

impl HttpBackend for ScriptedHttp {
    fn send(&self, request: OutboundRequest) -> BoxFuture<'_, HttpResult> {
        // The script answers at once.
        Box::pin(std::future::ready(self.answer(&request)))
    }
}

impl ScriptedHttp {
    fn answer(&self, request: &OutboundRequest) -> HttpResult {
        let url = Url::parse(&request.url)
            .map_err(|e| HttpError::InvalidRequest(format!("{}: {e}", request.url)))?;
        let mut state = self
            .state
            .lock()
            .map_err(|_| HttpError::Connection("scripted backend poisoned".into()))?;
        let found = (0..self.stubs.len())
            .find(|&i| !state.used[i] && Self::matches(&self.stubs[i], request.method, &url))
            .or_else(|| {
                (0..self.stubs.len()).find(|&i| {
                    self.stubs[i].repeat && Self::matches(&self.stubs[i], request.method, &url)
                })
            });
        let Some(i) = found else {
            state
                .unmatched
                .push(format!("{} {}", request.method, request.url));
            return Err(HttpError::Connection(format!(
                "no scripted answer for {} {}",
                request.method,
                url.path()
            )));
        };
        state.used[i] = true;
        let stub = &self.stubs[i];
        let body = match &stub.body {
            Value::Null => Vec::new(),
            Value::String(text) => text.clone().into_bytes(),
            json => json.to_string().into_bytes(),
        };
        if let Some(error) = &stub.error {
            return Err(scripted_error(error));
        }
        if body.len() as u64 > MAX_SCRIPTED_BODY {
            return Err(HttpError::ResponseTooLarge(MAX_SCRIPTED_BODY));
        }
        Ok(OutboundResponse {
            status: stub.status,
            headers: stub
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body,
        })
    }
}

/// A stub's `error` as the transport error it stands for.
fn scripted_error(error: &str) -> HttpError {
    if let Some(why) = error.strip_prefix("connection: ") {
        return HttpError::Connection(why.to_owned());
    }
    if let Some(Ok(limit)) = error.strip_prefix("response-too-large: ").map(str::parse) {
        return HttpError::ResponseTooLarge(limit);
    }
    if let Some(why) = error.strip_prefix("invalid-request: ") {
        return HttpError::InvalidRequest(why.to_owned());
    }
    match error {
        "timeout" => HttpError::Timeout,
        "connection" => HttpError::Connection("connection refused".into()),
        "too-large" => HttpError::ResponseTooLarge(MAX_SCRIPTED_BODY),
        other => HttpError::Connection(format!("scripted error `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stub(query: &str) -> HttpStub {
        serde_json::from_str(&format!(
            r#"{{"path": "/rest/api/3/workflow/search", "query": {query}}}"#
        ))
        .unwrap()
    }

    fn answered(stub: HttpStub, url: &str) -> bool {
        let http = ScriptedHttp::new(vec![stub]);
        let request = OutboundRequest {
            method: "GET",
            url: url.to_owned(),
            headers: Vec::new(),
            body: None,
        };
        http.answer(&request).is_ok()
    }

    #[test]
    fn a_query_whose_name_repeats_is_matched_as_pairs_in_any_order() {
        let url = "https://a.net/rest/api/3/workflow/search?workflowName=A&expand=x&workflowName=B";
        let pairs = stub(r#"[["workflowName", "B"], ["expand", "x"], ["workflowName", "A"]]"#);
        assert!(answered(pairs, url));
        let one = stub(r#"[["workflowName", "A"], ["expand", "x"]]"#);
        assert!(!answered(one, url), "every repeated value counts");
        assert!(answered(
            stub(r#"{"expand": "x", "workflowName": "A"}"#),
            "https://a.net/rest/api/3/workflow/search?workflowName=A&expand=x"
        ));
    }

    #[test]
    fn a_url_is_written_as_an_object_unless_a_name_repeats() {
        let pairs = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(matches!(
            Query::of(pairs(&[("a", "1"), ("b", "2")])),
            Query::Map(_)
        ));
        assert!(matches!(
            Query::of(pairs(&[("a", "1"), ("a", "2")])),
            Query::Pairs(_)
        ));
    }
}
