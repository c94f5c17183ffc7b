//! `EmailAddress`: an address that has been checked once, at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest address accepted (the SMTP path limit minus the angle brackets).
const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 63;

/// Characters that never appear in an unquoted local part (quoted local parts are not accepted).
const FORBIDDEN_IN_LOCAL: &[char] = &['(', ')', ',', ':', ';', '<', '>', '[', ']', '\\', '"'];

/// A pragmatically validated email address: one `@`, a local part of at most 64 bytes, a domain
/// with at least one dot made of letter/digit/hyphen labels, no whitespace or control
/// characters, at most 254 bytes. The domain is lower-cased; the local part is kept as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

/// Why a string is not an [`EmailAddress`]. The texts never echo the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailAddressError {
    #[error("the email address is empty")]
    Empty,
    #[error("the email address is longer than 254 bytes")]
    TooLong,
    #[error("the email address contains whitespace or a control character")]
    InvalidCharacter,
    #[error("the email address must contain exactly one `@`")]
    AtSign,
    #[error("the part of the email address before `@` is empty, longer than 64 bytes or malformed")]
    LocalPart,
    #[error("the domain of the email address is malformed")]
    Domain,
}

impl EmailAddress {
    /// Parses `input` (surrounding whitespace is ignored).
    ///
    /// # Errors
    /// [`EmailAddressError`] saying which rule the input breaks.
    pub fn parse(input: &str) -> Result<Self, EmailAddressError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(EmailAddressError::Empty);
        }
        if input.len() > MAX_LEN {
            return Err(EmailAddressError::TooLong);
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailAddressError::InvalidCharacter);
        }
        let mut parts = input.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailAddressError::AtSign);
        };
        if !valid_local_part(local) {
            return Err(EmailAddressError::LocalPart);
        }
        if !valid_domain(domain) {
            return Err(EmailAddressError::Domain);
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    /// The address as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@` (lower-case).
    #[must_use]
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, domain)| domain)
    }

    /// Whether two addresses name the same mailbox, ignoring ASCII case in the local part too
    /// (what every mainstream provider does in practice).
    #[must_use]
    pub fn same_mailbox(&self, other: &EmailAddress) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

fn valid_local_part(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= MAX_LOCAL_LEN
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && !local.contains(FORBIDDEN_IN_LOCAL)
}

fn valid_domain(domain: &str) -> bool {
    let mut labels = 0;
    for label in domain.split('.') {
        let ok = !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-');
        if !ok {
            return false;
        }
        labels += 1;
    }
    labels >= 2
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for EmailAddress {
    type Err = EmailAddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = EmailAddressError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_lowercases_the_domain_only() {
        let a = EmailAddress::parse("  Jane.Doe+billing@Example.CO.uk ").unwrap();
        assert_eq!(a.as_str(), "Jane.Doe+billing@example.co.uk");
        assert_eq!(a.domain(), "example.co.uk");
        assert_eq!(a.to_string(), "Jane.Doe+billing@example.co.uk");
        assert!(EmailAddress::parse("o'brien@xn--bcher-kva.example").is_ok());
        assert!(EmailAddress::parse("jürgen@bücher.de").is_ok());
    }

    #[test]
    fn rejects_each_broken_rule_with_its_own_reason() {
        use EmailAddressError::*;
        let cases: &[(&str, EmailAddressError)] = &[
            ("", Empty),
            ("   ", Empty),
            ("jane doe@example.com", InvalidCharacter),
            ("jane\u{7}@example.com", InvalidCharacter),
            ("jane.example.com", AtSign),
            ("jane@doe@example.com", AtSign),
            ("@example.com", LocalPart),
            (".jane@example.com", LocalPart),
            ("jane..doe@example.com", LocalPart),
            ("<jane>@example.com", LocalPart),
            ("jane@localhost", Domain),
            ("jane@", Domain),
            ("jane@example..com", Domain),
            ("jane@-example.com", Domain),
            ("jane@example-.com", Domain),
            ("jane@exa_mple.com", Domain),
            ("jane@example.com.", Domain),
        ];
        for (input, reason) in cases {
            assert_eq!(EmailAddress::parse(input), Err(*reason), "input {input:?}");
        }
    }

    #[test]
    fn enforces_length_limits() {
        let local64 = "a".repeat(64);
        assert!(EmailAddress::parse(&format!("{local64}@example.com")).is_ok());
        assert_eq!(
            EmailAddress::parse(&format!("{local64}a@example.com")),
            Err(EmailAddressError::LocalPart)
        );
        let label63 = "b".repeat(63);
        assert!(EmailAddress::parse(&format!("j@{label63}.com")).is_ok());
        assert_eq!(
            EmailAddress::parse(&format!("j@{label63}b.com")),
            Err(EmailAddressError::Domain)
        );
        // 5 + 4 * 61 + 3 = 252 bytes; three more bytes of local part exceed 254.
        let domain = format!("{0}.{0}.{0}.{0}.com", "c".repeat(60));
        let ok = format!("jane@{domain}");
        assert_eq!(ok.len(), 252);
        assert!(EmailAddress::parse(&ok).is_ok());
        assert_eq!(
            EmailAddress::parse(&format!("jane123@{domain}")),
            Err(EmailAddressError::TooLong)
        );
    }

    #[test]
    fn serde_round_trips_and_rejects_invalid() {
        let a: EmailAddress = serde_json::from_str("\"Jo@Example.com\"").unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"Jo@example.com\"");
        let err = serde_json::from_str::<EmailAddress>("\"not-an-address\"").unwrap_err();
        assert!(err.to_string().contains("exactly one `@`"), "{err}");
        assert!(!err.to_string().contains("not-an-address"), "{err}");
    }

    #[test]
    fn same_mailbox_ignores_case() {
        let a = EmailAddress::parse("Jane@Example.com").unwrap();
        let b = EmailAddress::parse("jane@example.COM").unwrap();
        let c = EmailAddress::parse("john@example.com").unwrap();
        assert!(a.same_mailbox(&b));
        assert!(!a.same_mailbox(&c));
    }
}
