//! Building a rep's reply as an RFC 5322 message that threads under the customer's own email:
//! `Subject: Re: <original>`, our own stable `Message-ID`, `In-Reply-To` and `References` from
//! the session's thread, a `Reply-To` carrying the session's reply token, and the text with an
//! HTML alternative.
//!
//! Nothing the rep or the customer wrote becomes a header of its own: subjects and names lose
//! their control characters (CR and LF above all) before lettre encodes them (RFC 2047 for
//! anything not printable ASCII), and message ids with whitespace, angle brackets or control
//! characters are dropped.

use std::fmt::Write as _;
use std::str::FromStr;

use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};
use sha2::{Digest, Sha256};

use super::config::invalid;
use crate::{ChannelError, DeliveryError, EmailAddress, EmailContext, OutboundMessage};

/// The subject of a reply in a conversation that had none.
pub const DEFAULT_SUBJECT: &str = "Your support request";
/// Longest subject kept, in characters (longer ones are cut).
const MAX_SUBJECT_CHARS: usize = 500;
/// Longest rep name kept in the `From` display name, in characters.
const MAX_NAME_CHARS: usize = 64;
/// Longest message id kept (the `email_messages` column holds 255).
const MAX_ID_LEN: usize = 250;
/// `References` keeps the first id and this many of the last.
const REFERENCES_TAIL: usize = 10;
/// Longest reply token put into a `Reply-To` address.
const MAX_TOKEN_LEN: usize = 64;
/// What `{token}` is replaced with to check a `reply_to` template at startup.
const SAMPLE_TOKEN: &str = "abcdefghijklmnopqrstuvwxyz";

/// Builds replies for one configured sender (the `[channels.email]` addresses).
#[derive(Debug, Clone)]
pub(crate) struct Composer {
    from: Mailbox,
    reply_to: Option<String>,
    message_id_domain: String,
}

impl Composer {
    /// Checks the configured addresses once; `prefix` is `channels.<name>.` for error settings.
    pub(crate) fn new(
        from: &str,
        reply_to: Option<&str>,
        message_id_domain: Option<&str>,
        prefix: &str,
    ) -> Result<Self, ChannelError> {
        let from_setting = format!("{prefix}from");
        let from = Mailbox::from_str(from.trim()).map_err(|_| {
            invalid(
                &from_setting,
                "not an address: write \"Support <support@example.com>\" or support@example.com",
            )
        })?;
        if from
            .name
            .as_deref()
            .is_some_and(|n| n.chars().any(char::is_control))
        {
            return Err(invalid(
                &from_setting,
                "the display name has control characters",
            ));
        }
        let reply_to = match reply_to {
            None => None,
            Some(template) => {
                let template = template.trim();
                let setting = format!("{prefix}reply_to");
                if template.matches("{token}").count() > 1 {
                    return Err(invalid(&setting, "use {token} at most once"));
                }
                Mailbox::from_str(&template.replace("{token}", SAMPLE_TOKEN)).map_err(|_| {
                    invalid(
                        &setting,
                        "not an address once {token} is filled in: write \
                         \"support+{token}@example.com\"",
                    )
                })?;
                Some(template.to_owned())
            }
        };
        let domain_setting = format!("{prefix}message_id_domain");
        let message_id_domain = message_id_domain
            .map(str::trim)
            .unwrap_or_else(|| from.email.domain())
            .to_ascii_lowercase();
        if !is_domain(&message_id_domain) {
            return Err(invalid(
                &domain_setting,
                "must be a domain name such as mail.example.com (letters, digits, `-` and `.`)",
            ));
        }
        Ok(Self {
            from,
            reply_to,
            message_id_domain,
        })
    }

    /// The `Message-ID` of a delivery, without angle brackets: `{delivery id}@{domain}`, the
    /// same on every retry. An id with characters a message id cannot carry is replaced by its
    /// SHA-256 (hex), which is just as stable.
    pub(crate) fn message_id(&self, delivery_id: &str) -> String {
        let left = if is_dot_atom(delivery_id) && delivery_id.len() <= 128 {
            delivery_id.to_owned()
        } else {
            Sha256::digest(delivery_id.as_bytes()).iter().take(16).fold(
                String::from("h"),
                |mut hex, b| {
                    let _ = write!(hex, "{b:02x}");
                    hex
                },
            )
        };
        format!("{left}@{}", self.message_id_domain)
    }

