//! A small SMTP receiver on loopback for `handoff demo` and `handoff bench`:
//! it accepts every message and keeps it in memory with the instant it was
//! accepted (the `250` after `DATA`), so the demo can show the customer's
//! mailbox and the bench can time "rep reply → SMTP accepted". Tests use a
//! real SMTP server (aiosmtpd) instead.
//!
//! It speaks just enough ESMTP for a relay client: `EHLO`/`HELO`, `MAIL`,
//! `RCPT`, `DATA` (dot-unstuffed), `RSET`, `NOOP`, `QUIT`. Lines are read with
//! a cap ([`MAX_LINE`]); a message over [`MAX_MESSAGE`] is refused with `552`;
//! at most [`MAX_KEPT`] messages are kept (the oldest are dropped).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The longest command or data line read (RFC 5321 allows 1,000 octets).
pub const MAX_LINE: usize = 4_096;
/// The largest message accepted.
pub const MAX_MESSAGE: usize = 10 * 1024 * 1024;
/// Messages kept in memory.
pub const MAX_KEPT: usize = 100_000;

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub accepted_at: Instant,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent (headers and body, CRLF line ends).
    pub data: String,
}

#[derive(Default)]
struct Inbox {
    messages: Mutex<VecDeque<Received>>,
    arrived: Notify,
}

/// A running sink; dropped, it stops accepting connections.
pub struct MailSink {
    addr: SocketAddr,
    inbox: Arc<Inbox>,
    task: JoinHandle<()>,
}

impl Drop for MailSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MailSink {
    /// Listens on `127.0.0.1` on a free port.
    pub async fn start() -> std::io::Result<MailSink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inbox = Arc::new(Inbox::default());
        let accept_inbox = inbox.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let inbox = accept_inbox.clone();
                tokio::spawn(async move {
                    let _ = session(stream, &inbox).await;
                });
            }
        });
        Ok(MailSink { addr, inbox, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The messages accepted so far, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        let messages = self.inbox.messages.lock().expect("sink lock");
        messages.iter().cloned().collect()
    }

    /// Waits until at least `n` messages were accepted or `timeout` passes;
    /// the messages either way.
    pub async fn wait_for(&self, n: usize, timeout: std::time::Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.inbox.arrived.notified();
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.messages();
            }
        }
    }
}

/// One SMTP session.
async fn session(stream: TcpStream, inbox: &Inbox) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write.write_all(b"220 handoff-mailsink ESMTP\r\n").await?;
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let mut line = Vec::new();
    loop {
        if !read_line(&mut reader, &mut line).await? {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line).trim_end().to_string();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => {
                b"250-handoff-mailsink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n"
            }
            "HELO" => b"250 handoff-mailsink\r\n",
            "MAIL" => {
                mail_from = command.get(10..).unwrap_or("").to_string();
                rcpt_to.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                rcpt_to.push(command.get(8..).unwrap_or("").to_string());
                b"250 OK\r\n"
            }
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                match read_data(&mut reader, &mut line).await? {
                    None => return Ok(()),
                    Some(Err(())) => b"552 Message too large\r\n",
                    Some(Ok(data)) => {
                        let received = Received {
                            accepted_at: Instant::now(),
                            mail_from: std::mem::take(&mut mail_from),
                            rcpt_to: std::mem::take(&mut rcpt_to),
                            data,
                        };
                        {
                            let mut messages = inbox.messages.lock().expect("sink lock");
                            if messages.len() == MAX_KEPT {
                                messages.pop_front();
                            }
                            messages.push_back(received);
                        }
                        inbox.arrived.notify_waiters();
                        b"250 OK queued\r\n"
                    }
                }
            }
            "RSET" => {
                mail_from.clear();
                rcpt_to.clear();
                b"250 OK\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// Reads one line (up to LF) into `line`, at most [`MAX_LINE`] bytes (a longer
/// line is cut there; the rest reads as the next line). `false` at EOF.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<bool> {
    line.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(!line.is_empty());
        }
        let room = MAX_LINE - line.len();
        let window = &available[..available.len().min(room)];
        if let Some(end) = window.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&window[..=end]);
            reader.consume(end + 1);
            return Ok(true);
        }
        let taken = window.len();
        line.extend_from_slice(window);
        reader.consume(taken);
        if line.len() == MAX_LINE {
            return Ok(true);
        }
    }
}

/// Reads DATA up to the lone `.` line. `None` at EOF; `Some(Err)` when the
/// message is larger than [`MAX_MESSAGE`] (read to its end, not kept).
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<Result<String, ()>>> {
    let mut data = Vec::new();
    let mut too_large = false;
    loop {
        if !read_line(reader, line).await? {
            return Ok(None);
        }
        if line.as_slice() == b".\r\n" || line.as_slice() == b".\n" {
            break;
        }
        let content = line.strip_prefix(b".").unwrap_or(line);
        if data.len() + content.len() > MAX_MESSAGE {
            too_large = true;
            data.clear();
        }
        if !too_large {
            data.extend_from_slice(content);
        }
    }
    Ok(Some(if too_large {
        Err(())
    } else {
        Ok(String::from_utf8_lossy(&data).into_owned())
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn a_message_is_accepted_unstuffed_and_kept() {
        let sink = MailSink::start().await.unwrap();
        let mut stream = TcpStream::connect(sink.addr()).await.unwrap();
        stream
            .write_all(
                b"EHLO me\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n\
                  Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\nQUIT\r\n",
            )
            .await
            .unwrap();
        let mut replies = String::new();
        stream.read_to_string(&mut replies).await.unwrap();
        assert!(replies.contains("250 OK queued"), "{replies}");
        assert!(replies.ends_with("221 Bye\r\n"), "{replies}");
        let messages = sink.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].mail_from, "<a@x.example>");
        assert_eq!(messages[0].rcpt_to, ["<b@y.example>"]);
        assert_eq!(
            messages[0].data,
            "Subject: hi\r\n\r\n.leading dot\r\nbody\r\n"
        );
    }
}
