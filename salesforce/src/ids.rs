//! Salesforce record Ids.
//!
//! Salesforce Ids come in two forms: 15 characters (case-sensitive) and 18 characters
//! (the 15-character form plus a 3-character suffix that encodes the case of the first 15
//! characters, so the 18-character form survives case-insensitive systems).
//! [`SalesforceId`] always stores the 18-character form, so two values compare equal
//! whenever they name the same record, whichever form they were parsed from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Alphabet that maps a 5-bit case mask to one suffix character.
const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// Why a string is not a Salesforce Id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Ids are exactly 15 or 18 characters long.
    #[error("a Salesforce Id has 15 or 18 characters, this one has {0}")]
    Length(usize),
    /// Ids contain only ASCII letters and digits.
    #[error("a Salesforce Id contains only ASCII letters and digits (bad character at index {0})")]
    Character(usize),
    /// The 3-character suffix of an 18-character Id does not match its first 15 characters.
    #[error(
        "the Id's checksum suffix {found:?} does not match its first 15 characters (expected {expected:?})"
    )]
    Checksum {
        /// The suffix computed from the first 15 characters.
        expected: String,
        /// The suffix that was given.
        found: String,
    },
}

/// A Salesforce record Id, always held in its 18-character form.
///
/// Equality, ordering and hashing use the 18-character form, so
/// `parse("500Hu000020yLuH") == parse("500Hu000020yLuHIAU")`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SalesforceId(String);

impl SalesforceId {
    /// Parses a 15- or 18-character Id.
    ///
    /// An 18-character Id must carry the checksum suffix computed from its first 15
    /// characters; the suffix is compared case-insensitively and stored in its canonical
    /// (upper-case) form. The first 15 characters are case-sensitive and kept as given.
    /// Use [`SalesforceId::parse_case_insensitive`] for 18-character Ids that went through a
    /// system that changed their case.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let body = validated_body(s)?;
        let expected = checksum(body);
        if s.len() == 18 {
            let found = &s[15..];
            if !found.eq_ignore_ascii_case(&expected) {
                return Err(IdError::Checksum {
                    expected,
                    found: found.to_owned(),
                });
            }
        }
        Ok(Self(format!("{body}{expected}")))
    }

    /// Parses an Id like [`SalesforceId::parse`], but treats an 18-character Id as fully
    /// case-insensitive the way Salesforce does: the case of its first 15 characters is
    /// restored from the suffix. (`001d000000iqhsliaz` → `001D000000IqhSLIAZ`.)
    ///
    /// A 15-character Id is case-sensitive and is parsed as given. The suffix is still
    /// checked: it must not mark a digit as upper-case.
    pub fn parse_case_insensitive(s: &str) -> Result<Self, IdError> {
        if s.len() != 18 {
            return Self::parse(s);
        }
        validated_body(s)?;
        let suffix = &s.as_bytes()[15..];
        let mut restored = String::with_capacity(15);
        for (chunk, &mark) in s.as_bytes()[..15].chunks(5).zip(suffix) {
            let Some(mask) = SUFFIX_ALPHABET
                .iter()
                .position(|&a| a == mark.to_ascii_uppercase())
            else {
                return Err(Self::checksum_error(s));
            };
            for (j, &c) in chunk.iter().enumerate() {
                let upper = mask & (1 << j) != 0;
                if upper && !c.is_ascii_alphabetic() {
                    return Err(Self::checksum_error(s));
                }
                let c = if upper {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                };
                restored.push(char::from(c));
            }
        }
        Self::parse(&restored)
    }

    fn checksum_error(s: &str) -> IdError {
        IdError::Checksum {
            expected: checksum(&s[..15]),
            found: s[15..].to_owned(),
        }
    }

    /// The 18-character form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 15-character (case-sensitive) form.
    pub fn to_15(&self) -> &str {
        &self.0[..15]
    }

    /// The 3-character key prefix that names the object type (`500` = Case, `001` = Account…).
    pub fn key_prefix(&self) -> &str {
        &self.0[..3]
    }

    /// Consumes the Id, returning the 18-character form.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Checks length and characters, returning the first 15 characters.
