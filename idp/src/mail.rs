//! E-mail: the `[smtp]` configuration and the message that carries an enrolment code.
//!
//! The IdP sends one kind of message: the one-time code (and a link that fills it in on
//! the device page) that proves a person controls an address ([`crate::enrolment_codes`]).
//! It speaks SMTP through `lettre` (ADR 0018), blocking, with a 10-second timeout, on one
//! thread of its own fed by a queue of [`MAIL_QUEUE`] messages: the page answers before
//! the message goes out, so an address that gets mail is answered as fast as one that
//! does not (no timing tells which addresses may register), and a slow server holds no
//! handler. Over implicit TLS or STARTTLS (rustls, the system's roots);
//! plaintext only to a loopback host (a local relay or a test sink), so a code never
//! crosses a network in clear. Credentials, if any, are read from a file at start, never
//! from the configuration itself. Neither the address nor the code is ever logged.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport as _};

use milagro_service::config::{invalid, ConfigError};
use serde::Deserialize;

/// How long one SMTP exchange may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages waiting to be sent at most; beyond, a send is refused ([`MailError::Busy`]).
pub const MAIL_QUEUE: usize = 256;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmtpTls {
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain, then STARTTLS, required (port 587).
    StartTls,
    /// No TLS: only to a loopback host.
    None,
}

/// `[smtp]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmtpConfig {
    /// The server's host name (or address).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is protected.
    pub tls: SmtpTls,
    /// The `From` of every message.
    pub from: Mailbox,
    /// A file holding the user name (first line) and password (second line), if the
    /// server wants authentication.
    pub credentials_file: Option<PathBuf>,
}

/// `[smtp]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSmtp {
    host: String,
    port: u16,
    tls: String,
    from: String,
    #[serde(default)]
    credentials_file: Option<PathBuf>,
}

/// The keys of `[smtp]`.
pub(crate) const SMTP_KEYS: &[&str] = &["host", "port", "tls", "from", "credentials_file"];

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl RawSmtp {
    pub(crate) fn check(self) -> Result<SmtpConfig, ConfigError> {
        if self.host.is_empty() {
            return Err(invalid("smtp.host", "a host name or address"));
        }
        if self.port == 0 {
            return Err(invalid("smtp.port", "between 1 and 65535"));
        }
        let tls = match self.tls.as_str() {
            "tls" => SmtpTls::Tls,
            "starttls" => SmtpTls::StartTls,
            "none" if is_loopback(&self.host) => SmtpTls::None,
            "none" => {
                return Err(invalid(
                    "smtp.tls",
                    "\"none\" only to a loopback host: codes must not cross a network in clear",
                ))
            }
            _ => return Err(invalid("smtp.tls", "\"tls\", \"starttls\" or \"none\"")),
        };
        let from = self
            .from
            .parse()
            .map_err(|e| invalid("smtp.from", format!("not a mailbox: {e}")))?;
        Ok(SmtpConfig {
            host: self.host,
            port: self.port,
            tls,
            from,
            credentials_file: self.credentials_file,
        })
    }
}

