//! A small HTML-to-text converter for email bodies: drops quoted history first, then renders
//! blocks as lines and decodes character references.

/// Elements that start and end a line.
const BLOCK: &[&str] = &[
    "address",
    "article",
    "aside",
    "body",
    "center",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hr",
    "html",
    "li",
    "main",
    "nav",
    "ol",
    "section",
    "table",
    "tbody",
    "tfoot",
    "thead",
    "tr",
    "ul",
];
/// Elements that stand apart from their neighbours by a blank line.
const PARAGRAPH: &[&str] = &["p", "h1", "h2", "h3", "h4", "h5", "h6"];
/// Elements whose content is not text for the reader.
const RAW_TEXT: &[&str] = &["script", "style", "title", "template", "noscript"];
/// Classes of containers that hold quoted history (Gmail, Thunderbird, Yahoo).
const QUOTE_CLASSES: &[&str] = &["gmail_quote", "moz-cite-prefix", "yahoo_quoted"];
/// Ids after which Outlook puts the quoted message (as siblings, not children).
const QUOTE_TAIL_IDS: &[&str] = &["divRplyFwdMsg", "appendonsend"];

/// Readable text of an HTML email body, quoted history removed.
///
/// Linear in the input: every search for a closing tag either moves the position past what it
/// scanned or is remembered ([`Lookahead`]), so hostile input (thousands of unclosed `<head>`
/// tags, bare `&`s) costs no more than ordinary markup of its size.
pub fn html_to_text(html: &str) -> String {
    let mut out = Output::default();
    let mut pos = 0;
    let mut pre_depth = 0usize;
    let mut head_close = Lookahead::default();
    let mut body_start = Lookahead::default();
    while pos < html.len() {
        let Some(lt) = html[pos..].find('<') else {
            out.text(&html[pos..], pre_depth > 0);
            break;
        };
        out.text(&html[pos..pos + lt], pre_depth > 0);
        pos += lt;
        let rest = &html[pos..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            pos = comment
                .find("-->")
                .map_or(html.len(), |end| pos + 4 + end + 3);
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            pos = rest.find('>').map_or(html.len(), |end| pos + end + 1);
            continue;
        }
        let Some(tag) = Tag::parse(rest) else {
            out.text("<", pre_depth > 0);
            pos += 1;
            continue;
        };
        pos += tag.len;
        let name = tag.name.as_str();
        if tag.closing {
            if name == "pre" {
                pre_depth = pre_depth.saturating_sub(1);
            }
            if PARAGRAPH.contains(&name) {
                out.paragraph();
            } else if BLOCK.contains(&name) || name == "pre" || name == "blockquote" {
                out.block();
            }
            continue;
        }
        if tag.has_id(QUOTE_TAIL_IDS) {
            break;
        }
        if RAW_TEXT.contains(&name) {
            pos = if tag.self_closing {
                pos
            } else {
                find_close(html, pos, name).map_or(html.len(), |(_, after)| after)
            };
            continue;
        }
        if name == "head" {
            pos = skip_head(html, pos, &mut head_close, &mut body_start);
            continue;
        }
        if name == "blockquote" || tag.has_class(QUOTE_CLASSES) {
            out.block();
            if !tag.self_closing {
                pos = skip_element(html, pos, name);
            }
            continue;
        }
        match name {
            "br" => out.newline(),
            "pre" => {
                out.block();
                pre_depth += 1;
            }
            "li" => {
                out.block();
                out.text("- ", true);
            }
            "td" | "th" => out.space(),
            _ if PARAGRAPH.contains(&name) => out.paragraph(),
            _ if BLOCK.contains(&name) => out.block(),
            _ => {}
        }
    }
    out.finish()
}

