//! What proves a request comes from Meta: `X-Hub-Signature-256` on every webhook POST
//! (`sha256=` + lowercase hex HMAC-SHA256 of the raw body, keyed by the app secret), and the
//! verify token of the subscription handshake. Both compared in constant time.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::{Digest, Sha256};

use crate::webhook::VerifyError;

/// The header Meta signs webhook bodies in.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// The app secret of the Meta app the webhook belongs to. Never shown by `Debug`.
#[derive(Clone)]
pub struct AppSecret {
    key: SecretSlice<u8>,
}

impl AppSecret {
    /// The secret as configured (surrounding whitespace, such as a secret file's trailing
    /// newline, already removed by the caller).
    #[must_use]
    pub fn new(secret: &SecretString) -> Self {
        Self {
            key: secret.expose_secret().as_bytes().to_vec().into(),
        }
    }

    fn mac(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret())
            .expect("HMAC-SHA256 takes a key of any length");
        mac.update(body);
        mac
    }

    /// The `X-Hub-Signature-256` value Meta sends for `body`.
    #[must_use]
    pub fn sign(&self, body: &[u8]) -> String {
        let tag = self.mac(body).finalize().into_bytes();
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256=");
        for byte in tag {
            out.push(hex_digit(byte >> 4));
            out.push(hex_digit(byte & 0x0f));
        }
        out
    }

    /// Checks the header value (`None` when absent) over the exact body bytes, before anything
    /// is parsed. The hex digits may be in either case.
    ///
    /// # Errors
    /// [`VerifyError::MissingHeader`] or [`VerifyError::SignatureMismatch`].
    pub fn verify(&self, header: Option<&str>, body: &[u8]) -> Result<(), VerifyError> {
        let value = header.ok_or(VerifyError::MissingHeader(SIGNATURE_HEADER))?;
        let tag = value
            .trim()
            .strip_prefix("sha256=")
            .and_then(decode_hex)
            .ok_or(VerifyError::SignatureMismatch(SIGNATURE_HEADER))?;
        self.mac(body)
            .verify_slice(&tag)
            .map_err(|_| VerifyError::SignatureMismatch(SIGNATURE_HEADER))
    }
}

impl fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppSecret([REDACTED])")
    }
}

/// The verify token Meta echoes in the subscription handshake. Never shown by `Debug`.
#[derive(Clone)]
pub struct VerifyToken {
    digest: [u8; 32],
}

impl VerifyToken {
    #[must_use]
    pub fn new(token: &SecretString) -> Self {
        Self {
            digest: Sha256::digest(token.expose_secret().as_bytes()).into(),
        }
    }

    /// Whether `candidate` is the token. Both sides are hashed first, so the comparison takes
    /// the same time whatever the candidate's length or content.
    #[must_use]
    pub fn matches(&self, candidate: &str) -> bool {
        let other: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        self.digest
            .iter()
            .zip(other.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Debug for VerifyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerifyToken([REDACTED])")
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble)])
}

/// 64 hex digits (either case) → 32 bytes.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    let value = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(value(pair[0])? << 4 | value(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published vector of david-lev/pywa, tests/test_server.py (MIT) at
    // 0bcf2f192ff3cf8ae24a425d85f4295e3cca7a62: a real webhook body and the signature Meta put
    // on it, with an app secret its owner has since reset.
    const PYWA_SECRET: &str = "1222e786b144d0e85b9f365372d93676";
    const PYWA_BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"264937493375603","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550953877","phone_number_id":"277321005464405"},"contacts":[{"profile":{"name":"PyWa Tests"},"wa_id":"972544401243"}],"messages":[{"from":"972544401243","id":"wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA","timestamp":"1730231903","text":{"body":"Hey there! I am using PyWa."},"type":"text"}]},"field":"messages"}]}]}"#;
    const PYWA_SIGNATURE: &str =
        "sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441";

    fn pywa() -> AppSecret {
        AppSecret::new(&SecretString::from(PYWA_SECRET))
    }

    #[test]
    fn the_pywa_vector_signs_and_verifies() {
        assert_eq!(PYWA_BODY.len(), 511);
        assert_eq!(pywa().sign(PYWA_BODY.as_bytes()), PYWA_SIGNATURE);
        pywa()
            .verify(Some(PYWA_SIGNATURE), PYWA_BODY.as_bytes())
            .unwrap();
        // Upper-case hex is the same signature.
        let upper = format!("sha256={}", PYWA_SIGNATURE[7..].to_ascii_uppercase());
        pywa().verify(Some(&upper), PYWA_BODY.as_bytes()).unwrap();
    }

    #[test]
    fn any_change_to_body_secret_or_header_fails() {
        let mismatch = Err(VerifyError::SignatureMismatch(SIGNATURE_HEADER));
        // One byte of the body (a re-serialised body differs in whitespace alone).
        let altered = PYWA_BODY.replace("PyWa.", "PyWa!");
        assert_eq!(
            pywa().verify(Some(PYWA_SIGNATURE), altered.as_bytes()),
            mismatch
        );
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(PYWA_BODY).unwrap(),
        )
        .unwrap();
        assert_eq!(
            pywa().verify(Some(PYWA_SIGNATURE), pretty.as_bytes()),
            mismatch
        );
        let other = AppSecret::new(&SecretString::from("1222e786b144d0e85b9f365372d93677"));
        assert_eq!(
            other.verify(Some(PYWA_SIGNATURE), PYWA_BODY.as_bytes()),
            mismatch
        );
        for header in [
            "",
            "sha256=",
            &PYWA_SIGNATURE[7..],
            "sha1=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441",
            // A prefix of the right tag is not the tag.
            &PYWA_SIGNATURE[..40],
            "sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc44g",
            "sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441ff",
            "sha256=é4edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc4",
        ] {
            assert_eq!(
                pywa().verify(Some(header), PYWA_BODY.as_bytes()),
                mismatch,
                "{header:?}"
            );
        }
        assert_eq!(
            pywa().verify(None, PYWA_BODY.as_bytes()),
            Err(VerifyError::MissingHeader(SIGNATURE_HEADER))
        );
    }

    #[test]
    fn verify_tokens_match_exactly() {
        let token = VerifyToken::new(&SecretString::from("meatyhamhock"));
        assert!(token.matches("meatyhamhock"));
        for wrong in [
            "",
            "meatyhamhoc",
            "meatyhamhockk",
            "MEATYHAMHOCK",
            " meatyhamhock",
        ] {
            assert!(!token.matches(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let shown = format!(
            "{:?} {:?}",
            pywa(),
            VerifyToken::new(&SecretString::from("meatyhamhock"))
        );
        assert!(!shown.contains("1222e7"), "{shown}");
        assert!(!shown.contains("meaty"), "{shown}");
    }
}
