//! Atlassian Connect JWTs: HS256 only, with the `qsh` claim binding a token to one request.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

/// Tokens larger than this are refused before any decoding (docs/behaviour.md#1.2).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why an inbound token was refused; [`JwtError::code`] is its stable name in logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// The token is longer than [`MAX_TOKEN_BYTES`]; carries its length.
    Oversized(usize),
    /// The token is not three base64url parts holding the JSON a JWT has; says what is wrong.
    Malformed(&'static str),
    /// A required claim (`iss`, `exp`, `qsh`) is missing, or a claim (those, or `iat` when
    /// present) is not of the expected type; names it.
    MissingClaim(&'static str),
    /// The header's `alg` is not `HS256`; Connect tokens are never signed otherwise.
    UnsupportedAlgorithm(String),
    /// The HS256 signature does not match under the installation's shared secret.
    BadSignature,
    /// `exp` (plus the allowed clock skew) is not after `now`.
    Expired {
        /// The token's `exp`, in Unix seconds.
        exp: u64,
        /// The host clock when the token was checked.
        now: u64,
    },
    /// The `qsh` claim is not the hash of this request, so the token was made for another one.
    QshMismatch,
    /// `iat` lies in the future, beyond the allowed clock skew.
    IssuedInFuture {
        /// The token's `iat`, in Unix seconds.
        iat: u64,
        /// The host clock when the token was checked.
        now: u64,
    },
    /// The token lives longer than the installation allows: `exp - iat` (or, without `iat`,
    /// `exp - now`) exceeds the maximum.
    LifetimeTooLong {
        /// The token's lifetime, in seconds.
        lifetime: u64,
        /// The longest lifetime allowed, in seconds.
        max: u64,
    },
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::Oversized(len) => {
                write!(f, "token of {len} bytes exceeds {MAX_TOKEN_BYTES}")
            }
            JwtError::Malformed(why) => write!(f, "malformed token: {why}"),
            JwtError::MissingClaim(claim) => write!(f, "token has no valid `{claim}` claim"),
            JwtError::UnsupportedAlgorithm(alg) => write!(f, "algorithm `{alg}` is not HS256"),
            JwtError::BadSignature => f.write_str("signature does not match"),
            JwtError::Expired { exp, now } => write!(f, "token expired at {exp} (now {now})"),
            JwtError::QshMismatch => f.write_str("qsh does not match this request"),
            JwtError::IssuedInFuture { iat, now } => {
                write!(f, "token issued in the future at {iat} (now {now})")
            }
            JwtError::LifetimeTooLong { lifetime, max } => {
                write!(f, "token lives {lifetime} s, longer than {max} s")
            }
        }
    }
}

impl JwtError {
    /// A stable short code for logs and answers.
    pub fn code(&self) -> &'static str {
        match self {
            JwtError::Oversized(_) => "oversized",
            JwtError::Malformed(_) => "malformed",
            JwtError::MissingClaim(_) => "missing-claim",
            JwtError::UnsupportedAlgorithm(_) => "unsupported-algorithm",
            JwtError::BadSignature => "bad-signature",
            JwtError::Expired { .. } => "expired",
            JwtError::QshMismatch => "qsh-mismatch",
            JwtError::IssuedInFuture { .. } => "issued-in-future",
            JwtError::LifetimeTooLong { .. } => "lifetime-too-long",
        }
    }
}

/// A token split and decoded, not yet verified.
#[derive(Debug, Clone)]
pub struct Unverified<'a> {
    /// The header's `alg`; only `HS256` verifies.
    pub alg: String,
    /// The `iss` claim: the installation's client key, used to find the secret to verify with.
    pub iss: String,
    /// The `exp` claim, in Unix seconds (a fractional value is truncated).
    pub exp: u64,
    /// The `iat` claim, in Unix seconds (a fractional value is truncated), when the token has one.
    pub iat: Option<u64>,
    /// The `qsh` claim: the hash of the request the token was made for (Connect's tokens have
    /// one; an OAuth app's do not).
    pub qsh: Option<String>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

