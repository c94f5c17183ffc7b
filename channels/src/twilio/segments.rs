//! How many SMS segments a text takes, and cutting a long text into messages of at most a
//! number of segments.
//!
//! A text is sent in the GSM 03.38 7-bit alphabet when every character is in its basic set or
//! its extension table (an extension character takes two septets: the escape and the
//! character); otherwise it is sent as UCS-2, counted in UTF-16 code units (a character outside
//! the Basic Multilingual Plane takes two). One message holds 160 septets or 70 code units; a
//! concatenated message loses room to its header: 153 septets or 67 code units per segment. An
//! escape pair or a surrogate pair is never cut between two segments.

/// How an SMS text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The GSM 03.38 7-bit default alphabet (with its extension table).
    Gsm7,
    /// UCS-2 / UTF-16: anything the GSM alphabet cannot carry.
    Ucs2,
}

impl Encoding {
    /// Units (septets or UTF-16 code units) in a message of one segment.
    #[must_use]
    pub fn single_capacity(self) -> usize {
        match self {
            Self::Gsm7 => 160,
            Self::Ucs2 => 70,
        }
    }

    /// Units in each segment of a concatenated message.
    #[must_use]
    pub fn segment_capacity(self) -> usize {
        match self {
            Self::Gsm7 => 153,
            Self::Ucs2 => 67,
        }
    }
}

/// The GSM 03.38 basic character set, in table order (the escape at 0x1B is left out).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                         ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The GSM 03.38 extension table: form feed, `^ { } \ [ ~ ] |` and the euro sign.
const GSM_EXTENSION: &str = "\u{000C}^{}\\[~]|€";

/// Septets `c` takes in the GSM alphabet (1, or 2 for an extension character), or `None` when
/// the alphabet cannot carry it.
#[must_use]
pub fn gsm_septets(c: char) -> Option<usize> {
    if c.is_ascii() {
        // Most of ASCII is in the basic set at its own code; check the exceptions quickly.
        return if GSM_EXTENSION.contains(c) {
            Some(2)
        } else if GSM_BASIC.contains(c) {
            Some(1)
        } else {
            None
        };
    }
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if c == '€' {
        Some(2)
    } else {
        None
    }
}

/// The encoding `text` is sent in and the number of segments it takes (an empty text is one).
#[must_use]
pub fn segments(text: &str) -> (Encoding, usize) {
    let mut counter = Counter::default();
    for c in text.chars() {
        counter.push(c);
    }
    (counter.encoding(), counter.count())
}

/// Counts segments as a text grows by one character at a time, for both encodings at once,
/// so that finding the longest prefix within a limit is one pass.
#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    /// Whether every character so far is in the GSM alphabet.
    not_gsm: bool,
    gsm: Packing,
    ucs2: Packing,
}

impl Counter {
    fn push(&mut self, c: char) {
        match gsm_septets(c) {
            Some(septets) if !self.not_gsm => self.gsm.push(septets, Encoding::Gsm7),
            _ => self.not_gsm = true,
        }
        self.ucs2.push(c.len_utf16(), Encoding::Ucs2);
    }

    fn encoding(&self) -> Encoding {
        if self.not_gsm {
            Encoding::Ucs2
        } else {
            Encoding::Gsm7
        }
    }

    fn count(&self) -> usize {
        match self.encoding() {
            Encoding::Gsm7 => self.gsm.count(Encoding::Gsm7),
            Encoding::Ucs2 => self.ucs2.count(Encoding::Ucs2),
        }
    }
}

/// Characters packed into concatenated-message segments, never splitting one character's
/// units (an escape pair, a surrogate pair) between two segments.
#[derive(Debug, Clone, Copy, Default)]
struct Packing {
    /// All units so far (to decide whether a single message holds them).
    total: usize,
    /// Full segments before the current one.
    full: usize,
    /// Units in the current segment.
    current: usize,
}

