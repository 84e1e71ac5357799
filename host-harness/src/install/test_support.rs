//! For the unit tests: a loopback key server that counts its fetches, the simulator's key
//! pairs (two, so that one can sign for the other), and token signing.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::Value;

pub const KEY_A_PRIVATE: &str = include_str!("../sim/keys/connect-install.pem");
pub const KEY_A_PUBLIC: &str = include_str!("../sim/keys/connect-install.pub.pem");
pub const KEY_B_PRIVATE: &str = include_str!("../sim/keys/forge-invocation.pem");
pub const KEY_B_JWKS: &str = include_str!("../sim/keys/jwks.json");
/// The kid `KEY_B_JWKS` gives key B.
pub const KEY_B_KID: &str = "sim-forge-invocation-1";

/// Answers `GET path` with the status and body set for it (404 otherwise), one connection per
/// request; its thread ends with the test binary.
pub struct KeyServer {
    url: String,
    routes: Arc<Mutex<HashMap<String, (u16, String)>>>,
    fetches: Arc<Mutex<Vec<String>>>,
}

impl KeyServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let routes: Arc<Mutex<HashMap<String, (u16, String)>>> = Arc::default();
        let fetches: Arc<Mutex<Vec<String>>> = Arc::default();
        let (served, seen) = (routes.clone(), fetches.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                // The rest of the head, up to the blank line; a GET has no body.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
                seen.lock().unwrap().push(path.clone());
                let (status, body) = served
                    .lock()
                    .unwrap()
                    .get(&path)
                    .cloned()
                    .unwrap_or((404, String::new()));
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        KeyServer {
            url,
            routes,
            fetches,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn serve(&self, path: &str, status: u16, body: &str) {
        self.routes
            .lock()
            .unwrap()
            .insert(path.to_owned(), (status, body.to_owned()));
    }

    /// The paths fetched so far, in order.
    pub fn fetches(&self) -> Vec<String> {
        self.fetches.lock().unwrap().clone()
    }
}

/// Runs `future` on a runtime of its own with an IO driver, as reqwest needs.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// An RS256 token of `claims` with header `kid`, signed with the private PEM `key`.
pub fn rs256(kid: &str, claims: &Value, key: &str) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(key.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// The "public key as HMAC secret" attack: HS256 keyed with the bytes of a public PEM.
pub fn hs256_with(kid: &str, claims: &Value, secret: &str) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// An unsigned token (`alg: none`), which jsonwebtoken will not make.
pub fn unsigned(kid: &str, claims: &Value) -> String {
    let header = serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid});
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}
