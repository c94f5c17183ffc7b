//! Random identifiers in the providers' shapes.

use rand::Rng;

/// `n` random bytes as lower-case hex (`2n` characters).
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill(&mut bytes[..]);
    crate::hex::lower(&bytes)
}

/// A Twilio SID: two-letter prefix + 32 lower-case hex digits (34 characters).
pub(crate) fn twilio_sid(prefix: &str) -> String {
    format!("{prefix}{}", random_hex(16))
}

/// A random decimal string of `digits` digits, not starting with 0.
pub(crate) fn random_digits(digits: usize) -> String {
    let mut rng = rand::rng();
    let mut out = String::with_capacity(digits);
    for i in 0..digits {
        let low = if i == 0 { 1 } else { 0 };
        out.push(char::from(b'0' + rng.random_range(low..10u8)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let sid = twilio_sid("SM");
        assert_eq!(sid.len(), 34);
        assert!(sid.starts_with("SM"));
        assert!(crate::hex::is_hex(&sid[2..], 32));
        let d = random_digits(10);
        assert_eq!(d.len(), 10);
        assert!(!d.starts_with('0'));
        assert!(d.bytes().all(|b| b.is_ascii_digit()));
    }
}
