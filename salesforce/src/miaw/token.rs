//! [`AccessToken`]: a MIAW access token and what its response says (miaw.md §3.1–3.3).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use serde_json::Value;

use super::error::MiawError;

/// A MIAW access token (one per end user; one SSE connection per token).
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The bearer JWT. Never log it.
    pub token: SecretString,
    /// `lastEventId`: the `Last-Event-Id` of the first SSE connection made with this token.
    pub last_event_id: Option<String>,
    /// `context.endUser.subject`: `v2/iamessage/ANON/…` or `v2/iamessage/AUTH/…`. A
    /// continuation response has no `context`; the subject is then the JWT's `sub` claim
    /// (unverified), when it has one.
    pub subject: Option<String>,
    /// The JWT's `exp` (epoch seconds), read without verifying the signature.
    pub expires_at: Option<i64>,
}

impl AccessToken {
    /// True when MIAW verified the customer identity token. A failed verification still
    /// answers 200, with an anonymous subject (miaw.md §3.2): check this after
    /// [`MiawClient::authenticated_token`](super::MiawClient::authenticated_token).
    pub fn is_authenticated(&self) -> bool {
        self.subject
            .as_deref()
            .is_some_and(|subject| subject.contains("/AUTH/"))
    }

    /// Reads a token response body.
    pub(crate) fn from_response(body: &Value) -> Result<Self, MiawError> {
        let token = body
            .get("accessToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| MiawError::Protocol("token response has no accessToken".into()))?;
        // Real orgs send lastEventId as a string; accept a number too.
        let last_event_id = match body.get("lastEventId") {
            Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
            Some(Value::Number(id)) => Some(id.to_string()),
            _ => None,
        };
        let claims = jwt_claims(token);
        // Continuation responses carry no `context`: fall back to the JWT's `sub`.
        let subject = body
            .pointer("/context/endUser/subject")
            .or_else(|| claims.as_ref()?.get("sub"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(AccessToken {
            expires_at: claims.as_ref().and_then(|c| c.get("exp")?.as_i64()),
            token: SecretString::from(token),
            last_event_id,
            subject,
        })
    }
}

/// The claims of a JWT, unverified (the signature is Salesforce's business).
fn jwt_claims(jwt: &str) -> Option<Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    fn jwt(claims: Value) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[test]
    fn reads_token_cursor_subject_and_exp() {
        let access = jwt(json!({"orgId": "00D000000000001", "exp": 1_900_000_000}));
        let token = AccessToken::from_response(&json!({
            "accessToken": access,
            "lastEventId": "2147867834",
            "context": {"endUser": {"subject": "v2/iamessage/ANON/abc"}}
        }))
        .unwrap();
        assert_eq!(token.token.expose_secret(), access);
        assert_eq!(token.last_event_id.as_deref(), Some("2147867834"));
        assert_eq!(token.subject.as_deref(), Some("v2/iamessage/ANON/abc"));
        assert_eq!(token.expires_at, Some(1_900_000_000));
        assert!(!token.is_authenticated());
        assert!(!format!("{token:?}").contains(&access));
    }

    #[test]
    fn continuation_shape_and_auth_subject() {
        let token = AccessToken::from_response(&json!({
            "accessToken": "opaque", "lastEventId": 42,
            "context": {"endUser": {"subject": "v2/iamessage/AUTH/keyset/uid:customer-42"}}
        }))
        .unwrap();
        assert_eq!(token.last_event_id.as_deref(), Some("42"));
        assert_eq!(token.expires_at, None);
        assert!(token.is_authenticated());
        let continuation = AccessToken::from_response(&json!({
            "accessToken": jwt(json!({"sub": "v2/iamessage/ANON/abc", "exp": 7})),
            "lastEventId": "43"
        }))
        .unwrap();
        assert_eq!(
            continuation.subject.as_deref(),
            Some("v2/iamessage/ANON/abc")
        );
        assert_eq!(continuation.expires_at, Some(7));
        let bare = AccessToken::from_response(&json!({"accessToken": "t"})).unwrap();
        assert_eq!((bare.last_event_id, bare.subject), (None, None));
    }

    #[test]
    fn missing_token_is_a_protocol_error() {
        for body in [
            json!({}),
            json!({"accessToken": ""}),
            json!({"accessToken": 5}),
        ] {
            assert!(matches!(
                AccessToken::from_response(&body),
                Err(MiawError::Protocol(_))
            ));
        }
    }
}
