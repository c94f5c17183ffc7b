//! Plain-text reply extraction: cut quoted history, trailing quotes and signatures.
//!
//! Policy: the attribution line (`On … wrote:` and its localized forms), `-----Original
//! Message-----` and an Outlook header block end the new text; trailing `>` lines, a `-- `
//! signature and a trailing mobile footer (`Sent from my iPhone`) are dropped. If nothing would
//! remain, the whole text is kept: a message is never emptied by the heuristics.

/// The new text of a reply.
pub(crate) fn strip_quoted(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let end = find_cut(&lines).unwrap_or(lines.len());
    let mut kept = &lines[..end];
    kept = trim_trailing(kept);
    if let Some(signature) = kept.iter().rposition(|line| *line == "--") {
        kept = trim_trailing(&kept[..signature]);
    }
    if kept.last().is_some_and(|line| is_mobile_footer(line)) {
        kept = trim_trailing(&kept[..kept.len() - 1]);
    }
    let stripped = tidy(kept);
    if stripped.is_empty() {
        tidy(&lines)
    } else {
        stripped
    }
}

/// Drops trailing blank lines, `>`-quoted lines and separator rules (`____`, `----`).
fn trim_trailing<'a>(mut lines: &'a [&'a str]) -> &'a [&'a str] {
    while let Some(last) = lines.last() {
        let line = last.trim();
        let is_rule = line.len() >= 5 && line.chars().all(|c| c == '_' || c == '-');
        if line.is_empty() || line.starts_with('>') || is_rule {
            lines = &lines[..lines.len() - 1];
        } else {
            break;
        }
    }
    lines
}

/// Joins lines, collapsing runs of blank lines into one and trimming the ends.
fn tidy(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut previous_blank = true;
    for line in lines {
        let blank = line.trim().is_empty();
        if blank && previous_blank {
            continue;
        }
        out.push_str(if blank { "" } else { line });
        out.push('\n');
        previous_blank = blank;
    }
    out.trim().to_owned()
}

/// Index of the first line of quoted history, if any.
fn find_cut(lines: &[&str]) -> Option<usize> {
    (0..lines.len()).find(|&i| {
        let line = lines[i].trim();
        if line.is_empty() {
            return false;
        }
        if is_original_message_rule(line)
            || is_attribution(line)
            || starts_header_block(&lines[i..])
        {
            return true;
        }
        // An attribution wrapped over two lines, as Gmail's plain text does with long names.
        // Being a guess across lines, it only counts when quoted text or nothing follows.
        lines.get(i + 1).is_some_and(|next| {
            let next = next.trim();
            !next.is_empty()
                && !next.starts_with('>')
                && is_attribution(&format!("{line} {next}"))
                && lines[i + 2..]
                    .iter()
                    .find(|after| !after.trim().is_empty())
                    .is_none_or(|after| after.trim_start().starts_with('>'))
        })
    })
}

fn is_original_message_rule(line: &str) -> bool {
    let inner = line.trim_matches(|c: char| c == '-' || c.is_whitespace());
    line.starts_with("---")
        && [
            "original message",
            "ursprüngliche nachricht",
            "message d'origine",
        ]
        .iter()
        .any(|m| inner.eq_ignore_ascii_case(m))
}

/// `On <date>, <who> wrote:`, `Le <date>, <who> a écrit :`, `Am <date> schrieb <who>:`,
/// optionally after Yahoo's `--- `. It must carry a digit or an `@` (a date or an address) so
/// that "On Monday I wrote:" in the customer's own text is not taken for one.
fn is_attribution(line: &str) -> bool {
    let line = line.trim_start_matches('-').trim();
    if line.len() > 400 || !line.contains(|c: char| c.is_ascii_digit() || c == '@') {
        return false;
    }
    (line.starts_with("On ") && line.ends_with("wrote:"))
        || (line.starts_with("Le ") && (line.ends_with("a écrit :") || line.ends_with("a écrit:")))
        || (line.starts_with("Am ") && line.contains(" schrieb") && line.ends_with(':'))
}

/// A header key as Outlook writes it in a quoted message, in a few languages.
#[derive(PartialEq, Clone, Copy)]
enum HeaderKey {
    From,
    Sent,
    To,
    Subject,
    Other,
}

fn header_key(line: &str) -> Option<HeaderKey> {
    let line = line.trim().trim_start_matches('*');
    let (key, _) = line.split_once(':')?;
    let key = key.trim_end_matches('*').trim().to_lowercase();
    Some(match key.as_str() {
        "from" | "de" | "von" | "van" | "da" => HeaderKey::From,
        "sent" | "date" | "envoyé" | "gesendet" | "datum" | "enviado" | "inviato" => {
            HeaderKey::Sent
        }
        "to" | "à" | "an" | "para" | "aan" | "a" => HeaderKey::To,
        "subject" | "objet" | "betreff" | "asunto" | "onderwerp" | "oggetto" => HeaderKey::Subject,
        "cc" | "bcc" | "reply-to" | "importance" => HeaderKey::Other,
        _ => return None,
    })
}

/// `From:` followed, within the next few lines, by a sent/date line and a to/subject line.
fn starts_header_block(lines: &[&str]) -> bool {
    if header_key(lines[0]) != Some(HeaderKey::From) {
        return false;
    }
    let following: Vec<HeaderKey> = lines[1..]
        .iter()
        .filter(|line| !line.trim().is_empty())
        .take(5)
        .map_while(|line| header_key(line))
        .collect();
    following.contains(&HeaderKey::Sent)
        && (following.contains(&HeaderKey::To) || following.contains(&HeaderKey::Subject))
}

fn is_mobile_footer(line: &str) -> bool {
    let line = line.trim();
    line.len() <= 60 && (line.starts_with("Sent from my ") || line.starts_with("Get Outlook for "))
}

/// Undoes `format=flowed` (RFC 3676): joins soft-broken lines of equal quote depth and removes
/// space-stuffing; with `delsp=yes` the space before each soft break is removed too.
pub(crate) fn unflow(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut open: Option<usize> = None; // quote depth of a paragraph still being joined
    for raw in text.lines() {
        let depth = raw.chars().take_while(|&c| c == '>').count();
        let mut content = &raw[depth..];
        content = content.strip_prefix(' ').unwrap_or(content);
        if let Some(open_depth) = open
            && open_depth != depth
        {
            out.push('\n');
            open = None;
        }
        if open.is_none() && depth > 0 {
            out.push_str(&">".repeat(depth));
            out.push(' ');
        }
        let soft = content.ends_with(' ') && content != "-- ";
        if soft {
            out.push_str(if delsp {
                &content[..content.len() - 1]
            } else {
                content
            });
            open = Some(depth);
        } else {
            out.push_str(content);
            out.push('\n');
            open = None;
        }
    }
    if open.is_some() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_english_attribution_single_and_wrapped() {
        let single = "Thanks, that works.\n\nOn Mon, Nov 16, 2026 at 9:12 AM Acme <help@acme.example> wrote:\n> old\n";
        assert_eq!(strip_quoted(single), "Thanks, that works.");
        let wrapped = "Thanks.\r\n\r\nOn Mon, Nov 16, 2026 at 9:12 AM Acme Support Team <\r\nhelp@acme.example> wrote:\r\n\r\n> old\r\n";
        assert_eq!(strip_quoted(wrapped), "Thanks.");
        let yahoo = "Ok\n\n--- On Mon, 11/16/26, Bob <bob@x.example> wrote:\nold";
        assert_eq!(strip_quoted(yahoo), "Ok");
    }

    #[test]
    fn cuts_at_localized_attributions() {
        assert_eq!(
            strip_quoted(
                "Merci\n\nLe lun. 16 nov. 2026 à 09:12, Acme <a@b.example> a écrit :\n> x"
            ),
            "Merci"
        );
        assert_eq!(
            strip_quoted(
                "Danke\n\nAm Mo., 16. Nov. 2026 um 09:12 Uhr schrieb Acme <a@b.example>:\n> x"
            ),
            "Danke"
        );
    }

    #[test]
    fn keeps_customer_text_that_only_looks_like_an_attribution() {
        let text = "On Monday my colleague wrote:\nthe invoice is wrong.";
        assert_eq!(strip_quoted(text), text);
        let wrapped = "On the 12th I called and\nyour colleague wrote:\nthe refund is approved.";
        assert_eq!(strip_quoted(wrapped), wrapped);
        let quoted = "Thanks\n\nOn Nov 12, 2026, Acme Support <\nhelp@acme.example> wrote:\n";
        assert_eq!(strip_quoted(quoted), "Thanks");
    }

    #[test]
    fn cuts_at_original_message_and_outlook_header_blocks() {
        assert_eq!(
            strip_quoted("New\n\n-----Original Message-----\nFrom: a\nold"),
            "New"
        );
        let outlook = "Please call me.\n\nGet Outlook for iOS\n________________________________\nFrom: Acme Support <help@acme.example>\nSent: Monday, November 16, 2026 9:12 AM\nTo: Jane <jane@example.com>\nSubject: RE: Refund\n\nold";
        assert_eq!(strip_quoted(outlook), "Please call me.");
        let bold = "Hi\n\n*From:* Acme\n*Sent:* Monday\n*To:* Jane\n*Subject:* x\nold";
        assert_eq!(strip_quoted(bold), "Hi");
        let german = "Hallo\n\nVon: Acme\nGesendet: Montag\nAn: Jane\nBetreff: x\nalt";
        assert_eq!(strip_quoted(german), "Hallo");
        // A lone "From:" line is the customer's text, not a header block.
        let lone = "From: my phone\nTo: whoever reads this\nit is broken";
        assert_eq!(strip_quoted(lone), lone);
    }

    #[test]
    fn drops_trailing_quotes_signature_and_footer_but_keeps_inline_quotes() {
        let text = "> you asked\nMy answer\n\n> more quoted\n> lines\n";
        assert_eq!(strip_quoted(text), "> you asked\nMy answer");
        let signed = "Body line\n\n-- \nJane Doe\nACME Corp\n";
        assert_eq!(strip_quoted(signed), "Body line");
        assert_eq!(strip_quoted("Help!\n\nSent from my iPhone\n"), "Help!");
    }

    #[test]
    fn never_empties_a_message() {
        let forward = "From: Shop <shop@x.example>\nSent: Monday\nTo: me\nSubject: Order\n\nYour order shipped.";
        assert_eq!(strip_quoted(forward), forward);
        assert_eq!(strip_quoted("\n\n> only\n> quoted\n"), "> only\n> quoted");
    }

    #[test]
    fn collapses_blank_runs() {
        assert_eq!(strip_quoted("a  \n\n\n\nb\n\n"), "a\n\nb");
    }

    #[test]
    fn unflows_format_flowed() {
        let text = "This is a long \r\nline that was \r\nwrapped.\r\n> quoted soft \r\n> line\r\n \r\n-- \r\nsig\r\n";
        assert_eq!(
            unflow(text, false),
            "This is a long line that was wrapped.\n> quoted soft line\n\n-- \nsig\n"
        );
        assert_eq!(unflow("abc \r\ndef\r\n", true), "abcdef\n");
        assert_eq!(unflow(" From the start\n", false), "From the start\n");
    }
}
