//! Sending over SMTP with lettre: one pooled `AsyncSmtpTransport` per channel (plain, STARTTLS
//! or TLS), and what each failure means for a retry.
//!
//! Nothing lost, nothing twice: a failure that certainly happened before the relay accepted the
//! message (it refused the connection, it answered 4xx) is retried with `sent: false`; a
//! conversation that broke off without an answer may have delivered the message, so it is
//! `sent: true` and the outbox does not send it blindly again; a 5xx answer is permanent.

use std::fmt;
use std::sync::OnceLock;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::{self, AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use super::config::{SmtpConfig, SmtpTls, invalid};
use crate::{ChannelError, DeliveryError};

/// Most connections a pool may hold, whatever the setting asks.
const MAX_POOL_SIZE: u32 = 64;
/// Longest timeout accepted, in seconds.
const MAX_TIMEOUT_SECS: u64 = 600;
/// SMTP codes that refuse our login rather than the message (RFC 4954): the message is not at
/// fault, so these are retried (the operator may fix the credentials) rather than permanent.
const AUTH_CODES: [u16; 4] = [530, 534, 535, 538];

/// The relay, reached through a lettre pool built on first use: building the pool spawns its
/// idle-connection reaper, which needs the Tokio runtime that sends.
pub(crate) struct SmtpSender {
    builder: AsyncSmtpTransportBuilder,
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    host: String,
    port: u16,
    tls: SmtpTls,
}

impl fmt::Debug for SmtpSender {
    /// Host, port and TLS mode; never the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// Checks the settings under `setting` (`channels.email.smtp`) and prepares the transport.
    pub(crate) fn new(
        config: &SmtpConfig,
        password: Option<SecretString>,
        setting: &str,
    ) -> Result<Self, ChannelError> {
        let host = config.host.trim();
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                &format!("{setting}.host"),
                "give the relay's host name or IP address",
            ));
        }
        if !(1..=MAX_POOL_SIZE).contains(&config.pool_max_size) {
            return Err(invalid(
                &format!("{setting}.pool_max_size"),
                format!("must be between 1 and {MAX_POOL_SIZE}"),
            ));
        }
        if !(1..=MAX_TIMEOUT_SECS).contains(&config.timeout_secs) {
            return Err(invalid(
                &format!("{setting}.timeout_secs"),
                format!("must be between 1 and {MAX_TIMEOUT_SECS} seconds"),
            ));
        }
        let tls_problem = |e: smtp::Error| {
            invalid(
                &format!("{setting}.host"),
                format!(
                    "TLS cannot be set up for this host ({e}); check the name or use tls = \"plain\" for a local relay"
                ),
            )
        };
        let mut builder = match config.tls {
            SmtpTls::Plain => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(tls_problem)?
            }
            SmtpTls::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(tls_problem)?
            }
        }
        .port(config.port())
        .timeout(Some(config.timeout()))
        .pool_config(PoolConfig::new().max_size(config.pool_max_size));
        if let (Some(username), Some(password)) = (&config.username, password) {
            builder = builder.credentials(Credentials::new(
                username.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            builder,
            transport: OnceLock::new(),
            host: host.to_owned(),
            port: config.port(),
            tls: config.tls,
        })
    }

    fn transport(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.transport.get_or_init(|| self.builder.clone().build())
    }

    /// Sends `message` to its envelope recipients.
    ///
    /// # Errors
    /// As [`classify`].
    pub(crate) async fn send(&self, message: &Message) -> Result<(), DeliveryError> {
        let formatted = message.formatted();
        match self
            .transport()
            .send_raw(message.envelope(), &formatted)
            .await
        {
            Ok(_) => Ok(()),
            Err(error) => {
                let outcome = classify(&error);
                tracing::info!(
                    host = %self.host,
                    port = self.port,
                    error = %outcome,
                    "The SMTP relay did not take the message."
                );
                Err(outcome)
            }
        }
    }

    /// Connects and logs in (as a send would), then says goodbye: for `handoff doctor`.
    ///
    /// # Errors
    /// As [`classify`].
    pub(crate) async fn check(&self) -> Result<(), DeliveryError> {
        match self.transport().test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(DeliveryError::Retryable {
                message: "the SMTP relay accepted the connection but did not answer NOOP".into(),
                retry_after: None,
                sent: false,
            }),
            Err(error) => Err(classify(&error)),
        }
    }
}