/// Position after `<head>`'s content: its close tag, or the start of `<body>` if it has none.
/// The two searches are remembered: before this was so, a run of unclosed `<head>` tags
/// rescanned the rest of the document once per tag (issue 6, defect 2).
fn skip_head(
    html: &str,
    from: usize,
    head_close: &mut Lookahead,
    body_start: &mut Lookahead,
) -> usize {
    match head_close.next(from, |at| {
        find_close(html, at, "head").map(|(start, _)| start)
    }) {
        Some(start) => find_close(html, start, "head").map_or(html.len(), |(_, after)| after),
        None => body_start
            .next(from, |at| find_ascii_ci(html, at, "<body"))
            .unwrap_or(from),
    }
}

/// The answer to "where is the next match at or after `from`?", kept between calls whose
/// `from` only grows: a match at `found` (or no match at all) seen from `searched_from` is still
/// the answer for any `from` in `searched_from..=found`.
#[derive(Debug, Default)]
struct Lookahead {
    memo: Option<(usize, Option<usize>)>,
}

impl Lookahead {
    fn next(&mut self, from: usize, search: impl FnOnce(usize) -> Option<usize>) -> Option<usize> {
        if let Some((searched_from, found)) = self.memo
            && searched_from <= from
            && found.is_none_or(|at| at >= from)
        {
            return found;
        }
        let found = search(from);
        self.memo = Some((from, found));
        found
    }
}

/// Position after the close tag matching an open `name` element whose start tag ends at `from`.
fn skip_element(html: &str, from: usize, name: &str) -> usize {
    let mut depth = 1usize;
    let mut pos = from;
    while let Some(lt) = html[pos..].find('<') {
        pos += lt;
        let rest = &html[pos..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            pos = comment
                .find("-->")
                .map_or(html.len(), |end| pos + 4 + end + 3);
            continue;
        }
        let Some(tag) = Tag::parse(rest) else {
            pos += 1;
            continue;
        };
        pos += tag.len;
        if tag.name == name && !tag.self_closing {
            if tag.closing {
                depth -= 1;
                if depth == 0 {
                    return pos;
                }
            } else {
                depth += 1;
            }
        }
    }
    html.len()
}

/// `(start, after)` of the next `</name …>` at or after `from`, ASCII case-insensitive.
fn find_close(html: &str, from: usize, name: &str) -> Option<(usize, usize)> {
    let needle = format!("</{name}");
    let mut pos = from;
    loop {
        let start = find_ascii_ci(html, pos, &needle)?;
        let after_name = start + needle.len();
        match html.as_bytes().get(after_name) {
            Some(b'>' | b' ' | b'\t' | b'\r' | b'\n' | b'/') | None => {
                let after = html[after_name..]
                    .find('>')
                    .map_or(html.len(), |end| after_name + end + 1);
                return Some((start, after));
            }
            Some(_) => pos = after_name,
        }
    }
}

fn find_ascii_ci(haystack: &str, from: usize, needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    let found = haystack.as_bytes()[from..]
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle));
    scanned(found.map_or(haystack.len() - from, |offset| offset + needle.len()));
    found.map(|offset| from + offset)
}

/// The longest character reference looked for after a `&` (`&CounterClockwiseContourIntegral;`
/// is 33 bytes with the `;`).
const MAX_REFERENCE_BYTES: usize = 33;

