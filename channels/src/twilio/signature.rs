//! `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed by the account's auth token, over the full
//! URL Twilio requested followed by the form's parameters (see [`Form::signing_text`]).
//!
//! Twilio is not consistent about the port in the URL it signs, so a signature is accepted for
//! the URL as received, for it with its port removed, and for it with the scheme's default port
//! (`:443`, `:80`) added when it has none — as Twilio's own libraries do.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;

use super::form::Form;
use crate::webhook::VerifyError;

/// The header Twilio signs its webhooks in.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// The longest signature header we look at (a SHA-1 tag is 28 base64 characters).
const MAX_HEADER_CHARS: usize = 64;

fn mac(auth_token: &SecretString, url: &str, form: &Form) -> Hmac<Sha1> {
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.expose_secret().as_bytes())
        .expect("HMAC-SHA1 takes a key of any length");
    mac.update(url.as_bytes());
    mac.update(form.signing_text().as_bytes());
    mac
}

/// The `X-Twilio-Signature` Twilio sends for `form` posted to exactly `url`.
#[must_use]
pub fn sign(auth_token: &SecretString, url: &str, form: &Form) -> String {
    BASE64.encode(mac(auth_token, url, form).finalize().into_bytes())
}

/// Checks `signature` (the header's value, `None` when absent) for `form` posted to `url`, in
/// constant time, trying the URL's port variants.
///
/// # Errors
/// [`VerifyError::MissingHeader`] without a signature, [`VerifyError::SignatureMismatch`] when
/// none of the URL variants gives it.
pub fn verify(
    auth_token: &SecretString,
    url: &str,
    form: &Form,
    signature: Option<&str>,
) -> Result<(), VerifyError> {
    let signature = signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(VerifyError::MissingHeader(SIGNATURE_HEADER))?;
    let mismatch = VerifyError::SignatureMismatch(SIGNATURE_HEADER);
    if signature.len() > MAX_HEADER_CHARS {
        return Err(mismatch);
    }
    let tag = BASE64.decode(signature).map_err(|_| mismatch)?;
    let matched = url_variants(url)
        .iter()
        .any(|candidate| mac(auth_token, candidate, form).verify_slice(&tag).is_ok());
    if matched { Ok(()) } else { Err(mismatch) }
}

/// The URL as received, then without its port or with the default port added. The URL is
/// handled as text: parsing and re-serializing it could change what was signed.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // The host starts after any `user:password@`; an IPv6 literal is in brackets.
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let (userinfo, host_port) = authority.split_at(host_start);
    let port_colon = match host_port.rfind(']') {
        Some(bracket) => host_port[bracket..].find(':').map(|i| bracket + i),
        None => host_port.rfind(':'),
    };
    match port_colon {
        Some(colon) => {
            let host = &host_port[..colon];
            variants.push(format!("{scheme}://{userinfo}{host}{tail}"));
        }
        None => {
            let default_port = match scheme.to_ascii_lowercase().as_str() {
                "https" => 443,
                "http" => 80,
                _ => return variants,
            };
            variants.push(format!(
                "{scheme}://{userinfo}{host_port}:{default_port}{tail}"
            ));
        }
    }
    variants
}

#[cfg(test)]
mod tests {
    //! The vectors are Twilio's own SDK tests: twilio/twilio-python
    //! `tests/unit/test_request_validator.py` and twilio/twilio-node `spec/validation.spec.js`
    //! (MIT), as collected in the project's channel reference notes (§1.2).

    use super::*;

    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn token() -> SecretString {
        SecretString::from(TOKEN)
    }