    /// The reply to `to` as a message ready to send, with its `Message-ID` (no brackets).
    ///
    /// # Errors
    /// [`DeliveryError::Permanent`] when the recipient is not an address lettre accepts or the
    /// message cannot be built; the text names neither the address nor the body.
    pub(crate) fn compose(
        &self,
        to: &EmailAddress,
        message: &OutboundMessage,
    ) -> Result<(Message, String), DeliveryError> {
        let context = message.email.clone().unwrap_or_default();
        let to = Address::from_str(to.as_str()).map_err(|_| DeliveryError::Permanent {
            message: "the customer's email address cannot be used as a recipient".into(),
        })?;
        let message_id = self.message_id(&message.id);
        let mut builder = Message::builder()
            .from(self.sender(message.sender_name.as_deref()))
            .to(Mailbox::new(None, to))
            .subject(reply_subject(context.subject.as_deref()))
            .message_id(Some(format!("<{message_id}>")))
            .date(message.at.into());
        let in_reply_to = context
            .in_reply_to
            .as_deref()
            .filter(|id| is_message_id(id));
        if let Some(id) = in_reply_to {
            builder = builder.in_reply_to(format!("<{id}>"));
        }
        let references = references(&context);
        if !references.is_empty() {
            let joined = references
                .iter()
                .map(|id| format!("<{id}>"))
                .collect::<Vec<_>>()
                .join(" ");
            builder = builder.references(joined);
        }
        if let Some(reply_to) = self.reply_to(&context) {
            builder = builder.reply_to(reply_to);
        }
        let built = builder
            .multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                html_body(&message.text),
            ))
            .map_err(|e| DeliveryError::Permanent {
                message: format!("the email could not be built: {}", build_problem(&e)),
            })?;
        Ok((built, message_id))
    }

    /// `"<rep> via <from name>"` (or the rep's name alone when `from` has none) at the configured
    /// address; the configured `from` as it is when no rep is named.
    fn sender(&self, rep: Option<&str>) -> Mailbox {
        let rep = rep
            .map(|r| clean_text(r, MAX_NAME_CHARS))
            .filter(|r| !r.is_empty());
        let name = match (rep, &self.from.name) {
            (Some(rep), Some(from)) => Some(format!("{rep} via {from}")),
            (Some(rep), None) => Some(rep),
            (None, from) => from.clone(),
        };
        Mailbox::new(name, self.from.email.clone())
    }

    /// The `Reply-To`: the template with the session's token, or a fixed address. `None` (answers
    /// go to `From`) without a template, or when the template needs a token the message lacks
    /// or has one that is not a token.
    fn reply_to(&self, context: &EmailContext) -> Option<Mailbox> {
        let template = self.reply_to.as_deref()?;
        if !template.contains("{token}") {
            return Mailbox::from_str(template).ok();
        }
        let token = context.reply_token.as_deref()?;
        let well_formed = (1..=MAX_TOKEN_LEN).contains(&token.len())
            && token.bytes().all(|b| b.is_ascii_alphanumeric());
        if !well_formed {
            tracing::warn!("A reply token is not well formed; the reply goes without Reply-To.");
            return None;
        }
        Mailbox::from_str(&template.replace("{token}", &token.to_ascii_lowercase())).ok()
    }
}

/// `Re: <subject>` with exactly one `Re:` added (none when the subject already starts with
/// one, in any case), the rest untouched; [`DEFAULT_SUBJECT`] when there is none.
fn reply_subject(subject: Option<&str>) -> String {
    let subject = subject
        .map(|s| clean_text(s, MAX_SUBJECT_CHARS))
        .filter(|s| !s.is_empty());
    let Some(subject) = subject else {
        return DEFAULT_SUBJECT.to_owned();
    };
    let has_re = subject
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case("re:"));
    if has_re {
        subject
    } else {
        format!("Re: {subject}")
    }
}

/// The `References` ids: the context's, then `In-Reply-To` when it is not already the last,
/// malformed ids and repeats dropped; when longer than 11, the first id and the last 10.
fn references(context: &EmailContext) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let candidates = context
        .references
        .iter()
        .map(String::as_str)
        .chain(context.in_reply_to.as_deref());
    for id in candidates {
        if is_message_id(id) && !ids.iter().any(|seen| seen == id) {
            ids.push(id.to_owned());
        }
    }
    if ids.len() > REFERENCES_TAIL + 1 {
        let tail = ids.split_off(ids.len() - REFERENCES_TAIL);
        ids.truncate(1);
        ids.extend(tail);
    }
    ids
}

/// A message id (without brackets) we are willing to repeat in a header: printable ASCII with
/// no whitespace, no `<` or `>`, at most [`MAX_ID_LEN`] bytes.
pub(crate) fn is_message_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}

