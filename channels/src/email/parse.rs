//! Pure parsing of an escalated email thread (`raw_email`: RFC 5322 messages, oldest first).

use chrono::{DateTime, Utc};
use mail_parser::{HeaderValue, Message, MessageParser, MimeHeaders, PartType};

use super::{html::html_to_text, quote};
use crate::{ChannelError, Customer, EmailAddress, EmailThread, RawEmailProblem, Role, Turn};

/// What a raw email thread says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedThread {
    /// The first message's subject without `Re:`/`Fwd:`-style prefixes.
    pub subject: Option<String>,
    /// Name and address from the first (non-automatic) message's `From`.
    pub customer: Customer,
    /// One turn per message that is not an automatic reply, oldest first.
    pub turns: Vec<Turn>,
    /// Threading headers of the customer's last message, when it has a `Message-ID`.
    pub thread: Option<EmailThread>,
}

/// Parses `raw` (oldest first). Messages from the first message's sender are the customer's;
/// messages from any other address are the bot's. Automatic replies and bounces are skipped.
/// `now` dates a message without a usable `Date` header when no earlier message has one.
///
/// # Errors
/// `empty_raw_email` for an empty list; `invalid_raw_email` (field `raw_email[i]`) for a message
/// that does not parse or has no `From` address or no text; `no_customer_message` when every
/// message is automatic.
pub fn parse_thread(raw: &[String], now: DateTime<Utc>) -> Result<ParsedThread, ChannelError> {
    if raw.is_empty() {
        return Err(ChannelError::EmptyRawEmail);
    }
    let parser = MessageParser::default();
    let mut customer: Option<(EmailAddress, Option<String>)> = None;
    let mut subject = None;
    let mut turns: Vec<Turn> = Vec::with_capacity(raw.len());
    let mut thread = None;

    for (index, text) in raw.iter().enumerate() {
        let invalid = |problem| ChannelError::InvalidRawEmail { index, problem };
        let message = parser
            .parse(text.as_bytes())
            .filter(|m| !m.headers().is_empty())
            .ok_or(invalid(RawEmailProblem::Unparseable))?;
        if is_automatic(&message) {
            continue;
        }
        let from = message
            .from()
            .and_then(|from| from.first())
            .ok_or(invalid(RawEmailProblem::MissingFrom))?;
        let address = EmailAddress::parse(
            from.address
                .as_deref()
                .ok_or(invalid(RawEmailProblem::MissingFrom))?,
        )
        .map_err(|_| invalid(RawEmailProblem::InvalidFrom))?;
        let body = body_text(&message).ok_or(invalid(RawEmailProblem::MissingBody))?;

        let role = match &customer {
            None => {
                let name = from
                    .name
                    .as_deref()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned);
                customer = Some((address.clone(), name));
                subject = message.subject().and_then(clean_subject);
                Role::Customer
            }
            Some((first, _)) if first.same_mailbox(&address) => Role::Customer,
            Some(_) => Role::Bot,
        };
        if role == Role::Customer {
            thread = thread_of(&message);
        }
        let at = message
            .date()
            .filter(|date| date.is_valid())
            .and_then(|date| DateTime::<Utc>::from_timestamp(date.to_timestamp(), 0))
            .or_else(|| turns.last().map(|turn| turn.at))
            .unwrap_or(now);
        turns.push(Turn {
            role,
            text: body,
            at,
            offset_ms: None,
        });
    }

    let (email, name) = customer.ok_or(ChannelError::NoCustomerMessage)?;
    Ok(ParsedThread {
        subject,
        customer: Customer {
            name,
            email: Some(email),
            phone: None,
        },
        turns,
        thread,
    })
}

/// Auto-replies, out-of-office notices and bounces: `Auto-Submitted` other than `no`,
/// `X-Autoreply`/`X-Autorespond`, `Precedence: auto_reply`, or a `multipart/report` body.
fn is_automatic(message: &Message<'_>) -> bool {
    let header_says_so = message.headers_raw().any(|(name, value)| {
        let value = value.trim();
        let keyword = value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if name.eq_ignore_ascii_case("auto-submitted") {
            keyword != "no"
        } else if name.eq_ignore_ascii_case("x-autoreply")
            || name.eq_ignore_ascii_case("x-autorespond")
        {
            !value.is_empty() && keyword != "no"
        } else if name.eq_ignore_ascii_case("precedence") {
            keyword == "auto_reply"
        } else {
            false
        }
    });
    let is_report = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    header_says_so || is_report
}

