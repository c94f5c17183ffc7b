//! SMS segment counting: GSM-7 (160 septets alone, 153 per part of a concatenated message,
//! extension characters take two septets and are never split) or, as soon as one character
//! is outside GSM-7, UCS-2 (70 UTF-16 units alone, 67 per part, surrogate pairs never split).

/// The encoding a body is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// GSM 03.38 default alphabet with its extension table.
    Gsm7,
    /// UTF-16 (UCS-2 on the wire, surrogate pairs for characters beyond the BMP).
    Ucs2,
}

/// GSM 03.38 basic character set (the escape 0x1B excluded).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// GSM 03.38 extension table (each sent as escape + character: two septets).
const GSM_EXTENSION: &str = "\u{000C}^{}\\[~]|€";

/// Septets `c` takes in GSM-7, or `None` when it is not in the alphabet.
fn gsm_septets(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The encoding `body` needs.
pub fn encoding(body: &str) -> Encoding {
    if body.chars().all(|c| gsm_septets(c).is_some()) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// Number of SMS segments for `body` (at least 1).
pub fn num_segments(body: &str) -> u32 {
    match encoding(body) {
        Encoding::Gsm7 => count(body.chars().filter_map(gsm_septets), 160, 153),
        Encoding::Ucs2 => count(body.chars().map(char::len_utf16), 70, 67),
    }
}

/// Packs units (each 1 or 2 wide, never split) into segments: one if the total fits
/// `single`, else parts of at most `part`.
fn count(widths: impl Iterator<Item = usize> + Clone, single: usize, part: usize) -> u32 {
    let total: usize = widths.clone().sum();
    if total <= single {
        return 1;
    }
    let mut segments = 1u32;
    let mut used = 0usize;
    for w in widths {
        if used + w > part {
            segments += 1;
            used = 0;
        }
        used += w;
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_limits() {
        assert_eq!(num_segments(""), 1);
        assert_eq!(num_segments(&"a".repeat(160)), 1);
        assert_eq!(num_segments(&"a".repeat(161)), 2);
        assert_eq!(num_segments(&"a".repeat(306)), 2);
        assert_eq!(num_segments(&"a".repeat(307)), 3);
        assert_eq!(encoding("Grüße @ 5€ [ok]"), Encoding::Gsm7);
    }

    #[test]
    fn extension_characters_count_twice_and_are_not_split() {
        // 80 euro signs = 160 septets: one segment.
        assert_eq!(num_segments(&"€".repeat(80)), 1);
        // 81 = 162 septets: concatenated; 76 fit in the first 153 (152 septets), …
        assert_eq!(num_segments(&"€".repeat(81)), 2);
        // 152 'a' then '€': the escape pair does not fit the first part's last septet.
        let body = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        assert_eq!(num_segments(&body), 2);
        let body = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(num_segments(&body), 3);
    }

    #[test]
    fn ucs2_limits() {
        assert_eq!(encoding("curly ’quote’"), Encoding::Ucs2);
        assert_eq!(num_segments(&"ж".repeat(70)), 1);
        assert_eq!(num_segments(&"ж".repeat(71)), 2);
        assert_eq!(num_segments(&"ж".repeat(134)), 2);
        assert_eq!(num_segments(&"ж".repeat(135)), 3);
        // Emoji are surrogate pairs: 35 fit one segment, 36 do not; 33 per part.
        assert_eq!(num_segments(&"😀".repeat(35)), 1);
        assert_eq!(num_segments(&"😀".repeat(36)), 2);
        assert_eq!(num_segments(&"😀".repeat(66)), 2);
        assert_eq!(num_segments(&"😀".repeat(67)), 3);
        // 134 units fill two parts exactly, but the pair at units 67-68 is not split:
        // it moves to the second part, pushing one unit into a third.
        let body = format!("{}😀{}", "ж".repeat(66), "ж".repeat(66));
        assert_eq!(num_segments(&body), 3);
    }
}
