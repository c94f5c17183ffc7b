//! Rep-reply events: what the shipped Apex trigger (and the emulator) posts to the gateway's
//! `POST /salesforce/events` when a rep writes a public CaseComment or sends an email on a
//! Case, and how the gateway authenticates it.
//!
//! - [`CaseEvent::parse`] reads the JSON body (camelCase) and checks every field, naming the
//!   one at fault; ids are normalized to their 18-character form, so a pushed event and the
//!   same record found by the poller share one `eventId`.
//! - [`verify_signature`] checks the HMAC scheme: `X-Handoff-Timestamp: <unix seconds>` and
//!   `X-Handoff-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>`,
//!   within ±[`SIGNATURE_WINDOW_SECS`], compared in constant time. [`sign`] makes the header
//!   value (tests, the emulator, benchmarks).
//! - [`JwtVerifier`] checks the Named Credential scheme: `Authorization: Bearer <JWT>`, RS256
//!   only, `iss`, `aud`, `exp` and `iat` required, `exp − iat` ≤ [`JWT_MAX_LIFETIME_SECS`],
//!   [`JWT_LEEWAY_SECS`] of clock skew, against configured PEM certificates or public keys.

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::ids::SalesforceId;

/// The header carrying the signing time (unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-handoff-timestamp";
/// The header carrying `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-handoff-signature";
/// How far a signed timestamp may be from our clock, either way.
pub const SIGNATURE_WINDOW_SECS: i64 = 300;
/// Longest accepted JWT lifetime (`exp − iat`).
pub const JWT_MAX_LIFETIME_SECS: i64 = 300;
/// Clock skew allowed on `exp` and `iat`.
pub const JWT_LEEWAY_SECS: u64 = 60;
/// Longest author name kept (Salesforce's `User.Name` is at most 121 characters).
pub const MAX_NAME_CHARS: usize = 255;

/// What kind of rep output an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// A CaseComment (`00a…`).
    #[serde(rename = "case_comment.created")]
    CaseCommentCreated,
    /// An outbound EmailMessage (`02s…`) on a Case.
    #[serde(rename = "email_message.sent")]
    EmailMessageSent,
}

impl EventKind {
    /// The wire name (`case_comment.created`, `email_message.sent`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CaseCommentCreated => "case_comment.created",
            EventKind::EmailMessageSent => "email_message.sent",
        }
    }

    /// The key prefix of the record this kind of event is about.
    pub fn id_prefix(self) -> &'static str {
        match self {
            EventKind::CaseCommentCreated => "00a",
            EventKind::EmailMessageSent => "02s",
        }
    }

    fn parse(s: &str) -> Option<EventKind> {
        [EventKind::CaseCommentCreated, EventKind::EmailMessageSent]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// The User (`005…`), 18 characters.
    pub id: SalesforceId,
    /// `CreatedBy.Name`, at most [`MAX_NAME_CHARS`] characters; `None` when absent or blank.
    pub name: Option<String>,
}

/// What the rep wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EventBody {
    /// CommentBody or TextBody.
    pub text: Option<String>,
    /// HtmlBody (emails only).
    pub html: Option<String>,
}

/// One rep-reply event (contract §1), checked and normalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseEvent {
    /// The CaseComment or EmailMessage id, 18 characters: the idempotency key.
    pub event_id: SalesforceId,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub org_id: SalesforceId,
    pub case_id: SalesforceId,
    pub case_number: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub author: Author,
    pub body: EventBody,
    pub is_public: bool,
}

/// Why a body is not a valid event: the field (a JSON path such as `author.id`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {detail}")]
pub struct EventError {
    pub field: String,
    pub detail: String,
}

impl EventError {
    fn new(field: &str, detail: impl Into<String>) -> EventError {
        EventError {
            field: field.to_string(),
            detail: detail.into(),
        }
    }
}