/// The new text of a message: text/plain parts if there are any, else the HTML parts converted,
/// with quoted history stripped. `None` when there is no text at all.
fn body_text(message: &Message<'_>) -> Option<String> {
    let text = body_texts(message)
        .iter()
        .map(|t| quote::strip_quoted(t))
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    (!text.is_empty()).then_some(text)
}

/// The text bodies of a message before quote stripping: the text/plain parts (`format=flowed`
/// undone) if any has text, else the HTML parts converted to text.
pub(super) fn body_texts(message: &Message<'_>) -> Vec<String> {
    let mut plain = Vec::new();
    let mut html = Vec::new();
    for part in message.text_bodies() {
        match &part.body {
            PartType::Text(text) => {
                let flowed = part
                    .content_type()
                    .and_then(|ct| ct.attribute("format"))
                    .is_some_and(|f| f.eq_ignore_ascii_case("flowed"));
                if flowed {
                    let delsp = part
                        .content_type()
                        .and_then(|ct| ct.attribute("delsp"))
                        .is_some_and(|d| d.eq_ignore_ascii_case("yes"));
                    plain.push(quote::unflow(text, delsp));
                } else {
                    plain.push(text.to_string());
                }
            }
            PartType::Html(markup) => html.push(html_to_text(markup)),
            _ => {}
        }
    }
    if plain.iter().any(|t| !t.trim().is_empty()) {
        plain
    } else {
        html
    }
}

/// `Re: Fwd: AW: Refund` → `Refund`. `None` when nothing is left.
pub(super) fn clean_subject(subject: &str) -> Option<String> {
    const PREFIXES: &[&str] = &["re", "fwd", "fw", "aw", "sv", "wg", "antw"];
    let mut rest = subject.trim();
    while let Some((head, tail)) = rest.split_once(':') {
        // `Re[2]:` and `Re(2):` count too.
        let word = head
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_digit() || "[]()".contains(c));
        if PREFIXES.iter().any(|p| word.eq_ignore_ascii_case(p)) {
            rest = tail.trim_start();
        } else {
            break;
        }
    }
    let rest = rest.trim();
    (!rest.is_empty()).then(|| rest.to_owned())
}

/// `Message-ID`, `In-Reply-To` and `References` of a message, or `None` without a `Message-ID`.
fn thread_of(message: &Message<'_>) -> Option<EmailThread> {
    let message_id = message.message_id()?.trim();
    if message_id.is_empty() {
        return None;
    }
    Some(EmailThread {
        message_id: message_id.to_owned(),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
    })
}

/// The ids of an id-list header, without brackets, duplicates removed (first kept).
pub(super) fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let raw: Vec<&str> = match value {
        HeaderValue::Text(id) => vec![id.as_ref()],
        HeaderValue::TextList(list) => list.iter().map(AsRef::as_ref).collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for id in raw {
        let id = id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        if !id.is_empty() && !out.iter().any(|seen| seen == id) {
            out.push(id.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_lose_reply_and_forward_prefixes() {
        for (input, expected) in [
            ("Re: Refund", Some("Refund")),
            (
                "RE: Fwd: AW: Sv: Refund for order 42",
                Some("Refund for order 42"),
            ),
            ("FW: re[2]: Ticket: printer", Some("Ticket: printer")),
            ("Reply needed: invoice", Some("Reply needed: invoice")),
            ("  Re:   ", None),
            ("Refund", Some("Refund")),
        ] {
            assert_eq!(clean_subject(input).as_deref(), expected, "{input:?}");
        }
    }

    #[test]
    fn id_lists_are_unbracketed_and_deduplicated() {
        let list = HeaderValue::TextList(vec!["a@x".into(), "<b@x>".into(), "a@x".into()]);
        assert_eq!(ids(&list), ["a@x", "b@x"]);
        assert_eq!(ids(&HeaderValue::Empty), Vec::<String>::new());
    }
}
