//! Meta's webhook bodies escape every non-ASCII character as `\uXXXX` (UTF-16 units; noted as
//! unverified in the reference). The emulator does the same, so a verifier that re-serializes
//! the JSON instead of hashing the raw bytes fails against it.

/// Rewrites serialized JSON so every non-ASCII character becomes `\uXXXX` escapes.
/// (Non-ASCII characters only occur inside JSON strings, where the escape is equivalent.)
pub(crate) fn escape_non_ascii(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_bmp_and_astral() {
        let s = serde_json::to_string(&serde_json::json!({"t": "é😀a"})).unwrap();
        let escaped = escape_non_ascii(&s);
        assert_eq!(escaped, r#"{"t":"\u00e9\ud83d\ude00a"}"#);
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back["t"], "é😀a");
    }
}
