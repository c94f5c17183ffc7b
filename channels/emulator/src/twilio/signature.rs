//! `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the auth token, over the full URL
//! followed by every form parameter as `name + value`, names in byte order; a repeated name
//! contributes each distinct value once, values in byte order.
//! (Algorithm as described in `shared/reference/channels.md` §1.2.)

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// The string Twilio signs for `url` and the form `params`.
pub fn signed_string(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, value) in params {
        sorted.entry(name).or_default().insert(value);
    }
    let mut out = String::from(url);
    for (name, values) in sorted {
        for value in values {
            out.push_str(name);
            out.push_str(value);
        }
    }
    out
}

/// The `X-Twilio-Signature` value for a form post of `params` to exactly `url`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(signed_string(url, params).as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn signed_string_sorts_names_and_dedupes_values() {
        let p = pairs(&[("b", "2"), ("a", "y"), ("a", "x"), ("a", "y"), ("B", "0")]);
        assert_eq!(
            signed_string("https://h/p?q=1", &p),
            "https://h/p?q=1B0axayb2"
        );
    }
}