fn validated_body(s: &str) -> Result<&str, IdError> {
    if s.len() != 15 && s.len() != 18 {
        return Err(IdError::Length(s.chars().count()));
    }
    if let Some(index) = s.bytes().position(|b| !b.is_ascii_alphanumeric()) {
        return Err(IdError::Character(index));
    }
    Ok(&s[..15])
}

/// The 3-character suffix for a 15-character Id body (ASCII alphanumerics only).
fn checksum(body: &str) -> String {
    body.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let mask = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |m, (j, _)| m | (1 << j));
            char::from(SUFFIX_ALPHABET[mask])
        })
        .collect()
}

impl fmt::Display for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SalesforceId({})", self.0)
    }
}

impl FromStr for SalesforceId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for SalesforceId {
    type Error = IdError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl AsRef<str> for SalesforceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<SalesforceId> for String {
    fn from(id: SalesforceId) -> Self {
        id.0
    }
}

impl PartialEq<str> for SalesforceId {
    /// Compares with a string in either form; an unparsable string is never equal.
    fn eq(&self, other: &str) -> bool {
        SalesforceId::parse(other).is_ok_and(|o| o == *self)
    }
}

impl PartialEq<&str> for SalesforceId {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl Serialize for SalesforceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SalesforceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        SalesforceId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (15, 18) pairs from the reference notes, each matching an Id printed in Salesforce
    /// docs or client-library fixtures.
    const VECTORS: &[(&str, &str)] = &[
        ("001D000000IqhSL", "001D000000IqhSLIAZ"),
        ("001D000000IRFma", "001D000000IRFmaIAH"),
        ("0011U00000V0tkD", "0011U00000V0tkDQAR"),
        ("001R00000033I6A", "001R00000033I6AIAU"),
        ("003D000000QV9n2", "003D000000QV9n2IAD"),
        ("00558000001N0Ke", "00558000001N0KeAAK"),
        ("500Hu000020yLuH", "500Hu000020yLuHIAU"),
    ];

    #[test]
    fn reference_vectors_convert_both_ways() {
        for (id15, id18) in VECTORS {
            let from15 = SalesforceId::parse(id15).unwrap();
            assert_eq!(from15.as_str(), *id18);
            assert_eq!(from15.to_15(), *id15);
            let from18 = SalesforceId::parse(id18).unwrap();
            assert_eq!(from18, from15);
            assert_eq!(from18.to_string(), *id18);
        }
    }

    #[test]
    fn suffix_is_case_insensitive_and_canonicalised() {
        let id = SalesforceId::parse("500Hu000020yLuHiau").unwrap();
        assert_eq!(id.as_str(), "500Hu000020yLuHIAU");
    }

    #[test]
    fn wrong_suffix_is_rejected() {
        let err = SalesforceId::parse("500Hu000020yLuHAAA").unwrap_err();
        assert_eq!(
            err,
            IdError::Checksum {
                expected: "IAU".into(),
                found: "AAA".into()
            }
        );
        // Changing the case of the body changes the checksum: strict parse refuses it.
        assert!(SalesforceId::parse("500hu000020ylUHIAU").is_err());
    }

    #[test]
    fn bad_length_and_characters_are_rejected() {
        assert_eq!(SalesforceId::parse(""), Err(IdError::Length(0)));
        assert_eq!(
            SalesforceId::parse("500Hu000020yLu"),
            Err(IdError::Length(14))
        );
        assert_eq!(
            SalesforceId::parse("500Hu000020yLuHIA"),
            Err(IdError::Length(17))
        );
        assert_eq!(
            SalesforceId::parse("500Hu000-20yLuH"),
            Err(IdError::Character(8))
        );
        // Multi-byte characters must not slip through a byte-length check.
        assert!(SalesforceId::parse("500Hu000020yLé").is_err());
        assert!(SalesforceId::parse("500Hu00002éyLuH").is_err());
    }

