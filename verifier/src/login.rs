//! The logins in flight, in memory; time is passed in (an [`Instant`]), so the rules are
//! tested with a fake clock. How many guesses an identity gets is [`crate::guesses`]'s
//! business, on disk.
//!
//! A **pending login** is the server's half of pass 1 ([`ServerAwaitingProof`]) under a
//! random handle; [`Logins::take`] removes it whatever the outcome, so a handle is good for
//! one proof, and only within `challenge_ttl`. At most `max_pending` wait at once
//! ([`Busy`] beyond), and at most `max_pending_per_identity` of one identity
//! ([`PendingError::PerIdentity`] beyond: challenges opened in advance are what a burst of
//! guesses would need).
//!
//! Expired challenges are dropped lazily: at most once a second, or when the table is
//! full. Nothing here survives a restart: a restart only cancels logins under way.

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

/// Why a login could not be kept pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PendingError {
    /// The server keeps no more.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// This identity already has this many challenges open.
    #[error("{0} logins of this identity are pending, the most this server keeps; finish one")]
    PerIdentity(usize),
}

#[derive(Debug)]
struct Pending {
    id: MpinId,
    server: ServerAwaitingProof,
    expires: Instant,
}

/// The pending logins.
#[derive(Debug)]
pub struct Logins {
    config: LoginConfig,
    pending: HashMap<String, Pending>,
    next_sweep: Option<Instant>,
}

impl Logins {
    /// Nothing pending.
    pub fn new(config: LoginConfig) -> Self {
        Self {
            config,
            pending: HashMap::new(),
            next_sweep: None,
        }
    }

    /// Keeps `server`, the pending login of `id`, under `login_id` until the challenge
    /// expires.
    pub fn begin(
        &mut self,
        login_id: String,
        id: MpinId,
        server: ServerAwaitingProof,
        now: Instant,
    ) -> Result<(), PendingError> {
        self.sweep(now);
        if self.pending.len() >= self.config.max_pending {
            return Err(Busy(self.pending.len()).into());
        }
        let of_identity = self
            .pending
            .values()
            .filter(|p| p.id == id && now < p.expires)
            .count();
        if of_identity >= self.config.max_pending_per_identity {
            return Err(PendingError::PerIdentity(of_identity));
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

    /// How many logins are pending (expired ones included until the next sweep).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Drops expired challenges, at most once per [`SWEEP_EVERY`] unless the table is
    /// full.
    fn sweep(&mut self, now: Instant) {
        let due = self.next_sweep.is_none_or(|next| now >= next);
        if !due && self.pending.len() < self.config.max_pending {
            return;
        }
        self.next_sweep = Some(now + SWEEP_EVERY);
        self.pending.retain(|_, pending| now < pending.expires);
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
            max_lockouts: 3,
            max_pending: 2,
            max_pending_per_identity: 2,
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
        assert_eq!(begin(&mut logins, "c", t0), Err(Busy(2).into()));
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
    fn one_identity_keeps_only_a_few_challenges_open() {
        let (t0, alice, bob) = (
            Instant::now(),
            MpinId::new("alice").unwrap(),
            MpinId::new("bob").unwrap(),
        );
        let mut config = config();
        config.max_pending = 10;
        config.max_pending_per_identity = 2;
        let mut logins = Logins::new(config);
        for login in ["a", "b"] {
            logins
                .begin(login.into(), alice.clone(), server_half(&alice), t0)
                .unwrap();
        }
        let third = logins.begin("c".into(), alice.clone(), server_half(&alice), t0);
        assert_eq!(third, Err(PendingError::PerIdentity(2)));
        logins
            .begin("d".into(), bob.clone(), server_half(&bob), t0)
            .unwrap();
        // A finished (taken) or expired challenge frees its place.
        logins.take("a", t0).unwrap();
        logins
            .begin("e".into(), alice.clone(), server_half(&alice), t0)
            .unwrap();
        let later = t0 + Duration::from_secs(61);
        logins
            .begin("f".into(), alice.clone(), server_half(&alice), later)
            .unwrap();
    }
}
