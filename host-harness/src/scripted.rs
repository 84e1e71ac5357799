//! An [`HttpBackend`] that answers from a scenario's script and remembers what nothing answered.

use std::sync::Mutex;

use url::Url;

use crate::backends::{HttpBackend, OutboundRequest, OutboundResponse};
use crate::bindings::jira_sync::plugin::http::Error as HttpError;
use crate::scenario::HttpStub;

/// Cap on a scripted response, like a real backend's.
pub const MAX_SCRIPTED_BODY: u64 = 4 * 1024 * 1024;

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
        let mut wanted: Vec<(String, String)> = stub
            .query
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut got: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        wanted.sort();
        got.sort();
        wanted == got
    }
}

impl HttpBackend for ScriptedHttp {
    fn send(&self, request: &OutboundRequest) -> Result<OutboundResponse, HttpError> {
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
            serde_json::Value::Null => Vec::new(),
            serde_json::Value::String(text) => text.clone().into_bytes(),
            json => json.to_string().into_bytes(),
        };
        match stub.error.as_deref() {
            Some("timeout") => return Err(HttpError::Timeout),
            Some("connection") => return Err(HttpError::Connection("connection refused".into())),
            Some("too-large") => return Err(HttpError::ResponseTooLarge(MAX_SCRIPTED_BODY)),
            Some(other) => {
                return Err(HttpError::Connection(format!("scripted error `{other}`")));
            }
            None => {}
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
