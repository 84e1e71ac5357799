//! Atlassian's public keys, fetched over HTTP and cached by `kid`: Connect's install keys, one
//! PEM file per kid ([`ConnectKeys`]), and Forge's invocation keys, one JWKS ([`ForgeKeys`]).
//!
//! Every fetch has a deadline and a bound on the body, and follows no redirect: the URLs are
//! the operator's configuration, and the `kid` joined to Connect's is checked to be a plain
//! token first, so a token cannot steer a fetch anywhere else.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use serde_json::Value;

/// Atlassian's production server of Connect install keys; a key is at `{server}/{kid}`.
pub const CONNECT_KEY_SERVER: &str = "https://connect-install-keys.atlassian.com";

/// Atlassian's production JWKS of Forge invocation keys.
pub const FORGE_JWKS_URL: &str = "https://forge.cdn.prod.atlassian-dev.net/.well-known/jwks.json";

/// The least time between two fetches of the Forge JWKS: a token with an unknown `kid` makes
/// one fetch (keys rotate), but a stream of them cannot hammer Atlassian's CDN or slow every
/// request down.
pub const FORGE_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// Whole-fetch deadline: connect, send, read the body.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A 4096-bit RSA public key is about 800 bytes of PEM.
const MAX_PEM_BYTES: u64 = 16 * 1024;
/// Room for a few dozen keys.
const MAX_JWKS_BYTES: u64 = 256 * 1024;
/// How long a `kid` the key server does not know is answered unknown without asking again.
pub const UNKNOWN_KID_TTL: Duration = Duration::from_secs(300);
/// Unknown kids remembered at most; past it the oldest memory is dropped.
const MAX_UNKNOWN_KIDS: usize = 4096;
/// The longest `kid` fetched or looked up.
const MAX_KID_LEN: usize = 128;

/// Why no key came back for a `kid`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The `kid` is not a plain token (`[A-Za-z0-9._-]{1,128}`, and not `.` or `..`).
    #[error("kid is not a plain token")]
    BadKid,
    /// The key source has no key of this `kid`.
    #[error("no key for kid `{0}`")]
    Unknown(String),
    /// The key source could not be read, or served something that is not a key; says why.
    #[error("{0}")]
    Unavailable(String),
}

/// Connect's install keys: `GET {server}/{kid}` answers the key as a PEM, cached by kid.
///
/// The cache has no bound and no expiry: only keys the configured server served enter it, and
/// a kid names one key for good (Atlassian rotates by publishing new kids). A kid the server
/// does not know is remembered as unknown for [`UNKNOWN_KID_TTL`], so that a forged token
/// repeated many times costs the key server one request, not one each.
pub struct ConnectKeys {
    server: String,
    client: reqwest::Client,
    cache: Mutex<HashMap<String, DecodingKey>>,
    unknown: Mutex<HashMap<String, Instant>>,
}

impl ConnectKeys {
    /// Keys from `key_server_url` ([`CONNECT_KEY_SERVER`] in production).
    ///
    /// # Panics
    /// When the HTTP client cannot be built (its TLS backend failed to start).
    pub fn new(key_server_url: &str) -> Self {
        ConnectKeys {
            server: key_server_url.trim_end_matches('/').to_owned(),
            client: client(),
            cache: Mutex::default(),
            unknown: Mutex::default(),
        }
    }

    /// The key of `kid`, from the cache or else from the key server. A kid the server answered
    /// unknown is unknown without asking again for [`UNKNOWN_KID_TTL`].
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, KeyError> {
        check_kid(kid)?;
        if let Some(key) = lock(&self.cache).get(kid) {
            return Ok(key.clone());
        }
        if lock(&self.unknown)
            .get(kid)
            .is_some_and(|since| since.elapsed() < UNKNOWN_KID_TTL)
        {
            return Err(KeyError::Unknown(kid.to_owned()));
        }
        let url = format!("{}/{kid}", self.server);
        let Some(pem) = fetch(&self.client, &url, MAX_PEM_BYTES).await? else {
            let mut unknown = lock(&self.unknown);
            unknown.retain(|_, since| since.elapsed() < UNKNOWN_KID_TTL);
            if unknown.len() >= MAX_UNKNOWN_KIDS {
                // A flood of made-up kids: forget them rather than grow without bound.
                unknown.clear();
            }
            unknown.insert(kid.to_owned(), Instant::now());
            return Err(KeyError::Unknown(kid.to_owned()));
        };
        let key = DecodingKey::from_rsa_pem(&pem).map_err(|e| {
            KeyError::Unavailable(format!("GET {url}: not an RSA public key PEM: {e}"))
        })?;
        lock(&self.cache).insert(kid.to_owned(), key.clone());
        Ok(key)
    }
}

