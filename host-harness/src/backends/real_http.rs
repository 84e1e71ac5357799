//! An [`HttpBackend`] that sends real requests (reqwest over rustls), with a timeout and a cap
//! on response bodies, never following redirects.
//!
//! The requests run on the backend's own small tokio runtime, whatever drives the call: a call
//! on the server's runtime and a call through the blocking wrapper (which has no reactor) share
//! one connection pool, whose connections always live on the runtime that made them.

use std::time::Duration;

use super::{BoxFuture, HttpBackend, HttpResult, OutboundRequest, OutboundResponse};
use crate::wit::jira_sync::plugin::http::Error as HttpError;

/// Limits of the real backend.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Whole-request deadline: connect, send, and read the full response.
    pub timeout: Duration,
    /// Responses with a larger body are refused.
    pub max_response_bytes: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
        }
    }
}

/// Real HTTP requests (rustls), never following redirects.
pub struct RealHttp {
    client: reqwest::Client,
    limits: HttpLimits,
    // `Option` so that `drop` can shut it down without blocking (it may be dropped on another
    // runtime's thread, where a blocking shutdown panics).
    io: Option<tokio::runtime::Runtime>,
}

impl RealHttp {
    /// A client under `limits`.
    ///
    /// # Panics
    /// When the operating system refuses a thread for the client's runtime.
    pub fn new(limits: HttpLimits) -> Self {
        let client = reqwest::Client::builder()
            .timeout(limits.timeout)
            // Following a redirect would let a site send the guest past the egress check.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("build the HTTP client (rustls, no redirects)");
        let io = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("jira-sync-http")
            .enable_all()
            .build()
            .expect("start the HTTP client's runtime");
        RealHttp {
            client,
            limits,
            io: Some(io),
        }
    }
}

impl Drop for RealHttp {
    fn drop(&mut self) {
        if let Some(io) = self.io.take() {
            io.shutdown_background();
        }
    }
}

impl HttpBackend for RealHttp {
    fn send(&self, request: OutboundRequest) -> BoxFuture<'_, HttpResult> {
        let (client, limit) = (self.client.clone(), self.limits.max_response_bytes);
        let task = self
            .io
            .as_ref()
            .map(|io| io.spawn(exchange(client, request, limit)));
        Box::pin(async move {
            match task {
                Some(task) => task
                    .await
                    .unwrap_or_else(|e| Err(HttpError::Connection(format!("request task: {e}")))),
                None => Err(HttpError::Connection("the HTTP client is shut down".into())),
            }
        })
    }
}

/// Sends `request` and reads the answer, at most `limit` bytes of body.
async fn exchange(client: reqwest::Client, request: OutboundRequest, limit: u64) -> HttpResult {
    let method = match request.method {
        "GET" => reqwest::Method::GET,
        "DELETE" => reqwest::Method::DELETE,
        "POST" => reqwest::Method::POST,
        "PUT" => reqwest::Method::PUT,
        other => return Err(HttpError::InvalidRequest(format!("method {other}"))),
    };
    let mut builder = client.request(method, &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let mut response = builder.send().await.map_err(transport_error)?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(HttpError::ResponseTooLarge(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(HttpError::ResponseTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(OutboundResponse {
        status,
        headers,
        body,
    })
}

fn transport_error(e: reqwest::Error) -> HttpError {
    if e.is_timeout() {
        HttpError::Timeout
    } else if e.is_builder() {
        HttpError::InvalidRequest(e.to_string())
    } else {
        // The chain names the cause (refused, reset, TLS), not just "error sending request".
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        HttpError::Connection(message)
    }
}
