//! What a call reads and asks while it is being recorded: backends that pass every call through
//! to the server's own and note, on the way, the platform state the call read before changing
//! anything, and every exchange with Jira with its whole answer. Only calls being recorded run
//! over these; the others pay nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backends::{
    BackendResult, Backends, BoxFuture, CacheBackend, Claim, Effect, Field, Group, HttpBackend,
    HttpResult, IssueField, OutboundRequest, OutboundResponse, Platform,
};
use crate::limits::Limits;
use crate::wit::jira_sync::plugin::http::Error as HttpError;
use crate::wit::jira_sync::plugin::types::Installation;

/// One exchange with Jira: the request as the backend got it, and what came back.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: &'static str,
    /// The request's URL.
    pub url: String,
    /// Jira's answer, or the transport error.
    pub answer: Result<OutboundResponse, HttpError>,
}

/// What the call read, each value as it was the first time the call read it: the state the
/// call started from (its own changes are staged, and never read back through the backends).
#[derive(Debug, Default)]
pub struct Seen {
    /// Issue key -> linked groups, per installation.
    pub links: BTreeMap<(String, String), Vec<u64>>,
    /// Email (as asked) -> the platform user, when there is one.
    pub users: BTreeMap<String, u64>,
    /// Groups that exist.
    pub groups: BTreeMap<u64, Group>,
    /// Deliveries (installation, id) found handled.
    pub handled: Vec<(String, String)>,
    /// Deliveries (installation, id) another call held.
    pub in_progress: Vec<(String, String)>,
    /// Watermarks read.
    pub watermarks: BTreeMap<(String, String, Field), i64>,
    /// Cache entries found live, by the host's key, unless the call had written the key first.
    pub cache: BTreeMap<String, String>,
    /// Cache keys the call wrote or dropped: a later read sees the call's own value.
    pub cache_written: Vec<String>,
    /// Jira exchanges, in order.
    pub http: Vec<Exchange>,
}

/// The server's backends, seen through a recording.
pub struct Capture {
    backends: Backends,
    seen: Arc<Mutex<Seen>>,
    now: u64,
}

impl Capture {
    /// Records what calls over [`Capture::backends`] read from `inner`; the clock is read now,
    /// as the call's start.
    pub fn new(inner: &Backends) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let backends = Backends {
            http: Arc::new(CapturedHttp {
                inner: inner.http.clone(),
                seen: seen.clone(),
            }),
            cache: Arc::new(CapturedCache {
                inner: inner.cache.clone(),
                seen: seen.clone(),
            }),
            platform: Arc::new(CapturedPlatform {
                inner: inner.platform.clone(),
                seen: seen.clone(),
            }),
            clock: inner.clock.clone(),
        };
        Capture {
            now: inner.clock.now(),
            backends,
            seen,
        }
    }

    /// The backends to run the recorded call over.
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// When the call started (Unix seconds).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// What the call read and asked.
    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        lock(&self.seen)
    }
}

fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    // A panic elsewhere while noting leaves notes that are still worth writing.
    seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct CapturedHttp {
    inner: Arc<dyn HttpBackend>,
    seen: Arc<Mutex<Seen>>,
}

impl HttpBackend for CapturedHttp {
    fn send(&self, request: OutboundRequest) -> BoxFuture<'_, HttpResult> {
        Box::pin(async move {
            let (method, url) = (request.method, request.url.clone());
            let answer = self.inner.send(request).await;
            lock(&self.seen).http.push(Exchange {
                method,
                url,
                answer: answer.clone(),
            });
            answer
        })
    }
}

struct CapturedCache {
    inner: Arc<dyn CacheBackend>,
    seen: Arc<Mutex<Seen>>,
}

