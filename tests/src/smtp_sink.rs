//! A real SMTP server this project did not write: `aiosmtpd` (PyPI, pinned), on a free
//! loopback port, writing every message it accepts into a Maildir, where a test reads the
//! mail the IdP sent.
//!
//! aiosmtpd is installed once per machine into a virtual environment under
//! [`milagro_regtest::machine_cache_dir`] (`aiosmtpd-VERSION/`), under a `flock(1)` so
//! that parallel test binaries install it once, and reused; a failed install fails the
//! test with pip's output (these tests never skip).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The pinned aiosmtpd release.
pub const AIOSMTPD: &str = "1.4.6";

/// The virtual environment's Python, with aiosmtpd installed on first use.
pub fn aiosmtpd_python() -> PathBuf {
    let cache = milagro_regtest::machine_cache_dir();
    std::fs::create_dir_all(&cache).unwrap_or_else(|e| panic!("create {}: {e}", cache.display()));
    let venv = cache.join(format!("aiosmtpd-{AIOSMTPD}"));
    let python = venv.join("bin/python");
    // Under the lock: a venv without the marker is a killed install's leftover.
    let script = format!(
        "set -e
         if [ -f {venv:?}/installed ]; then exit 0; fi
         rm -rf {venv:?}
         python3 -m venv {venv:?}
         {venv:?}/bin/pip install --quiet --disable-pip-version-check aiosmtpd=={AIOSMTPD}
         touch {venv:?}/installed"
    );
    let output = Command::new("flock")
        .arg(cache.join(format!("aiosmtpd-{AIOSMTPD}.lock")))
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run flock + python3 -m venv (python3 is needed): {e}"));
    assert!(
        output.status.success() && python.exists(),
        "installing aiosmtpd {AIOSMTPD} into {} failed ({}):\n{}\n{}",
        venv.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    python
}

/// A running aiosmtpd that keeps every message in a Maildir; stopped when dropped.
pub struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Installs (once) and starts aiosmtpd on a free loopback port, and waits until it
    /// accepts connections.
    pub fn start() -> Self {
        let python = aiosmtpd_python();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary dir: {e}"));
        let maildir = dir.path().join("maildir");
        let port = crate::idp_common::free_port();
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start aiosmtpd: {e}"));
        let sink = Self { child, port, dir };
        crate::wait_until("aiosmtpd to listen", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        sink
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `[smtp]` section of an IdP that sends through it (plaintext: loopback).
    pub fn idp_section(&self) -> String {
        format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"Test IdP <idp@milagro.test>\"\n",
            self.port
        )
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir")
    }

    /// Every message delivered to `to` so far (raw, with soft line breaks and `=3D` of
    /// quoted-printable undone), oldest first.
    pub fn messages_to(&self, to: &str) -> Vec<String> {
        let mut found = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir().join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let modified = entry.metadata().and_then(|m| m.modified()).ok();
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                if recipient_is(&text, to) {
                    found.push((
                        modified,
                        text.replace("=\r\n", "")
                            .replace("=\n", "")
                            .replace("=3D", "="),
                    ));
                }
            }
        }
        found.sort_by_key(|(modified, _)| *modified);
        found.into_iter().map(|(_, text)| text).collect()
    }

    /// Waits for the `n`th (1-based) message to `to` and returns it.
    pub fn wait_for_message(&self, to: &str, n: usize) -> String {
        crate::wait_until(
            &format!("message {n} to the test address"),
            Duration::from_secs(30),
            || self.messages_to(to).into_iter().nth(n - 1),
        )
    }
}

fn recipient_is(message: &str, to: &str) -> bool {
    message.lines().any(|line| {
        let lower = line.to_ascii_lowercase();
        (lower.starts_with("x-rcptto:") || lower.starts_with("to:"))
            && lower.contains(&to.to_ascii_lowercase())
    })
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The 8-digit code of an enrolment message, and the link in it.
pub fn code_and_link(message: &str) -> (String, String) {
    let code = message
        .lines()
        .map(str::trim)
        .find(|line| line.len() == 8 && line.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in the message:\n{message}"))
        .to_owned();
    let link = message
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("http") && line.contains("/device?"))
        .unwrap_or_else(|| panic!("no link in the message:\n{message}"))
        .to_owned();
    (code, link)
}