/// Splits and decodes `token`; checks shape only.
pub fn decode(token: &str) -> Result<Unverified<'_>, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::Oversized(token.len()));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("expected three dot-separated parts"));
    };
    let header = decode_json(
        header,
        "header is not base64url",
        "header is not a JSON object",
    )?;
    let claims = decode_json(
        claims,
        "claims are not base64url",
        "claims are not a JSON object",
    )?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| JwtError::Malformed("signature is not base64url"))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwtError::Malformed("header has no `alg`"))?
        .to_owned();
    let string_claim = |name: &'static str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(JwtError::MissingClaim(name))
    };
    let seconds = |value: &Value| value.as_f64().filter(|secs| *secs >= 0.0).map(|s| s as u64);
    let exp = claims
        .get("exp")
        .and_then(seconds)
        .ok_or(JwtError::MissingClaim("exp"))?;
    let iat = match claims.get("iat") {
        None => None,
        Some(iat) => Some(seconds(iat).ok_or(JwtError::MissingClaim("iat"))?),
    };
    Ok(Unverified {
        alg,
        iss: string_claim("iss")?,
        exp,
        iat,
        qsh: match claims.get("qsh") {
            None => None,
            Some(qsh) => Some(
                qsh.as_str()
                    .ok_or(JwtError::MissingClaim("qsh"))?
                    .to_owned(),
            ),
        },
        signing_input: &token[..token.rfind('.').unwrap_or_default()],
        signature,
    })
}

impl Unverified<'_> {
    /// Checks, in the order of docs/behaviour.md#1.2: algorithm, signature, expiry (with `skew`
    /// seconds of leeway), and, when `accepted_qsh` is given (a Connect token), that the token
    /// has a qsh and it is one of them.
    pub fn verify(
        &self,
        secret: &str,
        now: u64,
        skew: u64,
        accepted_qsh: Option<&[String]>,
    ) -> Result<(), JwtError> {
        if self.alg != "HS256" {
            return Err(JwtError::UnsupportedAlgorithm(self.alg.clone()));
        }
        mac(secret, self.signing_input)
            .verify_slice(&self.signature)
            .map_err(|_| JwtError::BadSignature)?;
        if self.exp.saturating_add(skew) <= now {
            return Err(JwtError::Expired { exp: self.exp, now });
        }
        if let Some(accepted) = accepted_qsh {
            let qsh = self.qsh.as_ref().ok_or(JwtError::MissingClaim("qsh"))?;
            if !accepted.contains(qsh) {
                return Err(JwtError::QshMismatch);
            }
        }
        Ok(())
    }

    /// Checks the token's age, after [`Unverified::verify`] (docs/behaviour.md#1.2): `iat`, when
    /// present, is not later than `now + skew`, and the token lives at most `max_lifetime`
    /// seconds (`exp - iat`; without `iat`, `exp - now`).
    pub fn check_age(&self, now: u64, skew: u64, max_lifetime: u64) -> Result<(), JwtError> {
        if let Some(iat) = self.iat
            && iat > now.saturating_add(skew)
        {
            return Err(JwtError::IssuedInFuture { iat, now });
        }
        let lifetime = self.exp.saturating_sub(self.iat.unwrap_or(now));
        if lifetime > max_lifetime {
            return Err(JwtError::LifetimeTooLong {
                lifetime,
                max: max_lifetime,
            });
        }
        Ok(())
    }
}

/// The claims of a Connect token; field order is the serialised order.
#[derive(Debug, Clone, Serialize)]
pub struct Claims<'a> {
    /// Issuer: the app key for outbound tokens.
    pub iss: &'a str,
    /// Issued at, in Unix seconds.
    pub iat: u64,
    /// Expiry, in Unix seconds.
    pub exp: u64,
    /// The hash of the one request this token may authorise (see [`crate::qsh`]).
    pub qsh: &'a str,
}

