//! How many PIN guesses an identity gets, kept on disk.
//!
//! An M-Pin PIN has a few thousand values, so the number of proofs an attacker may have
//! checked is the whole of its security. The rules:
//!
//! - **An attempt is reserved before the proof is verified** ([`Guesses::reserve`]): it
//!   counts as a failure from that moment, written to disk, and only a proof that
//!   verifies takes it back ([`Guesses::finish`]). A crash mid-verification leaves it
//!   counted. **One proof per identity is verified at a time**: another arriving meanwhile
//!   is refused ([`Refusal::InFlight`]) without being checked, so proofs sent together
//!   on challenges opened in advance cannot all pass the check before any is counted. A
//!   reservation never finished (a handler that panicked) stops blocking after
//!   [`IN_FLIGHT_SECS`], and stays counted.
//! - `max_failures` consecutive failures **lock the identity out**, and lockouts
//!   **escalate**: the n-th lasts `lockout × 2^(n-1)`. After `max_lockouts` lockouts
//!   the identity is **blocked** for good: only registering again, which gives a device a
//!   new identity, gets past it.
//! - A success resets the consecutive count, not the lockouts: an attacker guessing
//!   between the owner's logins still runs into the block.
//! - Everything is stored in the service database (tree `login_guesses`) and flushed
//!   before an attempt is checked, so a restart keeps counts, lockouts and blocks. A row
//!   goes when a success leaves nothing to remember.
//!
//! Time is passed in (Unix seconds), so the rules are tested with a fake clock.

use std::collections::HashMap;
use std::time::Duration;

use milagro_mpin::MpinId;

use crate::config::LoginConfig;

/// The tree of the service database holding the counts.
pub const TREE: &str = "login_guesses";

/// Seconds after which a reservation never finished (its handler panicked) stops counting
/// as in flight, so a bug cannot lock an identity out until the next restart. A pairing
/// takes milliseconds.
pub const IN_FLIGHT_SECS: u64 = 30;

/// Why an identity may not try now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Locked out for this much longer.
    #[error("too many failed logins for this identity; retry in {} s", .0.as_secs())]
    Locked(Duration),
    /// Blocked after too many lockouts; only a new registration helps.
    #[error("this identity is blocked after repeated failed logins; register the device again")]
    Blocked,
    /// Another proof of this identity is being checked.
    #[error("another proof of this identity is being checked; retry in a moment")]
    InFlight,
}

/// Why the counts could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("login guess counts: {0}")]
pub struct StorageError(String);

fn storage(e: impl std::fmt::Display) -> StorageError {
    StorageError(e.to_string())
}

/// One identity's counts, as stored (17 bytes: consecutive u32, lockouts u32,
/// locked_until u64 (Unix seconds, 0 for none), blocked u8; big-endian).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    consecutive: u32,
    lockouts: u32,
    locked_until: u64,
    blocked: bool,
}

impl Counts {
    const LEN: usize = 17;

    fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..4].copy_from_slice(&self.consecutive.to_be_bytes());
        out[4..8].copy_from_slice(&self.lockouts.to_be_bytes());
        out[8..16].copy_from_slice(&self.locked_until.to_be_bytes());
        out[16] = u8::from(self.blocked);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        let bytes: &[u8; Self::LEN] = bytes
            .try_into()
            .map_err(|_| storage("a row of the wrong length"))?;
        let [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, blocked] = *bytes;
        Ok(Self {
            consecutive: u32::from_be_bytes([a, b, c, d]),
            lockouts: u32::from_be_bytes([e, f, g, h]),
            locked_until: u64::from_be_bytes([i, j, k, l, m, n, o, p]),
            blocked: blocked != 0,
        })
    }

    fn refusal(&self, now: u64) -> Option<Refusal> {
        if self.blocked {
            return Some(Refusal::Blocked);
        }
        (self.locked_until > now)
            .then(|| Refusal::Locked(Duration::from_secs(self.locked_until - now)))
    }
}

/// A reserved attempt: already counted as a failure until [`Guesses::finish`] says it
/// succeeded.
#[derive(Debug)]
#[must_use = "an attempt must be finished, or its identity stays in flight"]
pub struct Attempt {
    id: Vec<u8>,
    /// The counts before the attempt was reserved: what a success goes back to (without
    /// the consecutive failures).
    before: Counts,
}

