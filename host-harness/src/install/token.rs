//! What Connect's and Forge's RS256 tokens share: the credential in its header, the `kid` read
//! before any key is fetched, the signature, and the time and audience claims.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::Refusal;

/// The claims of a token, as JSON.
pub(super) type Claims = Map<String, Value>;

/// The token of the `Authorization` header: `scheme` in any case, one space, then a token
/// without whitespace; whitespace around the whole value is ignored, as HTTP does.
pub(super) fn credential<'a>(
    headers: &'a [(String, String)],
    scheme: &str,
) -> Result<&'a str, Refusal> {
    let value = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.trim())
        .ok_or(Refusal::NoCredential("no Authorization header"))?;
    let token = value
        .split_once(' ')
        .filter(|(given, _)| given.eq_ignore_ascii_case(scheme))
        .map(|(_, token)| token)
        .ok_or(Refusal::NoCredential("not the expected scheme and a token"))?;
    if token.is_empty() || token.contains(|c: char| c.is_ascii_whitespace()) {
        return Err(Refusal::NoCredential("not the expected scheme and a token"));
    }
    Ok(token)
}

/// The `kid` of an RS256 token of at most `max_len` bytes. Everything else is refused before a
/// key is fetched: an oversized or malformed token, and any `alg` but RS256, in particular
/// `HS256` (which a careless verifier would key with the public key, known to all) and `none`.
pub(super) fn rs256_kid(token: &str, max_len: usize) -> Result<String, Refusal> {
    if token.len() > max_len {
        return Err(Refusal::Oversized {
            len: token.len(),
            max: max_len,
        });
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, _, _] = parts[..] else {
        return Err(Refusal::Malformed("not three dot-separated parts"));
    };
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| Refusal::Malformed("header is not base64url"))?;
    let header: Value = serde_json::from_slice(&header)
        .map_err(|_| Refusal::Malformed("header is not a JSON object"))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(Refusal::Malformed("header has no alg"))?;
    if alg != "RS256" {
        // Bounded: the value is the sender's and ends up in logs.
        return Err(Refusal::Algorithm(alg.chars().take(32).collect()));
    }
    header
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(Refusal::BadKid)
}

/// The claims of `token` once its RS256 signature verifies under `key`. No claim is checked
/// here: the callers check them against the clock they are given (jsonwebtoken would use the
/// system's), each refusal under its own code.
pub(super) fn verified_claims(token: &str, key: &DecodingKey) -> Result<Claims, Refusal> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Claims>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => Refusal::BadSignature,
            ErrorKind::Base64(_) => Refusal::Malformed("a part is not base64url"),
            ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                Refusal::Malformed("claims are not a JSON object")
            }
            _ => Refusal::Malformed("not an RS256 token"),
        })
}

/// `exp` (required) plus `skew` must be after `now`; `nbf`, when present, at most `skew` after.
pub(super) fn check_times(claims: &Claims, now: u64, skew: u64) -> Result<(), Refusal> {
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or(Refusal::MissingClaim("exp"))?;
    if exp.saturating_add(skew) <= now {
        return Err(Refusal::Expired { exp, now });
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_u64().ok_or(Refusal::MissingClaim("nbf"))?;
        if nbf > now.saturating_add(skew) {
            return Err(Refusal::NotYetValid { nbf, now });
        }
    }
    Ok(())
}

/// `aud`, a string or an array of strings, must hold a value `is_ours` accepts.
pub(super) fn check_audience(
    claims: &Claims,
    is_ours: impl Fn(&str) -> bool,
) -> Result<(), Refusal> {
    let ours = match claims.get("aud") {
        Some(Value::String(aud)) => is_ours(aud),
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(is_ours),
        _ => return Err(Refusal::MissingClaim("aud")),
    };
    if ours { Ok(()) } else { Err(Refusal::Audience) }
}

