//! An [`HttpBackend`] that sends real requests, with a timeout and a cap on response bodies.

use std::time::Duration;

use ureq::Agent;

use super::{HttpBackend, OutboundRequest, OutboundResponse};
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
    agent: Agent,
    limits: HttpLimits,
}

impl RealHttp {
    /// A client under `limits`.
    pub fn new(limits: HttpLimits) -> Self {
        let config = Agent::config_builder()
            .timeout_global(Some(limits.timeout))
            // A 4xx or 5xx is an answer for the guest to read, not a transport error.
            .http_status_as_error(false)
            // Following a redirect would let a site send the guest past the egress check.
            .max_redirects(0)
            .build();
        RealHttp {
            agent: Agent::new_with_config(config),
            limits,
        }
    }
}

impl HttpBackend for RealHttp {
    fn send(&self, request: &OutboundRequest) -> Result<OutboundResponse, HttpError> {
        let body = request.body.clone().unwrap_or_default();
        let result = match request.method {
            "GET" => with_headers(self.agent.get(&request.url), request).call(),
            "DELETE" => with_headers(self.agent.delete(&request.url), request).call(),
            "POST" => with_headers(self.agent.post(&request.url), request).send(&body[..]),
            "PUT" => with_headers(self.agent.put(&request.url), request).send(&body[..]),
            other => return Err(HttpError::InvalidRequest(format!("method {other}"))),
        };
        let mut response = result.map_err(transport_error)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(self.limits.max_response_bytes)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => {
                    HttpError::ResponseTooLarge(self.limits.max_response_bytes)
                }
                other => transport_error(other),
            })?;
        Ok(OutboundResponse {
            status,
            headers,
            body,
        })
    }
}

fn with_headers<B>(
    mut builder: ureq::RequestBuilder<B>,
    request: &OutboundRequest,
) -> ureq::RequestBuilder<B> {
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    builder
}

fn transport_error(e: ureq::Error) -> HttpError {
    match e {
        ureq::Error::Timeout(_) => HttpError::Timeout,
        ureq::Error::BadUri(why) => HttpError::InvalidRequest(why),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => HttpError::Timeout,
        other => HttpError::Connection(other.to_string()),
    }
}
