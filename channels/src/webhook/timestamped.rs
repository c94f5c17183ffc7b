//! The gateway's own request signature, for callers that are not Standard Webhooks senders
//! (the inbound-mail relay, the Salesforce Apex trigger): `X-Handoff-Timestamp: <unix
//! seconds>` and `X-Handoff-Signature: sha256=<lowercase hex HMAC-SHA256(secret, timestamp +
//! "." + raw body)>`, accepted within [`TOLERANCE_SECS`] of our clock, compared in constant
//! time.

use std::fmt;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

use super::TOLERANCE_SECS;

/// The timestamp header.
pub const TIMESTAMP_HEADER: &str = "x-handoff-timestamp";
/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-handoff-signature";

/// A shared HMAC secret (any bytes). Never shown by `Debug`.
#[derive(Clone)]
pub struct TimestampedSecret {
    key: SecretSlice<u8>,
}

/// Why a signed request was refused. The texts never echo a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimestampedError {
    #[error("the `{0}` header is missing")]
    MissingHeader(&'static str),
    #[error("`X-Handoff-Timestamp` is not a Unix time in seconds")]
    InvalidTimestamp,
    #[error("`X-Handoff-Timestamp` is more than five minutes from the gateway's clock")]
    TimestampOutOfTolerance,
    #[error("`X-Handoff-Signature` does not match the configured secret")]
    BadSignature,
}

impl TimestampedSecret {
    #[must_use]
    pub fn new(key: &[u8]) -> Self {
        Self {
            key: key.to_vec().into(),
        }
    }

    fn mac(&self, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret())
            .expect("HMAC-SHA256 takes a key of any length");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `X-Handoff-Signature` value for `body` sent at `timestamp` (unix seconds).
    #[must_use]
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        let tag = self
            .mac(&timestamp.to_string(), body)
            .finalize()
            .into_bytes();
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256=");
        for byte in tag {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }

    /// Checks the two header values (`None` when absent) over the exact body bytes.
    ///
    /// # Errors
    /// [`TimestampedError`] saying which check failed.
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), TimestampedError> {
        let timestamp = timestamp
            .map(str::trim)
            .ok_or(TimestampedError::MissingHeader("X-Handoff-Timestamp"))?;
        let signature = signature
            .map(str::trim)
            .ok_or(TimestampedError::MissingHeader("X-Handoff-Signature"))?;
        if timestamp.is_empty()
            || timestamp.len() > 12
            || !timestamp.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(TimestampedError::InvalidTimestamp);
        }
        let sent_at: i64 = timestamp
            .parse()
            .map_err(|_| TimestampedError::InvalidTimestamp)?;
        if (now.timestamp() - sent_at).abs() > TOLERANCE_SECS {
            return Err(TimestampedError::TimestampOutOfTolerance);
        }
        let tag = signature
            .strip_prefix("sha256=")
            .and_then(decode_hex)
            .ok_or(TimestampedError::BadSignature)?;
        self.mac(timestamp, body)
            .verify_slice(&tag)
            .map_err(|_| TimestampedError::BadSignature)
    }
}

impl fmt::Debug for TimestampedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TimestampedSecret([REDACTED])")
    }
}

/// 64 hex digits (either case) → 32 bytes.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn signs_and_verifies_within_the_window_only() {
        let secret = TimestampedSecret::new(b"inbound-secret");
        let now = Utc.timestamp_opt(1_780_000_000, 0).unwrap();
        let body = b"From: a@example.com\r\n\r\nHi";
        let signature = secret.sign(1_780_000_000, body);
        assert!(signature.starts_with("sha256=") && signature.len() == 71);
        let ok = |ts: &str, sig: &str, body: &[u8]| secret.verify(Some(ts), Some(sig), body, now);
        assert_eq!(ok("1780000000", &signature, body), Ok(()));
        assert_eq!(
            ok(
                "1780000000",
                &signature.to_uppercase().replace("SHA256=", "sha256="),
                body
            ),
            Ok(())
        );
        assert_eq!(
            ok("1780000000", &signature, b"tampered"),
            Err(TimestampedError::BadSignature)
        );
        let stale = secret.sign(1_780_000_000 - 301, body);
        assert_eq!(
            ok("1779999699", &stale, body),
            Err(TimestampedError::TimestampOutOfTolerance)
        );
        let edge = secret.sign(1_780_000_000 + 300, body);
        assert_eq!(ok("1780000300", &edge, body), Ok(()));
        assert_eq!(
            ok("-5", &signature, body),
            Err(TimestampedError::InvalidTimestamp)
        );
        assert_eq!(
            ok("1780000000", "sha256=zz", body),
            Err(TimestampedError::BadSignature)
        );
        let other = TimestampedSecret::new(b"other").sign(1_780_000_000, body);
        assert_eq!(
            ok("1780000000", &other, body),
            Err(TimestampedError::BadSignature)
        );
        assert_eq!(
            secret.verify(None, Some(&signature), body, now),
            Err(TimestampedError::MissingHeader("X-Handoff-Timestamp"))
        );
        assert!(!format!("{secret:?}").contains("inbound"));
    }
}
