//! One customer email posted to the gateway's inbound route (`POST /channels/email/inbound`):
//! the raw RFC 5322 message parsed into what matching and the Case note need.
//!
//! Pure and synchronous: the gateway runs it on the blocking pool. Linear in the input
//! (mail-parser, the linear HTML-to-text, the line-based quote stripper, and single forward
//! scans for tokens), and everything collected from the message is bounded (the `MAX_*`
//! constants).

use chrono::{DateTime, Utc};
use mail_parser::{HeaderValue, Message, MessageParser, MimeHeaders};

use super::parse::{body_texts, ids};
use super::quote;
use crate::EmailAddress;

/// Ids kept from `In-Reply-To` and from `References` (each): the newest ones, since a reply's
/// parent is at the end of `References`.
pub const MAX_IDS: usize = 64;
/// Longest `Message-ID` kept (the gateway's column width); longer ids are dropped.
pub const MAX_ID_BYTES: usize = 255;
/// Recipient addresses kept from each of To, Cc and Delivered-To/X-Original-To.
pub const MAX_RECIPIENTS: usize = 64;
/// Attachments listed (a message with more lists the first ones).
pub const MAX_ATTACHMENTS: usize = 100;
/// Salesforce thread tokens kept.
pub const MAX_THREAD_TOKENS: usize = 8;
/// Characters kept of a display name, a subject or an attachment name.
pub const MAX_LINE_CHARS: usize = 255;
/// Length of a reply token: 16 random bytes in unpadded base32.
pub const REPLY_TOKEN_LEN: usize = 26;

/// A customer email, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEmail {
    /// `Message-ID` without angle brackets (case-sensitive, as sent).
    pub message_id: Option<String>,
    /// `In-Reply-To` ids, without brackets, at most [`MAX_IDS`].
    pub in_reply_to: Vec<String>,
    /// `References` ids, oldest first, without brackets: the last [`MAX_IDS`].
    pub references: Vec<String>,
    /// The first `From` address, when it is a valid address.
    pub from: Option<EmailAddress>,
    /// The `From` display name on one line (control characters become spaces).
    pub from_name: Option<String>,
    /// `To` addresses as written (at most [`MAX_RECIPIENTS`]).
    pub to: Vec<String>,
    /// `Cc` addresses as written (at most [`MAX_RECIPIENTS`]).
    pub cc: Vec<String>,
    /// `Delivered-To` and `X-Original-To` addresses, set by the receiving server
    /// (at most [`MAX_RECIPIENTS`]).
    pub delivered_to: Vec<String>,
    /// The subject on one line (control characters become spaces).
    pub subject: Option<String>,
    /// `Date`, when it is valid.
    pub date: Option<DateTime<Utc>>,
    /// The new text: quoted history and signatures stripped; HTML-only mail converted. Empty
    /// when the message has no text.
    pub text: String,
    /// The whole text before stripping (quoted history included; HTML converted).
    pub full_text: String,
    /// Attachments, listed (not stored), at most [`MAX_ATTACHMENTS`].
    pub attachments: Vec<AttachmentInfo>,
    /// Why this is an automatic message (auto-reply, bounce), if it is one.
    pub auto_reply: Option<AutoReply>,
    /// Salesforce Email-to-Case thread tokens found in the subject or the body.
    pub thread_tokens: Vec<ThreadToken>,
}

/// One attachment of an inbound email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// The file name, on one line, if the part has one.
    pub name: Option<String>,
    /// `type/subtype`, lower case.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: usize,
}

/// What marks a message as automatic. Such messages are recorded, never appended to a Case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoReply {
    /// `Auto-Submitted` other than `no` (RFC 3834).
    AutoSubmitted,
    /// A `multipart/report` body: a delivery status notification (a bounce).
    Report,
    /// `X-Autoreply` / `X-Autorespond` (vacation programs).
    XAutoreply,
    /// `Precedence: bulk`, `junk`, `list` or `auto_reply`.
    Precedence,
    /// From `MAILER-DAEMON@…` (bounces without a report body).
    MailerDaemon,
}

impl AutoReply {
    /// A stable name, for storage and events.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AutoSubmitted => "auto_submitted",
            Self::Report => "delivery_report",
            Self::XAutoreply => "x_autoreply",
            Self::Precedence => "precedence",
            Self::MailerDaemon => "mailer_daemon",
        }
    }
}