/// Signs `claims` with HS256 under `secret`.
pub fn sign(claims: &Claims<'_>, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
    let claims = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(claims).expect("claims serialise: strings and integers only"));
    let signing_input = format!("{header}.{claims}");
    let signature = URL_SAFE_NO_PAD.encode(mac(secret, &signing_input).finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// HMAC-SHA256 under `secret`, fed `signing_input` (`header.claims`).
fn mac(secret: &str, signing_input: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any size");
    mac.update(signing_input.as_bytes());
    mac
}

/// One base64url part of a token decoded to a JSON object; the two messages say which part failed.
fn decode_json(
    part: &str,
    not_base64: &'static str,
    not_object: &'static str,
) -> Result<Value, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed(not_base64))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(JwtError::Malformed(not_object)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(exp: u64) -> String {
        sign(
            &Claims {
                iss: "jira:1",
                iat: 100,
                exp,
                qsh: "abc",
            },
            "s3cret",
        )
    }

    #[test]
    fn sign_then_verify() {
        let t = token(200);
        let u = decode(&t).unwrap();
        assert_eq!(
            (u.iss.as_str(), u.exp, u.qsh.as_deref()),
            ("jira:1", 200, Some("abc"))
        );
        assert_eq!(
            u.verify("s3cret", 199, 0, Some(&["abc".to_owned()])),
            Ok(())
        );
        assert_eq!(
            u.verify("other", 199, 0, Some(&["abc".to_owned()])),
            Err(JwtError::BadSignature)
        );
        assert_eq!(
            u.verify("s3cret", 199, 0, Some(&["abd".to_owned()])),
            Err(JwtError::QshMismatch)
        );
        assert!(matches!(
            u.verify("s3cret", 200, 0, Some(&["abc".to_owned()])),
            Err(JwtError::Expired { .. })
        ));
        assert_eq!(
            u.verify("s3cret", 200, 5, Some(&["abc".to_owned()])),
            Ok(())
        );
    }

    #[test]
    fn iat_in_the_future_and_long_lifetimes_are_refused() {
        let t = token(200);
        let u = decode(&t).unwrap();
        assert_eq!(u.iat, Some(100));
        assert_eq!(u.check_age(100, 0, 100), Ok(()));
        assert_eq!(
            u.check_age(99, 0, 100),
            Err(JwtError::IssuedInFuture { iat: 100, now: 99 })
        );
        assert_eq!(u.check_age(99, 1, 100), Ok(()));
        assert_eq!(
            u.check_age(150, 0, 99),
            Err(JwtError::LifetimeTooLong {
                lifetime: 100,
                max: 99
            })
        );
        assert_eq!(
            u.check_age(u64::MAX, u64::MAX, u64::MAX),
            Ok(()),
            "no overflow"
        );
    }

    #[test]
    fn without_iat_the_lifetime_counts_from_now() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#);
        let claims = URL_SAFE_NO_PAD.encode(br#"{"iss":"x","exp":5000,"qsh":"q"}"#);
        let t = format!("{header}.{claims}.");
        let u = decode(&t).unwrap();
        assert_eq!(u.iat, None);
        assert_eq!(u.check_age(1400, 0, 3600), Ok(()));
        assert!(matches!(
            u.check_age(1399, 0, 3600),
            Err(JwtError::LifetimeTooLong { lifetime: 3601, .. })
        ));
        let claims = URL_SAFE_NO_PAD.encode(br#"{"iss":"x","exp":5000,"qsh":"q","iat":"soon"}"#);
        assert_eq!(
            decode(&format!("{header}.{claims}.")).unwrap_err(),
            JwtError::MissingClaim("iat")
        );
    }

    #[test]
    fn tampered_claims_fail_the_signature() {
        let t = token(200);
        let forged_claims =
            URL_SAFE_NO_PAD.encode(br#"{"iss":"jira:1","iat":100,"exp":999999,"qsh":"abc"}"#);
        let mut parts: Vec<&str> = t.split('.').collect();
        parts[1] = &forged_claims;
        let forged = parts.join(".");
        assert_eq!(
            decode(&forged)
                .unwrap()
                .verify("s3cret", 199, 0, Some(&["abc".to_owned()])),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens_are_errors() {
        assert!(matches!(decode("abc"), Err(JwtError::Malformed(_))));
        assert!(matches!(decode("a.b.c"), Err(JwtError::Malformed(_))));
        assert!(matches!(
            decode(&"a".repeat(MAX_TOKEN_BYTES + 1)),
            Err(JwtError::Oversized(_))
        ));
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#);
        let claims = URL_SAFE_NO_PAD.encode(br#"{"iss":"x","exp":1}"#);
        let token = format!("{header}.{claims}.");
        let no_qsh = decode(&token).unwrap();
        assert_eq!(no_qsh.qsh, None, "an OAuth app's token has no qsh");
        assert_eq!(
            no_qsh.verify("", 0, 0, Some(&["abc".to_owned()])),
            Err(JwtError::BadSignature),
            "the signature is checked first"
        );
        let claims = URL_SAFE_NO_PAD.encode(br#"{"iss":"x","exp":1,"qsh":7}"#);
        assert_eq!(
            decode(&format!("{header}.{claims}.")).unwrap_err(),
            JwtError::MissingClaim("qsh")
        );
    }

    #[test]
    fn a_connect_check_needs_a_qsh_and_an_oauth_check_needs_none() {
        let claims = URL_SAFE_NO_PAD.encode(br#"{"iss":"client-id","iat":100,"exp":200}"#);
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
        let input = format!("{header}.{claims}");
        let signature = URL_SAFE_NO_PAD.encode(mac("s3cret", &input).finalize().into_bytes());
        let token = format!("{input}.{signature}");
        let u = decode(&token).unwrap();
        assert_eq!(u.verify("s3cret", 150, 0, None), Ok(()));
        assert_eq!(
            u.verify("s3cret", 150, 0, Some(&["abc".to_owned()])),
            Err(JwtError::MissingClaim("qsh"))
        );
    }
}