#[cfg(test)]
thread_local! {
    /// Bytes examined by the searches that could rescan the input (tests prove it linear).
    static SCANNED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts bytes examined by a search (tests only).
#[cfg(test)]
fn scanned(bytes: usize) {
    SCANNED.with(|count| count.set(count.get() + bytes));
}

#[cfg(not(test))]
fn scanned(_bytes: usize) {}

/// A start or end tag.
struct Tag {
    /// Lower-cased.
    name: String,
    closing: bool,
    self_closing: bool,
    /// (lower-cased name, raw value)
    attributes: Vec<(String, String)>,
    /// Bytes from `<` to just after `>` (or to the end of input when unterminated).
    len: usize,
}

impl Tag {
    /// Parses a tag at the start of `s` (which starts with `<`); `None` if it is not one.
    fn parse(s: &str) -> Option<Tag> {
        let bytes = s.as_bytes();
        let mut i = 1;
        let closing = bytes.get(i) == Some(&b'/');
        if closing {
            i += 1;
        }
        if !bytes.get(i)?.is_ascii_alphabetic() {
            return None;
        }
        let name_start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'-' | b':'))
        {
            i += 1;
        }
        let name = s[name_start..i].to_ascii_lowercase();
        let mut attributes = Vec::new();
        let mut self_closing = false;
        loop {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            match bytes.get(i) {
                None => break,
                Some(b'>') => {
                    i += 1;
                    break;
                }
                Some(b'/') => {
                    self_closing = bytes.get(i + 1) == Some(&b'>');
                    i += 1;
                    continue;
                }
                Some(_) => {}
            }
            let attr_start = i;
            while i < bytes.len()
                && !matches!(bytes[i], b'=' | b'>' | b'/')
                && !bytes[i].is_ascii_whitespace()
            {
                i += 1;
            }
            let attr_name = s[attr_start..i].to_ascii_lowercase();
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let mut value = String::new();
            if bytes.get(i) == Some(&b'=') {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                match bytes.get(i) {
                    Some(&quote @ (b'"' | b'\'')) => {
                        let value_start = i + 1;
                        let value_end = s[value_start..]
                            .find(quote as char)
                            .map_or(s.len(), |end| value_start + end);
                        value = s[value_start..value_end].to_owned();
                        i = (value_end + 1).min(s.len());
                    }
                    _ => {
                        let value_start = i;
                        while i < bytes.len() && bytes[i] != b'>' && !bytes[i].is_ascii_whitespace()
                        {
                            i += 1;
                        }
                        value = s[value_start..i].to_owned();
                    }
                }
            }
            if attr_start == i {
                // A stray byte that starts no attribute; step over it.
                i += 1;
            } else {
                attributes.push((attr_name, value));
            }
        }
        Some(Tag {
            name,
            closing,
            self_closing,
            attributes,
            len: i.min(s.len()),
        })
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has_class(&self, classes: &[&str]) -> bool {
        self.attribute("class")
            .is_some_and(|value| value.split_ascii_whitespace().any(|c| classes.contains(&c)))
    }

    fn has_id(&self, ids: &[&str]) -> bool {
        self.attribute("id")
            .is_some_and(|id| ids.contains(&id.trim()))
    }
}

/// Text being assembled, with HTML's whitespace rules.
#[derive(Default)]
struct Output {
    buf: String,
    pending_space: bool,
}

impl Output {
    fn at_line_start(&self) -> bool {
        self.buf.is_empty() || self.buf.ends_with('\n')
    }

    fn text(&mut self, raw: &str, preformatted: bool) {
        let decoded = decode_entities(raw);
        if preformatted {
            self.flush_space();
            self.buf.push_str(&decoded.replace("\r\n", "\n"));
            return;
        }
        for c in decoded.chars() {
            if c.is_ascii_whitespace() {
                self.pending_space = true;
            } else {
                self.flush_space();
                self.buf.push(c);
            }
        }
    }

    fn flush_space(&mut self) {
        if self.pending_space && !self.at_line_start() && !self.buf.ends_with(' ') {
            self.buf.push(' ');
        }
        self.pending_space = false;
    }

    fn space(&mut self) {
        self.pending_space = true;
    }

    fn newline(&mut self) {
        self.buf.push('\n');
        self.pending_space = false;
    }

    fn block(&mut self) {
        if !self.at_line_start() {
            self.buf.push('\n');
        }
        self.pending_space = false;
    }

    fn paragraph(&mut self) {
        self.block();
        if !self.buf.is_empty() && !self.buf.ends_with("\n\n") {
            self.buf.push('\n');
        }
    }

    fn finish(self) -> String {
        let text = self.buf.replace('\u{a0}', " ");
        let mut out = String::with_capacity(text.len());
        let mut blank_run = 0;
        for line in text.lines() {
            let line = line.trim_end();
            if line.is_empty() {
                blank_run += 1;
                if blank_run > 1 {
                    continue;
                }
            } else {
                blank_run = 0;
            }
            out.push_str(line);
            out.push('\n');
        }
        out.trim().to_owned()
    }
}