/// The guess counts of every identity, and which have a proof in flight.
#[derive(Debug)]
pub struct Guesses {
    config: LoginConfig,
    tree: sled::Tree,
    /// Identities with a proof being checked, and when its reservation was made.
    in_flight: HashMap<Vec<u8>, u64>,
}

impl Guesses {
    /// The counts stored in `db`.
    pub fn open(db: &sled::Db, config: LoginConfig) -> Result<Self, StorageError> {
        Ok(Self {
            config,
            tree: db.open_tree(TREE).map_err(storage)?,
            in_flight: HashMap::new(),
        })
    }

    fn counts(&self, id: &[u8]) -> Result<Counts, StorageError> {
        self.tree
            .get(id)
            .map_err(storage)?
            .map_or(Ok(Counts::default()), |bytes| Counts::decode(&bytes))
    }

    fn store(&self, id: &[u8], counts: &Counts) -> Result<(), StorageError> {
        if *counts == Counts::default() {
            self.tree.remove(id).map_err(storage)?;
        } else {
            self.tree.insert(id, &counts.encode()).map_err(storage)?;
        }
        self.tree.flush().map_err(storage)?;
        Ok(())
    }

    /// Whether `id` may try now (pass 1 asks before opening a challenge).
    pub fn check(&self, id: &MpinId, now: u64) -> Result<Option<Refusal>, StorageError> {
        Ok(self.counts(id.as_bytes())?.refusal(now))
    }

    /// Reserves one attempt of `id`, counted as a failure (and written) before the proof
    /// is checked; refused while `id` is locked, blocked or has a proof in flight.
    pub fn reserve(
        &mut self,
        id: &MpinId,
        now: u64,
    ) -> Result<Result<Attempt, Refusal>, StorageError> {
        let key = id.as_bytes();
        let before = self.counts(key)?;
        if let Some(refusal) = before.refusal(now) {
            return Ok(Err(refusal));
        }
        if self
            .in_flight
            .get(key)
            .is_some_and(|since| now < since.saturating_add(IN_FLIGHT_SECS))
        {
            return Ok(Err(Refusal::InFlight));
        }
        let mut counted = before;
        counted.consecutive = counted.consecutive.saturating_add(1);
        if counted.consecutive >= self.config.max_failures {
            counted.consecutive = 0;
            counted.lockouts = counted.lockouts.saturating_add(1);
            if counted.lockouts >= self.config.max_lockouts {
                counted.blocked = true;
            } else {
                counted.locked_until = now.saturating_add(self.lockout(counted.lockouts).as_secs());
            }
        }
        self.store(key, &counted)?;
        self.in_flight.insert(key.to_vec(), now);
        Ok(Ok(Attempt {
            id: key.to_vec(),
            before,
        }))
    }

    /// Ends `attempt`. A proof that verified takes its failure back (and any lockout it
    /// started) and resets the consecutive count; one that did not stays counted. Returns
    /// the refusal the failure started, if it started one (to log it).
    pub fn finish(
        &mut self,
        attempt: Attempt,
        verified: bool,
        now: u64,
    ) -> Result<Option<Refusal>, StorageError> {
        self.in_flight.remove(&attempt.id);
        if verified {
            let mut counts = attempt.before;
            counts.consecutive = 0;
            self.store(&attempt.id, &counts)?;
            return Ok(None);
        }
        let counts = self.counts(&attempt.id)?;
        let started = counts.lockouts > attempt.before.lockouts;
        Ok(started.then(|| counts.refusal(now)).flatten())
    }

    /// The length of the `n`-th lockout (from 1): `lockout × 2^(n-1)`.
    fn lockout(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.config.lockout.saturating_mul(factor)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config() -> LoginConfig {
        let mut config = LoginConfig::new();
        config.max_failures = 3;
        config.lockout = Duration::from_secs(300);
        config.max_lockouts = 3;
        config
    }

    fn fail(guesses: &mut Guesses, id: &MpinId, now: u64) -> Option<Refusal> {
        let attempt = guesses.reserve(id, now).unwrap().unwrap();
        guesses.finish(attempt, false, now).unwrap()
    }

    #[test]
    fn an_attempt_counts_before_it_is_checked_and_one_per_identity_is_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let mut guesses = Guesses::open(&db, config()).unwrap();
        let (alice, bob) = (MpinId::new("alice").unwrap(), MpinId::new("bob").unwrap());
        let first = guesses.reserve(&alice, 0).unwrap().unwrap();
        assert_eq!(
            guesses.reserve(&alice, 0).unwrap().unwrap_err(),
            Refusal::InFlight
        );
        let other = guesses.reserve(&bob, 0).unwrap().unwrap();
        // Counted on disk already: a crash now keeps the guess.
        assert_eq!(guesses.counts(b"alice").unwrap().consecutive, 1);
        assert_eq!(guesses.finish(first, false, 0).unwrap(), None);
        guesses.finish(other, true, 0).unwrap();
        assert_eq!(guesses.counts(b"bob").unwrap(), Counts::default());
        assert!(
            guesses.tree.get(b"bob").unwrap().is_none(),
            "nothing left to remember"
        );
    }

