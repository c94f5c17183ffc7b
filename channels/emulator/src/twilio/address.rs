//! Twilio messaging addresses: `+E164` (SMS) or `whatsapp:+E164`.

/// The channel an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    Sms,
    Whatsapp,
}

/// The WhatsApp channel prefix.
pub(crate) const WHATSAPP_PREFIX: &str = "whatsapp:";

/// Whether `s` is `+` followed by 2 to 15 digits, the first not 0.
pub(crate) fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Splits an address into its channel and number; `None` if the number is not E.164.
pub(crate) fn parse(address: &str) -> Option<(Channel, &str)> {
    match address.strip_prefix(WHATSAPP_PREFIX) {
        Some(number) if is_e164(number) => Some((Channel::Whatsapp, number)),
        Some(_) => None,
        None if is_e164(address) => Some((Channel::Sms, address)),
        None => None,
    }
}

/// The channel an address names by its prefix (the number itself unchecked).
pub(crate) fn channel_of(address: &str) -> Channel {
    if address.starts_with(WHATSAPP_PREFIX) {
        Channel::Whatsapp
    } else {
        Channel::Sms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        assert_eq!(parse("+14155550100"), Some((Channel::Sms, "+14155550100")));
        assert_eq!(
            parse("whatsapp:+14155550100"),
            Some((Channel::Whatsapp, "+14155550100"))
        );
        for bad in [
            "14155550100",
            "+0123",
            "+1",
            "+1234567890123456",
            "+1 415 555",
            "whatsapp:14155550100",
            "sms:+14155550100",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