/// RFC 5322 `dot-atom-text`.
fn is_dot_atom(s: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    !s.is_empty()
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || SPECIALS.contains(&b))
}

/// A DNS name: dot-separated labels of letters, digits and `-`.
fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `s` on one line: every control or line-separating character becomes a space, runs of
/// whitespace become one space, trimmed, at most `max` characters.
fn clean_text(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max.saturating_mul(4)));
    let mut count = 0;
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_control() || c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            if count + 1 >= max {
                break;
            }
            out.push(' ');
            count += 1;
        }
        pending_space = false;
        if count >= max {
            break;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// The text as HTML: escaped, blank-line separated paragraphs as `<p>`, single line breaks as
/// `<br>`.
pub(crate) fn html_body(text: &str) -> String {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut html =
        String::from("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n");
    let paragraphs = normalized
        .split("\n\n")
        .map(|p| p.trim_matches('\n'))
        .filter(|p| !p.trim().is_empty());
    for paragraph in paragraphs {
        html.push_str("<p>");
        for (i, line) in paragraph.split('\n').enumerate() {
            if i > 0 {
                html.push_str("<br>\n");
            }
            escape_into(line, &mut html);
        }
        html.push_str("</p>\n");
    }
    html.push_str("</body></html>\n");
    html
}

fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Why lettre would not build a message, without echoing any address.
fn build_problem(error: &lettre::error::Error) -> &'static str {
    match error {
        lettre::error::Error::MissingFrom => "no From address",
        lettre::error::Error::MissingTo => "no recipient",
        lettre::error::Error::TooManyFrom => "more than one From address",
        _ => "the envelope is not valid",
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::OutboundKind;

    fn composer() -> Composer {
        Composer::new(
            "Acme Support <support@acme.example>",
            Some("support+{token}@acme.example"),
            None,
            "channels.email.",
        )
        .unwrap()
    }

    fn message(context: EmailContext) -> OutboundMessage {
        OutboundMessage {
            id: "dlv_0123456789abcdef".into(),
            session_id: "s-1".into(),
            kind: OutboundKind::AgentMessage,
            text: "Hello Ann,\n\nyour parcel left today.\nTracking: <b>42</b> & more".into(),
            sender_name: Some("Rita Rep".into()),
            at: Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).unwrap(),
            email: Some(context),
            customer_last_message_at: None,
            status_callback: None,
        }
    }

    fn context() -> EmailContext {
        EmailContext {
            subject: Some("Parcel is late".into()),
            in_reply_to: Some("m2@customer.example".into()),
            references: vec!["m1@customer.example".into()],
            reply_token: Some("abcdefghijklmnopqrstuvwxyz".into()),
        }
    }

    fn formatted(message: &OutboundMessage) -> String {
        let to = EmailAddress::parse("ann@customer.example").unwrap();
        let (built, _) = composer().compose(&to, message).unwrap();
        String::from_utf8(built.formatted()).unwrap()
    }

    /// The header section, one entry per header (continuation lines unfolded).
    fn headers(formatted: &str) -> Vec<String> {
        let head = formatted.split("\r\n\r\n").next().unwrap();
        let mut out: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                out.last_mut().unwrap().push_str(line);
            } else {
                out.push(line.to_owned());
            }
        }
        out
    }

    fn header<'a>(headers: &'a [String], name: &str) -> Vec<&'a str> {
        let prefix = format!("{name}: ");
        headers
            .iter()
            .filter_map(|h| h.strip_prefix(&prefix))
            .collect()
    }

    #[test]
    fn a_reply_carries_the_threading_headers() {
        let text = formatted(&message(context()));
        let headers = headers(&text);
        assert_eq!(header(&headers, "Subject"), ["Re: Parcel is late"]);
        assert_eq!(
            header(&headers, "Message-ID"),
            ["<dlv_0123456789abcdef@acme.example>"]
        );
        assert_eq!(header(&headers, "In-Reply-To"), ["<m2@customer.example>"]);
        assert_eq!(
            header(&headers, "References"),
            ["<m1@customer.example> <m2@customer.example>"]
        );
        assert_eq!(
            header(&headers, "Reply-To"),
            ["support+abcdefghijklmnopqrstuvwxyz@acme.example"]
        );
        assert_eq!(
            header(&headers, "From"),
            ["\"Rita Rep via Acme Support\" <support@acme.example>"]
        );
        assert_eq!(header(&headers, "To"), ["ann@customer.example"]);
        assert_eq!(
            header(&headers, "Date"),
            ["Wed, 02 Dec 2026 10:00:00 +0000"]
        );
        assert_eq!(header(&headers, "MIME-Version"), ["1.0"]);
        assert!(
            header(&headers, "Content-Type")[0].starts_with("multipart/alternative"),
            "{text}"
        );
        assert!(
            text.contains("Content-Type: text/plain; charset=utf-8"),
            "{text}"
        );
        assert!(
            text.contains("Content-Type: text/html; charset=utf-8"),
            "{text}"
        );
        assert!(
            text.contains("<p>Hello Ann,</p>\r\n<p>your parcel left today.<br>\r\nTracking: &lt;b&gt;42&lt;/b&gt; &amp; more</p>"),
            "{text}"
        );
        assert!(!text.contains("Auto-Submitted"));
    }

    #[test]
    fn re_is_added_once_and_nothing_is_translated() {
        assert_eq!(reply_subject(Some("Parcel")), "Re: Parcel");
        assert_eq!(reply_subject(Some("Re: Parcel")), "Re: Parcel");
        assert_eq!(reply_subject(Some("RE:Parcel")), "RE:Parcel");
        assert_eq!(reply_subject(Some("AW: Paket")), "Re: AW: Paket");
        assert_eq!(reply_subject(Some("  ")), DEFAULT_SUBJECT);
        assert_eq!(reply_subject(None), DEFAULT_SUBJECT);
        let long = "x".repeat(2 * MAX_SUBJECT_CHARS);
        assert_eq!(
            reply_subject(Some(&long)).chars().count(),
            MAX_SUBJECT_CHARS + 4
        );
    }

    #[test]
    fn non_ascii_subjects_and_names_are_encoded_words() {
        let mut m = message(EmailContext {
            subject: Some("Grüße — 配送".into()),
            ..context()
        });
        m.sender_name = Some("Zoë".into());
        let text = formatted(&m);
        assert!(text.is_ascii(), "{text}");
        let headers = headers(&text);
        let subject = header(&headers, "Subject")[0];
        assert!(subject.starts_with("Re: =?utf-8?"), "{subject}");
        let from = header(&headers, "From")[0];
        assert!(from.contains("=?utf-8?"), "{from}");
        let parsed = mail_parser::MessageParser::default()
            .parse(text.as_bytes())
            .unwrap();
        assert_eq!(parsed.subject(), Some("Re: Grüße — 配送"));
        assert_eq!(
            parsed.from().unwrap().first().unwrap().name(),
            Some("Zoë via Acme Support")
        );
    }

    #[test]
    fn cr_lf_and_control_characters_never_make_a_header() {
        let mut m = message(EmailContext {
            subject: Some("Hi\r\nBcc: victim@evil.example\r\nX-Injected: 1".into()),
            in_reply_to: Some("m2@x\r\nX-Injected: 2".into()),
            references: vec!["ok@x".into(), "bad id@x".into(), "<br@x>".into()],
            reply_token: Some("tok\r\nX-Injected: 3".into()),
        });
        m.sender_name = Some("Eve\r\nX-Injected: 4\u{b}\u{c}\u{0}".into());
        let text = formatted(&m);
        let headers = headers(&text);
        assert!(
            headers
                .iter()
                .all(|h| !h.starts_with("X-Injected") && !h.starts_with("Bcc")),
            "{text}"
        );
        assert!(!text.contains("\nX-Injected"), "{text}");
        assert!(!text.bytes().any(|b| b < 0x20 && b != b'\r' && b != b'\n'));
        assert_eq!(
            header(&headers, "Subject"),
            ["Re: Hi Bcc: victim@evil.example X-Injected: 1"]
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(text.as_bytes())
            .unwrap();
        assert_eq!(
            parsed.from().unwrap().first().unwrap().name(),
            Some("Eve X-Injected: 4 via Acme Support"),
            "the name stays one display name"
        );
        assert_eq!(parsed.header_values("X-Injected").count(), 0);
        assert_eq!(parsed.header_values("Bcc").count(), 0);
        assert!(header(&headers, "In-Reply-To").is_empty(), "{text}");
        assert_eq!(header(&headers, "References"), ["<ok@x>"]);
        assert!(
            header(&headers, "Reply-To").is_empty(),
            "a bad token is not used"
        );
        // Every line of the header section is a header or a folded continuation.
        let head = text.split("\r\n\r\n").next().unwrap();
        assert!(!head.contains('\n') || head.split("\r\n").all(|l| !l.contains('\n')));
    }

    #[test]
    fn references_keep_the_first_and_the_last_ten() {
        let ids: Vec<String> = (0..20).map(|i| format!("m{i}@x")).collect();
        let refs = references(&EmailContext {
            references: ids.clone(),
            in_reply_to: Some("m19@x".into()),
            ..EmailContext::default()
        });
        assert_eq!(refs.len(), 11);
        assert_eq!(refs[0], "m0@x");
        assert_eq!(refs[1..], ids[10..]);
        let refs = references(&EmailContext {
            references: vec!["a@x".into(), "a@x".into()],
            in_reply_to: Some("b@x".into()),
            ..EmailContext::default()
        });
        assert_eq!(refs, ["a@x", "b@x"]);
        assert!(references(&EmailContext::default()).is_empty());
    }

    #[test]
    fn a_long_thread_folds_and_reads_back() {
        let ids: Vec<String> = (0..40)
            .map(|i| format!("{i:04}.{}@mail.customer.example", "x".repeat(40)))
            .collect();
        let text = formatted(&message(EmailContext {
            references: ids.clone(),
            in_reply_to: Some(ids[39].clone()),
            ..context()
        }));
        // One id per folded line, none near the 998-octet limit.
        assert!(text.split("\r\n").all(|line| line.len() <= 100), "{text}");
        let head = text.split("\r\n\r\n").next().unwrap();
        assert!(
            head.split("\r\n").filter(|l| l.starts_with(' ')).count() >= 10,
            "{text}"
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(text.as_bytes())
            .unwrap();
        let references: Vec<String> = parsed
            .references()
            .as_text_list()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(references.len(), 11);
        assert_eq!(references[0], ids[0]);
        assert_eq!(references[1..], ids[30..]);
    }

    #[test]
    fn the_reply_to_follows_the_token() {
        let c = composer();
        let mut ctx = context();
        assert_eq!(
            c.reply_to(&ctx).unwrap().to_string(),
            "support+abcdefghijklmnopqrstuvwxyz@acme.example"
        );
        ctx.reply_token = None;
        assert!(c.reply_to(&ctx).is_none(), "no token, no Reply-To");
        let fixed = Composer::new(
            "support@acme.example",
            Some("Replies <replies@acme.example>"),
            Some("mail.acme.example"),
            "channels.email.",
        )
        .unwrap();
        assert_eq!(
            fixed.reply_to(&ctx).unwrap().to_string(),
            "Replies <replies@acme.example>"
        );
        assert_eq!(fixed.message_id("dlv_1"), "dlv_1@mail.acme.example");
        let none = Composer::new("support@acme.example", None, None, "").unwrap();
        assert!(none.reply_to(&context()).is_none());
        assert_eq!(
            none.sender(Some("Rita")).to_string(),
            "Rita <support@acme.example>"
        );
        assert_eq!(none.sender(None).to_string(), "support@acme.example");
    }

    #[test]
    fn message_ids_are_stable_and_well_formed() {
        let c = composer();
        assert_eq!(c.message_id("dlv_ab_002"), "dlv_ab_002@acme.example");
        let odd = c.message_id("a b<c>");
        assert_eq!(odd, c.message_id("a b<c>"));
        assert!(
            odd.starts_with('h') && odd.ends_with("@acme.example"),
            "{odd}"
        );
        assert!(is_message_id(&odd));
    }

    #[test]
    fn bad_settings_are_named() {
        let err = Composer::new("not an address", None, None, "channels.email.").unwrap_err();
        assert_eq!(err.field().as_deref(), Some("channels.email.from"));
        let err = Composer::new(
            "s@acme.example",
            Some("{token}{token}@x.example"),
            None,
            "channels.email.",
        )
        .unwrap_err();
        assert_eq!(err.field().as_deref(), Some("channels.email.reply_to"));
        let err = Composer::new(
            "s@acme.example",
            Some("no at sign {token}"),
            None,
            "channels.email.",
        )
        .unwrap_err();
        assert_eq!(err.field().as_deref(), Some("channels.email.reply_to"));
        let err = Composer::new(
            "s@acme.example",
            None,
            Some("bad domain!"),
            "channels.email.",
        )
        .unwrap_err();
        assert_eq!(
            err.field().as_deref(),
            Some("channels.email.message_id_domain")
        );
    }

    #[test]
    fn html_keeps_paragraphs_and_breaks() {
        let html = html_body("a\r\nb\r\n\r\n\r\nc & <d>");
        assert!(
            html.contains("<p>a<br>\nb</p>\n<p>c &amp; &lt;d&gt;</p>"),
            "{html}"
        );
        assert!(clean_text(" a \t\r\n b ", 10) == "a b");
        assert_eq!(clean_text("abcdef", 3), "abc");
    }
}
