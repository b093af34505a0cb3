//! argon2id password hashes computed in memory that is allocated once and reused.
//!
//! The `argon2` crate's `hash_password` and `verify_password` allocate the whole memory
//! of the hash (19 MiB with the default parameters) for every call and free it after.
//! glibc's allocator then raises its mmap threshold to that size (its "dynamic
//! threshold"), so later blocks of 19 MiB come from the per-thread heaps, which it does
//! not give back: measured on the IdP, each wrong password left 1.7 to 3.6 MB behind,
//! and about 45,000 of them ended in an out-of-memory kill (threat model, attack 7).
//!
//! [`Passwords`] holds at most `slots` memory areas, each made on first use and then kept
//! for the life of the process: a hash borrows one (waiting if all are in use), computes
//! with `Argon2::hash_password_into_with_memory`, wipes it, and gives it back. The
//! IdP's memory for passwords is therefore at most `slots × 19 MiB` whatever the number
//! of checks, and the [`crate::state::AppState::password_checks`] gate keeps the number
//! of checks waiting for a slot bounded too.

use std::sync::{Condvar, Mutex, PoisonError};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::users::UserError;

/// The most memory a stored hash may ask for (256 MiB, in 1 KiB blocks): hashes are
/// made by this module with the default 19 MiB, so a larger one is a damaged or foreign
/// record, refused rather than allowed to grow a slot without bound.
pub const MAX_BLOCKS: usize = 256 * 1024;

/// How many password hashes the IdP computes at once: one per core, at most 4 (each
/// needs 19 MiB and a core for about 50 ms; more at once only makes each slower).
pub fn default_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

/// Reusable argon2 memory; see the module documentation.
#[derive(Debug)]
pub struct Passwords {
    slots: usize,
    pool: Mutex<Pool>,
    returned: Condvar,
}

#[derive(Debug, Default)]
struct Pool {
    free: Vec<Vec<Block>>,
    made: usize,
}

/// A borrowed memory area, given back (wiped) when dropped, even if the hash panicked.
struct Slot<'a> {
    owner: &'a Passwords,
    memory: Vec<Block>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        // The blocks hold values derived from the password.
        self.memory.fill(Block::new());
        let memory = std::mem::take(&mut self.memory);
        let mut pool = self.owner.lock();
        pool.free.push(memory);
        drop(pool);
        self.owner.returned.notify_one();
    }
}

fn hash_error(e: impl std::fmt::Display) -> UserError {
    UserError::Hash(e.to_string())
}

impl Passwords {
    /// At most `slots` (at least 1) hashes at once, each in its own reused memory.
    pub fn new(slots: usize) -> Self {
        Self {
            slots: slots.max(1),
            pool: Mutex::new(Pool::default()),
            returned: Condvar::new(),
        }
    }

    /// How many hashes run at once at most.
    pub fn slots(&self) -> usize {
        self.slots
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A memory area of at least `blocks` blocks: a free one, a new one while fewer than
    /// `slots` exist, else the next one given back.
    fn borrow(&self, blocks: usize) -> Slot<'_> {
        let mut pool = self.lock();
        let mut memory = loop {
            if let Some(memory) = pool.free.pop() {
                break memory;
            }
            if pool.made < self.slots {
                pool.made += 1;
                break Vec::new();
            }
            pool = self
                .returned
                .wait(pool)
                .unwrap_or_else(PoisonError::into_inner);
        };
        drop(pool);
        if memory.len() < blocks {
            memory.resize(blocks, Block::new());
        }
        Slot {
            owner: self,
            memory,
        }
    }

    /// `argon` (its algorithm, version and parameters) of `password` and `salt` into
    /// `out`, in a borrowed slot.
    fn compute(
        &self,
        argon: &Argon2<'_>,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), UserError> {
        let blocks = argon.params().block_count();
        if blocks > MAX_BLOCKS {
            return Err(UserError::Hash(format!(
                "the hash asks for {blocks} KiB of memory, above {MAX_BLOCKS}"
            )));
        }
        let mut slot = self.borrow(blocks);
        argon
            .hash_password_into_with_memory(password, salt, out, &mut slot.memory[..blocks])
            .map_err(hash_error)
    }

    /// A new argon2id hash of `password` (default parameters, random salt), as a PHC
    /// string.
    pub fn hash(&self, password: &str) -> Result<String, UserError> {
        let argon = Argon2::default();
        let salt = SaltString::generate(&mut rand_core::OsRng);
        let mut salt_bytes = [0u8; 64];
        let raw_salt = salt
            .as_salt()
            .decode_b64(&mut salt_bytes)
            .map_err(hash_error)?;
        let mut out = Zeroizing::new([0u8; Params::DEFAULT_OUTPUT_LEN]);
        self.compute(&argon, password.as_bytes(), raw_salt, out.as_mut())?;
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(argon.params()).map_err(hash_error)?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(out.as_ref()).map_err(hash_error)?),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` is the one `stored` (a PHC string) was made from. A stored
    /// string that cannot be read is an error, not a mismatch.
    pub fn verify(&self, stored: &str, password: &str) -> Result<bool, UserError> {
        let parsed = PasswordHash::new(stored).map_err(storage)?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(storage)?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(storage)?
            .unwrap_or_default();
        let params = Params::try_from(&parsed).map_err(storage)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(storage("the stored hash has no salt or no output"));
        };
        let mut salt_bytes = [0u8; 64];
        let raw_salt = salt.decode_b64(&mut salt_bytes).map_err(storage)?;
        let mut out = Zeroizing::new(vec![0u8; expected.len()]);
        let argon = Argon2::new(algorithm, version, params);
        self.compute(&argon, password.as_bytes(), raw_salt, &mut out)?;
        Ok(bool::from(out.as_slice().ct_eq(expected.as_bytes())))
    }
}

fn storage(e: impl std::fmt::Display) -> UserError {
    UserError::Storage(format!("stored password hash: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier as _;

    #[test]
    fn hashes_are_standard_argon2id_and_verify_both_ways() {
        let passwords = Passwords::new(2);
        let phc = passwords.hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        // The crate's own verifier agrees: the format is the standard one.
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(passwords.verify(&phc, "correct horse").unwrap());
        assert!(!passwords.verify(&phc, "wrong horse").unwrap());
        assert!(passwords.verify("not a hash", "x").is_err());
    }

    #[test]
    fn no_more_than_slots_areas_are_ever_made() {
        let passwords = std::sync::Arc::new(Passwords::new(2));
        let phc = passwords.hash("correct horse").unwrap();
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (passwords, phc) = (passwords.clone(), phc.clone());
                std::thread::spawn(move || passwords.verify(&phc, "wrong horse").unwrap())
            })
            .collect();
        for thread in threads {
            assert!(!thread.join().unwrap());
        }
        let pool = passwords.lock();
        assert_eq!(pool.made, 2);
        assert_eq!(pool.free.len(), 2);
        assert!(pool
            .free
            .iter()
            .all(|m| m.len() == 19_456 && m.iter().all(|b| b.as_ref().iter().all(|w| *w == 0))));
    }
}