impl CaseEvent {
    /// Parses a raw body. Unknown fields are ignored (a newer trigger may send more).
    pub fn parse(body: &[u8]) -> Result<CaseEvent, EventError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| EventError::new("body", format!("not JSON: {e}")))?;
        CaseEvent::from_value(&value)
    }

    /// Checks a JSON value as [`CaseEvent::parse`] does.
    pub fn from_value(value: &Value) -> Result<CaseEvent, EventError> {
        let object = value
            .as_object()
            .ok_or_else(|| EventError::new("body", "must be a JSON object"))?;
        let kind_text = required_str(object, "type", "type")?;
        let kind = EventKind::parse(kind_text).ok_or_else(|| {
            EventError::new(
                "type",
                "must be \"case_comment.created\" or \"email_message.sent\"",
            )
        })?;
        let event_id = id_field(object, "eventId", "eventId", kind.id_prefix())?;
        let org_id = id_field(object, "orgId", "orgId", "00D")?;
        let case_id = id_field(object, "caseId", "caseId", "500")?;
        let case_number = match object.get("caseNumber") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.len() <= 30 && s.bytes().all(|b| b.is_ascii_graphic()) => {
                Some(s.clone())
            }
            Some(_) => {
                return Err(EventError::new(
                    "caseNumber",
                    "must be a string of at most 30 printable ASCII characters",
                ));
            }
        };
        let occurred_at = parse_datetime(required_str(object, "occurredAt", "occurredAt")?)
            .ok_or_else(|| {
                EventError::new(
                    "occurredAt",
                    "must be an ISO 8601 date-time such as 2026-12-02T10:00:00.000Z",
                )
            })?;
        let author = object
            .get("author")
            .and_then(Value::as_object)
            .ok_or_else(|| EventError::new("author", "must be an object with id and name"))?;
        let author_id = id_field(author, "id", "author.id", "005")?;
        let author_name = optional_str(author, "name", "author.name")?
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| n.chars().take(MAX_NAME_CHARS).collect());
        let body = match object.get("body") {
            None | Some(Value::Null) => EventBody::default(),
            Some(Value::Object(b)) => EventBody {
                text: optional_str(b, "text", "body.text")?.map(str::to_string),
                html: optional_str(b, "html", "body.html")?.map(str::to_string),
            },
            Some(_) => {
                return Err(EventError::new(
                    "body",
                    "must be an object with text and html",
                ));
            }
        };
        let is_public = object
            .get("isPublic")
            .and_then(Value::as_bool)
            .ok_or_else(|| EventError::new("isPublic", "must be true or false"))?;
        Ok(CaseEvent {
            event_id,
            kind,
            org_id,
            case_id,
            case_number,
            occurred_at,
            author: Author {
                id: author_id,
                name: author_name,
            },
            body,
            is_public,
        })
    }

    /// The JSON body as Apex sends it (`occurredAt` with milliseconds and `Z`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event serializes")
    }
}

fn required_str<'a>(
    object: &'a serde_json::Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<&'a str, EventError> {
    object
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| EventError::new(field, "is required and must be a string"))
}

fn optional_str<'a>(
    object: &'a serde_json::Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'a str>, EventError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(EventError::new(field, "must be a string or null")),
    }
}

fn id_field(
    object: &serde_json::Map<String, Value>,
    key: &str,
    field: &str,
    prefix: &str,
) -> Result<SalesforceId, EventError> {
    let raw = required_str(object, key, field)?;
    let id = SalesforceId::parse(raw).map_err(|e| EventError::new(field, e.to_string()))?;
    if id.key_prefix() != prefix {
        return Err(EventError::new(
            field,
            format!("must be an id starting with {prefix}"),
        ));
    }
    Ok(id)
}