/// The string claim `name`, required.
pub(super) fn string_claim<'a>(claims: &'a Claims, name: &'static str) -> Result<&'a str, Refusal> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .ok_or(Refusal::MissingClaim(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(value: &str) -> Vec<(String, String)> {
        vec![("AUTHORIZATION".into(), value.into())]
    }

    #[test]
    fn credential_wants_the_scheme_one_space_and_a_token() {
        assert_eq!(credential(&headers(" jwt abc "), "JWT"), Ok("abc"));
        assert_eq!(credential(&headers("Bearer abc"), "bearer"), Ok("abc"));
        for bad in ["Bearer abc", "JWT", "JWT ", "JWT a b", "JWTabc", "JWT  abc"] {
            assert_eq!(
                credential(&headers(bad), "JWT").map_err(|e| e.code()),
                Err("no-credential"),
                "{bad:?}"
            );
        }
        assert_eq!(
            credential(&[], "JWT").map_err(|e| e.code()),
            Err("no-credential")
        );
    }

    fn token_with_header(header: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header))
    }

    #[test]
    fn the_kid_is_read_only_from_an_rs256_header() {
        assert_eq!(
            rs256_kid(&token_with_header(r#"{"alg":"RS256","kid":"k1"}"#), 100),
            Ok("k1".into())
        );
        let code = |token: &str| rs256_kid(token, 8192).map_err(|e| e.code());
        assert_eq!(
            code(&token_with_header(r#"{"alg":"RS256"}"#)),
            Err("bad-kid")
        );
        assert_eq!(
            code(&token_with_header(r#"{"alg":"RS256","kid":7}"#)),
            Err("bad-kid")
        );
        assert_eq!(
            code(&token_with_header(r#"{"alg":"none","kid":"k"}"#)),
            Err("bad-alg")
        );
        assert_eq!(
            code(&token_with_header(r#"{"alg":"HS256","kid":"k"}"#)),
            Err("bad-alg")
        );
        assert_eq!(code(&token_with_header(r#"{"kid":"k"}"#)), Err("malformed"));
        assert_eq!(code(&token_with_header("[]")), Err("malformed"));
        assert_eq!(code(&token_with_header("{")), Err("malformed"));
        assert_eq!(code("a.b"), Err("malformed"));
        assert_eq!(code("a.b.c.d"), Err("malformed"));
        assert_eq!(code("!!!.e30.c2ln"), Err("malformed"));
        assert_eq!(code(""), Err("malformed"));
        assert_eq!(
            rs256_kid(&"a".repeat(101), 100),
            Err(Refusal::Oversized { len: 101, max: 100 })
        );
    }

    #[test]
    fn a_long_alg_is_cut_for_the_logs() {
        let long = format!(r#"{{"alg":"{}","kid":"k"}}"#, "x".repeat(1000));
        assert_eq!(
            rs256_kid(&token_with_header(&long), 8192),
            Err(Refusal::Algorithm("x".repeat(32)))
        );
    }

    fn claims(value: Value) -> Claims {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn times_allow_the_skew_and_no_more() {
        let c = claims(json!({"exp": 100, "nbf": 50}));
        assert_eq!(check_times(&c, 99, 0), Ok(()));
        assert_eq!(
            check_times(&c, 100, 0),
            Err(Refusal::Expired { exp: 100, now: 100 })
        );
        assert_eq!(check_times(&c, 104, 5), Ok(()));
        assert_eq!(check_times(&c, 50, 0), Ok(()));
        assert_eq!(
            check_times(&c, 49, 0),
            Err(Refusal::NotYetValid { nbf: 50, now: 49 })
        );
        assert_eq!(check_times(&c, 45, 5), Ok(()));
        assert_eq!(
            check_times(&c, 44, 5),
            Err(Refusal::NotYetValid { nbf: 50, now: 44 })
        );
        assert_eq!(
            check_times(&claims(json!({"exp": "100"})), 1, 0),
            Err(Refusal::MissingClaim("exp"))
        );
        assert_eq!(
            check_times(&claims(json!({"exp": 100, "nbf": -1})), 1, 0),
            Err(Refusal::MissingClaim("nbf"))
        );
        assert_eq!(
            check_times(&claims(json!({"exp": 100})), 1, u64::MAX),
            Ok(())
        );
    }

    #[test]
    fn audience_is_a_string_or_an_array() {
        let is_ours = |aud: &str| aud == "me";
        assert_eq!(
            check_audience(&claims(json!({"aud": "me"})), is_ours),
            Ok(())
        );
        assert_eq!(
            check_audience(&claims(json!({"aud": [1, "x", "me"]})), is_ours),
            Ok(())
        );
        assert_eq!(
            check_audience(&claims(json!({"aud": ["x"]})), is_ours),
            Err(Refusal::Audience)
        );
        assert_eq!(
            check_audience(&claims(json!({"aud": 1})), is_ours),
            Err(Refusal::MissingClaim("aud"))
        );
        assert_eq!(
            check_audience(&claims(json!({})), is_ours),
            Err(Refusal::MissingClaim("aud"))
        );
    }
}