impl CacheBackend for CapturedCache {
    fn get<'a>(&'a self, key: &'a str, now: u64) -> BoxFuture<'a, BackendResult<Option<String>>> {
        Box::pin(async move {
            let value = self.inner.get(key, now).await?;
            let mut seen = lock(&self.seen);
            if let Some(value) = &value
                && !seen.cache_written.iter().any(|k| k == key)
            {
                seen.cache
                    .entry(key.to_owned())
                    .or_insert_with(|| value.clone());
            }
            Ok(value)
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl_seconds: u32,
        now: u64,
    ) -> BoxFuture<'a, BackendResult<()>> {
        lock(&self.seen).cache_written.push(key.to_owned());
        self.inner.set(key, value, ttl_seconds, now)
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, BackendResult<()>> {
        lock(&self.seen).cache_written.push(key.to_owned());
        self.inner.delete(key)
    }
}

struct CapturedPlatform {
    inner: Arc<dyn Platform>,
    seen: Arc<Mutex<Seen>>,
}

impl Platform for CapturedPlatform {
    fn installation<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<(Installation, Limits)>>> {
        // The recording writes the installation from the server's own record of it.
        self.inner.installation(client_key)
    }

    fn outbound_authorization<'a>(
        &'a self,
        client_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Option<String>>> {
        // A credential: never written; a replay's requests go nowhere real.
        self.inner.outbound_authorization(client_key)
    }

    fn linked_groups<'a>(
        &'a self,
        client_key: &'a str,
        issue_key: &'a str,
    ) -> BoxFuture<'a, BackendResult<Vec<u64>>> {
        Box::pin(async move {
            let groups = self.inner.linked_groups(client_key, issue_key).await?;
            lock(&self.seen)
                .links
                .entry((client_key.to_owned(), issue_key.to_owned()))
                .or_insert_with(|| groups.clone());
            Ok(groups)
        })
    }

    fn user_by_email<'a>(&'a self, email: &'a str) -> BoxFuture<'a, BackendResult<Option<u64>>> {
        Box::pin(async move {
            let user = self.inner.user_by_email(email).await?;
            if let Some(user) = user {
                lock(&self.seen)
                    .users
                    .entry(email.to_owned())
                    .or_insert(user);
            }
            Ok(user)
        })
    }

    fn group(&self, group: u64) -> BoxFuture<'_, BackendResult<Option<Group>>> {
        Box::pin(async move {
            let found = self.inner.group(group).await?;
            if let Some(found) = found {
                lock(&self.seen).groups.entry(group).or_insert(found);
            }
            Ok(found)
        })
    }

    fn links_of_group(&self, group: u64) -> BoxFuture<'_, BackendResult<Vec<(String, String)>>> {
        self.inner.links_of_group(group)
    }

    fn user_emails(&self, user: u64) -> BoxFuture<'_, BackendResult<Vec<String>>> {
        self.inner.user_emails(user)
    }

    fn handled<'a>(
        &'a self,
        client_key: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, BackendResult<bool>> {
        Box::pin(async move {
            let handled = self.inner.handled(client_key, id).await?;
            if handled {
                lock(&self.seen)
                    .handled
                    .push((client_key.to_owned(), id.to_owned()));
            }
            Ok(handled)
        })
    }

    fn watermark<'a>(
        &'a self,
        client_key: &'a str,
        issue_key: &'a str,
        field: Field,
    ) -> BoxFuture<'a, BackendResult<Option<i64>>> {
        Box::pin(async move {
            let watermark = self.inner.watermark(client_key, issue_key, field).await?;
            if let Some(ms) = watermark {
                lock(&self.seen)
                    .watermarks
                    .entry((client_key.to_owned(), issue_key.to_owned(), field))
                    .or_insert(ms);
            }
            Ok(watermark)
        })
    }

    fn claim<'a>(
        &'a self,
        client_key: &'a str,
        id: &'a str,
        owner: u64,
        now: u64,
        lease_until: u64,
    ) -> BoxFuture<'a, BackendResult<Claim>> {
        Box::pin(async move {
            let claim = self
                .inner
                .claim(client_key, id, owner, now, lease_until)
                .await?;
            let delivery = (client_key.to_owned(), id.to_owned());
            match claim {
                Claim::Claimed => {}
                Claim::Handled => lock(&self.seen).handled.push(delivery),
                Claim::InProgress => lock(&self.seen).in_progress.push(delivery),
            }
            Ok(claim)
        })
    }

    fn release<'a>(
        &'a self,
        client_key: &'a str,
        id: &'a str,
        owner: u64,
    ) -> BoxFuture<'a, BackendResult<()>> {
        self.inner.release(client_key, id, owner)
    }

    fn commit<'a>(
        &'a self,
        effects: &'a [Effect],
    ) -> BoxFuture<'a, BackendResult<Vec<IssueField>>> {
        self.inner.commit(effects)
    }
}
