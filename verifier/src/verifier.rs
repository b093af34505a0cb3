//! [`Verifier`]: the two login passes, checked against the summed server secret, with
//! the pending logins, the guess limits and the revocations they consult.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use milagro_mpin::wire::{ChallengeAnswer, CommitRequest, ProveRequest};
use milagro_mpin::{Day, MpinId, ServerAwaitingProof};
use milagro_service::unix_now;
use milagro_service::work_gate::WorkGate;
use milagro_wire::health::ReadinessCheck;
use rand_core::RngCore as _;

use crate::config::{DtaPeer, LoginConfig};
use crate::error::VerifyError;
use crate::guesses::{Guesses, StorageError};
use crate::login::Logins;
use crate::revocations::{RevocationError, Revocations};
use crate::server_secret::ServerSecretSlot;

/// How many login passes (point checks and the pairing check, about 2 ms each) may wait
/// for a core before a pass is refused as `busy`: the last one queued waits about a
/// quarter of a second on 2 cores, and a waiting pass holds no thread, only its request.
pub const PAIRINGS_QUEUED: usize = 256;

/// Why a verifier could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The revocation list could not be read.
    #[error(transparent)]
    Revocations(#[from] RevocationError),
    /// The guess counts could not be opened.
    #[error(transparent)]
    Guesses(#[from] StorageError),
}

/// A login whose proof verified: who, with a permit of which day, under which handle.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// The identity that proved knowledge of its PIN and token.
    pub id: MpinId,
    /// The day of the time permit it used.
    pub day: Day,
    /// The one-time handle of pass 1 (spent now).
    pub login_id: String,
}

/// An M-Pin verifier. Cheap to share behind an `Arc`; every method but the gate is
/// blocking (storage and pairings): run them through [`Verifier::pairings`].
#[derive(Debug)]
pub struct Verifier {
    config: LoginConfig,
    /// The summed server secret once every D-TA answered (memory only).
    pub server_secret: Arc<ServerSecretSlot>,
    logins: Mutex<Logins>,
    guesses: Mutex<Guesses>,
    /// Revoked identities.
    pub revocations: Revocations,
    /// The queue both login passes go through (point decoding with subgroup checks, the
    /// pairing check: the expensive work anyone can ask for): one per core at once,
    /// [`PAIRINGS_QUEUED`] waiting, 503 `busy` beyond.
    pub pairings: WorkGate,
}

/// 128 random bits, hex.
fn new_login_id() -> String {
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Verifier {
    /// A verifier summing the shares of `dtas` (fetched by [`crate::server_secret::run`]),
    /// keeping its guess counts in `db` (tree [`crate::guesses::TREE`]) and its
    /// revocations in `state_dir`.
    pub fn open(
        db: &sled::Db,
        state_dir: &Path,
        dtas: &[DtaPeer],
        config: LoginConfig,
    ) -> Result<Self, OpenError> {
        Ok(Self {
            server_secret: Arc::new(ServerSecretSlot::new(dtas)),
            logins: Mutex::new(Logins::new(config.clone())),
            guesses: Mutex::new(Guesses::open(db, config.clone())?),
            revocations: Revocations::open(state_dir)?,
            pairings: WorkGate::new(
                "login checks",
                std::thread::available_parallelism().map_or(1, |n| n.get()),
                PAIRINGS_QUEUED,
            ),
            config,
        })
    }

    /// The login rules.
    pub fn config(&self) -> &LoginConfig {
        &self.config
    }

    fn logins(&self) -> MutexGuard<'_, Logins> {
        self.logins.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn guesses(&self) -> MutexGuard<'_, Guesses> {
        self.guesses.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many logins are pending.
    pub fn pending(&self) -> usize {
        self.logins().pending()
    }

    /// `/readyz`'s check: ready once every D-TA's share is summed.
    pub fn readiness(&self) -> ReadinessCheck {
        match self.server_secret.secret() {
            Some(_) => ReadinessCheck::new("server_secret", true, "every d-ta's share summed"),
            None => ReadinessCheck::new("server_secret", false, self.server_secret.missing()),
        }
    }

    /// Pass 1: checks the commitment (the identity not revoked, locked or blocked, the
    /// permit today's) and keeps the server's half under a new random handle for
    /// `challenge_ttl`. Blocking.
    pub fn commit(&self, request: &CommitRequest) -> Result<ChallengeAnswer, VerifyError> {
        let commitment = request.commitment().map_err(VerifyError::from_commit)?;
        if self.server_secret.secret().is_none() {
            return Err(VerifyError::NotReady(self.server_secret.missing()));
        }
        let id = commitment.id.clone();
        if self.revocations.is_revoked(&id) {
            return Err(VerifyError::Revoked(request.mpin_id.clone()));
        }
        let now = Instant::now();
        if let Some(refusal) = self.guesses().check(&id, unix_now())? {
            return Err(refusal.into());
        }
        let today = Day::from_unix_secs(unix_now());
        let (pending, challenge) =
            ServerAwaitingProof::challenge(&mut rand_core::OsRng, commitment, today)
                .map_err(VerifyError::from_commit)?;
        let login_id = new_login_id();
        self.logins().begin(login_id.clone(), id, pending, now)?;
        let ttl = self.config.challenge_ttl.as_secs();
        Ok(ChallengeAnswer::new(login_id, &challenge, ttl))
    }

    /// Pass 2: takes the pending login (whatever the outcome), counts the guess before
    /// checking the proof, and checks it with one multi-pairing. Blocking.
    pub fn prove(&self, request: &ProveRequest) -> Result<Verified, VerifyError> {
        let now = Instant::now();
        let (id, pending) = self
            .logins()
            .take(&request.login_id, now)
            .ok_or(VerifyError::UnknownLogin)?;
        let proof = request
            .proof()
            .map_err(|e| VerifyError::InvalidRequest(e.to_string()))?;
        let secret = self
            .server_secret
            .secret()
            .ok_or_else(|| VerifyError::NotReady(self.server_secret.missing()))?;
        if self.revocations.is_revoked(&id) {
            let text = String::from_utf8_lossy(id.as_bytes()).into_owned();
            return Err(VerifyError::Revoked(text));
        }
        // The guess is counted before the proof is checked, and refused if the identity got
        // locked since pass 1 or has another proof being checked (`guesses`).
        let attempt = self.guesses().reserve(&id, unix_now())??;
        let verified = pending.verify(&proof, &secret);
        let started = self
            .guesses()
            .finish(attempt, verified.is_ok(), unix_now())?;
        let Ok(authenticated) = verified else {
            if let Some(refusal) = started {
                tracing::warn!(%refusal, "an identity is locked out after failed logins");
            }
            return Err(VerifyError::Refused);
        };
        Ok(Verified {
            id: authenticated.id,
            day: authenticated.day,
            login_id: request.login_id.clone(),
        })
    }
}
