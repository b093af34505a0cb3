//! The logins in flight and the rate limit on failed proofs, in memory; time is passed in
//! (an [`Instant`]), so the rules are tested with a fake clock.
//!
//! - A **pending login** is the server's half of pass 1 ([`ServerAwaitingProof`]) under a
//!   random handle; [`Logins::take`] removes it whatever the outcome, so a handle is good
//!   for one proof, and only within `challenge_ttl`. At most `max_pending` wait at once
//!   ([`Busy`] beyond).
//! - **Failures** are counted per identity: `max_failures` consecutive failed proofs lock
//!   the identity out for `lockout`, a success resets the count. A count that has not
//!   grown for `lockout` is forgotten, so memory stays bounded by what an attacker can do
//!   within one lockout period, and the attempts allowed per period stay `max_failures`.
//!
//! Expired entries are dropped lazily: at most once a second, or when the pending table
//! is full. Nothing here survives a restart (a restart resets the counts and lockouts).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use milagro_mpin::{MpinId, ServerAwaitingProof};

use crate::config::LoginConfig;

/// How often expired entries are swept at the most.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Too many logins are pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} logins are pending, the most this server keeps")]
pub struct Busy(pub usize);

#[derive(Debug)]
struct Pending {
    id: MpinId,
    server: ServerAwaitingProof,
    expires: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// The pending logins and the failure counts.
#[derive(Debug)]
pub struct Logins {
    config: LoginConfig,
    pending: HashMap<String, Pending>,
    failures: HashMap<Vec<u8>, Failures>,
    next_sweep: Option<Instant>,
}

impl Logins {
    /// Nothing pending, nothing counted.
    pub fn new(config: LoginConfig) -> Self {
        Self {
            config,
            pending: HashMap::new(),
            failures: HashMap::new(),
            next_sweep: None,
        }
    }

    /// How much longer `id` is locked out, if it is.
    pub fn locked(&mut self, id: &MpinId, now: Instant) -> Option<Duration> {
        self.sweep(now);
        let until = self.failures.get(id.as_bytes())?.locked_until?;
        until.checked_duration_since(now).filter(|d| !d.is_zero())
    }

    /// Keeps `server`, the pending login of `id`, under `login_id` until the challenge
    /// expires.
    pub fn begin(
        &mut self,
        login_id: String,
        id: MpinId,
        server: ServerAwaitingProof,
        now: Instant,
    ) -> Result<(), Busy> {
        self.sweep(now);
        if self.pending.len() >= self.config.max_pending {
            return Err(Busy(self.pending.len()));
        }
        let expires = now + self.config.challenge_ttl;
        self.pending.insert(
            login_id,
            Pending {
                id,
                server,
                expires,
            },
        );
        Ok(())
    }

    /// Removes the pending login `login_id`: its identity and server state, unless it is
    /// unknown, already used or expired.
    pub fn take(&mut self, login_id: &str, now: Instant) -> Option<(MpinId, ServerAwaitingProof)> {
        let pending = self.pending.remove(login_id)?;
        (now < pending.expires).then_some((pending.id, pending.server))
    }

