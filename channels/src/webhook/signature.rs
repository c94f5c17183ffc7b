//! The Standard Webhooks symmetric signature (`v1`): HMAC-SHA256 over `{id}.{timestamp}.{body}`,
//! keyed by the base64-decoded part of a `whsec_…` secret.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::Sha256;

/// How far a `webhook-timestamp` may be from our clock, either way.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// The secret prefix of the specification.
const PREFIX: &str = "whsec_";

/// The Standard Webhooks secret sizes (24–64 random bytes).
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// A webhook signing secret (`whsec_<base64>`). The key never appears in `Debug` output.
#[derive(Clone)]
pub struct WebhookSecret {
    key: SecretSlice<u8>,
}

/// Why a `whsec_…` value was refused. The texts never echo the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret starts with `whsec_`")]
    MissingPrefix,
    #[error("the part after `whsec_` is not base64")]
    NotBase64,
    #[error("a webhook secret holds 24 to 64 bytes (32 to 88 base64 characters)")]
    BadLength,
}

impl WebhookSecret {
    /// Parses `whsec_<base64 of 24–64 bytes>`; surrounding whitespace (a trailing newline in a
    /// secret file) is ignored.
    ///
    /// # Errors
    /// [`SecretError`] saying what is wrong, without the value.
    pub fn parse(secret: &SecretString) -> Result<Self, SecretError> {
        let text = secret.expose_secret().trim();
        let encoded = text
            .strip_prefix(PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = BASE64.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        if !KEY_BYTES.contains(&key.len()) {
            return Err(SecretError::BadLength);
        }
        Ok(Self { key: key.into() })
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(self.key.expose_secret())
            .expect("HMAC-SHA256 takes a key of any length")
    }

    fn signed_content(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` value for one message: `v1,<base64 HMAC-SHA256>`.
    #[must_use]
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self
            .signed_content(id, timestamp, body)
            .finalize()
            .into_bytes();
        format!("v1,{}", BASE64.encode(tag))
    }

    /// Checks a received webhook: the three header values and the exact body bytes.
    /// `signatures` is the space-separated `webhook-signature` list (several during a secret
    /// rotation); any one valid `v1` signature passes. Comparison is constant-time.
    ///
    /// # Errors
    /// [`VerifyError`] saying which check failed.
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), VerifyError> {
        if id.is_empty() || id.contains('.') {
            return Err(VerifyError::InvalidId);
        }
        let sent_at: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| VerifyError::InvalidTimestamp)?;
        if (now.timestamp() - sent_at).abs() > TOLERANCE_SECS {
            return Err(VerifyError::TimestampOutOfTolerance);
        }
        let expected = self.signed_content(id, sent_at, body);
        let matched = signatures
            .split(' ')
            .filter_map(|candidate| candidate.strip_prefix("v1,"))
            .filter_map(|encoded| BASE64.decode(encoded).ok())
            .any(|tag| expected.clone().verify_slice(&tag).is_ok());
        if matched {
            Ok(())
        } else {
            Err(VerifyError::NoValidSignature)
        }
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// Why a received webhook failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the `{0}` header is missing")]
    MissingHeader(&'static str),
    #[error("`webhook-id` is empty or contains `.`")]
    InvalidId,
    #[error("`webhook-timestamp` is not a Unix time in seconds")]
    InvalidTimestamp,
    #[error("`webhook-timestamp` is more than five minutes from the gateway's clock")]
    TimestampOutOfTolerance,
    #[error("no `webhook-signature` matches the configured secret")]
    NoValidSignature,
    /// A provider's own signature header (Twilio `X-Twilio-Signature`, WhatsApp
    /// `X-Hub-Signature-256`) that is malformed or does not match the configured secret; the
    /// header's name.
    #[error("`{0}` is malformed or does not match the configured secret")]
    SignatureMismatch(&'static str),
    /// A provider's subscription handshake (WhatsApp `GET ?hub.mode=subscribe&…`) that does
    /// not prove it knows our verify token; what is wrong.
    #[error("the subscription handshake was refused: {0}")]
    HandshakeRefused(&'static str),
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// The published Standard Webhooks test vector (spec and every reference library).
    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TS: i64 = 1_614_265_330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret(s: &str) -> WebhookSecret {
        WebhookSecret::parse(&SecretString::from(s)).unwrap()
    }

    fn at(ts: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(ts, 0).unwrap()
    }

    #[test]
    fn signs_the_published_test_vector() {
        assert_eq!(
            secret(VECTOR_SECRET).sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY),
            VECTOR_SIG
        );
    }

    #[test]
    fn verifies_the_published_test_vector() {
        let key = secret(VECTOR_SECRET);
        let ts = VECTOR_TS.to_string();
        key.verify(VECTOR_ID, &ts, VECTOR_SIG, VECTOR_BODY, at(VECTOR_TS))
            .unwrap();
        // One changed byte anywhere fails.
        assert_eq!(
            key.verify(
                VECTOR_ID,
                &ts,
                VECTOR_SIG,
                br#"{"test": 2432232315}"#,
                at(VECTOR_TS)
            ),
            Err(VerifyError::NoValidSignature)
        );
        assert_eq!(
            key.verify("msg_other", &ts, VECTOR_SIG, VECTOR_BODY, at(VECTOR_TS)),
            Err(VerifyError::NoValidSignature)
        );
    }

    #[test]
    fn any_of_several_signatures_passes() {
        let key = secret(VECTOR_SECRET);
        let ts = VECTOR_TS.to_string();
        let rotated = format!("v1,bm9wZQ== v2,abc v1,not-base64! {VECTOR_SIG}");
        key.verify(VECTOR_ID, &ts, &rotated, VECTOR_BODY, at(VECTOR_TS))
            .unwrap();
        for wrong in [
            "v1,bm9wZQ==",
            "",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            // A prefix of the right tag is not the tag.
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJE",
        ] {
            assert_eq!(
                key.verify(VECTOR_ID, &ts, wrong, VECTOR_BODY, at(VECTOR_TS)),
                Err(VerifyError::NoValidSignature),
                "{wrong:?}"
            );
        }
    }

    #[test]
    fn timestamps_more_than_five_minutes_off_are_refused() {
        let key = secret(VECTOR_SECRET);
        let ts = VECTOR_TS.to_string();
        for now in [VECTOR_TS - TOLERANCE_SECS, VECTOR_TS + TOLERANCE_SECS] {
            key.verify(VECTOR_ID, &ts, VECTOR_SIG, VECTOR_BODY, at(now))
                .unwrap();
        }
        for now in [
            VECTOR_TS - TOLERANCE_SECS - 1,
            VECTOR_TS + TOLERANCE_SECS + 1,
        ] {
            assert_eq!(
                key.verify(VECTOR_ID, &ts, VECTOR_SIG, VECTOR_BODY, at(now)),
                Err(VerifyError::TimestampOutOfTolerance)
            );
        }
        assert_eq!(
            key.verify(
                VECTOR_ID,
                "yesterday",
                VECTOR_SIG,
                VECTOR_BODY,
                at(VECTOR_TS)
            ),
            Err(VerifyError::InvalidTimestamp)
        );
        assert_eq!(
            key.verify("a.b", &ts, VECTOR_SIG, VECTOR_BODY, at(VECTOR_TS)),
            Err(VerifyError::InvalidId)
        );
    }

    #[test]
    fn secrets_are_checked_and_never_shown() {
        let parse = |s: &str| WebhookSecret::parse(&SecretString::from(s)).map(|_| ());
        assert_eq!(
            parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SecretError::MissingPrefix)
        );
        assert_eq!(parse("whsec_not base64!"), Err(SecretError::NotBase64));
        assert_eq!(parse("whsec_c2hvcnQ="), Err(SecretError::BadLength));
        assert_eq!(parse(&format!("{VECTOR_SECRET}\n")), Ok(()));
        let shown = format!("{:?}", secret(VECTOR_SECRET));
        assert!(!shown.contains("MfKQ"), "{shown}");
    }
}
