//! Durable writes to the service database that share their flushes.
//!
//! A sled flush writes every change made so far to the log file and waits for it (about
//! a disk write; most of a code exchange's own time). Writers that need their change to
//! be durable before they answer (a code marked used and the tokens it bought) call
//! [`GroupFlush::flush`] after writing: one flush at a time runs, and it covers every
//! change made before it started, so writers that wait at the same time are all served by
//! the next flush instead of each sealing and writing their own. Alone, a writer flushes
//! at once, as before: nothing is delayed to wait for company.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Shared flushes of one sled database.
#[derive(Debug)]
pub struct GroupFlush {
    /// A tree of the database (a flush of any tree flushes the whole log).
    tree: sled::Tree,
    /// Writes announced so far (each writer takes the next number after writing).
    written: AtomicU64,
    /// The writes the last finished flush covers; held while a flush runs.
    flushed: Mutex<u64>,
}

impl GroupFlush {
    /// Shared flushes of `tree`'s database.
    pub fn new(tree: sled::Tree) -> Self {
        Self {
            tree,
            written: AtomicU64::new(0),
            flushed: Mutex::new(0),
        }
    }

    /// Returns once every change this thread made to the database before the call is
    /// durable: flushed by this call, or by another that started after it was made.
    pub fn flush(&self) -> Result<(), sled::Error> {
        // Numbered after the write: a flush that reads a count of at least `mine` before
        // it starts covers this thread's change.
        let mine = self.written.fetch_add(1, Ordering::SeqCst) + 1;
        let mut flushed = self.flushed.lock().unwrap_or_else(PoisonError::into_inner);
        if *flushed >= mine {
            return Ok(());
        }
        let covers = self.written.load(Ordering::SeqCst);
        self.tree.flush()?;
        *flushed = covers;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn concurrent_writers_each_return_and_the_last_flush_covers_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree("rows").unwrap();
        let group = Arc::new(GroupFlush::new(tree.clone()));
        let threads: Vec<_> = (0..8u32)
            .map(|t| {
                let (tree, group) = (tree.clone(), group.clone());
                std::thread::spawn(move || {
                    for i in 0..50u32 {
                        tree.insert((t * 1000 + i).to_be_bytes(), &[1u8][..])
                            .unwrap();
                        group.flush().unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*group.flushed.lock().unwrap(), 400);
        assert_eq!(tree.len(), 400);
    }
}
