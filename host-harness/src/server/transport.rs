//! The server's HTTP transport on tokio and hyper: a cap on connections, timeouts on reading
//! headers and bodies, admission control in front of the component's workers, and graceful
//! shutdown. A stalled client holds at most a connection slot and never a worker: the body is
//! read in full, under a deadline, before a worker is asked for.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};

use super::{Context, Received, Reply, immediate, route};

/// How the transport bounds clients and work.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    /// Open connections at most; more are answered 503 and closed.
    pub max_connections: usize,
    /// Time a client has to send its request headers.
    pub header_timeout: Duration,
    /// Time a client has to send its request body.
    pub body_timeout: Duration,
    /// Largest request body read.
    pub max_body: usize,
    /// Requests admitted at once (running or waiting for a worker); more are answered 503.
    pub admitted: usize,
    /// How long shutdown waits for requests in flight.
    pub grace: Duration,
}

/// Serves `listener` until `stop` fires, then stops accepting and lets requests in flight finish
/// (within the grace period).
pub(super) async fn serve(
    listener: TcpListener,
    context: Arc<Context>,
    bounds: Bounds,
    mut stop: oneshot::Receiver<()>,
) {
    let connections = Arc::new(Semaphore::new(bounds.max_connections));
    let admission = Arc::new(Semaphore::new(bounds.admitted));
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors (or another transient failure): accepting again
                        // at once would spin; pause, and say why.
                        tracing::warn!(target: "jira_sync::server", "accept: {e}; pausing 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = connections.clone().try_acquire_owned() else {
                    tokio::spawn(refuse(stream));
                    continue;
                };
                let (context, admission) = (context.clone(), admission.clone());
                let service = service_fn(move |request| {
                    handle(context.clone(), admission.clone(), bounds, request)
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(bounds.header_timeout)
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                    drop(slot);
                });
            }
            _ = &mut stop => break,
        }
    }
    drop(listener);
    let open = graceful.count();
    if tokio::time::timeout(bounds.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            target: "jira_sync::server",
            open_at_shutdown = open,
            "the grace period ended with requests in flight; their answers are lost"
        );
    }
}

/// Answers a connection over the cap without serving it: 503, then the rest of what the client
/// sends is read and dropped for a moment, so that closing does not reset the connection before
/// the client has read the answer.
async fn refuse(mut stream: tokio::net::TcpStream) {
    let _ = stream
        .write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\
              Connection: close\r\n\r\n",
        )
        .await;
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 16 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut drained = 0;
        while drained < 1024 * 1024 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

async fn handle(
    context: Arc<Context>,
    admission: Arc<Semaphore>,
    bounds: Bounds,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    if let Some(answer) = immediate(&context, &path) {
        return Ok(reply(answer));
    }
    // A body announced larger than the bound is refused before any of it is read, rather
    // than after the client sent the bound's worth or the deadline passed.
    if body.size_hint().lower() > bounds.max_body as u64 {
        return Ok(reply(too_large()));
    }
    let body = match tokio::time::timeout(
        bounds.body_timeout,
        Limited::new(body, bounds.max_body).collect(),
    )
    .await
    {
        Err(_) => {
            return Ok(reply(Reply::json(
                408,
                json!({"error": "request body too slow"}),
            )));
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Ok(reply(too_large()));
        }
        Ok(Err(_)) => {
            return Ok(reply(Reply::json(
                400,
                json!({"error": "could not read the request body"}),
            )));
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let Ok(admitted) = admission.try_acquire_owned() else {
        context.metrics.busy();
        let mut busy = Reply::json(503, json!({"error": "the server is busy; retry shortly"}));
        busy.headers.push(("Retry-After".into(), "1".into()));
        return Ok(reply(busy));
    };
    let received = Received {
        method: parts.method.as_str().to_owned(),
        path,
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
    };
    let answer = match context.workers.clone().acquire_owned().await {
        // Component calls and the database run on the calls' runtime (webhooks on the
        // answers'), never on this one: a busy guest or a slow disk cannot delay accepting,
        // reading or `/healthz`.
        Ok(worker) => {
            let runtime = if super::is_webhook(&received.path) {
                context.answers.clone()
            } else {
                context.calls.clone()
            };
            runtime
                .spawn(async move {
                    let answer = route(&context, &received).await;
                    drop(worker);
                    answer
                })
                .await
                .unwrap_or_else(|_| {
                    Reply::json(500, json!({"error": "the request handler failed"}))
                })
        }
        Err(_) => Reply::json(503, json!({"error": "the server is shutting down"})),
    };
    drop(admitted);
    Ok(reply(answer))
}

fn too_large() -> Reply {
    Reply::json(413, json!({"error": "request body too large"}))
}

fn reply(answer: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
