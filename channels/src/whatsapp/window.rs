//! WhatsApp's customer-service window: free-form messages may be sent only within 24 hours of
//! the customer's last message; outside it only an approved template may be, and a template's
//! text parameter has rules of its own.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// WhatsApp's customer-service window: free-form messages only within 24 hours of the
/// customer's last message (templates outside it).
pub const WHATSAPP_REPLY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest text a template's body parameter may carry. Meta allows 32,768 characters when
/// the body is the template's only component and 1,024 when it has others (a header, buttons);
/// we cannot see the template, so the lower limit holds.
pub const TEMPLATE_PARAMETER_MAX_CHARS: usize = 1_024;

/// Whether free-form text may still be sent at `now` to a customer who last wrote at `last`
/// (`None`: never, as far as we know). A message stamped in the future (clock skew) counts as
/// just now.
#[must_use]
pub fn is_open(last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    let Some(last) = last else {
        return false;
    };
    let window = chrono::Duration::from_std(WHATSAPP_REPLY_WINDOW).expect("24 hours fits");
    now.signed_duration_since(last) < window
}

/// `text` as a template body parameter Meta accepts: no line breaks or tabs and no run of more
/// than four spaces (error 132018), so every run of whitespace becomes one space; at most
/// [`TEMPLATE_PARAMETER_MAX_CHARS`] characters, a longer text cut with `…`; never empty.
#[must_use]
pub fn template_parameter(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let flat = if flat.is_empty() {
        "…".to_owned()
    } else {
        flat
    };
    if flat.chars().count() <= TEMPLATE_PARAMETER_MAX_CHARS {
        return flat;
    }
    let mut cut: String = flat
        .chars()
        .take(TEMPLATE_PARAMETER_MAX_CHARS - 1)
        .collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, h, m, s).unwrap()
    }

    #[test]
    fn the_window_is_open_for_24_hours_after_the_last_message() {
        let last = at(9, 0, 0);
        assert!(is_open(Some(last), last));
        assert!(is_open(
            Some(last),
            last + chrono::Duration::hours(23) + chrono::Duration::seconds(3599)
        ));
        assert!(!is_open(Some(last), last + chrono::Duration::hours(24)));
        assert!(!is_open(Some(last), last + chrono::Duration::days(30)));
        assert!(!is_open(None, last));
        // A last message in our future (skewed clocks) leaves the window open.
        assert!(is_open(Some(at(10, 0, 0)), at(9, 0, 0)));
    }

    #[test]
    fn template_parameters_are_flat_bounded_and_never_empty() {
        assert_eq!(
            template_parameter("Hi Ann,\n\nyour card\tis   fixed.     Thanks"),
            "Hi Ann, your card is fixed. Thanks"
        );
        assert_eq!(template_parameter(" \n\t "), "…");
        let exact = "x".repeat(TEMPLATE_PARAMETER_MAX_CHARS);
        assert_eq!(template_parameter(&exact), exact);
        let long = "wörd ".repeat(500);
        let cut = template_parameter(&long);
        assert_eq!(cut.chars().count(), TEMPLATE_PARAMETER_MAX_CHARS);
        assert!(cut.ends_with("wör…"), "{cut}");
        assert!(!cut.contains("  "));
        // The cut never leaves a space before the ellipsis.
        let spaced = format!("{} tail", "a".repeat(TEMPLATE_PARAMETER_MAX_CHARS - 2));
        let cut = template_parameter(&spaced);
        assert!(cut.ends_with("a…"), "{cut}");
        assert!(cut.chars().count() <= TEMPLATE_PARAMETER_MAX_CHARS);
    }
}
