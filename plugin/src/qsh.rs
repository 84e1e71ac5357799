//! Atlassian Connect's query string hash (docs/behaviour.md#4).
//!
//! Written by hand: no crate implements this canonical form, and its details (`+` and `%20` both
//! decode to a space, repeated keys joined with `,`, RFC 3986 encoding, trailing `/` stripped)
//! are exactly what must match Atlassian's implementation byte for byte.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// `METHOD&PATH&QUERY` for a request whose `path` is already relative to the site's base URL.
pub fn canonical_request(method: &str, path: &str, query: &str) -> String {
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        canonical_path(path),
        canonical_query(query)
    )
}

/// The lowercase hex SHA-256 of [`canonical_request`].
pub fn qsh(method: &str, path: &str, query: &str) -> String {
    hex(&Sha256::digest(
        canonical_request(method, path, query).as_bytes(),
    ))
}

/// The qsh of an absolute `url` relative to `base_url`, whose own path (if any) is removed.
pub fn qsh_for_url(method: &str, url: &str, base_url: &str) -> String {
    let (path, query) = split_url(url);
    let base_path = split_url(base_url).0.trim_end_matches('/');
    let relative = path.strip_prefix(base_path).unwrap_or(path);
    qsh(method, relative, query)
}

/// The path and the raw query of an absolute or origin-relative URL (fragment dropped).
pub fn split_url(url: &str) -> (&str, &str) {
    let url = url.split('#').next().unwrap_or_default();
    let path_and_query = match url.split_once("://") {
        Some((_, rest)) => rest.find(['/', '?']).map_or("", |i| &rest[i..]),
        None => url,
    };
    path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""))
}

/// Atlassian's canonical path: relative, `/`-prefixed, `&` escaped, and one trailing `/`
/// removed. docs/behaviour.md#4 says every trailing `/`; atlassian-jwt (and so Jira) removes one,
/// and tokens must agree with theirs byte for byte. [`accepted_qshs`] takes both forms inbound.
fn canonical_path(path: &str) -> String {
    let mut path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    if path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    let mut canonical = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            // `&` separates the canonical request's parts, so Atlassian escapes it in the path.
            '&' => canonical.push_str("%26"),
            // atlassian-jwt reads the path through Node's url.parse, which escapes these.
            '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '"' | '\'' | '<' | '>' | '\\' | '^'
            | '`' | '{' | '|' | '}' => canonical.push_str(&format!("%{:02X}", c as u32)),
            c => canonical.push(c),
        }
    }
    canonical
}

/// The qsh values an inbound request may carry: Atlassian's, and that of docs/behaviour.md#4
/// (every trailing `/` stripped) when the path ends with several.
pub fn accepted_qshs(method: &str, path: &str, query: &str) -> Vec<String> {
    let mut accepted = vec![qsh(method, path, query)];
    let trimmed = path.trim_end_matches('/');
    if trimmed.len() + 1 < path.len() {
        accepted.push(qsh(method, trimmed, query));
    }
    accepted
}

/// Sorted as JavaScript sorts strings (UTF-16 code units), like atlassian-jwt: keys by their
/// decoded form, each key's values likewise, and only then encoded.
fn canonical_query(query: &str) -> String {
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .filter(|(key, _)| key != "jwt")
        .collect();
    params.sort_by(|a, b| {
        a.0.encode_utf16()
            .cmp(b.0.encode_utf16())
            .then_with(|| a.1.encode_utf16().cmp(b.1.encode_utf16()))
    });
    let mut out = String::new();
    let mut i = 0;
    while i < params.len() {
        let key = &params[i].0;
        let end = i + params[i..].iter().take_while(|(k, _)| k == key).count();
        let values: Vec<String> = params[i..end].iter().map(|(_, v)| encode(v)).collect();
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&encode(key));
        out.push('=');
        out.push_str(&values.join(","));
        i = end;
    }
    out
}