/// Forge's invocation keys: one JWKS, fetched at the first use and again, at most once per
/// refetch interval, when a token names a kid it lacks.
pub struct ForgeKeys {
    url: String,
    client: reqwest::Client,
    keys: Mutex<HashMap<String, DecodingKey>>,
    /// When the JWKS was last fetched (or tried), and why that failed if it did; held across a
    /// fetch, so that requests waiting on it find the keys that fetch brought instead of
    /// fetching again.
    last_fetch: tokio::sync::Mutex<Option<(Instant, Option<KeyError>)>>,
    refetch_interval: Duration,
}

impl ForgeKeys {
    /// Keys from the JWKS at `jwks_url` ([`FORGE_JWKS_URL`] in production), refetched at most
    /// every [`FORGE_REFETCH_INTERVAL`].
    ///
    /// # Panics
    /// When the HTTP client cannot be built (its TLS backend failed to start).
    pub fn new(jwks_url: &str) -> Self {
        ForgeKeys {
            url: jwks_url.to_owned(),
            client: client(),
            keys: Mutex::default(),
            last_fetch: tokio::sync::Mutex::new(None),
            refetch_interval: FORGE_REFETCH_INTERVAL,
        }
    }

    /// The same, refetched at most every `interval` instead.
    pub fn with_refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// The key of `kid`: from the keys last fetched, or else from a new fetch of the JWKS if
    /// the last one is at least the refetch interval old. A failed fetch counts as one, and
    /// until the next its error stands for the keys: a kid is not called unknown on the word of
    /// a JWKS that could not be read.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, KeyError> {
        check_kid(kid)?;
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let mut last_fetch = self.last_fetch.lock().await;
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        if let Some((at, failure)) = &*last_fetch
            && at.elapsed() < self.refetch_interval
        {
            return Err(failure
                .clone()
                .unwrap_or_else(|| KeyError::Unknown(kid.to_owned())));
        }
        let fetched = self.fetch_keys().await;
        *last_fetch = Some((Instant::now(), fetched.clone().err()));
        // Replaced, not merged: a key Atlassian withdrew is no longer trusted.
        *lock(&self.keys) = fetched?;
        self.cached(kid)
            .ok_or_else(|| KeyError::Unknown(kid.to_owned()))
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, DecodingKey>, KeyError> {
        let body = fetch(&self.client, &self.url, MAX_JWKS_BYTES)
            .await?
            .ok_or_else(|| KeyError::Unavailable(format!("GET {}: not found", self.url)))?;
        jwks(&body).map_err(|why| KeyError::Unavailable(format!("GET {}: {why}", self.url)))
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        lock(&self.keys).get(kid).cloned()
    }
}

/// The RS256 signing keys of a JWKS, by kid. Each key is read on its own, and one of a kind
/// jsonwebtoken does not know, or not for RS256 signatures, is skipped: a JWKS may hold keys
/// for other uses, and they must not make the ones we need unreadable.
fn jwks(body: &[u8]) -> Result<HashMap<String, DecodingKey>, &'static str> {
    let set: Value = serde_json::from_slice(body).map_err(|_| "not JSON")?;
    let keys = set
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("not a JWKS: no `keys` array")?;
    Ok(keys
        .iter()
        .filter_map(|key| {
            let jwk: Jwk = serde_json::from_value(key.clone()).ok()?;
            let for_rs256 = matches!(jwk.algorithm, AlgorithmParameters::RSA(_))
                && matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256))
                && matches!(
                    jwk.common.public_key_use,
                    None | Some(PublicKeyUse::Signature)
                );
            let kid = jwk.common.key_id.clone().filter(|_| for_rs256)?;
            Some((kid, DecodingKey::from_jwk(&jwk).ok()?))
        })
        .collect())
}

fn check_kid(kid: &str) -> Result<(), KeyError> {
    let plain = (1..=MAX_KID_LEN).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        // Plain, but joined to the key server's URL they would climb its path.
        && kid != "."
        && kid != "..";
    if plain { Ok(()) } else { Err(KeyError::BadKid) }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("build the key client (rustls, no redirects)")
}

/// The body of a 200 answer to `GET url`, at most `limit` bytes; `None` when the server says
/// there is no such file: 404, or 403, which is how S3 (and CloudFront before it) answers a
/// missing object without list rights. Any other answer is [`KeyError::Unavailable`].
async fn fetch(
    client: &reqwest::Client,
    url: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, KeyError> {
    let unavailable =
        |e: reqwest::Error| KeyError::Unavailable(format!("GET {url}: {}", chain(&e)));
    let mut response = client.get(url).send().await.map_err(unavailable)?;
    match response.status().as_u16() {
        200 => {}
        403 | 404 => return Ok(None),
        status => {
            return Err(KeyError::Unavailable(format!(
                "GET {url}: answered {status}"
            )));
        }
    }
    let too_large = || KeyError::Unavailable(format!("GET {url}: body over {limit} bytes"));
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// The error with its causes: reqwest's own text alone is "error sending request".
fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

/// The caches hold no invariant a panicking holder could break.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
