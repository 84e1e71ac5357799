//! `http`: the guest's only way out, through the egress policy, counted against the call's
//! request and byte budgets.

use std::time::Duration;

use super::CallState;
use super::record::{HttpExchange, body_value, string_map};
use crate::backends::OutboundRequest;
use crate::limits::LimitExceeded;
use crate::wit::jira_sync::plugin::http;

impl http::Host for CallState {
    async fn send(
        &mut self,
        request: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::Error>> {
        self.usage.http_calls += 1;
        if self.usage.http_calls > self.limits.http_calls {
            return Err(self.exceed(LimitExceeded::HttpCalls));
        }
        if self.past_deadline(Duration::ZERO) {
            return Err(self.exceed(LimitExceeded::Deadline));
        }
        self.usage.bytes += request.body.as_ref().map_or(0, |b| b.len() as u64);
        let method: &'static str = request.method.into();
        let mut exchange = HttpExchange {
            method: method.to_owned(),
            url: request.url.clone(),
            headers: string_map(&request.headers),
            body: body_value(request.body.as_deref().unwrap_or_default()),
            status: None,
            error: None,
        };
        let result = match self.egress.check(&request.url) {
            Ok(()) => {
                let http = self.backends.http.clone();
                let mut headers = request.headers;
                // The host's credential replaces whatever the guest sent; the trace keeps the
                // guest's request as it was, without the host's token.
                if let Some(authorization) = &self.authorization {
                    headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
                    headers.push(("Authorization".to_owned(), authorization.clone()));
                }
                let outbound = OutboundRequest {
                    method,
                    url: request.url,
                    headers,
                    body: request.body,
                };
                self.in_host(http.send(outbound)).await
            }
            Err(refused) => Err(refused),
        };
        let result = result.and_then(|response| {
            if response.body.len() as u64 > self.limits.response_bytes {
                Err(http::Error::ResponseTooLarge(self.limits.response_bytes))
            } else {
                Ok(response)
            }
        });
        match &result {
            Ok(response) => {
                exchange.status = Some(response.status);
                self.usage.bytes += response.body.len() as u64;
            }
            Err(e) => exchange.error = Some(e.into()),
        }
        self.record.http.push(exchange);
        if self.usage.bytes > self.limits.total_bytes {
            return Err(self.exceed(LimitExceeded::TotalBytes));
        }
        Ok(result.map(|r| http::Response {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }))
    }
}
