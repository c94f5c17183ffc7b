//! HTTP Basic authentication with `AccountSid:AuthToken` or `ApiKeySid:ApiKeySecret`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::secret::constant_time_eq;
use crate::twilio::state::TwilioState;

/// Whether the request carries credentials of the emulated account.
pub(crate) fn authenticated(state: &TwilioState, headers: &HeaderMap) -> bool {
    let Some((user, password)) = basic_credentials(headers) else {
        return false;
    };
    let account = constant_time_eq(user.as_bytes(), state.account_sid.as_bytes())
        & constant_time_eq(password.as_bytes(), state.auth_token.as_bytes());
    let key = state.api_key.as_ref().is_some_and(|(sid, secret)| {
        constant_time_eq(user.as_bytes(), sid.as_bytes())
            & constant_time_eq(password.as_bytes(), secret.as_bytes())
    });
    account || key
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_basic() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "Basic QUM6dG9rOmVu".parse().unwrap());
        assert_eq!(
            basic_credentials(&h),
            Some(("AC".to_string(), "tok:en".to_string()))
        );
        h.insert(AUTHORIZATION, "Bearer x".parse().unwrap());
        assert_eq!(basic_credentials(&h), None);
    }
}