/// Why mail could not be set up or sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// The credentials file is unreadable or not two lines.
    #[error("SMTP credentials file {path}: {reason}")]
    Credentials {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The transport could not be built (e.g. TLS set-up).
    #[error("SMTP transport: {0}")]
    Transport(#[source] lettre::transport::smtp::Error),
    /// The message could not be built (an address lettre refuses).
    #[error("building the message: {0}")]
    Message(String),
    /// The server refused or could not be reached.
    #[error("sending: {0}")]
    Send(#[source] lettre::transport::smtp::Error),
    /// [`MAIL_QUEUE`] messages are waiting already, or the sender thread is gone.
    #[error("the mail queue is full")]
    Busy,
    /// The sender thread could not be started.
    #[error("starting the mail thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Sends the IdP's messages: builds them at once, hands them to its thread.
#[derive(Clone)]
pub struct Mailer {
    queue: std::sync::mpsc::SyncSender<Message>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

fn read_credentials(path: &PathBuf) -> Result<Credentials, MailError> {
    let fail = |reason: String| MailError::Credentials {
        path: path.clone(),
        reason,
    };
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?);
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(user), Some(password)) if !user.is_empty() => {
            Ok(Credentials::new(user.to_owned(), password.to_owned()))
        }
        _ => Err(fail(
            "expected the user name, then the password, one a line".into(),
        )),
    }
}

impl Mailer {
    /// Builds the transport of `config` (reading its credentials file); connects only when
    /// a message is sent.
    pub fn new(config: &SmtpConfig) -> Result<Self, MailError> {
        let builder = match config.tls {
            SmtpTls::Tls => SmtpTransport::relay(&config.host).map_err(MailError::Transport)?,
            SmtpTls::StartTls => {
                SmtpTransport::starttls_relay(&config.host).map_err(MailError::Transport)?
            }
            SmtpTls::None => SmtpTransport::builder_dangerous(&config.host),
        };
        let mut builder = builder.port(config.port).timeout(Some(SMTP_TIMEOUT));
        if let Some(path) = &config.credentials_file {
            builder = builder.credentials(read_credentials(path)?);
        }
        let transport = builder.build();
        let (queue, waiting) = std::sync::mpsc::sync_channel::<Message>(MAIL_QUEUE);
        // The thread ends when the last Mailer (the IdP's state) is dropped.
        std::thread::Builder::new()
            .name("idp-mail".into())
            .spawn(move || {
                for message in waiting {
                    // The error names neither the address nor the code.
                    match transport.send(&message) {
                        Ok(_) => tracing::info!("an enrolment code was e-mailed"),
                        Err(error) => {
                            tracing::warn!(%error, "an enrolment code could not be e-mailed")
                        }
                    }
                }
            })
            .map_err(MailError::Thread)?;
        Ok(Self {
            queue,
            from: config.from.clone(),
        })
    }

    /// Queues `code` (and `link`, which fills it in) for `to`, on behalf of the IdP `party`;
    /// the message goes out after this returns.
    pub fn send_code(
        &self,
        to: &str,
        party: &str,
        code: &str,
        link: &str,
    ) -> Result<(), MailError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::Message(e.to_string()))?;
        // Short lines: the body stays 7-bit, the code and link readable as they are.
        let body = format!(
            "Your code to connect a device to {party} is:\n\n    {code}\n\n\
             Type it on the page where you entered your address, or open:\n\n\
             {link}\n\n\
             It works once, only for the device that asked.\n\
             If you did not ask for it, ignore this message.\n"
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("Your {party} device code"))
            .body(body)
            .map_err(|e| MailError::Message(e.to_string()))?;
        self.queue.try_send(message).map_err(|_| MailError::Busy)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn raw(host: &str, tls: &str) -> RawSmtp {
        RawSmtp {
            host: host.into(),
            port: 25,
            tls: tls.into(),
            from: "IdP <idp@example.com>".into(),
            credentials_file: None,
        }
    }

    #[test]
    fn plaintext_only_to_loopback() {
        assert_eq!(raw("127.0.0.1", "none").check().unwrap().tls, SmtpTls::None);
        assert_eq!(raw("localhost", "none").check().unwrap().tls, SmtpTls::None);
        assert_eq!(raw("[::1]", "none").check().unwrap().tls, SmtpTls::None);
        assert!(raw("smtp.example.com", "none").check().is_err());
        assert!(raw("10.0.0.1", "none").check().is_err());
        assert!(raw("smtp.example.com", "ssl").check().is_err());
        assert_eq!(
            raw("smtp.example.com", "starttls").check().unwrap().tls,
            SmtpTls::StartTls
        );
    }

    #[test]
    fn credentials_are_two_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds");
        std::fs::write(&path, "user\nsecret\n").unwrap();
        assert!(read_credentials(&path).is_ok());
        std::fs::write(&path, "user\n").unwrap();
        assert!(read_credentials(&path).is_err());
    }
}
