//! Hand-written SOQL tokenizer. Tokens carry their byte offset and raw text so
//! errors can point at them.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

use super::ast::{PatChar, StrLit};
use super::error::SoqlError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A word: keyword or name. Keywords are recognised by the parser.
    Ident(String),
    Str(StrLit),
    /// A numeric literal, kept as written (may start with `-`).
    Number(String),
    Date(NaiveDate),
    DateTime(DateTime<FixedOffset>),
    Comma,
    Dot,
    LParen,
    RParen,
    Colon,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    /// Any character SOQL has no use for here (`*`, `;`, `"`, …).
    Other(char),
    Eof,
    /// The text could not be tokenized here. The parser reports this error
    /// only if it gets this far, so an earlier syntax error wins
    /// (`'O'Brien'` fails on `Brien`, not on the unterminated quote).
    Error(Box<SoqlError>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Byte offset of the token's first character.
    pub offset: usize,
    /// The token as written (`<EOF>` at the end).
    pub raw: String,
}

impl Token {
    /// Case-insensitive keyword test.
    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.tok, Tok::Ident(w) if w.eq_ignore_ascii_case(kw))
    }
}

/// Tokenizes `text`; the last token is `Eof` or `Error`.
pub(crate) fn tokenize(text: &str) -> Vec<Token> {
    let mut lexer = Lexer { text, pos: 0 };
    let mut out = Vec::new();
    loop {
        let start = lexer.pos;
        match lexer.next_token() {
            Ok(token) => {
                let end = token.tok == Tok::Eof;
                out.push(token);
                if end {
                    return out;
                }
            }
            Err(e) => {
                out.push(Token {
                    tok: Tok::Error(Box::new(e)),
                    offset: start,
                    raw: text[start..].to_string(),
                });
                return out;
            }
        }
    }
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.text[self.pos..].chars().nth(n)
    }

    fn token(&self, tok: Tok, start: usize) -> Token {
        Token {
            tok,
            offset: start,
            raw: self.text[start..self.pos].to_string(),
        }
    }

    fn next_token(&mut self) -> Result<Token, SoqlError> {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Ok(Token {
                tok: Tok::Eof,
                offset: start,
                raw: "<EOF>".to_string(),
            });
        };
        if c.is_ascii_digit() || (c == '-' && self.peek_at(1).is_some_and(|d| d.is_ascii_digit())) {
            return self.number_or_date(start);
        }
        if c.is_alphabetic() || c == '_' {
            while let Some(c) = self.peek() {
                if c.is_alphanumeric() || c == '_' {
                    self.pos += c.len_utf8();
                } else {
                    break;
                }
            }
            let word = self.text[start..self.pos].to_string();
            return Ok(self.token(Tok::Ident(word), start));
        }
        if c == '\'' {
            return self.string(start);
        }
        self.pos += c.len_utf8();
        let two = |l: &mut Self, next: char| {
            if l.peek() == Some(next) {
                l.pos += 1;
                true
            } else {
                false
            }
        };
        let tok = match c {
            ',' => Tok::Comma,
            '.' => Tok::Dot,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ':' => Tok::Colon,
            '=' => Tok::Eq,
            '!' if two(self, '=') => Tok::Ne,
            '<' if two(self, '>') => Tok::Ne,
            '<' if two(self, '=') => Tok::Le,
            '<' => Tok::Lt,
            '>' if two(self, '=') => Tok::Ge,
            '>' => Tok::Gt,
            other => Tok::Other(other),
        };
        Ok(self.token(tok, start))
    }

    /// A single-quoted literal with SOQL escapes decoded. `\%` and `\_` are
    /// kept as escaped wildcards for LIKE patterns.
    fn string(&mut self, start: usize) -> Result<Token, SoqlError> {
        self.pos += 1;
        let mut chars = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(SoqlError::malformed(
                    self.text,
                    self.text.len(),
                    "mismatched character '<EOF>' expecting '''",
                ));
            };
            let at = self.pos;
            self.pos += c.len_utf8();
            match c {
                '\'' => break,
                '\\' => {
                    let Some(e) = self.peek() else {
                        return Err(SoqlError::malformed(
                            self.text,
                            self.text.len(),
                            "mismatched character '<EOF>' expecting '''",
                        ));
                    };
                    self.pos += e.len_utf8();
                    let decoded = match e {
                        'n' | 'N' => PatChar::Lit('\n'),
                        'r' | 'R' => PatChar::Lit('\r'),
                        't' | 'T' => PatChar::Lit('\t'),
                        'b' | 'B' => PatChar::Lit('\u{8}'),
                        'f' | 'F' => PatChar::Lit('\u{c}'),
                        '"' => PatChar::Lit('"'),
                        '\'' => PatChar::Lit('\''),
                        '\\' => PatChar::Lit('\\'),
                        '%' | '_' => PatChar::Escaped(e),
                        'u' => {
                            let hex: String = self.text[self.pos..].chars().take(4).collect();
                            let code = (hex.len() == 4
                                && hex.chars().all(|h| h.is_ascii_hexdigit()))
                            .then(|| u32::from_str_radix(&hex, 16).ok())
                            .flatten()
                            .and_then(char::from_u32);
                            match code {
                                Some(ch) => {
                                    self.pos += 4;
                                    PatChar::Lit(ch)
                                }
                                None => return Err(self.bad_escape(start, at)),
                            }
                        }
                        _ => return Err(self.bad_escape(start, at)),
                    };
                    chars.push(decoded);
                }
                other => chars.push(PatChar::Lit(other)),
            }
        }
        Ok(self.token(Tok::Str(StrLit { chars }), start))
    }

    fn bad_escape(&self, start: usize, at: usize) -> SoqlError {
        let seq: String = self.text[at..].chars().take(2).collect();
        // The literal as written, up to the next quote (or the end of the text).
        let content_end = self.text[self.pos..]
            .find('\'')
            .map_or(self.text.len(), |i| self.pos + i);
        SoqlError::malformed(
            self.text,
            start,
            format!(
                "Invalid string literal '{}'. Illegal character sequence '{}' in string literal.",
                &self.text[start + 1..content_end],
                seq
            ),
        )
    }

    /// Numbers (`42`, `-1.5`), dates (`2026-01-01`) and date-times
    /// (`2026-01-01T00:00:00Z`, `…T00:00:00.123+02:00`).
    fn number_or_date(&mut self, start: usize) -> Result<Token, SoqlError> {
        let rest = &self.text[start..];
        let b = rest.as_bytes();
        let digits = |from: usize, n: usize| {
            b.len() >= from + n && b[from..from + n].iter().all(u8::is_ascii_digit)
        };
        if digits(0, 4)
            && b.get(4) == Some(&b'-')
            && digits(5, 2)
            && b.get(7) == Some(&b'-')
            && digits(8, 2)
        {
            return self.date_or_datetime(start);
        }
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        self.eat_digits();
        if self.peek() == Some('.') && self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) {
            self.pos += 1;
            self.eat_digits();
        }
        let raw = self.text[start..self.pos].to_string();
        Ok(self.token(Tok::Number(raw), start))
    }

    fn eat_digits(&mut self) {
        while self.peek().is_some_and(|d| d.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    fn date_or_datetime(&mut self, start: usize) -> Result<Token, SoqlError> {
        let b = self.text.as_bytes();
        let num = |from: usize, n: usize| -> Option<u32> {
            let s = self.text.get(from..from + n)?;
            s.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| s.parse().ok())?
        };
        let bad = |end: usize| {
            let end = end.min(self.text.len());
            let word_end = self.text[end..]
                .find(|c: char| c.is_whitespace() || c == ',' || c == ')')
                .map_or(self.text.len(), |i| end + i);
            SoqlError::malformed(
                self.text,
                start,
                format!("unexpected token: '{}'", &self.text[start..word_end]),
            )
        };
        let (y, m, d) = (num(start, 4), num(start + 5, 2), num(start + 8, 2));
        let date = match (y, m, d) {
            (Some(y), Some(m), Some(d)) => NaiveDate::from_ymd_opt(y as i32, m, d),
            _ => None,
        }
        .ok_or_else(|| bad(start + 10))?;
        let mut p = start + 10;
        if b.get(p) != Some(&b'T') {
            self.pos = p;
            if self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                return Err(bad(p));
            }
            return Ok(self.token(Tok::Date(date), start));
        }
        p += 1;
        let hms = (
            num(p, 2),
            b.get(p + 2),
            num(p + 3, 2),
            b.get(p + 5),
            num(p + 6, 2),
        );
        let (Some(h), Some(b':'), Some(mi), Some(b':'), Some(s)) = hms else {
            return Err(bad(p));
        };
        p += 8;
        let mut nanos = 0u32;
        if b.get(p) == Some(&b'.') {
            let frac_start = p + 1;
            let mut q = frac_start;
            while b.get(q).is_some_and(u8::is_ascii_digit) {
                q += 1;
            }
            let frac = &self.text[frac_start..q];
            if frac.is_empty() || frac.len() > 9 {
                return Err(bad(q));
            }
            nanos = format!("{frac:0<9}").parse().map_err(|_| bad(q))?;
            p = q;
        }
        let offset_secs = match b.get(p) {
            Some(b'Z') | Some(b'z') => {
                p += 1;
                0
            }
            Some(&sign @ (b'+' | b'-')) => {
                let oh = num(p + 1, 2).ok_or_else(|| bad(p))?;
                let (om, len) = if b.get(p + 3) == Some(&b':') {
                    (num(p + 4, 2).ok_or_else(|| bad(p))?, 6)
                } else {
                    (num(p + 3, 2).ok_or_else(|| bad(p))?, 5)
                };
                if oh > 23 || om > 59 {
                    return Err(bad(p));
                }
                p += len;
                let secs = (oh * 3600 + om * 60) as i32;
                if sign == b'-' { -secs } else { secs }
            }
            _ => return Err(bad(p)),
        };
        self.pos = p;
        if self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return Err(bad(p));
        }
        let time = NaiveTime::from_hms_nano_opt(h, mi, s, nanos).ok_or_else(|| bad(p))?;
        let offset = FixedOffset::east_opt(offset_secs).ok_or_else(|| bad(p))?;
        let dt = offset
            .from_local_datetime(&NaiveDateTime::new(date, time))
            .single()
            .ok_or_else(|| bad(p))?;
        Ok(self.token(Tok::DateTime(dt), start))
    }
}