/// A Salesforce Email-to-Case thread token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadToken {
    /// A Ref ID (`ref:_00D…._500…:ref` or `ref:!00D…!500…:ref`): the Case id it names, 15
    /// characters (expanded from the shortened form) or 18 when written in full.
    Ref { case_id: String },
    /// A Lightning threading token (`thread::…::`), as written. It is opaque: only Salesforce
    /// (`EmailMessages.getRecordIdFromEmail`) maps it to a record.
    Lightning(String),
}

/// Why a posted message could not be parsed at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InboundParseError {
    #[error("the body is not an RFC 5322 message (no header fields were found)")]
    Unparseable,
}

/// Parses one raw RFC 5322 message.
///
/// # Errors
/// [`InboundParseError::Unparseable`] when no header fields are found.
pub fn parse_inbound(raw: &[u8]) -> Result<InboundEmail, InboundParseError> {
    let message = MessageParser::default()
        .parse(raw)
        .filter(|m| !m.headers().is_empty())
        .ok_or(InboundParseError::Unparseable)?;

    let message_id = message
        .message_id()
        .map(unbracket)
        .filter(|id| !id.is_empty() && id.len() <= MAX_ID_BYTES)
        .map(str::to_owned);
    let in_reply_to = bounded_ids(message.in_reply_to());
    let references = bounded_ids(message.references());

    let first_from = message.from().and_then(|from| from.first());
    let from = first_from
        .and_then(|addr| addr.address.as_deref())
        .and_then(|a| EmailAddress::parse(a).ok());
    let from_name = first_from
        .and_then(|addr| addr.name.as_deref())
        .and_then(one_line);

    let to = addresses(message.all_to().flat_map(|a| a.iter()));
    let cc = addresses(message.all_cc().flat_map(|a| a.iter()));
    let delivered_to = message
        .headers_raw()
        .filter(|(name, _)| {
            name.eq_ignore_ascii_case("delivered-to") || name.eq_ignore_ascii_case("x-original-to")
        })
        .map(|(_, value)| unbracket(value).to_owned())
        .filter(|value| !value.is_empty() && value.len() <= 320)
        .take(MAX_RECIPIENTS)
        .collect();

    let subject = message.subject().and_then(one_line);
    let date = message
        .date()
        .filter(|date| date.is_valid())
        .and_then(|date| DateTime::<Utc>::from_timestamp(date.to_timestamp(), 0));

    let texts = body_texts(&message);
    let full_text = texts
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    let text = texts
        .iter()
        .map(|t| quote::strip_quoted(t))
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");

    let attachments = message
        .attachments()
        .take(MAX_ATTACHMENTS)
        .map(|part| AttachmentInfo {
            name: part.attachment_name().and_then(one_line),
            content_type: part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_owned(),
                })
                .unwrap_or_else(|| "application/octet-stream".into())
                .to_ascii_lowercase(),
            size: part.len(),
        })
        .collect();

    let auto_reply = auto_reply(&message, from.as_ref());
    let mut thread_tokens = Vec::new();
    if let Some(subject) = &subject {
        thread_tokens_in(subject, &mut thread_tokens);
    }
    thread_tokens_in(&full_text, &mut thread_tokens);

    Ok(InboundEmail {
        message_id,
        in_reply_to,
        references,
        from,
        from_name,
        to,
        cc,
        delivered_to,
        subject,
        date,
        text,
        full_text,
        attachments,
        auto_reply,
        thread_tokens,
    })
}

/// The reply tokens in `addresses`: the `{token}` part of each address that matches the
/// Reply-To `template` (`support+{token}@acme.example`), compared ignoring ASCII case, lower
/// case, without duplicates. Only a well-formed token counts ([`is_reply_token`]); a template
/// without `{token}` finds none.
pub fn reply_tokens<'a>(
    template: &str,
    addresses: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let Some((prefix, suffix)) = template.trim().split_once("{token}") else {
        return Vec::new();
    };
    let (prefix, suffix) = (prefix.to_ascii_lowercase(), suffix.to_ascii_lowercase());
    let mut out: Vec<String> = Vec::new();
    for address in addresses {
        let address = unbracket(address).to_ascii_lowercase();
        if address.len() < prefix.len() + suffix.len()
            || !address.starts_with(&prefix)
            || !address.ends_with(&suffix)
        {
            continue;
        }
        let token = &address[prefix.len()..address.len() - suffix.len()];
        if is_reply_token(token) && !out.iter().any(|seen| seen == token) {
            out.push(token.to_owned());
        }
    }
    out
}

