//! Salesforce record ids: 15-char case-sensitive form, 18-char form with the case checksum.
//!
//! Layout of the 15 characters: key prefix (3), pod (2), reserved (1), base62 record number (9).

const CHECKSUM_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Pod characters of every id the emulator mints.
pub const POD: &str = "5g";

/// Appends the 3-character checksum to a 15-character id.
pub fn to18(id15: &str) -> String {
    let b = id15.as_bytes();
    debug_assert_eq!(b.len(), 15);
    let mut s = String::with_capacity(18);
    s.push_str(id15);
    for chunk in 0..3 {
        let mut n = 0usize;
        for j in 0..5 {
            if b[chunk * 5 + j].is_ascii_uppercase() {
                n |= 1 << j;
            }
        }
        s.push(CHECKSUM_ALPHABET[n] as char);
    }
    s
}

/// The 15-character form of a canonical id.
pub fn to15(id: &str) -> &str {
    &id[..id.len().min(15)]
}

/// Parses a 15- or 18-character id into its canonical 18-character form.
///
/// 15-character ids are case-sensitive and taken as they are. 18-character ids are
/// case-insensitive: the suffix says which of the first 15 characters are upper case, so
/// `500hu000020ylUhiau` and `500Hu000020yLuHIAU` are the same id. Returns `None` for anything
/// that is not a well-formed id (wrong length, non-alphanumeric, or a suffix that cannot match).
pub fn canonical(id: &str) -> Option<String> {
    let b = id.as_bytes();
    if !b.iter().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    match b.len() {
        15 => Some(to18(id)),
        18 => {
            let mut chars: Vec<u8> = b[..15].to_vec();
            for chunk in 0..3 {
                let suffix = b[15 + chunk].to_ascii_uppercase();
                let n = CHECKSUM_ALPHABET.iter().position(|&c| c == suffix)?;
                for j in 0..5 {
                    let c = &mut chars[chunk * 5 + j];
                    if n & (1 << j) != 0 {
                        if !c.is_ascii_alphabetic() {
                            return None;
                        }
                        *c = c.to_ascii_uppercase();
                    } else {
                        *c = c.to_ascii_lowercase();
                    }
                }
            }
            let id15 = String::from_utf8(chars).ok()?;
            Some(to18(&id15))
        }
        _ => None,
    }
}

/// Encodes `n` as `width` base62 digits (0-9, A-Z, a-z), most significant first.
pub fn base62(mut n: u64, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out).expect("base62 digits are ASCII")
}

/// Mints the 18-character id for record number `n` of the object with `key_prefix`.
pub fn mint(key_prefix: &str, n: u64) -> String {
    to18(&format!("{key_prefix}{POD}0{}", base62(n, 9)))
}

/// The 18-character form of a configured 15-character org id.
pub fn org_id18(org_id15: &str) -> String {
    to18(org_id15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors() {
        for (a, b) in [
            ("001D000000IqhSL", "001D000000IqhSLIAZ"),
            ("001D000000IRFma", "001D000000IRFmaIAH"),
            ("0011U00000V0tkD", "0011U00000V0tkDQAR"),
            ("001R00000033I6A", "001R00000033I6AIAU"),
            ("003D000000QV9n2", "003D000000QV9n2IAD"),
            ("00558000001N0Ke", "00558000001N0KeAAK"),
            ("500Hu000020yLuH", "500Hu000020yLuHIAU"),
        ] {
            assert_eq!(to18(a), b);
            assert_eq!(canonical(a).as_deref(), Some(b));
            assert_eq!(canonical(b).as_deref(), Some(b));
            assert_eq!(canonical(&b.to_ascii_lowercase()).as_deref(), Some(b));
            assert_eq!(canonical(&b.to_ascii_uppercase()).as_deref(), Some(b));
        }
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(canonical("001xx000003DGb2999"), None);
        assert_eq!(canonical("23foo"), None);
        assert_eq!(canonical("001D000000IqhS-"), None);
        // suffix claims an upper-case letter where there is a digit
        assert_eq!(canonical("001D000000IqhSL555"), None);
    }

    #[test]
    fn minted_ids_are_canonical_and_distinct() {
        let a = mint("500", 1);
        let b = mint("500", 62);
        assert_eq!(a, "5005g0000000001AAA");
        assert_eq!(a.len(), 18);
        assert_ne!(a, b);
        assert_eq!(canonical(&b).unwrap(), b);
        assert_eq!(base62(61, 2), "0z");
    }
}
