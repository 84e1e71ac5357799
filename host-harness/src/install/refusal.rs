//! Why an inbound Connect lifecycle callback or Forge invocation was refused.

use super::keys::KeyError;

/// Why a request was refused; [`Refusal::code`] is its stable short name for logs and answers,
/// and the `Display` text says what exactly was wrong (never the token or a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No `Authorization` header, or not the dialect's scheme and one token.
    #[error("no credential: {0}")]
    NoCredential(&'static str),
    /// The token is longer than the dialect allows; carries its length and the bound.
    #[error("token of {len} bytes exceeds {max}")]
    Oversized {
        /// The token's length in bytes.
        len: usize,
        /// The longest token the dialect accepts.
        max: usize,
    },
    /// The token is not three base64url parts holding a JWT's JSON; says what is wrong.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is not `RS256` (e.g. `HS256` keyed with the public key, or `none`).
    #[error("algorithm `{0}` is not RS256")]
    Algorithm(String),
    /// The header has no `kid`, or one that is not a plain token (`[A-Za-z0-9._-]{1,128}`).
    #[error("the token's `kid` is missing or not a plain token")]
    BadKid,
    /// Atlassian's key source has no key of that `kid`.
    #[error("no public key for kid `{0}`")]
    UnknownKey(String),
    /// The key source could not be read; transient, worth a retry ([`Refusal::is_transient`]).
    #[error("public key unavailable: {0}")]
    KeyUnavailable(String),
    /// The signature does not verify under the `kid`'s key.
    #[error("signature does not verify")]
    BadSignature,
    /// A required claim is missing or of the wrong type; names it.
    #[error("token has no valid `{0}` claim")]
    MissingClaim(&'static str),
    /// `aud` does not name this app.
    #[error("audience is not this app")]
    Audience,
    /// `iss` is not the expected issuer (for Connect: not the body's `clientKey`).
    #[error("issuer is not the expected one")]
    Issuer,
    /// `exp` plus the allowed skew is not after `now`.
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`, in Unix seconds.
        exp: u64,
        /// The clock when the token was checked.
        now: u64,
    },
    /// `nbf` lies further in the future than the allowed skew.
    #[error("token not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf`, in Unix seconds.
        nbf: u64,
        /// The clock when the token was checked.
        now: u64,
    },
    /// The `qsh` claim is not the hash of this request: the token was made for another one.
    #[error("qsh does not match this request")]
    QshMismatch,
    /// The lifecycle body is not what Connect sends; says what is wrong.
    #[error("bad lifecycle body: {0}")]
    Body(&'static str),
    /// The body's `eventType` is not the event of the lifecycle path it was posted to.
    #[error("event `{event}` posted to `{path}`")]
    EventPath {
        /// The body's `eventType`.
        event: String,
        /// The request's path, relative to the app's base URL.
        path: String,
    },
}

impl Refusal {
    /// A stable short code for logs and answers.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NoCredential(_) => "no-credential",
            Refusal::Oversized { .. } => "oversized",
            Refusal::Malformed(_) => "malformed",
            Refusal::Algorithm(_) => "bad-alg",
            Refusal::BadKid => "bad-kid",
            Refusal::UnknownKey(_) => "unknown-key",
            Refusal::KeyUnavailable(_) => "key-unavailable",
            Refusal::BadSignature => "bad-signature",
            Refusal::MissingClaim(_) => "missing-claim",
            Refusal::Audience => "bad-aud",
            Refusal::Issuer => "bad-iss",
            Refusal::Expired { .. } => "expired",
            Refusal::NotYetValid { .. } => "not-yet-valid",
            Refusal::QshMismatch => "qsh-mismatch",
            Refusal::Body(_) => "bad-body",
            Refusal::EventPath { .. } => "event-path-mismatch",
        }
    }

    /// Whether the same request may pass later: only when the key source could not be read,
    /// which a server answers with a 503 so that Atlassian retries, rather than a 401.
    pub fn is_transient(&self) -> bool {
        matches!(self, Refusal::KeyUnavailable(_))
    }
}

impl From<KeyError> for Refusal {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::BadKid => Refusal::BadKid,
            KeyError::Unknown(kid) => Refusal::UnknownKey(kid),
            KeyError::Unavailable(why) => Refusal::KeyUnavailable(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unreadable_key_source_is_transient() {
        assert!(Refusal::KeyUnavailable("timeout".into()).is_transient());
        assert!(!Refusal::UnknownKey("k".into()).is_transient());
        assert!(!Refusal::BadSignature.is_transient());
    }

    #[test]
    fn key_errors_keep_their_meaning() {
        assert_eq!(Refusal::from(KeyError::BadKid).code(), "bad-kid");
        assert_eq!(
            Refusal::from(KeyError::Unknown("k".into())),
            Refusal::UnknownKey("k".into())
        );
        assert_eq!(
            Refusal::from(KeyError::Unavailable("503".into())).code(),
            "key-unavailable"
        );
    }
}
