//! What the services in the test process log, captured: a test that runs a service
//! in-process reads its log lines to check that a refusal names its reason.
//!
//! [`capture`] installs one global `tracing` subscriber for the test binary (the first
//! call does; later calls share it), writing plain text into memory.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// The captured log text of the whole test binary.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Where the log is now (for [`Logs::since`]).
    pub fn mark(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Everything logged since `mark`.
    pub fn since(&self, mark: usize) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes[mark.min(bytes.len())..]).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        bytes.extend_from_slice(buf);
        // Also shown, for a failing test's output.
        eprint!("{}", String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing (once per test binary) and returns the capture.
pub fn capture() -> Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        use tracing_subscriber::util::SubscriberInitExt as _;
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
            .try_init()
            .expect("no other global subscriber in this test binary");
        logs
    })
    .clone()
}