/// What an SMTP failure means for the delivery. The texts carry the SMTP code and never the
/// relay's own words (which often quote the address).
///
/// - Refused or timed-out connections and TLS failures happen before any command: retryable,
///   not sent.
/// - 4xx: the relay refused for now, nothing was accepted: retryable, not sent.
/// - 5xx: permanent, except the login refusals of [`AUTH_CODES`] (retryable, not sent).
/// - A conversation that broke off (I/O error, read timeout, an unreadable answer): the relay
///   may have accepted the message before the line dropped, so retryable with `sent: true`.
///   lettre does not say at which command this happened, so this is assumed for every step.
/// - lettre stopping before any mail command because the relay lacks STARTTLS, a login
///   mechanism or SMTPUTF8: retryable, not sent (a setting to fix, mostly).
pub(crate) fn classify(error: &smtp::Error) -> DeliveryError {
    if let Some(code) = error.status() {
        let number = u16::from(code);
        if error.is_transient() || AUTH_CODES.contains(&number) {
            let what = if AUTH_CODES.contains(&number) {
                "refused the login; check channels.email.smtp.username and password"
            } else {
                "refused the message for now"
            };
            return DeliveryError::Retryable {
                message: format!("the SMTP relay {what} ({number})"),
                retry_after: None,
                sent: false,
            };
        }
        return DeliveryError::Permanent {
            message: format!("the SMTP relay rejected the message ({number})"),
        };
    }
    if is_connect_failure(error) || error.is_tls() || error.is_transport_shutdown() {
        let what = if error.is_timeout() {
            "did not accept a connection in time"
        } else if error.is_tls() {
            "could not be reached over TLS"
        } else {
            "could not be reached"
        };
        return DeliveryError::Retryable {
            message: format!("the SMTP relay {what}"),
            retry_after: None,
            sent: false,
        };
    }
    if error.is_client() {
        // lettre stopped before sending: the relay lacks what the configuration needs
        // (STARTTLS, a login mechanism) or what the message needs (SMTPUTF8 for an
        // internationalized address). Mostly a setting to fix, so it is retried.
        return DeliveryError::Retryable {
            message: "the SMTP relay does not offer what is needed (STARTTLS for tls = \
                      \"starttls\", a login mechanism, or SMTPUTF8); check channels.email.smtp"
                .into(),
            retry_after: None,
            sent: false,
        };
    }
    let what = if error.is_timeout() {
        "stopped answering"
    } else {
        "broke off the conversation"
    };
    DeliveryError::Retryable {
        message: format!("the SMTP relay {what}; the message may have been accepted"),
        retry_after: None,
        sent: true,
    }
}

/// Whether lettre failed while connecting (its `Connection` kind: no route, refused, connect
/// timeout, TLS handshake). lettre 0.11 has no predicate for that kind, only its `Display`
/// prefix; the tests pin it (a refused connection must classify as not sent).
fn is_connect_failure(error: &smtp::Error) -> bool {
    error.to_string().starts_with("Connection error")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config(port: u16) -> SmtpConfig {
        serde_json::from_value(serde_json::json!({
            "host": "127.0.0.1", "port": port, "tls": "plain", "timeout_secs": 5
        }))
        .unwrap()
    }

    fn message() -> Message {
        Message::builder()
            .from("a@acme.example".parse().unwrap())
            .to("b@customer.example".parse().unwrap())
            .subject("x")
            .body(String::from("hello"))
            .unwrap()
    }

    /// A port nothing listens on: bind, read the port, close.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn a_refused_connection_is_retryable_and_not_sent() {
        let sender = SmtpSender::new(&config(closed_port()), None, "channels.email.smtp").unwrap();
        let err = sender.send(&message()).await.unwrap_err();
        assert_eq!(
            err,
            DeliveryError::Retryable {
                message: "the SMTP relay could not be reached".into(),
                retry_after: None,
                sent: false,
            }
        );
        assert!(sender.check().await.is_err());
    }

    /// A relay that greets, takes every command and, after the message body, drops the line
    /// without an answer: the message may have arrived.
    #[tokio::test]
    async fn a_line_dropped_after_data_is_sent_with_unknown_outcome() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let relay = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 relay ESMTP\r\n").await.unwrap();
            let mut in_data = false;
            while let Some(line) = lines.next_line().await.unwrap() {
                if in_data {
                    if line == "." {
                        // The message is in; hang up instead of answering.
                        return;
                    }
                    continue;
                }
                let reply: &[u8] = match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
                    "EHLO" => b"250-relay\r\n250 8BITMIME\r\n",
                    "DATA" => {
                        in_data = true;
                        b"354 go ahead\r\n"
                    }
                    _ => b"250 ok\r\n",
                };
                write.write_all(reply).await.unwrap();
            }
        });
        let sender = SmtpSender::new(&config(port), None, "channels.email.smtp").unwrap();
        let err = tokio::time::timeout(Duration::from_secs(20), sender.send(&message()))
            .await
            .unwrap()
            .unwrap_err();
        relay.await.unwrap();
        let DeliveryError::Retryable { sent, message, .. } = err else {
            panic!("retryable expected: {err:?}");
        };
        assert!(sent, "{message}");
        assert!(message.contains("may have been accepted"), "{message}");
    }

    #[test]
    fn settings_are_checked() {
        let mut bad = config(25);
        bad.pool_max_size = 0;
        let err = SmtpSender::new(&bad, None, "channels.email.smtp").unwrap_err();
        assert_eq!(
            err.field().as_deref(),
            Some("channels.email.smtp.pool_max_size")
        );
        let mut bad = config(25);
        bad.timeout_secs = 0;
        let err = SmtpSender::new(&bad, None, "channels.email.smtp").unwrap_err();
        assert_eq!(
            err.field().as_deref(),
            Some("channels.email.smtp.timeout_secs")
        );
        let mut bad = config(25);
        bad.host = "relay example".into();
        let err = SmtpSender::new(&bad, None, "channels.email.smtp").unwrap_err();
        assert_eq!(err.field().as_deref(), Some("channels.email.smtp.host"));
        for tls in ["starttls", "tls"] {
            let config: SmtpConfig =
                serde_json::from_value(serde_json::json!({"host": "smtp.example.com", "tls": tls}))
                    .unwrap();
            let sender = SmtpSender::new(&config, None, "channels.email.smtp").unwrap();
            assert_eq!(sender.port, if tls == "tls" { 465 } else { 587 });
        }
    }
}
