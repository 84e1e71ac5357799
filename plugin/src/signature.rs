//! Admin webhooks' `X-Hub-Signature` (docs/behaviour.md#10.3): `sha256=` and the lowercase hex
//! HMAC-SHA256 of the raw body, keyed with the webhook's secret.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const HEADER: &str = "x-hub-signature";

/// The only algorithm accepted, as the value's prefix.
const PREFIX: &str = "sha256=";

/// Why a signature was refused; [`SignatureError::code`] is its stable name in logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The value is not `sha256=` and 64 hex digits (another algorithm, say `sha1=`, included).
    Malformed,
    /// The HMAC does not match under the installation's secret.
    BadSignature,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::Malformed => {
                f.write_str("signature must be `sha256=` and 64 hex digits")
            }
            SignatureError::BadSignature => f.write_str("signature does not match"),
        }
    }
}

impl SignatureError {
    /// A stable short code for logs and answers.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Malformed => "malformed-signature",
            SignatureError::BadSignature => "bad-signature",
        }
    }
}

/// Checks `value` (the header's) against `body` under `secret`, in constant time.
pub fn verify(secret: &str, body: &[u8], value: &str) -> Result<(), SignatureError> {
    let hex = value
        .trim()
        .strip_prefix(PREFIX)
        .ok_or(SignatureError::Malformed)?;
    let expected = decode_hex(hex).ok_or(SignatureError::Malformed)?;
    mac(secret, body)
        .verify_slice(&expected)
        .map_err(|_| SignatureError::BadSignature)
}

/// The header value for `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!(
        "{PREFIX}{}",
        crate::qsh::hex(&mac(secret, body).finalize().into_bytes())
    )
}

fn mac(secret: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    mac
}

/// 32 bytes from 64 hex digits of either case; `None` for anything else.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR: &str = "sha256=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9";

    #[test]
    fn the_published_test_vector() {
        assert_eq!(sign("It's a Secret to Everybody", b"Hello World!"), VECTOR);
        assert_eq!(
            verify("It's a Secret to Everybody", b"Hello World!", VECTOR),
            Ok(())
        );
        assert_eq!(
            verify(
                "It's a Secret to Everybody",
                b"Hello World!",
                &VECTOR.to_uppercase().replace("SHA256=", "sha256=")
            ),
            Ok(()),
            "hex digits of either case"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let secret = "It's a Secret to Everybody";
        assert_eq!(
            verify(secret, b"Hello World?", VECTOR),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify("another secret", b"Hello World!", VECTOR),
            Err(SignatureError::BadSignature)
        );
        for value in [
            "",
            "sha256=",
            &VECTOR[..VECTOR.len() - 1],
            &format!("{VECTOR}0"),
            &VECTOR.replace("sha256=", "sha1="),
            &VECTOR.replace("sha256=", ""),
            "sha256=zz771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9",
            "sha256=ää71c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e13326",
        ] {
            assert_eq!(
                verify(secret, b"Hello World!", value),
                Err(SignatureError::Malformed),
                "{value}"
            );
        }
    }
}
