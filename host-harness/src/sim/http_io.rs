//! Reading and answering the simulator's requests, on tiny_http: a test tool's server, which
//! needs none of the production server's bounds.

use std::io::Read;

/// A request as read, with its body cut at the reader's limit.
pub struct Incoming {
    pub method: String,
    pub path: String,
    /// Raw query string, without the `?`.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub fn read(request: &mut tiny_http::Request, limit: u64) -> Incoming {
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let headers = request
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_owned(),
                h.value.as_str().to_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    // A body the simulator cannot read is served as the part it read: Jira's API is the subject
    // here, not a client's manners.
    let _ = request.as_reader().take(limit).read_to_end(&mut body);
    Incoming {
        method: request.method().as_str().to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body,
    }
}

/// Answers `request`; a client that went away is not an error worth more than a shrug.
pub fn reply(
    request: tiny_http::Request,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) {
    let mut response = tiny_http::Response::from_data(body).with_status_code(status);
    for (name, value) in headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    let _ = request.respond(response);
}
