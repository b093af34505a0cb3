//! The demo's mailbox: an SMTP receiver on loopback that keeps what the demo IdP sends
//! (its one-time registration codes), so the demo can read a code as the person would in
//! their mail. It speaks the few commands a plain SMTP client needs (RFC 5321 §4.5.1:
//! `EHLO`/`HELO`, `MAIL`, `RCPT`, `DATA`, `RSET`, `NOOP`, `QUIT`), without TLS or
//! authentication; it accepts mail only on 127.0.0.1, for the demo's lifetime, and keeps
//! at most [`MAX_MESSAGES`] messages of [`MAX_MESSAGE`] bytes. The end-to-end tests use a
//! real SMTP server instead (aiosmtpd, `tests/src/smtp_sink.rs`).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};

/// The most messages kept.
pub(crate) const MAX_MESSAGES: usize = 64;
/// The longest message kept, in bytes.
pub(crate) const MAX_MESSAGE: usize = 256 * 1024;

/// One message: its recipients and its text (headers and body, dot-unstuffed).
#[derive(Debug, Clone)]
pub(crate) struct Mail {
    pub to: Vec<String>,
    pub text: String,
}

/// The running receiver; it stops taking mail when the demo ends (the process exits).
pub(crate) struct Mailbox {
    port: u16,
    mail: Arc<Mutex<Vec<Mail>>>,
}

impl Mailbox {
    /// Listens on a free loopback port and takes mail on a thread of its own.
    pub(crate) fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let mail = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&mail);
        std::thread::Builder::new()
            .name("demo-smtp".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    // One sender at a time (the IdP's mail thread): a failed session is
                    // the sender's to retry.
                    let _ = session(stream, &kept);
                }
            })?;
        Ok(Self { port, mail })
    }

    /// The `[smtp]` section of an IdP that sends through it (plaintext: loopback only).
    pub(crate) fn idp_section(&self) -> String {
        format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             from = \"Milagro demo IdP <idp@demo.milagro.test>\"\n",
            self.port
        )
    }

    /// Waits up to `patience` for a message to `to` received after the first `seen`.
    pub(crate) fn wait_for(&self, to: &str, seen: usize, patience: Duration) -> Result<Mail> {
        super::wait_for(patience, "the IdP's mail", || {
            let mail = self.mail.lock().unwrap_or_else(PoisonError::into_inner);
            Ok(mail
                .iter()
                .filter(|m| m.to.iter().any(|r| r.eq_ignore_ascii_case(to)))
                .nth(seen)
                .cloned())
        })
    }
}

/// One SMTP session on `stream`, its messages added to `mail`.
fn session(stream: TcpStream, mail: &Mutex<Vec<Mail>>) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream).take(16 * MAX_MESSAGE as u64);
    let mut reply = |text: &str| out.write_all(format!("{text}\r\n").as_bytes());
    reply("220 demo.milagro.test ESMTP")?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let verb = command.split(' ').next().unwrap_or_default();
        match verb {
            "EHLO" | "HELO" => reply("250 demo.milagro.test")?,
            "MAIL" => {
                to.clear();
                reply("250 ok")?;
            }
            "RCPT" => {
                let address = line
                    .split_once('<')
                    .and_then(|(_, rest)| rest.split_once('>'))
                    .map(|(address, _)| address.to_owned())
                    .context("RCPT without <address>")?;
                to.push(address);
                reply("250 ok")?;
            }
            "DATA" => {
                reply("354 end with <CRLF>.<CRLF>")?;
                let text = read_data(&mut lines)?;
                let mut kept = mail.lock().unwrap_or_else(PoisonError::into_inner);
                if text.len() <= MAX_MESSAGE && kept.len() < MAX_MESSAGES {
                    kept.push(Mail {
                        to: std::mem::take(&mut to),
                        text,
                    });
                    drop(kept);
                    reply("250 kept")?;
                } else {
                    drop(kept);
                    reply("552 the demo's mailbox is full")?;
                }
            }
            "RSET" => {
                to.clear();
                reply("250 ok")?;
            }
            "NOOP" => reply("250 ok")?,
            "QUIT" => {
                reply("221 bye")?;
                return Ok(());
            }
            _ => reply("502 not implemented")?,
        }
    }
}

/// The message text up to the line holding a single `.`, with leading dots unstuffed
/// (RFC 5321 §4.5.2).
fn read_data(lines: &mut impl std::io::BufRead) -> Result<String> {
    let mut text = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            anyhow::bail!("the sender closed the connection inside DATA");
        }
        let content = line.trim_end_matches(['\r', '\n']);
        if content == "." {
            return Ok(text);
        }
        if text.len() <= MAX_MESSAGE {
            text.push_str(content.strip_prefix('.').unwrap_or(content));
            text.push('\n');
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_kept_with_its_recipient_and_its_dots_unstuffed() {
        let mailbox = Mailbox::start().unwrap();
        let mut client = TcpStream::connect(("127.0.0.1", mailbox.port)).unwrap();
        let mut reader = BufReader::new(client.try_clone().unwrap());
        let mut answer = || {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            line
        };
        assert!(answer().starts_with("220"));
        for (command, code) in [
            ("EHLO test", "250"),
            ("MAIL FROM:<idp@demo.milagro.test>", "250"),
            ("RCPT TO:<Dana@demo.milagro.test>", "250"),
            ("DATA", "354"),
        ] {
            client
                .write_all(format!("{command}\r\n").as_bytes())
                .unwrap();
            assert!(answer().starts_with(code), "{command}");
        }
        client
            .write_all(b"Subject: hi\r\n\r\n12345678\r\n..a dot\r\n.\r\nQUIT\r\n")
            .unwrap();
        assert!(answer().starts_with("250"));
        assert!(answer().starts_with("221"));
        let mail = mailbox
            .wait_for("dana@demo.milagro.test", 0, Duration::from_secs(5))
            .unwrap();
        assert_eq!(mail.text, "Subject: hi\n\n12345678\n.a dot\n");
    }
}