/// Whether `token` is a reply token: 26 characters of lower-case RFC 4648 base32 (`a-z2-7`).
#[must_use]
pub fn is_reply_token(token: &str) -> bool {
    token.len() == REPLY_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// `<id>` → `id`, trimmed.
fn unbracket(value: &str) -> &str {
    value
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
}

/// The ids of an id list, the last [`MAX_IDS`], each at most [`MAX_ID_BYTES`].
fn bounded_ids(value: &HeaderValue<'_>) -> Vec<String> {
    let mut all = ids(value);
    all.retain(|id| id.len() <= MAX_ID_BYTES);
    if all.len() > MAX_IDS {
        all.drain(..all.len() - MAX_IDS);
    }
    all
}

fn addresses<'a>(list: impl Iterator<Item = &'a mail_parser::Addr<'a>>) -> Vec<String> {
    list.filter_map(|addr| addr.address.as_deref())
        .map(|a| unbracket(a).to_owned())
        .filter(|a| !a.is_empty() && a.len() <= 320)
        .take(MAX_RECIPIENTS)
        .collect()
}

/// A header text on one line: control characters (CR, LF, tabs, …) become spaces, runs of
/// spaces collapse, at most [`MAX_LINE_CHARS`] characters. `None` when nothing is left.
fn one_line(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut space = false;
    for c in text.chars() {
        if c.is_control() || c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if out.chars().count() >= MAX_LINE_CHARS {
            break;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    (!out.is_empty()).then_some(out)
}

fn auto_reply(message: &Message<'_>, from: Option<&EmailAddress>) -> Option<AutoReply> {
    for (name, value) in message.headers_raw() {
        let keyword = value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if name.eq_ignore_ascii_case("auto-submitted") && keyword != "no" {
            return Some(AutoReply::AutoSubmitted);
        }
        if (name.eq_ignore_ascii_case("x-autoreply") || name.eq_ignore_ascii_case("x-autorespond"))
            && !keyword.is_empty()
            && keyword != "no"
        {
            return Some(AutoReply::XAutoreply);
        }
        if name.eq_ignore_ascii_case("precedence")
            && matches!(keyword.as_str(), "bulk" | "junk" | "list" | "auto_reply")
        {
            return Some(AutoReply::Precedence);
        }
    }
    let is_report = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    if is_report {
        return Some(AutoReply::Report);
    }
    let daemon = from.is_some_and(|from| {
        from.as_str()
            .split('@')
            .next()
            .is_some_and(|local| local.eq_ignore_ascii_case("mailer-daemon"))
    });
    daemon.then_some(AutoReply::MailerDaemon)
}

/// Appends the thread tokens found in `text` (one forward scan per token kind).
fn thread_tokens_in(text: &str, out: &mut Vec<ThreadToken>) {
    let push = |token: ThreadToken, out: &mut Vec<ThreadToken>| {
        if out.len() < MAX_THREAD_TOKENS && !out.contains(&token) {
            out.push(token);
        }
    };
    let mut at = 0;
    while let Some(found) = text[at..].find("ref:") {
        let start = at + found + 4;
        if let Some(case_id) = ref_case_id(&text[start..]) {
            push(ThreadToken::Ref { case_id }, out);
        }
        at = start;
    }
    let mut at = 0;
    while let Some(found) = text[at..].find("thread::") {
        let start = at + found + 8;
        let rest = &text[start..];
        let len = rest
            .bytes()
            .take(65)
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
            .count();
        if (1..=64).contains(&len) && rest[len..].starts_with("::") {
            push(
                ThreadToken::Lightning(format!("thread::{}::", &rest[..len])),
                out,
            );
        }
        at = start;
    }
}

/// The Case id of a Ref ID, given what follows `ref:`: `_<org>._<case>:ref` or
/// `!<org>!<case>:ref`. A shortened id (`5004L6Lhrg`) keeps its first five characters and
/// drops the zeros that padded the rest to ten; the full 15-character id is restored.
fn ref_case_id(rest: &str) -> Option<String> {
    let alnum = |s: &str| {
        s.bytes()
            .take(19)
            .take_while(u8::is_ascii_alphanumeric)
            .count()
    };
    let (separator, rest) = match rest.as_bytes().first()? {
        b'_' => ("._", &rest[1..]),
        b'!' => ("!", &rest[1..]),
        _ => return None,
    };
    let org = alnum(rest);
    if !(5..=18).contains(&org) || !rest[..org].starts_with("00D") {
        return None;
    }
    let rest = rest[org..].strip_prefix(separator)?;
    let case = alnum(rest);
    if !(5..=18).contains(&case) || !rest[case..].starts_with(":ref") {
        return None;
    }
    let short = &rest[..case];
    if !short.starts_with("500") {
        return None;
    }
    Some(match short.len() {
        15 | 18 => short.to_owned(),
        16 | 17 => return None,
        _ => format!("{}{:0>10}", &short[..5], &short[5..]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> InboundEmail {
        parse_inbound(raw.as_bytes()).expect("parses")
    }

    const GMAIL: &str = "Delivered-To: support+abcdefghijklmnopqrstuvwxyz@acme.example\r\n\
Return-Path: <jane@example.com>\r\n\
MIME-Version: 1.0\r\n\
Date: Wed, 2 Dec 2026 10:15:00 +0100\r\n\
References: <first@mail.gmail.com> <hd-1@acme.example>\r\n\
In-Reply-To: <hd-1@acme.example>\r\n\
Message-ID: <CAJ+reply@mail.gmail.com>\r\n\
Subject: Re: Refund for order 42\r\n\
From: Jane Doe <jane@example.com>\r\n\
To: Acme Support <support+ABCDEFGHIJKLMNOPQRSTUVWXYZ@acme.example>\r\n\
Content-Type: multipart/alternative; boundary=\"000000000000b1\"\r\n\
\r\n\
--000000000000b1\r\n\
Content-Type: text/plain; charset=\"UTF-8\"\r\n\
\r\n\
Thanks, the refund arrived.\r\n\
\r\n\
On Tue, Dec 1, 2026 at 9:12 AM Acme Support <support@acme.example> wrote:\r\n\
\r\n\
> We have issued the refund.\r\n\
>\r\n\
--000000000000b1\r\n\
Content-Type: text/html; charset=\"UTF-8\"\r\n\
\r\n\
<div dir=\"ltr\">Thanks, the refund arrived.</div><br><div class=\"gmail_quote\"><div>On Tue wrote:</div><blockquote class=\"gmail_quote\">We have issued the refund.</blockquote></div>\r\n\
--000000000000b1--\r\n";

    #[test]
    fn gmail_reply_keeps_the_new_text_and_the_thread() {
        let email = parse(GMAIL);
        assert_eq!(
            email.message_id.as_deref(),
            Some("CAJ+reply@mail.gmail.com")
        );
        assert_eq!(email.in_reply_to, ["hd-1@acme.example"]);
        assert_eq!(
            email.references,
            ["first@mail.gmail.com", "hd-1@acme.example"]
        );
        assert_eq!(
            email.from.as_ref().map(EmailAddress::as_str),
            Some("jane@example.com")
        );
        assert_eq!(email.from_name.as_deref(), Some("Jane Doe"));
        assert_eq!(email.subject.as_deref(), Some("Re: Refund for order 42"));
        assert_eq!(email.text, "Thanks, the refund arrived.");
        assert!(email.full_text.contains("> We have issued the refund."));
        assert_eq!(email.auto_reply, None);
        assert_eq!(
            email.date.map(|d| d.to_rfc3339()),
            Some("2026-12-02T09:15:00+00:00".into())
        );
        assert_eq!(
            email.delivered_to,
            ["support+abcdefghijklmnopqrstuvwxyz@acme.example"]
        );
        let addresses = email
            .to
            .iter()
            .chain(&email.delivered_to)
            .map(String::as_str);
        assert_eq!(
            reply_tokens("support+{token}@acme.example", addresses),
            ["abcdefghijklmnopqrstuvwxyz"]
        );
    }

    #[test]
    fn outlook_reply_with_a_header_block_and_html() {
        let raw = "From: \"Doe, Jane\" <Jane.Doe@Contoso.example>\r\n\
To: \"support\" <support@acme.example>\r\n\
Subject: RE: Printer [ ref:_00D20N1PA._5004L6Lhrg:ref ]\r\n\
Thread-Topic: Printer\r\n\
Thread-Index: AQHZ1234567890\r\n\
Message-ID: <DM6PR01MB0001@DM6PR01MB0001.prod.outlook.com>\r\n\
In-Reply-To: <hd-2@acme.example>\r\n\
Content-Type: text/plain; charset=\"us-ascii\"\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
MIME-Version: 1.0\r\n\
\r\n\
It still jams on page two.=0D=0A=0D=0AJane=0D=0A=0D=0A-----Original Message-----=0D=0A=\r\n\
From: Acme Support <support@acme.example>=0D=0ASent: Tuesday, December 1, 2026 9:12 AM=0D=0A=\r\n\
To: Doe, Jane <Jane.Doe@Contoso.example>=0D=0ASubject: Printer=0D=0A=0D=0AHave you tried=\r\n\
 turning it off?\r\n";
        let email = parse(raw);
        assert_eq!(email.text, "It still jams on page two.\n\nJane");
        assert_eq!(
            email.from.as_ref().map(EmailAddress::as_str),
            Some("Jane.Doe@contoso.example")
        );
        assert_eq!(email.from_name.as_deref(), Some("Doe, Jane"));
        assert_eq!(
            email.thread_tokens,
            [ThreadToken::Ref {
                case_id: "5004L000006Lhrg".into()
            }]
        );
    }

    #[test]
    fn apple_html_only_reply_is_converted_and_the_cite_dropped() {
        let raw = "From: Ann <ann@icloud.example>\r\n\
To: support@acme.example\r\n\
Subject: Re: Order\r\n\
Message-Id: <B1C2-APPLE@icloud.example>\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
Mime-Version: 1.0 (Mac OS X Mail 16.0)\r\n\
\r\n\
PGh0bWw+PGJvZHk+PGRpdj5ZZXMsIHBsZWFzZSBjYW5jZWwgaXQuPC9kaXY+PGRpdj48YnI+PC9k\r\n\
aXY+PGJsb2NrcXVvdGUgdHlwZT0iY2l0ZSI+PGRpdj5TaG91bGQgd2UgY2FuY2VsPzwvZGl2Pjwv\r\n\
YmxvY2txdW90ZT48L2JvZHk+PC9odG1sPg==\r\n";
        let email = parse(raw);
        assert_eq!(
            email.message_id.as_deref(),
            Some("B1C2-APPLE@icloud.example")
        );
        assert_eq!(email.text, "Yes, please cancel it.");
        assert!(!email.full_text.contains("<div>"));
    }

    #[test]
    fn iso_8859_1_text_and_encoded_words_decode() {
        let raw = b"From: =?ISO-8859-1?Q?Andr=E9_M=FCller?= <andre@example.de>\r\n\
To: support@acme.example\r\n\
Subject: =?iso-8859-1?q?R=E9ponse?=\r\n\
Message-ID: <latin1@example.de>\r\n\
Content-Type: text/plain; charset=ISO-8859-1\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Gr\xfc\xdfe, \xe7a marche.\r\n";
        let email = parse_inbound(raw).expect("parses");
        assert_eq!(email.from_name.as_deref(), Some("Andr\u{e9} M\u{fc}ller"));
        assert_eq!(email.subject.as_deref(), Some("R\u{e9}ponse"));
        assert_eq!(email.text, "Gr\u{fc}\u{df}e, \u{e7}a marche.");
    }

    #[test]
    fn attachments_are_listed_not_kept() {
        let raw = "From: bob@example.com\r\n\
To: support@acme.example\r\n\
Subject: Invoice\r\n\
Message-ID: <att@example.com>\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain\r\n\
\r\n\
See the attached invoice.\r\n\
--b\r\n\
Content-Type: application/pdf; name=\"invoice 42.pdf\"\r\n\
Content-Disposition: attachment; filename=\"invoice 42.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--b\r\n\
Content-Type: image/PNG\r\n\
Content-Disposition: attachment\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
iVBORw0KGgo=\r\n\
--b--\r\n";
        let email = parse(raw);
        assert_eq!(email.text, "See the attached invoice.");
        assert_eq!(
            email.attachments,
            [
                AttachmentInfo {
                    name: Some("invoice 42.pdf".into()),
                    content_type: "application/pdf".into(),
                    size: 9,
                },
                AttachmentInfo {
                    name: None,
                    content_type: "image/png".into(),
                    size: 8,
                },
            ]
        );
    }

    #[test]
    fn auto_replies_and_bounces_are_recognised() {
        let vacation = "From: jane@example.com\r\nTo: support@acme.example\r\n\
Auto-Submitted: auto-replied\r\nSubject: Out of office\r\n\r\nI am away.\r\n";
        assert_eq!(parse(vacation).auto_reply, Some(AutoReply::AutoSubmitted));
        let human = "From: jane@example.com\r\nAuto-Submitted: no\r\nSubject: x\r\n\r\nHi\r\n";
        assert_eq!(parse(human).auto_reply, None);
        let list = "From: news@example.com\r\nPrecedence: bulk\r\n\r\nNews\r\n";
        assert_eq!(parse(list).auto_reply, Some(AutoReply::Precedence));
        let x = "From: jane@example.com\r\nX-Autoreply: yes\r\n\r\nAway\r\n";
        assert_eq!(parse(x).auto_reply, Some(AutoReply::XAutoreply));
        let bounce = "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n\
To: support+abcdefghijklmnopqrstuvwxyz@acme.example\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\
\r\n\
--r\r\n\
Content-Type: text/plain\r\n\
\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\
--r\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.com\r\n\
--r--\r\n";
        assert_eq!(parse(bounce).auto_reply, Some(AutoReply::Report));
        let plain_bounce = "From: MAILER-DAEMON@mx.example.com\r\nSubject: failure\r\n\r\nNo.\r\n";
        assert_eq!(
            parse(plain_bounce).auto_reply,
            Some(AutoReply::MailerDaemon)
        );
    }

    #[test]
    fn thread_tokens_of_both_kinds_are_found_once() {
        let raw = "From: a@example.com\r\n\
Subject: Re: Help [ ref:!00D5e000000abcd!500Hs00000XyZab:ref ]\r\n\
\r\n\
Thanks\r\n\
thread::pp5XPGfmNf2hRZdRCWnrohc::\r\n\
ref:!00D5e000000abcd!500Hs00000XyZab:ref ref:_00Dx._12345:ref ref:_ ref: thread::\r\n";
        assert_eq!(
            parse(raw).thread_tokens,
            [
                ThreadToken::Ref {
                    case_id: "500Hs00000XyZab".into()
                },
                ThreadToken::Lightning("thread::pp5XPGfmNf2hRZdRCWnrohc::".into()),
            ]
        );
    }

    #[test]
    fn reply_tokens_must_match_the_template_and_be_well_formed() {
        let template = "Support+{token}@Acme.example";
        let good = "abcdefghijklmnopqrstuvwx27";
        let found = reply_tokens(
            template,
            [
                "<support+ABCDEFGHIJKLMNOPQRSTUVWX27@acme.example>",
                "support+abcdefghijklmnopqrstuvwx27@ACME.EXAMPLE",
                "support+abcdefghijklmnopqrstuvwx28@acme.example", // 8 is not base32
                "support+short@acme.example",
                "sales+abcdefghijklmnopqrstuvwx27@acme.example",
                "support+abcdefghijklmnopqrstuvwx27@acme.example.evil",
                "support+@acme.example",
            ],
        );
        assert_eq!(found, [good]);
        assert!(reply_tokens("support@acme.example", ["support@acme.example"]).is_empty());
    }

    #[test]
    fn header_injection_stays_on_one_line() {
        let raw = "From: =?utf-8?q?Eve=0D=0ASubject:_Urgent=0D=0A?= <eve@example.com>\r\n\
Subject: =?utf-8?q?Hello=0D=0AFrom:_ceo@acme.example?=\r\n\
\r\n\
Hi\r\n";
        let email = parse(raw);
        assert_eq!(email.from_name.as_deref(), Some("Eve Subject: Urgent"));
        assert_eq!(
            email.subject.as_deref(),
            Some("Hello From: ceo@acme.example")
        );
    }

    #[test]
    fn id_lists_are_bounded_keeping_the_newest() {
        let references: String = (0..500).map(|i| format!("<r{i}@x> ")).collect();
        let long = format!("<{}@x>", "a".repeat(300));
        let raw = format!(
            "From: a@example.com\r\nMessage-ID: {long}\r\nReferences: {references}\r\n\r\nHi\r\n"
        );
        let email = parse(&raw);
        assert_eq!(email.message_id, None);
        assert_eq!(email.references.len(), MAX_IDS);
        assert_eq!(email.references.last().map(String::as_str), Some("r499@x"));
        assert_eq!(email.references[0], "r436@x");
    }

    #[test]
    fn message_ids_keep_their_case_and_garbage_is_refused() {
        let email = parse("From: a@example.com\r\nMessage-ID: <AbC@X.example>\r\n\r\nHi\r\n");
        assert_eq!(email.message_id.as_deref(), Some("AbC@X.example"));
        assert_eq!(
            parse_inbound(b"").unwrap_err(),
            InboundParseError::Unparseable
        );
    }
}