/// Decodes named (common ones) and numeric character references; unknown ones stay as written.
pub(crate) fn decode_entities(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('&') {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // Look for the `;` within a reference's length only: searching the whole rest made a
        // run of bare `&`s quadratic.
        let window = &rest.as_bytes()[1..rest.len().min(1 + MAX_REFERENCE_BYTES)];
        let semicolon = window.iter().position(|&b| b == b';');
        scanned(semicolon.map_or(window.len(), |end| end + 1));
        let reference = semicolon
            .filter(|&end| end > 0 && end <= 32)
            .map(|end| &rest[1..=end]);
        match reference.and_then(decode_reference) {
            Some(decoded) => {
                out.push_str(decoded.as_str());
                rest = &rest[reference.map_or(1, |r| r.len() + 2)..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out.into()
}

/// The text for `name` in `&name;` (`#65`, `#x41`, `amp`, …).
fn decode_reference(name: &str) -> Option<String> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse::<u32>().ok()?,
        };
        return Some(numeric_reference(code).to_string());
    }
    let text = match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        "nbsp" => "\u{a0}",
        "shy" | "zwnj" | "zwj" | "lrm" | "rlm" => "",
        "copy" => "©",
        "reg" => "®",
        "trade" => "™",
        "hellip" => "…",
        "mdash" => "—",
        "ndash" => "–",
        "lsquo" => "‘",
        "rsquo" => "’",
        "sbquo" => "‚",
        "ldquo" => "“",
        "rdquo" => "”",
        "bdquo" => "„",
        "laquo" => "«",
        "raquo" => "»",
        "bull" => "•",
        "middot" => "·",
        "euro" => "€",
        "pound" => "£",
        "yen" => "¥",
        "cent" => "¢",
        "sect" => "§",
        "para" => "¶",
        "deg" => "°",
        "plusmn" => "±",
        "times" => "×",
        "divide" => "÷",
        "iexcl" => "¡",
        "iquest" => "¿",
        "szlig" => "ß",
        "agrave" => "à",
        "aacute" => "á",
        "acirc" => "â",
        "atilde" => "ã",
        "auml" => "ä",
        "aring" => "å",
        "aelig" => "æ",
        "ccedil" => "ç",
        "egrave" => "è",
        "eacute" => "é",
        "ecirc" => "ê",
        "euml" => "ë",
        "igrave" => "ì",
        "iacute" => "í",
        "icirc" => "î",
        "iuml" => "ï",
        "ntilde" => "ñ",
        "ograve" => "ò",
        "oacute" => "ó",
        "ocirc" => "ô",
        "otilde" => "õ",
        "ouml" => "ö",
        "oslash" => "ø",
        "ugrave" => "ù",
        "uacute" => "ú",
        "ucirc" => "û",
        "uuml" => "ü",
        "yacute" => "ý",
        "Agrave" => "À",
        "Aacute" => "Á",
        "Auml" => "Ä",
        "Aring" => "Å",
        "Ccedil" => "Ç",
        "Egrave" => "È",
        "Eacute" => "É",
        "Ntilde" => "Ñ",
        "Ouml" => "Ö",
        "Oslash" => "Ø",
        "Uuml" => "Ü",
        _ => return None,
    };
    Some(text.to_owned())
}

