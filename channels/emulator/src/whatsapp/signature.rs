//! `X-Hub-Signature-256`: `sha256=` + lower-case hex HMAC-SHA256, keyed with the app secret,
//! over the raw request body (`shared/reference/channels.md` §2.3).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header Meta signs webhook bodies with.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The `X-Hub-Signature-256` value for `body`.
pub fn signature(app_secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", crate::hex::lower(&mac.finalize().into_bytes()))
}
