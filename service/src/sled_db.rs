//! Opening a service's own `sled` database (its state and audit log; the registry index
//! is a `redb` file of its own: `milagro_registry::redb_store`).

use std::path::Path;
use std::time::{Duration, Instant};

/// How long [`open_waiting_for_lock`] waits for another handle in this process to let go.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// `sled::open`, retried while the database's file lock is still held: sled releases it
/// from a background thread shortly after the last handle is dropped, so reopening at once
/// in the same process (a restart in a test, a service restarting) can find it taken.
/// Another *process* holding the lock is still refused, after the wait. Every sled
/// database of the workspace is opened through it.
pub fn open_waiting_for_lock(dir: &Path) -> Result<sled::Db, sled::Error> {
    let config = sled::Config::new().path(dir);
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            // sled reports a held lock as `ErrorKind::Other` with this message (sled 0.34,
            // `config.rs`); the message is its only signal.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_waits_for_another_handle_in_this_process_to_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = open_waiting_for_lock(dir.path()).unwrap();
        let holder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(first);
        });
        let second = open_waiting_for_lock(dir.path());
        holder.join().unwrap();
        assert!(second.is_ok(), "{:?}", second.err());
    }
}