/// A numeric character reference, with HTML's rules: C1 controls read as Windows-1252, and
/// NUL, surrogates and out-of-range values become U+FFFD.
fn numeric_reference(code: u32) -> char {
    const WINDOWS_1252: [u32; 32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013,
        0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ];
    let code = match code {
        0x80..=0x9F => WINDOWS_1252[(code - 0x80) as usize],
        other => other,
    };
    match code {
        0 => char::REPLACEMENT_CHARACTER,
        other => char::from_u32(other).unwrap_or(char::REPLACEMENT_CHARACTER),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes the searches examined while converting `html`.
    fn scan_cost(html: &str) -> usize {
        SCANNED.with(|count| count.set(0));
        html_to_text(html);
        SCANNED.with(std::cell::Cell::get)
    }

    /// Issue 6, defect 2: a 188 KB `raw_email` of repeated unclosed `<head>` tags took 6 s of
    /// CPU inside the request handler, because `skip_head` searched the rest of the document
    /// for `</head>` (and then `<body`) once per tag; bare `&`s did the same looking for `;`.
    /// Two such requests stalled `/healthz`. The searches are now remembered (`Lookahead`) or
    /// bounded, so the work is linear: doubling the hostile input at most doubles the bytes
    /// examined, and the total stays within a small multiple of the input. Counted, not timed.
    #[test]
    fn hostile_markup_is_parsed_in_linear_work() {
        for unit in [
            "<head>",
            "<HEAD >",
            "&",
            "&amp",
            "<head>&",
            "<head><meta x=1>",
        ] {
            let small = unit.repeat(4_000);
            let large = unit.repeat(8_000);
            let (cost_small, cost_large) = (scan_cost(&small), scan_cost(&large));
            assert!(
                cost_large * 10 <= cost_small * 21,
                "{unit:?}: {cost_small} bytes scanned for n, {cost_large} for 2n"
            );
            assert!(
                cost_large <= 40 * large.len(),
                "{unit:?}: {cost_large} bytes scanned for {} bytes of input",
                large.len()
            );
        }
    }

    #[test]
    fn remembered_searches_still_find_what_comes_later() {
        // Several heads, each closed: every close is found, not a stale one (`<body>` is a block).
        assert_eq!(
            html_to_text("<head>a</head>one<head>b</head>two<head><body>three"),
            "onetwo\nthree"
        );
        let mut memo = Lookahead::default();
        let mut calls = 0;
        let mut find = |from: usize| {
            calls += 1;
            [10, 20].into_iter().find(|&at| at >= from)
        };
        assert_eq!(memo.next(0, &mut find), Some(10));
        assert_eq!(memo.next(5, &mut find), Some(10));
        assert_eq!(memo.next(11, &mut find), Some(20));
        assert_eq!(memo.next(21, &mut find), None);
        assert_eq!(memo.next(30, &mut find), None);
        assert_eq!(calls, 3);
    }

    #[test]
    fn blocks_breaks_and_whitespace() {
        let html = "<html><head><title>Ignored</title><style>p { color: red }</style>\
                    <meta charset=utf-8></head><body>\n<div dir=\"ltr\">Hello   <b>there</b>,\n\
                    <div><br></div><div>Line two<br>Line   three</div>\
                    <p>Para</p><p>Next</p><ul><li>one</li><li>two</li></ul>\
                    <table><tr><td>a</td><td>b</td></tr></table></div></body></html>";
        assert_eq!(
            html_to_text(html),
            "Hello there,\n\nLine two\nLine three\n\nPara\n\nNext\n\n- one\n- two\na b"
        );
    }

    #[test]
    fn scripts_comments_and_head_are_dropped() {
        let html = "<!DOCTYPE html><!-- hidden <p>x</p> --><head><script>var a = '<p>no</p>';\
                    </script></head><body><script type=\"text/javascript\">if (a < b) {}</script>\
                    Visible<!--[if mso]><p>mso</p><![endif]--> text<?xml version=\"1.0\"?></body>";
        assert_eq!(html_to_text(html), "Visible text");
    }

    #[test]
    fn head_without_close_ends_at_body() {
        assert_eq!(
            html_to_text("<head><meta name=x><body><p>Shown</p></body>"),
            "Shown"
        );
    }

    #[test]
    fn entities_named_numeric_and_unknown() {
        assert_eq!(
            decode_entities(
                "Tom &amp; Jerry &lt;3 &eacute;t&eacute; &#233; &#xE9; &#x1F600; &#150; &#0; &bogus; & alone &#xZZ;"
            ),
            "Tom & Jerry <3 été é é 😀 – \u{fffd} &bogus; & alone &#xZZ;"
        );
        assert_eq!(html_to_text("a&nbsp;&nbsp;b&#32;&#32;c"), "a  b c");
        assert_eq!(html_to_text("5 &lt; 6 &amp;&amp; x"), "5 < 6 && x");
    }

    #[test]
    fn quoted_history_is_removed() {
        let gmail = "<div dir=\"ltr\">Still broken.</div><br><div class=\"gmail_quote gmail_quote_container\">\
                     <div dir=\"ltr\" class=\"gmail_attr\">On Mon, Nov 16, 2026 wrote:<br></div>\
                     <blockquote class=\"gmail_quote\"><div>old <div>nested</div></div></blockquote></div>";
        assert_eq!(html_to_text(gmail), "Still broken.");
        let apple = "<div>Yes please</div><div><br><blockquote type=\"cite\">Earlier<blockquote>older</blockquote>\
                     still quoted</blockquote></div><div>After</div>";
        assert_eq!(html_to_text(apple), "Yes please\n\nAfter");
        let outlook = "<div>Thanks</div><div id=\"appendonsend\"></div><hr><div id=\"divRplyFwdMsg\">\
                       <b>From:</b> x</div><div>quoted body</div>";
        assert_eq!(html_to_text(outlook), "Thanks");
        let thunderbird = "<p>New text</p><div class=\"moz-cite-prefix\">On 11/16/26 wrote:<br></div>\
                           <blockquote type=\"cite\">old</blockquote><p>tail</p>";
        assert_eq!(html_to_text(thunderbird), "New text\n\ntail");
        let yahoo = "<div>Hi</div><div class=\"yahoo_quoted\"><div>On Monday wrote:</div><div>old</div></div>";
        assert_eq!(html_to_text(yahoo), "Hi");
    }

    #[test]
    fn malformed_markup_degrades_gracefully() {
        assert_eq!(html_to_text("a < b and c<d"), "a < b and c");
        assert_eq!(html_to_text("x <1 y"), "x <1 y");
        assert_eq!(html_to_text("<blockquote>never closed"), "");
        assert_eq!(html_to_text("<p class='a>b'>text</p>"), "text");
        assert_eq!(
            html_to_text("<pre>  keep\n   spacing</pre>after"),
            "keep\n   spacing\nafter"
        );
        assert_eq!(
            html_to_text("<br/><br /><img src=x alt=y>ok<BR>Up</P>"),
            "ok\nUp"
        );
    }

    #[test]
    fn never_panics_on_odd_fragments() {
        const FRAGMENTS: &[&str] = &[
            "<",
            ">",
            "é",
            "&",
            "#",
            ";",
            "\"",
            "'",
            "=",
            "/",
            "!",
            "--",
            "a",
            " ",
            "\n",
            "日本",
            "<div",
            "</div>",
            "<blockquote",
            "<!--",
            "-->",
            "<br>",
            "&#x",
            "&amp",
            "<p class=",
            "<head",
            "<script>",
            "</script",
            "<pre>",
            "id=appendonsend",
        ];
        let n = FRAGMENTS.len();
        for a in FRAGMENTS {
            for b in FRAGMENTS {
                for c in FRAGMENTS {
                    let input = [*a, *b, *c].concat();
                    let _ = html_to_text(&input);
                    let _ = crate::email::quote::strip_quoted(&input);
                }
            }
        }
        // Longer pseudo-random strings from a fixed-seed generator.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..3000 {
            let mut input = String::new();
            for _ in 0..16 {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                input.push_str(FRAGMENTS[(seed >> 33) as usize % n]);
            }
            let text = html_to_text(&input);
            assert!(!text.contains("<br>"), "{input:?} -> {text:?}");
            let _ = crate::email::quote::strip_quoted(&input);
            let _ = crate::email::quote::unflow(&input, true);
        }
    }
}