    #[test]
    fn lockouts_escalate_survive_a_restart_and_end_in_a_block_a_success_does_not_lift() {
        let dir = tempfile::tempdir().unwrap();
        let alice = MpinId::new("alice").unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let mut guesses = Guesses::open(&db, config()).unwrap();
            assert_eq!(fail(&mut guesses, &alice, 0), None);
            assert_eq!(fail(&mut guesses, &alice, 1), None);
            let locked = Refusal::Locked(Duration::from_secs(300));
            assert_eq!(fail(&mut guesses, &alice, 2), Some(locked));
            assert_eq!(guesses.check(&alice, 2).unwrap(), Some(locked));
            assert_eq!(
                guesses.reserve(&alice, 100).unwrap().unwrap_err(),
                Refusal::Locked(Duration::from_secs(202))
            );
        }
        // Restarted: still locked; after it, a success resets only the consecutive count.
        let db = sled::open(dir.path()).unwrap();
        let mut guesses = Guesses::open(&db, config()).unwrap();
        assert!(matches!(
            guesses.check(&alice, 301).unwrap(),
            Some(Refusal::Locked(_))
        ));
        let attempt = guesses.reserve(&alice, 302).unwrap().unwrap();
        guesses.finish(attempt, true, 302).unwrap();
        assert_eq!(fail(&mut guesses, &alice, 303), None);
        assert_eq!(fail(&mut guesses, &alice, 304), None);
        // The second lockout lasts twice as long.
        assert_eq!(
            fail(&mut guesses, &alice, 305),
            Some(Refusal::Locked(Duration::from_secs(600)))
        );
        for now in [1_000, 1_001] {
            assert_eq!(fail(&mut guesses, &alice, now), None);
        }
        // The third ends in a block that time does not lift.
        assert_eq!(fail(&mut guesses, &alice, 1_002), Some(Refusal::Blocked));
        assert_eq!(
            guesses.check(&alice, u64::MAX).unwrap(),
            Some(Refusal::Blocked)
        );
    }

    #[test]
    fn a_reservation_never_finished_stops_blocking_its_identity_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let mut guesses = Guesses::open(&db, config()).unwrap();
        let alice = MpinId::new("alice").unwrap();
        // A handler that panicked between reserve and finish: the attempt stays counted.
        drop(guesses.reserve(&alice, 0).unwrap().unwrap());
        let soon = guesses.reserve(&alice, IN_FLIGHT_SECS - 1).unwrap();
        assert_eq!(soon.unwrap_err(), Refusal::InFlight);
        let later = guesses.reserve(&alice, IN_FLIGHT_SECS).unwrap().unwrap();
        assert_eq!(guesses.counts(b"alice").unwrap().consecutive, 2);
        guesses.finish(later, false, IN_FLIGHT_SECS).unwrap();
    }

    #[test]
    fn a_verified_proof_takes_back_the_lockout_its_own_reservation_started() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let mut guesses = Guesses::open(&db, config()).unwrap();
        let alice = MpinId::new("alice").unwrap();
        fail(&mut guesses, &alice, 0);
        fail(&mut guesses, &alice, 0);
        // The third attempt would lock; it verifies, so it does not.
        let attempt = guesses.reserve(&alice, 0).unwrap().unwrap();
        assert!(
            guesses.check(&alice, 0).unwrap().is_some(),
            "locked while in flight"
        );
        assert_eq!(guesses.finish(attempt, true, 0).unwrap(), None);
        assert_eq!(guesses.check(&alice, 0).unwrap(), None);
    }

    #[test]
    fn a_damaged_row_is_a_storage_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let mut guesses = Guesses::open(&db, config()).unwrap();
        guesses.tree.insert(b"alice", b"short".as_slice()).unwrap();
        let alice = MpinId::new("alice").unwrap();
        assert!(guesses.reserve(&alice, 0).is_err());
    }
}
