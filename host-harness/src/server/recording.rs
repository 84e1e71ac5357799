//! Recording mode (docs/behaviour.md#12): while it is on for an installation, every component
//! call bound to it is written as a scenario file under
//! `<recordings_dir>/<client key>/<started>-<n>/NNNNNN-<kind>.json`, until the session's byte
//! bound is reached. Switched per installation at run time through the admin API; a server's
//! sessions are its own (servers sharing a database each record the calls they run). Files are
//! built and written after the call, on the blocking pool: a recorded webhook is answered as
//! soon as an unrecorded one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Context;
use crate::backends::{BackendResult, Backends};
use crate::installation::InstallationSpec;
use crate::recording::{self, Asked, capture::Capture};
use crate::runtime::Call;

/// What a client key's directory name escapes: all but letters, digits, `-` and `_` (so that
/// no key names a path of its own, `..` included).
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');
/// A session's bound unless the request names one: a few hundred calls.
const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// The largest bound a session may ask for.
const MAX_MAX_BYTES: u64 = 1024 * 1024 * 1024;
/// How long stopping a session waits for its files still being written.
const STOP_WAIT: Duration = Duration::from_secs(30);

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
    /// A call was not written because the bound was reached: the session records nothing more.
    full: bool,
    /// Calls whose file could not be built or written (the server's log says why).
    failed: u64,
    /// Calls recorded whose file is still being written.
    #[serde(skip)]
    writing: usize,
    /// The number of the session's next file (a file that failed keeps its number).
    #[serde(skip)]
    next: u64,
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