/// RFC 3339 (`…Z`, `…+00:00`), or Salesforce's REST form with a colon-less offset
/// (`2026-12-02T10:00:00.000+0000`).
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// Why a request is not authenticated. The gateway answers every one with the same 401;
/// the variant is for its log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventAuthError {
    #[error("no X-Handoff-Signature/X-Handoff-Timestamp and no bearer token")]
    Missing,
    #[error("this authentication scheme is not configured")]
    NotConfigured,
    #[error("X-Handoff-Timestamp is not unix seconds")]
    MalformedTimestamp,
    #[error("X-Handoff-Timestamp is more than {SIGNATURE_WINDOW_SECS} s in the past")]
    Stale,
    #[error("X-Handoff-Timestamp is more than {SIGNATURE_WINDOW_SECS} s in the future")]
    Future,
    #[error("X-Handoff-Signature is not sha256=<64 hex digits>")]
    MalformedSignature,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the JWT was refused: {0}")]
    Jwt(String),
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Handoff-Signature` value for `body` signed at `timestamp` (unix seconds):
/// `sha256=` and the lowercase hex HMAC-SHA256 of `timestamp + "." + body`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Checks the HMAC scheme: the timestamp is unix seconds within ±[`SIGNATURE_WINDOW_SECS`] of
/// `now` (unix seconds), and the signature is `sha256=<hex>` matching `body`, compared in
/// constant time. `None` headers count as missing.
pub fn verify_signature(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), EventAuthError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(EventAuthError::Missing);
    };
    let timestamp = timestamp.trim();
    if timestamp.is_empty()
        || timestamp.len() > 12
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(EventAuthError::MalformedTimestamp);
    }
    let at: i64 = timestamp
        .parse()
        .map_err(|_| EventAuthError::MalformedTimestamp)?;
    if at < now - SIGNATURE_WINDOW_SECS {
        return Err(EventAuthError::Stale);
    }
    if at > now + SIGNATURE_WINDOW_SECS {
        return Err(EventAuthError::Future);
    }
    let tag = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(decode_hex)
        .filter(|tag| tag.len() == 32)
        .ok_or(EventAuthError::MalformedSignature)?;
    mac(secret, timestamp, body)
        .verify_slice(&tag)
        .map_err(|_| EventAuthError::Mismatch)
}

/// Hex digits (either case) to bytes; `None` for an odd length or a non-hex character.
fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The claims the gateway reads from a Named Credential JWT.
#[derive(Debug, Deserialize)]
struct Claims {
    exp: i64,
    iat: i64,
}

/// Verifies Named Credential JWTs (RS256) against configured keys.
#[derive(Clone)]
pub struct JwtVerifier {
    keys: Vec<DecodingKey>,
    validation: Validation,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// `pems`: PEM texts, each an X.509 certificate (`BEGIN CERTIFICATE`, as Salesforce
    /// exports it) or an RSA public key (`BEGIN PUBLIC KEY` / `BEGIN RSA PUBLIC KEY`).
    /// The error names the PEM (by index) that does not parse.
    pub fn new(pems: &[String], issuer: &str, audience: &str) -> Result<JwtVerifier, String> {
        if pems.is_empty() {
            return Err("no certificate or public key given".into());
        }
        if issuer.is_empty() || audience.is_empty() {
            return Err("the issuer and the audience must both be set".into());
        }
        let keys = pems
            .iter()
            .enumerate()
            .map(|(i, pem)| {
                DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| {
                    format!(
                        "PEM #{} is not an RSA certificate or public key: {e}",
                        i + 1
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        validation.leeway = JWT_LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        Ok(JwtVerifier { keys, validation })
    }

    /// Checks `token` (the bearer value) at `now` (unix seconds, for the `iat` check;
    /// `exp` is checked against the system clock by the JWT library).
    pub fn verify(&self, token: &str, now: i64) -> Result<(), EventAuthError> {
        let mut last = EventAuthError::Jwt("no key".into());
        for key in &self.keys {
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
                Ok(data) => {
                    let Claims { exp, iat } = data.claims;
                    if exp - iat > JWT_MAX_LIFETIME_SECS {
                        return Err(EventAuthError::Jwt(format!(
                            "exp - iat is {} s, more than {JWT_MAX_LIFETIME_SECS} s",
                            exp - iat
                        )));
                    }
                    if iat > now + JWT_LEEWAY_SECS as i64 {
                        return Err(EventAuthError::Jwt("iat is in the future".into()));
                    }
                    return Ok(());
                }
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind;
                    let key_specific = matches!(e.kind(), ErrorKind::InvalidSignature);
                    last = EventAuthError::Jwt(e.to_string());
                    if !key_specific {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    const PRIVATE_KEY: &str = include_str!("../tests/fixtures/test-only-rsa-private.pem");
    const PUBLIC_KEY: &str = include_str!("../tests/fixtures/test-only-rsa-public.pem");
    const CERTIFICATE: &str = include_str!("../tests/fixtures/test-only-rsa-cert.pem");
    const SECRET: &[u8] = b"case-webhook-secret";

    fn event_json() -> Value {
        json!({
            "eventId": "00a5g00000AbCdE",
            "type": "case_comment.created",
            "orgId": "00D000000000001",
            "caseId": "500Hu000020yLuH",
            "caseNumber": "00001026",
            "occurredAt": "2026-12-02T10:00:00.000Z",
            "author": {"id": "00558000001N0Ke", "name": "Rep Name"},
            "body": {"text": "Hello", "html": null},
            "isPublic": true
        })
    }

    #[test]
    fn an_event_parses_and_ids_become_18_characters() {
        let event = CaseEvent::from_value(&event_json()).unwrap();
        assert_eq!(event.event_id.as_str().len(), 18);
        assert_eq!(event.case_id.as_str(), "500Hu000020yLuHIAU");
        assert_eq!(event.author.id.as_str(), "00558000001N0KeAAK");
        assert_eq!(event.author.name.as_deref(), Some("Rep Name"));
        assert_eq!(event.kind, EventKind::CaseCommentCreated);
        assert!(event.is_public);
        // The stored form parses back to the same event.
        assert_eq!(CaseEvent::parse(event.to_json().as_bytes()).unwrap(), event);
        // Salesforce's REST datetime form.
        let mut v = event_json();
        v["occurredAt"] = json!("2026-12-02T10:00:00.000+0000");
        assert_eq!(
            CaseEvent::from_value(&v).unwrap().occurred_at,
            event.occurred_at
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases: &[(&str, Value, &str)] = &[
            ("eventId", json!("001D000000IqhSL"), "eventId"),
            ("eventId", json!("02s000000000001"), "eventId"), // an email id on a comment event
            ("eventId", json!("00a5g00000AbCdEXXX"), "eventId"), // bad checksum
            ("type", json!("case.closed"), "type"),
            ("orgId", json!("500Hu000020yLuH"), "orgId"),
            ("caseId", json!(42), "caseId"),
            ("caseNumber", json!("x\ny"), "caseNumber"),
            ("occurredAt", json!("yesterday"), "occurredAt"),
            ("isPublic", json!("yes"), "isPublic"),
            ("body", json!("text"), "body"),
        ];
        for (key, bad, field) in cases {
            let mut v = event_json();
            v[*key] = bad.clone();
            let err = CaseEvent::from_value(&v).unwrap_err();
            assert_eq!(err.field, *field, "{key}: {err}");
        }
        let mut v = event_json();
        v["author"]["id"] = json!("003D000000QV9n2");
        assert_eq!(CaseEvent::from_value(&v).unwrap_err().field, "author.id");
        let mut v = event_json();
        v.as_object_mut().unwrap().remove("author");
        assert_eq!(CaseEvent::from_value(&v).unwrap_err().field, "author");
        assert_eq!(CaseEvent::parse(b"{").unwrap_err().field, "body");
        assert_eq!(CaseEvent::parse(b"[]").unwrap_err().field, "body");
    }

    #[test]
    fn an_email_event_needs_an_email_id() {
        let mut v = event_json();
        v["type"] = json!("email_message.sent");
        v["eventId"] = json!("02s5g00000AbCdE");
        v["body"] = json!({"text": "", "html": "<p>Hi</p>"});
        let event = CaseEvent::from_value(&v).unwrap();
        assert_eq!(event.kind, EventKind::EmailMessageSent);
        assert_eq!(event.body.html.as_deref(), Some("<p>Hi</p>"));
    }

    #[test]
    fn a_signature_verifies_within_the_window() {
        let body = br#"{"eventId":"x"}"#;
        let now = 1_790_000_000;
        let sig = sign(SECRET, now, body);
        assert!(sig.starts_with("sha256=") && sig.len() == 71);
        let ts = now.to_string();
        assert_eq!(
            verify_signature(SECRET, Some(&ts), Some(&sig), body, now),
            Ok(())
        );
        assert_eq!(
            verify_signature(SECRET, Some(&ts), Some(&sig), body, now + 300),
            Ok(())
        );
        assert_eq!(
            verify_signature(
                SECRET,
                Some(&ts),
                Some(&sig.to_uppercase().replace("SHA256=", "sha256=")),
                body,
                now
            ),
            Ok(()),
            "hex in either case"
        );
    }

    #[test]
    fn every_bad_signature_is_refused() {
        let body = br#"{"eventId":"x"}"#;
        let now = 1_790_000_000;
        let ts = now.to_string();
        let sig = sign(SECRET, now, body);
        let verify = |ts: Option<&str>, sig: Option<&str>, body: &[u8], at: i64| {
            verify_signature(SECRET, ts, sig, body, at)
        };
        assert_eq!(verify(None, None, body, now), Err(EventAuthError::Missing));
        assert_eq!(
            verify(Some(&ts), None, body, now),
            Err(EventAuthError::Missing)
        );
        assert_eq!(
            verify(None, Some(&sig), body, now),
            Err(EventAuthError::Missing)
        );
        // Wrong secret, altered body, signature of another timestamp.
        assert_eq!(
            verify_signature(b"other", Some(&ts), Some(&sig), body, now),
            Err(EventAuthError::Mismatch)
        );
        assert_eq!(
            verify(Some(&ts), Some(&sig), br#"{"eventId":"y"}"#, now),
            Err(EventAuthError::Mismatch)
        );
        let earlier = sign(SECRET, now - 1, body);
        assert_eq!(
            verify(Some(&ts), Some(&earlier), body, now),
            Err(EventAuthError::Mismatch)
        );
        // Stale and future.
        assert_eq!(
            verify(Some(&ts), Some(&sig), body, now + 301),
            Err(EventAuthError::Stale)
        );
        assert_eq!(
            verify(Some(&ts), Some(&sig), body, now - 301),
            Err(EventAuthError::Future)
        );
        // Malformed timestamps and signatures.
        for bad in ["", "-5", "1.5", "12e3", "9999999999999999999"] {
            assert_eq!(
                verify(Some(bad), Some(&sig), body, now),
                Err(EventAuthError::MalformedTimestamp),
                "{bad:?}"
            );
        }
        let no_prefix = sig.trim_start_matches("sha256=").to_string();
        let odd = sig[..70].to_string();
        let not_hex = format!("{}zz", &sig[..69]);
        let short = sig[..69].to_string();
        for bad in [
            no_prefix.as_str(),
            &odd,
            &not_hex,
            &short,
            "sha256=",
            "v1,abc",
        ] {
            assert_eq!(
                verify(Some(&ts), Some(bad), body, now),
                Err(EventAuthError::MalformedSignature),
                "{bad:?}"
            );
        }
    }

    fn now() -> i64 {
        Utc::now().timestamp()
    }

    fn jwt(claims: Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_pem(PRIVATE_KEY.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    fn claims(iat: i64, exp: i64) -> Value {
        json!({"iss": "salesforce-org", "aud": "https://gateway.example", "iat": iat, "exp": exp})
    }

    fn verifier(pem: &str) -> JwtVerifier {
        JwtVerifier::new(
            &[pem.to_string()],
            "salesforce-org",
            "https://gateway.example",
        )
        .unwrap()
    }

    #[test]
    fn a_jwt_verifies_with_a_certificate_or_a_public_key() {
        let t = now();
        let token = jwt(claims(t, t + 120));
        assert_eq!(verifier(PUBLIC_KEY).verify(&token, t), Ok(()));
        assert_eq!(verifier(CERTIFICATE).verify(&token, t), Ok(()));
        // A second, unrelated key first does not hide the right one.
        let both = JwtVerifier::new(
            &[CERTIFICATE.to_string(), PUBLIC_KEY.to_string()],
            "salesforce-org",
            "https://gateway.example",
        )
        .unwrap();
        assert_eq!(both.verify(&token, t), Ok(()));
        assert!(JwtVerifier::new(&["not a pem".into()], "i", "a").is_err());
        assert!(JwtVerifier::new(&[], "i", "a").is_err());
    }

    #[test]
    fn every_bad_jwt_is_refused() {
        let t = now();
        let v = verifier(CERTIFICATE);
        let refused = |token: &str| {
            assert!(
                matches!(v.verify(token, t), Err(EventAuthError::Jwt(_))),
                "{token}"
            )
        };
        let mut wrong_iss = claims(t, t + 120);
        wrong_iss["iss"] = json!("someone-else");
        refused(&jwt(wrong_iss));
        let mut wrong_aud = claims(t, t + 120);
        wrong_aud["aud"] = json!("https://elsewhere.example");
        refused(&jwt(wrong_aud));
        // Expired beyond the leeway; too long-lived; issued in the future.
        refused(&jwt(claims(t - 400, t - 61)));
        refused(&jwt(claims(t, t + 301)));
        refused(&jwt(claims(t + 120, t + 180)));
        // Missing exp / iat.
        refused(&jwt(
            json!({"iss": "salesforce-org", "aud": "https://gateway.example", "iat": t}),
        ));
        refused(&jwt(
            json!({"iss": "salesforce-org", "aud": "https://gateway.example", "exp": t + 60}),
        ));
        // alg none.
        use base64::Engine as _;
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        let none = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT"})),
            b64(&claims(t, t + 120))
        );
        refused(&none);
        // HS256 with the public key as the HMAC secret (the classic confusion attack).
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(t, t + 120),
            &EncodingKey::from_secret(PUBLIC_KEY.as_bytes()),
        )
        .unwrap();
        refused(&hs);
        let hs_cert = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(t, t + 120),
            &EncodingKey::from_secret(CERTIFICATE.as_bytes()),
        )
        .unwrap();
        refused(&hs_cert);
        // Garbage.
        refused("a.b.c");
        refused("");
    }
}
