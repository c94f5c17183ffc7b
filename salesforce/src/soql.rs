//! Escaping values for SOQL string literals.
//!
//! The REST API has no bind variables, so every value spliced into a SOQL statement must go
//! through [`quote`] (or [`escape_literal`] inside quotes you write yourself). Inside a
//! single-quoted SOQL literal the only legal escapes are `\n \r \t \b \f \" \' \\ \uXXXX`
//! (plus `\% \_` in `LIKE` patterns); any other backslash is an error, and `'` and `\` must
//! always be escaped.
//!
//! The escaping here is a single pass over the characters, so every backslash in the input is
//! doubled before any escape sequence is added (the "backslash first" rule of chained
//! `replace` implementations holds by construction).

/// Why a value cannot be used in a SOQL literal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoqlError {
    /// A C0 control character other than `\n \r \t \b \f`, which SOQL cannot express.
    #[error(
        "value contains control character U+{code:04X} at byte {index}, which a SOQL literal cannot hold"
    )]
    ControlCharacter {
        /// Byte offset of the character in the input.
        index: usize,
        /// The character's code point.
        code: u32,
    },
}

/// Escapes `value` for use between single quotes in SOQL (the quotes are not added).
///
/// `\` → `\\`, `'` → `\'`, `"` → `\"`, newline → `\n`, CR → `\r`, tab → `\t`,
/// backspace → `\b`, form feed → `\f`. Any other C0 control character is refused.
pub fn escape_literal(value: &str) -> Result<String, SoqlError> {
    escape(value, false)
}

/// Escapes `value` for use in a `LIKE` pattern: like [`escape_literal`], and the wildcards
/// `%` and `_` become `\%` and `\_` so they match literally.
pub fn escape_like(value: &str) -> Result<String, SoqlError> {
    escape(value, true)
}

/// Escapes `value` and wraps it in single quotes: `O'Brien` → `'O\'Brien'`.
pub fn quote(value: &str) -> Result<String, SoqlError> {
    Ok(format!("'{}'", escape_literal(value)?))
}

/// Escapes `value` as a `LIKE` pattern that matches it literally and wraps it in single
/// quotes. Add wildcards around the escaped text yourself when you need them, e.g.
/// `format!("'%{}%'", escape_like(v)?)`.
pub fn quote_like(value: &str) -> Result<String, SoqlError> {
    Ok(format!("'{}'", escape_like(value)?))
}