    fn params() -> Form {
        Form::from_pairs([
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    fn valid(url: &str, form: &Form, signature: &str) -> bool {
        verify(&token(), url, form, Some(signature)).is_ok()
    }

    #[test]
    fn signs_the_sdk_vector() {
        assert_eq!(
            sign(&token(), URL, &params()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert_eq!(
            format!("{URL}{}", params().signing_text()),
            "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675309\
             Digits1234From+14158675309To+18005551212"
        );
    }

    #[test]
    fn accepts_the_sdk_vectors() {
        let sig = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(valid(URL, &params(), sig));
        // https with a port: signed without it.
        assert!(valid(
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &params(),
            sig
        ));
        // http with a port: signed with it.
        assert!(valid(
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &params(),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
        ));
        // Signed with the default port added.
        assert!(valid(URL, &params(), "kvajT1Ptam85bY51eRf/AJRuM3w="));
        assert!(valid(
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            &params(),
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        ));
        // User information in the URL, with and without the default port.
        let with_creds = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
        assert!(valid(with_creds, &params(), "CukzLTc1tT5dXEDIHm/tKBanW10="));
        assert!(valid(with_creds, &params(), "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI="));
        assert!(valid(
            "https://user@mycompany.com/myapp.php?foo=1&bar=2",
            &params(),
            "2YRLlVAflCqxaNicjMpJcSTgzSs="
        ));
        // Special characters in the URL are signed as they are.
        assert!(valid(
            &format!("{URL}&Body=It's+amazing"),
            &params(),
            "dsq4Ehbj6cs+KdTkpF5sSSplOWw="
        ));
    }

    #[test]
    fn repeated_names_sign_each_distinct_value_sorted() {
        let expected = "IK+Dwps556ElfBT0I3Rgjkr1wJU=";
        for digits in [["5678", "1234", "1234"], ["1234", "5678", "5678"]] {
            let mut pairs = vec![("Sid", "CA123"), ("SidAccount", "AC123")];
            pairs.extend(digits.iter().map(|d| ("Digits", *d)));
            assert!(valid(URL, &Form::from_pairs(pairs), expected));
        }
        for order in [
            ["+1325xxxxxxx", "+1415xxxxxxx"],
            ["+1415xxxxxxx", "+1325xxxxxxx"],
        ] {
            let form = Form::from_pairs(order.map(|v| ("MessagingBinding.Address", v)));
            assert!(valid(URL, &form, "83O6e2vORAoJHUNzJjDWN1jz+BA="));
        }
    }

    #[test]
    fn refuses_wrong_missing_or_malformed_signatures() {
        let wrong = |sig: Option<&str>| verify(&token(), URL, &params(), sig).unwrap_err();
        let mismatch = VerifyError::SignatureMismatch(SIGNATURE_HEADER);
        assert_eq!(wrong(Some("WRONG_SIGNATURE")), mismatch);
        assert_eq!(wrong(Some(&"A".repeat(200))), mismatch);
        assert_eq!(wrong(None), VerifyError::MissingHeader(SIGNATURE_HEADER));
        assert_eq!(
            wrong(Some("  ")),
            VerifyError::MissingHeader(SIGNATURE_HEADER)
        );
        // Another token, another URL, one parameter more: all refused.
        let sig = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(verify(&SecretString::from("12346"), URL, &params(), Some(sig)).is_err());
        assert!(!valid(&format!("{URL}&x=1"), &params(), sig));
        let mut pairs = params().pairs().to_vec();
        pairs.push(("Body".into(), String::new()));
        assert!(!valid(URL, &Form::from_pairs(pairs), sig));
    }

    #[test]
    fn url_variants_handle_ports_userinfo_and_ipv6() {
        assert_eq!(
            url_variants("https://h.example.com/p?q=1"),
            [
                "https://h.example.com/p?q=1",
                "https://h.example.com:443/p?q=1"
            ]
        );
        assert_eq!(
            url_variants("http://h.example.com:8080"),
            ["http://h.example.com:8080", "http://h.example.com"]
        );
        assert_eq!(
            url_variants("https://u:p@[::1]:8443/x"),
            ["https://u:p@[::1]:8443/x", "https://u:p@[::1]/x"]
        );
        assert_eq!(
            url_variants("http://[::1]/x"),
            ["http://[::1]/x", "http://[::1]:80/x"]
        );
        assert_eq!(url_variants("not a url"), ["not a url"]);
        assert_eq!(url_variants("ftp://h/x"), ["ftp://h/x"]);
    }
}