    #[test]
    fn key_prefix_and_accessors() {
        let id = SalesforceId::parse("500Hu000020yLuH").unwrap();
        assert_eq!(id.key_prefix(), "500");
        assert_eq!(id, "500Hu000020yLuH");
        assert_eq!(id, "500Hu000020yLuHIAU");
        assert_ne!(id, "500Hu000020yLuh");
        assert_ne!(id, "not an id");
        assert_eq!(String::from(id.clone()), "500Hu000020yLuHIAU");
        assert_eq!(format!("{id:?}"), "SalesforceId(500Hu000020yLuHIAU)");
    }

    #[test]
    fn case_insensitive_parse_restores_case() {
        for (_, id18) in VECTORS {
            let lower = id18.to_ascii_lowercase();
            let upper = id18.to_ascii_uppercase();
            assert_eq!(
                SalesforceId::parse_case_insensitive(&lower)
                    .unwrap()
                    .as_str(),
                *id18
            );
            assert_eq!(
                SalesforceId::parse_case_insensitive(&upper)
                    .unwrap()
                    .as_str(),
                *id18
            );
        }
        // A suffix that marks a digit as upper-case cannot be valid.
        assert!(SalesforceId::parse_case_insensitive("500Hu000020yLuH555").is_err());
        // 15-character Ids are case-sensitive even here.
        assert_eq!(
            SalesforceId::parse_case_insensitive("500hu000020ylUH")
                .unwrap()
                .to_15(),
            "500hu000020ylUH"
        );
    }

    #[test]
    fn serde_uses_the_18_character_string() {
        let id = SalesforceId::parse("001D000000IqhSL").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"001D000000IqhSLIAZ\"");
        let back: SalesforceId = serde_json::from_str("\"001D000000IqhSL\"").unwrap();
        assert_eq!(back, id);
        let err = serde_json::from_str::<SalesforceId>("\"001D000000IqhSLAAA\"").unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        assert!(serde_json::from_str::<SalesforceId>("42").is_err());
    }

    /// Deterministic pseudo-random generator (64-bit LCG) so the property tests need no
    /// extra crates and always run the same cases.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
    }

    fn random_id15(rng: &mut Lcg) -> String {
        const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        (0..15)
            .map(|_| char::from(ALNUM[(rng.next() % ALNUM.len() as u64) as usize]))
            .collect()
    }

    #[test]
    fn round_trip_15_18_15_over_generated_ids() {
        let mut rng = Lcg(0x5eed);
        for _ in 0..5_000 {
            let id15 = random_id15(&mut rng);
            let id = SalesforceId::parse(&id15).unwrap();
            assert_eq!(id.to_15(), id15);
            assert_eq!(id.as_str().len(), 18);
            let again = SalesforceId::parse(id.as_str()).unwrap();
            assert_eq!(again, id);
            assert_eq!(again.to_15(), id15);
            // The 18-character form survives case folding.
            let folded = id.as_str().to_ascii_lowercase();
            assert_eq!(SalesforceId::parse_case_insensitive(&folded).unwrap(), id);
        }
    }

    #[test]
    fn ids_differing_only_in_case_differ() {
        let mut rng = Lcg(42);
        let mut checked = 0;
        while checked < 1_000 {
            let id15 = random_id15(&mut rng);
            let swapped: String = id15
                .chars()
                .map(|c| {
                    if c.is_ascii_uppercase() {
                        c.to_ascii_lowercase()
                    } else {
                        c.to_ascii_uppercase()
                    }
                })
                .collect();
            if swapped == id15 {
                continue;
            }
            let a = SalesforceId::parse(&id15).unwrap();
            let b = SalesforceId::parse(&swapped).unwrap();
            assert_ne!(a, b);
            assert!(!a.as_str().eq_ignore_ascii_case(b.as_str()));
            checked += 1;
        }
    }
}