fn escape(value: &str, like: bool) -> Result<String, SoqlError> {
    let mut out = String::with_capacity(value.len() + value.len() / 8 + 2);
    for (index, c) in value.char_indices() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '%' if like => out.push_str("\\%"),
            '_' if like => out.push_str("\\_"),
            c if u32::from(c) < 0x20 => {
                return Err(SoqlError::ControlCharacter {
                    index,
                    code: u32::from(c),
                });
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One decoded unit of a SOQL string literal.
    #[derive(Debug, PartialEq)]
    enum Unit {
        /// A character that stands for itself.
        Char(char),
        /// An unescaped `%` or `_` (a wildcard in LIKE patterns).
        Wildcard(char),
    }

    /// A reference lexer for SOQL single-quoted literals, written from the SOQL guide's
    /// escape table rather than from the escaper. `input` must start with `'`. Returns the
    /// decoded units and the byte index just past the closing quote.
    fn lex_literal(input: &str, like: bool) -> Result<(Vec<Unit>, usize), String> {
        let mut chars = input.char_indices();
        match chars.next() {
            Some((0, '\'')) => {}
            _ => return Err("literal must start with a quote".into()),
        }
        let mut units = Vec::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '\'' => return Ok((units, i + 1)),
                '\\' => {
                    let Some((_, e)) = chars.next() else {
                        return Err("dangling backslash".into());
                    };
                    let decoded = match e {
                        'n' | 'N' => '\n',
                        'r' | 'R' => '\r',
                        't' | 'T' => '\t',
                        'b' | 'B' => '\u{8}',
                        'f' | 'F' => '\u{c}',
                        '"' => '"',
                        '\'' => '\'',
                        '\\' => '\\',
                        '%' | '_' if like => e,
                        'u' => {
                            let hex: String = chars.by_ref().take(4).map(|(_, h)| h).collect();
                            let code = u32::from_str_radix(&hex, 16)
                                .map_err(|_| format!("bad \\u escape {hex:?}"))?;
                            char::from_u32(code).ok_or("bad code point")?
                        }
                        other => return Err(format!("illegal escape \\{other}")),
                    };
                    units.push(Unit::Char(decoded));
                }
                c if u32::from(c) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {
                    return Err(format!("raw control character U+{:04X}", u32::from(c)));
                }
                '%' | '_' if like => units.push(Unit::Wildcard(c)),
                c => units.push(Unit::Char(c)),
            }
        }
        Err("unterminated literal".into())
    }

    fn chars_of(units: &[Unit]) -> Result<String, String> {
        units
            .iter()
            .map(|u| match u {
                Unit::Char(c) => Ok(*c),
                Unit::Wildcard(w) => Err(format!("unescaped wildcard {w}")),
            })
            .collect()
    }

    /// Deterministic generator of strings rich in characters that matter to SOQL.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn string(&mut self) -> String {
            const PIECES: &[&str] = &[
                "'",
                "\\",
                "\"",
                "%",
                "_",
                "\n",
                "\r",
                "\t",
                "\u{8}",
                "\u{c}",
                "a",
                "Z",
                "0",
                " ",
                "é",
                "😀",
                "\u{7f}",
                "\u{a0}",
                "\\'",
                "''",
                "\\\\",
                "' OR Name != '",
                "\\u0027",
                "--",
                ";",
                "*",
                "\u{2028}",
            ];
            let len = self.next() % 24;
            (0..len)
                .map(|_| PIECES[(self.next() % PIECES.len() as u64) as usize])
                .collect()
        }
    }

    #[test]
    fn escapes_each_special_character() {
        assert_eq!(escape_literal("O'Brien").unwrap(), "O\\'Brien");
        assert_eq!(escape_literal("a\\b").unwrap(), "a\\\\b");
        assert_eq!(escape_literal("say \"hi\"").unwrap(), "say \\\"hi\\\"");
        assert_eq!(
            escape_literal("l1\nl2\rl3\tx\u{8}y\u{c}z").unwrap(),
            "l1\\nl2\\rl3\\tx\\by\\fz"
        );
        // A backslash before a quote: both escaped, backslash first.
        assert_eq!(escape_literal("\\'").unwrap(), "\\\\\\'");
        assert_eq!(escape_literal("100%_done").unwrap(), "100%_done");
        assert_eq!(escape_like("100%_done").unwrap(), "100\\%\\_done");
        assert_eq!(quote("ann@example.com").unwrap(), "'ann@example.com'");
        assert_eq!(quote("").unwrap(), "''");
        assert_eq!(quote_like("a_b").unwrap(), "'a\\_b'");
    }

    #[test]
    fn other_control_characters_are_refused_with_their_position() {
        let err = escape_literal("ab\u{0}c").unwrap_err();
        assert_eq!(err, SoqlError::ControlCharacter { index: 2, code: 0 });
        assert!(err.to_string().contains("U+0000"), "{err}");
        assert!(err.to_string().contains("byte 2"), "{err}");
        assert!(quote("é\u{1b}[31m").is_err());
        assert!(escape_like("\u{1f}").is_err());
        for code in (0u32..0x20).filter(|c| ![8, 9, 10, 12, 13].contains(c)) {
            let s = char::from_u32(code).unwrap().to_string();
            assert!(escape_literal(&s).is_err(), "U+{code:04X} accepted");
        }
    }

    #[test]
    fn quoted_literals_round_trip_and_never_close_early() {
        let mut generator = Gen(0x9E37_79B9_7F4A_7C15);
        let mut nasty = 0;
        for _ in 0..20_000 {
            let value = generator.string();
            let quoted = match quote(&value) {
                Ok(q) => q,
                Err(SoqlError::ControlCharacter { index, code }) => {
                    // Only refused when a disallowed control character really is present.
                    let c = value[index..].chars().next().unwrap();
                    assert_eq!(u32::from(c), code);
                    assert!(code < 0x20 && ![8, 9, 10, 12, 13].contains(&code));
                    continue;
                }
            };
            if value.contains('\'') {
                nasty += 1;
            }
            // Put the literal in a statement followed by more SOQL: the lexer must stop at
            // the closing quote we wrote, not earlier and not later.
            let statement = format!("{quoted} AND IsDeleted = false");
            let (units, end) = lex_literal(&statement, false)
                .unwrap_or_else(|e| panic!("{e} for {value:?} → {quoted}"));
            assert_eq!(end, quoted.len(), "literal closed early for {value:?}");
            assert_eq!(&statement[end..], " AND IsDeleted = false");
            assert_eq!(chars_of(&units).unwrap(), value);
        }
        assert!(nasty > 1_000, "generator produced too few quotes: {nasty}");
    }

    #[test]
    fn like_patterns_round_trip_without_wildcards() {
        let mut generator = Gen(7);
        for _ in 0..20_000 {
            let value = generator.string();
            let Ok(escaped) = escape_like(&value) else {
                continue;
            };
            let pattern = format!("'%{escaped}%'");
            let (units, end) = lex_literal(&pattern, true).unwrap();
            assert_eq!(end, pattern.len());
            // Exactly the two wildcards we added, around the literal text of the value.
            assert_eq!(units.first(), Some(&Unit::Wildcard('%')));
            assert_eq!(units.last(), Some(&Unit::Wildcard('%')));
            assert_eq!(chars_of(&units[1..units.len() - 1]).unwrap(), value);
        }
    }

    #[test]
    fn the_reference_lexer_catches_naive_escaping() {
        // Guard against a lexer that accepts anything: unescaped input must fail to
        // round-trip or close early.
        let naive = format!("'{}'", "x' OR Name != 'y");
        let (units, end) = lex_literal(&naive, false).unwrap();
        assert_ne!(end, naive.len());
        assert_eq!(chars_of(&units).unwrap(), "x");
        assert!(lex_literal("'a\\qb'", false).is_err());
        assert!(lex_literal("'a\\%'", false).is_err());
        assert!(lex_literal("'abc", false).is_err());
    }
}