/// A recorded call, handed to the blocking pool to be written.
struct Pending {
    client_key: String,
    /// The session's directory when the call started: a session restarted since gets nothing.
    directory: PathBuf,
    pseudonymise: bool,
    /// The installation as the call started.
    spec: BackendResult<Option<InstallationSpec>>,
    capture: Capture,
    asked: Asked,
    trace: Value,
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

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts (or restarts, in a new directory) recording installation `client_key`, whose
    /// existence the caller checked; the session's state, or the HTTP status and reason of a
    /// refusal.
    pub async fn start(
        &self,
        client_key: &str,
        start: &Start,
        now: u64,
    ) -> Result<Value, (u16, String)> {
        if start.max_bytes == 0 || start.max_bytes > MAX_MAX_BYTES {
            return Err((400, format!("max_bytes must be 1 to {MAX_MAX_BYTES}")));
        }
        let key = utf8_percent_encode(client_key, ESCAPED).to_string();
        // Numbered, so that a session restarted within the same second gets a directory of
        // its own.
        let n = self.started.fetch_add(1, Ordering::Relaxed);
        let directory = self.root.join(key).join(format!("{now}-{n}"));
        private_dir(&directory)
            .await
            .map_err(|e| (500, format!("create {}: {e}", directory.display())))?;
        let session = Session {
            directory,
            max_bytes: start.max_bytes,
            pseudonymise: start.pseudonymise,
            bytes: 0,
            files: 0,
            full: false,
            failed: 0,
            writing: 0,
            next: 1,
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

    /// Stops recording `client_key` once the files of its calls so far are written (within
    /// [`STOP_WAIT`]): the session's last state, if there was one.
    pub async fn stop(&self, client_key: &str) -> Option<Value> {
        let deadline = Instant::now() + STOP_WAIT;
        loop {
            {
                let mut sessions = self.sessions();
                let writing = sessions.get(client_key)?.writing;
                if writing == 0 || Instant::now() >= deadline {
                    let session = sessions.remove(client_key)?;
                    self.active.fetch_sub(1, Ordering::SeqCst);
                    return Some(json!(session));
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The session of `client_key`, if one is on.
    pub fn state(&self, client_key: &str) -> Option<Value> {
        self.sessions().get(client_key).map(|s| json!(s))
    }

    /// The installation a call is bound to, when that installation is being recorded and its
    /// session has room left. `tenant` is asked only then.
    fn recorded_tenant(&self, tenant: impl FnOnce() -> Option<String>) -> Option<String> {
        if self.active.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let tenant = tenant()?;
        let on = self.sessions().get(&tenant).is_some_and(|s| !s.full);
        on.then_some(tenant)
    }

    /// Hands a recorded call to the blocking pool, to be built and written there.
    fn write_later(self: &Arc<Self>, mut call: Pending) {
        {
            let mut sessions = self.sessions();
            let Some(session) = sessions.get_mut(&call.client_key) else {
                return;
            };
            session.writing += 1;
            call.directory = session.directory.clone();
            call.pseudonymise = session.pseudonymise;
        }
        let recordings = self.clone();
        tokio::task::spawn_blocking(move || {
            let client_key = call.client_key.clone();
            recordings.write(call);
            if let Some(session) = recordings.sessions().get_mut(&client_key) {
                session.writing = session.writing.saturating_sub(1);
            }
        });
    }

    /// Builds and writes one recorded call's scenario. Failures are logged and counted, never
    /// the call's.
    fn write(&self, call: Pending) {
        let Pending {
            client_key,
            directory,
            pseudonymise,
            spec,
            capture,
            asked,
            trace,
        } = call;
        let kind = trace["kind"].as_str().unwrap_or("call").to_owned();
        let text = match spec {
            Ok(Some(spec)) => recording::scenario(&capture, &spec, asked, &trace, pseudonymise)
                .and_then(|scenario| Ok(serde_json::to_string_pretty(&scenario)?))
                .map_err(|e| e.to_string()),
            Ok(None) => Err("the installation is gone".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        let fail = |why: &str| {
            tracing::warn!(target: "jira_sync::recording", %client_key, "not recorded: {why}");
            if let Some(session) = self.sessions().get_mut(&client_key) {
                session.failed += 1;
            }
        };
        let text = match text {
            Ok(text) => text,
            Err(why) => return fail(&why),
        };
        let path = {
            let mut sessions = self.sessions();
            let Some(session) = sessions
                .get_mut(&client_key)
                .filter(|s| s.directory == directory)
            else {
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
            // Reserved under the lock, so that calls written at once never pass the bound.
            session.bytes += text.len() as u64;
            session.files += 1;
            session.next += 1;
            directory.join(format!("{:06}-{kind}.json", session.next - 1))
        };
        if let Err(e) = private_file(&path, text.as_bytes()) {
            let mut sessions = self.sessions();
            if let Some(session) = sessions
                .get_mut(&client_key)
                .filter(|s| s.directory == directory)
            {
                session.bytes -= text.len() as u64;
                session.files -= 1;
                session.failed += 1;
            }
            tracing::warn!(target: "jira_sync::recording", path = %path.display(), "write: {e}");
        }
    }
}

/// A directory only the server's user may read: recordings hold the platform's data.
async fn private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(path).await
}

/// A new file only the server's user may read.
fn private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

impl Context {
    /// Runs one component call (`run`, over the backends it is given) bound to the installation
    /// `tenant` names: over the server's own backends, or, while that installation is being
    /// recorded, over a capture of them; the recorded call is then written as a scenario that
    /// `asked` asks for again and whose expectation is its `trace`.
    pub(super) async fn call_recorded<T>(
        &self,
        tenant: impl FnOnce() -> Option<String>,
        asked: impl FnOnce() -> Asked,
        trace: impl FnOnce(&Call<T>) -> Value,
        run: impl AsyncFnOnce(&Backends) -> Call<T>,
    ) -> Call<T> {
        let Some(client_key) = self.recordings.recorded_tenant(tenant) else {
            return run(&self.backends).await;
        };
        // The installation as the call starts: the secret its proof is judged by.
        let spec = self.store.installation_spec(&client_key).await;
        let capture = Capture::new(&self.backends);
        let call = run(capture.backends()).await;
        self.recordings.write_later(Pending {
            client_key,
            directory: PathBuf::new(),
            pseudonymise: false,
            spec,
            capture,
            asked: asked(),
            trace: trace(&call),
        });
        call
    }
}