    /// Counts a failed proof of `id`; returns the lockout it starts, if it does.
    pub fn failed(&mut self, id: &MpinId, now: Instant) -> Option<Duration> {
        self.sweep(now);
        let entry = self
            .failures
            .entry(id.as_bytes().to_vec())
            .or_insert(Failures {
                count: 0,
                last: now,
                locked_until: None,
            });
        if entry.locked_until.is_some_and(|until| until <= now) {
            // The lockout is over: counting starts again.
            entry.count = 0;
            entry.locked_until = None;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        if entry.count >= self.config.max_failures && entry.locked_until.is_none() {
            entry.locked_until = Some(now + self.config.lockout);
            return Some(self.config.lockout);
        }
        None
    }

    /// A successful proof of `id`: its count starts again.
    pub fn succeeded(&mut self, id: &MpinId) {
        self.failures.remove(id.as_bytes());
    }

    /// How many logins are pending (expired ones included until the next sweep).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Drops expired challenges, finished lockouts and stale counts, at most once per
    /// [`SWEEP_EVERY`] unless the pending table is full.
    fn sweep(&mut self, now: Instant) {
        let due = self.next_sweep.is_none_or(|next| now >= next);
        if !due && self.pending.len() < self.config.max_pending {
            return;
        }
        self.next_sweep = Some(now + SWEEP_EVERY);
        self.pending.retain(|_, pending| now < pending.expires);
        let lockout = self.config.lockout;
        self.failures
            .retain(|_, failures| match failures.locked_until {
                Some(until) => now < until,
                None => now.saturating_duration_since(failures.last) < lockout,
            });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use milagro_mpin::{ClientAwaitingChallenge, ClientSecret, Day, MasterShare, Pin, TimePermit};

    const TODAY: Day = Day(20_000);

    fn config() -> LoginConfig {
        LoginConfig {
            challenge_ttl: Duration::from_secs(60),
            max_failures: 3,
            lockout: Duration::from_secs(300),
            max_pending: 2,
        }
    }

    /// A pending login of `id`, as pass 1 makes it.
    fn server_half(id: &MpinId) -> ServerAwaitingProof {
        let mut rng = rand_core::OsRng;
        let authority = MasterShare::generate(&mut rng);
        let secret = ClientSecret::combine(&[authority.client_share(id).unwrap()]).unwrap();
        let permit =
            TimePermit::combine(&[authority.time_permit_share(id, TODAY).unwrap()]).unwrap();
        let pin = Pin::new(1).unwrap();
        let token = secret.extract_pin(id, pin).unwrap();
        let (_, commitment) =
            ClientAwaitingChallenge::start(&mut rng, id, &token, pin, &permit).unwrap();
        ServerAwaitingProof::challenge(&mut rng, commitment, TODAY)
            .unwrap()
            .0
    }

    #[test]
    fn a_pending_login_is_taken_once_and_only_before_it_expires() {
        let (t0, id) = (Instant::now(), MpinId::new("alice").unwrap());
        let mut logins = Logins::new(config());
        let begin = |logins: &mut Logins, login_id: &str, now: Instant| {
            logins.begin(login_id.into(), id.clone(), server_half(&id), now)
        };
        begin(&mut logins, "a", t0).unwrap();
        begin(&mut logins, "b", t0).unwrap();
        // Full: a third waits for a sweep to free a place.
        assert_eq!(begin(&mut logins, "c", t0), Err(Busy(2)));
        let (taken, _) = logins.take("a", t0 + Duration::from_secs(59)).unwrap();
        assert_eq!(taken, id);
        assert!(logins.take("a", t0).is_none(), "single use");
        let expired = logins.take("b", t0 + Duration::from_secs(60));
        assert!(expired.is_none(), "expired");
        assert!(logins.take("nope", t0).is_none());
        assert_eq!(logins.pending(), 0);

        // Expired challenges are swept when the table is full.
        begin(&mut logins, "d", t0).unwrap();
        begin(&mut logins, "e", t0).unwrap();
        begin(&mut logins, "f", t0 + Duration::from_secs(61)).unwrap();
        assert_eq!(logins.pending(), 1);
    }

    #[test]
    fn consecutive_failures_lock_an_identity_out_until_the_lockout_ends() {
        let (t0, alice, bob) = (
            Instant::now(),
            MpinId::new("alice").unwrap(),
            MpinId::new("bob").unwrap(),
        );
        let secs = Duration::from_secs;
        let mut logins = Logins::new(config());
        assert_eq!(logins.failed(&alice, t0), None);
        assert_eq!(logins.failed(&alice, t0 + secs(1)), None);
        assert_eq!(logins.locked(&alice, t0 + secs(1)), None);
        assert_eq!(logins.failed(&alice, t0 + secs(2)), Some(secs(300)));
        assert_eq!(logins.locked(&alice, t0 + secs(2)), Some(secs(300)));
        assert_eq!(logins.locked(&alice, t0 + secs(101)), Some(secs(201)));
        assert_eq!(logins.locked(&bob, t0 + secs(101)), None, "per identity");
        // A failure while locked (a proof of an older challenge) does not extend it.
        assert_eq!(logins.failed(&alice, t0 + secs(102)), None);
        assert_eq!(logins.locked(&alice, t0 + secs(301)), Some(secs(1)));
        assert_eq!(logins.locked(&alice, t0 + secs(302)), None);
        // After the lockout, counting starts again.
        assert_eq!(logins.failed(&alice, t0 + secs(303)), None);
        assert_eq!(logins.failed(&alice, t0 + secs(304)), None);
        assert_eq!(logins.failed(&alice, t0 + secs(305)), Some(secs(300)));
    }

    #[test]
    fn a_success_resets_the_count_and_stale_counts_are_forgotten() {
        let (t0, alice) = (Instant::now(), MpinId::new("alice").unwrap());
        let secs = Duration::from_secs;
        let mut logins = Logins::new(config());
        logins.failed(&alice, t0);
        logins.failed(&alice, t0);
        logins.succeeded(&alice);
        assert_eq!(logins.failed(&alice, t0), None);
        assert_eq!(logins.failed(&alice, t0), None);
        // Not consecutive within a lockout period: forgotten.
        assert_eq!(logins.failed(&alice, t0 + secs(300)), None);
        assert_eq!(logins.failed(&alice, t0 + secs(301)), None);
        assert_eq!(logins.failed(&alice, t0 + secs(302)), Some(secs(300)));
        assert!(logins.failures.len() == 1);
        let _ = logins.locked(&alice, t0 + secs(700));
        assert!(logins.failures.is_empty(), "swept");
    }
}