/// Form-style decoding: `+` is a space, `%XX` a byte; a stray `%` stays as it is.
fn decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// RFC 3986 encoding with upper-case hex; a space is `%20`.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// Lowercase hex of `bytes`, the form a qsh claim carries.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vector() {
        assert_eq!(
            canonical_request(
                "get",
                "/extensions/jira/configure/",
                "a=1&b=2&c=3&test=pass"
            ),
            "GET&/extensions/jira/configure&a=1&b=2&c=3&test=pass"
        );
        assert_eq!(
            qsh(
                "GET",
                "/extensions/jira/configure/",
                "a=1&b=2&c=3&test=pass"
            ),
            "36f43b88d6a8cdf89bb8f744e2378bb0ceb6378e80ab0b513082a8b72396bccc"
        );
    }

    #[test]
    fn query_is_sorted_and_jwt_dropped() {
        assert_eq!(
            canonical_request("POST", "/x", "test=pass&jwt=abc&a=1"),
            "POST&/x&a=1&test=pass"
        );
    }

    #[test]
    fn repeated_keys_join_sorted_values() {
        assert_eq!(canonical_query("b=2&a=z&a=y&a=x"), "a=x,y,z&b=2");
    }

    #[test]
    fn spaces_plus_and_reserved_characters() {
        assert_eq!(
            canonical_query("q=a+b&r=a%20b&s=a*b~c&t=%2B&u=!'()&v="),
            "q=a%20b&r=a%20b&s=a%2Ab~c&t=%2B&u=%21%27%28%29&v="
        );
        assert_eq!(
            canonical_query("email=bob%40example.com"),
            "email=bob%40example.com"
        );
        assert_eq!(canonical_query("k=%E2%9C%93"), "k=%E2%9C%93");
        assert_eq!(canonical_query("k=✓"), "k=%E2%9C%93");
        assert_eq!(canonical_query("k=100%"), "k=100%25");
    }

    #[test]
    fn trailing_slashes_and_empty_paths() {
        assert_eq!(canonical_request("GET", "/a/b/", ""), "GET&/a/b&");
        assert_eq!(canonical_request("GET", "/a/b//", ""), "GET&/a/b/&");
        assert_eq!(canonical_request("GET", "", ""), "GET&/&");
        assert_eq!(canonical_request("GET", "/", ""), "GET&/&");
        assert_eq!(canonical_request("GET", "/a&b", ""), "GET&/a%26b&");
        assert_eq!(
            canonical_request("GET", "/it's a {b}", ""),
            "GET&/it%27s%20a%20%7Bb%7D&"
        );
    }

    #[test]
    fn inbound_accepts_atlassian_and_spec_trailing_slashes() {
        assert_eq!(accepted_qshs("GET", "/a/", "").len(), 1);
        let both = accepted_qshs("GET", "/a//", "");
        assert_eq!(both, [qsh("GET", "/a//", ""), qsh("GET", "/a", "")]);
        assert_ne!(both[0], both[1]);
    }

    #[test]
    fn keys_sort_by_their_decoded_form() {
        // Encoded, "a%C3%A9" would sort before "a~"; atlassian-jwt sorts the decoded keys.
        assert_eq!(canonical_query("a%C3%A9=1&a~=2"), "a~=2&a%C3%A9=1");
        assert_eq!(canonical_query("k=%C3%A9&k=~"), "k=~,%C3%A9");
    }

    #[test]
    fn base_url_with_a_path_is_removed() {
        assert_eq!(
            qsh_for_url(
                "GET",
                "https://host.example/jira/rest/api/2/status?b=1",
                "https://host.example/jira/"
            ),
            qsh("GET", "/rest/api/2/status", "b=1")
        );
        assert_eq!(
            qsh_for_url(
                "GET",
                "https://host.example/rest/api/2/status",
                "https://host.example"
            ),
            qsh("GET", "/rest/api/2/status", "")
        );
    }

    #[test]
    fn split_url_handles_the_shapes_we_build() {
        assert_eq!(split_url("https://h/p?q=1#f"), ("/p", "q=1"));
        assert_eq!(split_url("https://h"), ("", ""));
        assert_eq!(split_url("https://h?x=1"), ("", "x=1"));
        assert_eq!(split_url("/p/q?x"), ("/p/q", "x"));
    }
}
