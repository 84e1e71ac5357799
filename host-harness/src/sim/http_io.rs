//! The simulator's HTTP: hyper on a small tokio runtime of the simulator's own. A test tool's
//! server, which needs none of the production server's bounds; what it must do is take every
//! connection as it arrives and let a thousand slow answers wait on timers, not on threads.
//! (tiny_http, used before, handed a new connection to a pool thread that another connection
//! had just taken, so under a burst some connections waited for a keep-alive one to close.)

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// A request as read, with its body cut at the reader's limit.
pub struct Incoming {
    pub method: String,
    pub path: String,
    /// Raw query string, without the `?`.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// An answer, and how long to hold it back.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
    /// Run just before the answer goes out (Jira sends a change's webhooks as it answers).
    pub then: Option<Box<dyn FnOnce() + Send>>,
}

/// Serves `listener` until the runtime it runs on shuts down: each request is read and given
/// to `answer`, whose answer is sent once its delay has passed.
pub async fn serve<F>(listener: std::net::TcpListener, answer: Arc<F>)
where
    F: Fn(Incoming) -> Answer + Send + Sync + 'static,
{
    let listener = match listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(listener))
    {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("jira simulator: cannot serve: {e}");
            return;
        }
    };
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of descriptors, say: try again shortly rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let answer = answer.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let answer = answer.clone();
                async move { Ok::<_, Infallible>(respond(request, answer.as_ref()).await) }
            });
            // A client that went away is not an error worth more than a shrug.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn respond<F>(request: Request<hyper::body::Incoming>, answer: &F) -> Response<Full<Bytes>>
where
    F: Fn(Incoming) -> Answer,
{
    let incoming = read(request, 1024 * 1024).await;
    let Answer {
        status,
        headers,
        body,
        delay,
        then,
    } = answer(incoming);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(then) = then {
        then();
    }
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

async fn read(request: Request<hyper::body::Incoming>, limit: usize) -> Incoming {
    let (parts, mut body_stream) = request.into_parts();
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    // A body the simulator cannot read is served as the part it read: Jira's API is the subject
    // here, not a client's manners.
    let mut body = Vec::new();
    while body.len() < limit {
        match body_stream.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    body.extend_from_slice(&data);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    body.truncate(limit);
    Incoming {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        body,
    }
}