impl Packing {
    fn push(&mut self, units: usize, encoding: Encoding) {
        self.total += units;
        if self.current + units > encoding.segment_capacity() {
            self.full += 1;
            self.current = 0;
        }
        self.current += units;
    }

    fn count(&self, encoding: Encoding) -> usize {
        if self.total <= encoding.single_capacity() {
            1
        } else {
            self.full + usize::from(self.current > 0)
        }
    }
}

/// `text` cut into parts of at most `max_segments` segments each (at least one), each cut just
/// after the last whitespace that keeps it within the limit, else between characters. Each part
/// is counted in its own encoding (a GSM-only part of a text with an emoji elsewhere gets GSM
/// room). The parts concatenate back to `text`; the work is linear in its length.
#[must_use]
pub fn split(text: &str, max_segments: usize) -> Vec<String> {
    let max_segments = max_segments.max(1);
    let mut parts = Vec::new();
    let mut rest = text;
    loop {
        let cut = longest_fitting_prefix(rest, max_segments);
        if cut == rest.len() {
            parts.push(rest.to_owned());
            return parts;
        }
        parts.push(rest[..cut].to_owned());
        rest = &rest[cut..];
    }
}

/// The byte length of the part to send first: all of `text` when it fits, else up to and
/// including the last whitespace within the limit, else as many characters as fit (at least
/// one, so the split always moves on).
fn longest_fitting_prefix(text: &str, max_segments: usize) -> usize {
    let mut counter = Counter::default();
    let mut after_whitespace = None;
    for (i, c) in text.char_indices() {
        let mut next = counter;
        next.push(c);
        if next.count() > max_segments {
            return match after_whitespace {
                Some(end) => end,
                None if i == 0 => c.len_utf8(),
                None => i,
            };
        }
        counter = next;
        if c.is_whitespace() {
            after_whitespace = Some(i + c.len_utf8());
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alphabet_has_128_basic_and_10_extension_characters() {
        assert_eq!(GSM_BASIC.chars().count(), 127, "128 codes less the escape");
        assert_eq!(GSM_EXTENSION.chars().count(), 10);
        for c in GSM_BASIC.chars() {
            assert_eq!(gsm_septets(c), Some(1), "{c:?}");
        }
        for c in GSM_EXTENSION.chars() {
            assert_eq!(gsm_septets(c), Some(2), "{c:?}");
        }
        for c in ['`', '\t', 'ç', 'á', 'Ω', '😀', '\u{1b}', 'ê', '¢'] {
            assert_eq!(
                gsm_septets(c),
                if c == 'Ω' { Some(1) } else { None },
                "{c:?}"
            );
        }
    }

    #[test]
    fn single_messages_hold_160_septets_or_70_code_units() {
        assert_eq!(segments(""), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"a".repeat(160)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"a".repeat(161)), (Encoding::Gsm7, 2));
        assert_eq!(segments(&"€".repeat(80)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"€".repeat(81)), (Encoding::Gsm7, 2));
        assert_eq!(segments(&"é".repeat(160)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"ê".repeat(70)), (Encoding::Ucs2, 1));
        assert_eq!(segments(&"ê".repeat(71)), (Encoding::Ucs2, 2));
        // An emoji is a surrogate pair: two code units.
        assert_eq!(segments(&"😀".repeat(35)), (Encoding::Ucs2, 1));
        assert_eq!(segments(&"😀".repeat(36)), (Encoding::Ucs2, 2));
        // One character outside the alphabet makes the whole text UCS-2.
        assert_eq!(
            segments(&format!("{}ç", "a".repeat(69))),
            (Encoding::Ucs2, 1)
        );
        assert_eq!(
            segments(&format!("{}ç", "a".repeat(70))),
            (Encoding::Ucs2, 2)
        );
    }

    #[test]
    fn concatenated_segments_hold_153_septets_or_67_code_units() {
        assert_eq!(segments(&"a".repeat(306)), (Encoding::Gsm7, 2));
        assert_eq!(segments(&"a".repeat(307)), (Encoding::Gsm7, 3));
        assert_eq!(segments(&"a".repeat(1530)), (Encoding::Gsm7, 10));
        assert_eq!(segments(&"ж".repeat(134)), (Encoding::Ucs2, 2));
        assert_eq!(segments(&"ж".repeat(135)), (Encoding::Ucs2, 3));
    }

    #[test]
    fn escape_and_surrogate_pairs_stay_in_one_segment() {
        // 152 septets, then `€` (2) does not fit in the first segment's last septet.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        // Naively 306 septets = 2 segments; packed: 152 | 2 + 152 = 154 > 153 → 3.
        assert_eq!(segments(&text), (Encoding::Gsm7, 3));
        let text = format!("{}😀{}", "ж".repeat(66), "ж".repeat(66));
        // Naively 134 units = 2 segments; packed: 66 | 2 + 66 = 68 > 67 → 3.
        assert_eq!(segments(&text), (Encoding::Ucs2, 3));
    }

    #[test]
    fn short_texts_are_one_part() {
        assert_eq!(split("", 1), [""]);
        assert_eq!(split("hello", 1), ["hello"]);
        let long = "a".repeat(1530);
        assert_eq!(split(&long, 10), [long]);
    }

    #[test]
    fn long_texts_are_cut_after_whitespace() {
        let words = "word ".repeat(40); // 200 septets
        let parts = split(&words, 1);
        assert_eq!(parts, ["word ".repeat(32), "word ".repeat(8)]);
        // A word longer than a message is cut between characters.
        let parts = split(&"a".repeat(200), 1);
        assert_eq!(parts, ["a".repeat(160), "a".repeat(40)]);
    }

    #[test]
    fn zero_segments_means_one() {
        assert_eq!(
            split(&"a".repeat(161), 0),
            ["a".repeat(160), "a".to_owned()]
        );
    }

    /// A deterministic generator (xorshift) so the property tests cover many shapes reproducibly.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            let len = u64::try_from(items.len()).unwrap();
            items[usize::try_from(self.next() % len).unwrap()]
        }
    }

    #[test]
    fn parts_fit_lose_nothing_and_prefer_whitespace() {
        let alphabets: [&[&str]; 4] = [
            &["a", "b", " ", "Z", "0", "."],
            &["a", "€", " ", "[", "é", "\n"],
            &["a", " ", "ж", "ç"],
            &["a", " ", "😀", "€", "日", "\u{301}"],
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for alphabet in alphabets {
            for len in [
                0, 1, 69, 70, 71, 152, 153, 159, 160, 161, 306, 307, 500, 1600, 4000,
            ] {
                let text: String = (0..len).map(|_| rng.pick(alphabet)).collect();
                for max in [1, 2, 3, 10] {
                    let parts = split(&text, max);
                    assert_eq!(parts.concat(), text, "{len} {max}");
                    assert!(
                        parts.iter().all(|p| segments(p).1 <= max),
                        "{len} {max}: {parts:?}"
                    );
                    assert!(
                        parts.len() == 1 || parts.iter().all(|p| !p.is_empty()),
                        "{len} {max}"
                    );
                    for pair in parts.windows(2) {
                        let (part, next) = (&pair[0], &pair[1]);
                        // Cut after whitespace when the part has any…
                        if part.contains(char::is_whitespace) {
                            assert!(part.ends_with(char::is_whitespace), "{part:?}");
                        } else {
                            // …else as much as fits: one more character would not.
                            let first = next.chars().next().unwrap();
                            let grown = format!("{part}{first}");
                            assert!(segments(&grown).1 > max, "{part:?} + {first:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_gsm_part_of_a_mixed_text_gets_gsm_room() {
        let text = format!("{} {}", "a".repeat(150), "ж".repeat(20));
        let parts = split(&text, 1);
        assert_eq!(parts, [format!("{} ", "a".repeat(150)), "ж".repeat(20)]);
        assert_eq!(segments(&parts[0]), (Encoding::Gsm7, 1));
    }
}
