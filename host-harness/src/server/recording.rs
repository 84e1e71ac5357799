//! Recording mode (docs/behaviour.md#12): while it is on for an installation, every component
//! call bound to it is written as a scenario file under
//! `<recordings_dir>/<client key>/<started>/NNNNNN-<kind>.json`, until the session's byte bound
//! is reached. Switched per installation at run time through the admin API; a server's sessions
//! are its own (servers sharing a database each record the calls they run).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Context;
use crate::backends::{Backends, Store};
use crate::recording::{self, capture::Capture};
use crate::replay::scenario::Step;
use crate::runtime::Call;

/// What a client key's directory name escapes: all but letters, digits, `-` and `_` (so that
/// no key names a path of its own, `..` included).
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// A session's bound unless the request names one: a few hundred calls.
const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// The largest bound a session may ask for.
const MAX_MAX_BYTES: u64 = 1024 * 1024 * 1024;

/// What `PUT /admin/installations/{key}/recording` asks for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    /// Bytes of scenario files the session may write in all (default 16 MiB, at most 1 GiB).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Replace emails, account ids and display names by pseudonyms.
    #[serde(default)]
    pub pseudonymise: bool,
}

fn default_max_bytes() -> u64 {
    DEFAULT_MAX_BYTES
}

/// One installation's recording session, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
struct Session {
    directory: PathBuf,
    max_bytes: u64,
    pseudonymise: bool,
    /// Bytes written so far.
    bytes: u64,
    /// Files written so far.
    files: u64,
    /// Calls not written because the bound was reached: the session records nothing more.
    full: bool,
    /// Calls whose file could not be written (the server's log says why).
    failed: u64,
}

/// The server's recording sessions, by client key.
pub struct Recordings {
    root: PathBuf,
    sessions: Mutex<HashMap<String, Session>>,
    /// How many sessions are on: calls look no further while there are none.
    active: AtomicUsize,
    /// Sessions started so far.
    started: AtomicUsize,
}

impl Recordings {
    /// No session yet; files go under `root`.
    pub fn new(root: PathBuf) -> Self {
        Recordings {
            root,
            sessions: Mutex::new(HashMap::new()),
            active: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts (or restarts, in a new directory) recording installation `client_key`, whose
    /// existence the caller checked; the session's state, or the HTTP status and reason of a
    /// refusal.
    pub fn start(&self, client_key: &str, start: &Start, now: u64) -> Result<Value, (u16, String)> {
        if start.max_bytes == 0 || start.max_bytes > MAX_MAX_BYTES {
            return Err((400, format!("max_bytes must be 1 to {MAX_MAX_BYTES}")));
        }
        let key = utf8_percent_encode(client_key, ESCAPED).to_string();
        // Numbered, so that a session restarted within the same second gets a directory of
        // its own.
        let n = self.started.fetch_add(1, Ordering::Relaxed);
        let directory = self.root.join(key).join(format!("{now}-{n}"));
        std::fs::create_dir_all(&directory)
            .map_err(|e| (500, format!("create {}: {e}", directory.display())))?;
        let session = Session {
            directory,
            max_bytes: start.max_bytes,
            pseudonymise: start.pseudonymise,
            bytes: 0,
            files: 0,
            full: false,
            failed: 0,
        };
        let state = json!(session);
        if self
            .sessions()
            .insert(client_key.to_owned(), session)
            .is_none()
        {
            self.active.fetch_add(1, Ordering::SeqCst);
        }
        Ok(state)
    }

    /// Stops recording `client_key`: the session's last state, if there was one.
    pub fn stop(&self, client_key: &str) -> Option<Value> {
        let session = self.sessions().remove(client_key)?;
        self.active.fetch_sub(1, Ordering::SeqCst);
        Some(json!(session))
    }

    /// The session of `client_key`, if one is on.
    pub fn state(&self, client_key: &str) -> Option<Value> {
        self.sessions().get(client_key).map(|s| json!(s))
    }

    /// The installation a call is bound to and a capture for it, when that installation is
    /// being recorded and its session has room left. `tenant` is asked only then.
    fn capture(
        &self,
        tenant: impl FnOnce() -> Option<String>,
        backends: &Backends,
    ) -> Option<(String, Capture)> {
        if self.active.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let tenant = tenant()?;
        let on = self.sessions().get(&tenant).is_some_and(|s| !s.full);
        on.then(|| (tenant, Capture::new(backends)))
    }

    /// Writes the scenario of one captured call of `client_key`: `step` asks for it again,
    /// `trace` is what it did. Failures are logged and counted, never the call's.
    pub async fn write(
        &self,
        store: &dyn Store,
        client_key: &str,
        capture: Capture,
        step: Step,
        trace: &Value,
    ) {
        let Some(pseudonymise) = self.sessions().get(client_key).map(|s| s.pseudonymise) else {
            return;
        };
        let kind = trace["kind"].as_str().unwrap_or("call").to_owned();
        let text = match store.installation_spec(client_key).await {
            Ok(Some(spec)) => recording::scenario(&capture, &spec, step, trace, pseudonymise)
                .and_then(|scenario| Ok(serde_json::to_string_pretty(&scenario)?))
                .map_err(|e| e.to_string()),
            Ok(None) => Err("the installation is gone".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        let text = match text {
            Ok(text) => text,
            Err(why) => {
                tracing::warn!(target: "jira_sync::recording", %client_key, "not recorded: {why}");
                if let Some(session) = self.sessions().get_mut(client_key) {
                    session.failed += 1;
                }
                return;
            }
        };
        let path = {
            let mut sessions = self.sessions();
            let Some(session) = sessions.get_mut(client_key) else {
                return;
            };
            if session.bytes + text.len() as u64 > session.max_bytes {
                if !session.full {
                    tracing::warn!(
                        target: "jira_sync::recording", %client_key, max_bytes = session.max_bytes,
                        "recording full: later calls are not recorded"
                    );
                }
                session.full = true;
                return;
            }
            session.bytes += text.len() as u64;
            session.files += 1;
            session
                .directory
                .join(format!("{:06}-{kind}.json", session.files))
        };
        if let Err(e) = tokio::fs::write(&path, text).await {
            tracing::warn!(target: "jira_sync::recording", path = %path.display(), "write: {e}");
            if let Some(session) = self.sessions().get_mut(client_key) {
                session.failed += 1;
            }
        }
    }
}

impl Context {
    /// Runs one component call (`run`, over the backends it is given) bound to the installation
    /// `tenant` names: over the server's own backends, or, while that installation is being
    /// recorded, over a capture of them, then writes the call as a scenario whose `step` asks
    /// for it again and whose expectation is its `trace`.
    pub(super) async fn call_recorded<T>(
        &self,
        tenant: impl FnOnce() -> Option<String>,
        step: impl FnOnce() -> Step,
        trace: impl FnOnce(&Call<T>) -> Value,
        run: impl AsyncFnOnce(&Backends) -> Call<T>,
    ) -> Call<T> {
        let Some((tenant, capture)) = self.recordings.capture(tenant, &self.backends) else {
            return run(&self.backends).await;
        };
        let call = run(capture.backends()).await;
        let trace = trace(&call);
        self.recordings
            .write(&*self.store, &tenant, capture, step(), &trace)
            .await;
        call
    }
}
