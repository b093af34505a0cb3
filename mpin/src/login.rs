//! The PIN, the token a device stores, and the login: two passes, one pairing check.
//!
//! ```text
//! device: token T = s·A − pin·A                  (ClientSecret::extract_pin; only T is stored)
//!
//! client                                              server (holds s·Q)
//! SEC = T + pin'·A + s·D   (= s·(A+D) iff pin' = pin)
//! x random, U = x·(A+D)        ── ID, day, U ──►
//!                              ◄── y ──            y random
//! V = −(x+y)·SEC               ── V ──►
//!                                                  e(V, Q) · e((x+y)·(A+D), s·Q) = 1 ?
//! ```
//!
//! The server learns nothing about the PIN or the secret: it only checks the pairing
//! equation, which holds iff the client held `s·(A+D)`, i.e. the token, the right PIN and
//! a permit for the server's day. Each step consumes its state: a nonce `x` is used once.

use core::fmt;

use miracl_core::bls12381::mpin;
use rand_core::CryptoRngCore;

use crate::issuance::{ClientSecret, Day, MpinId, ServerSecret, TimePermit};
use crate::points::{Scalar, G1};
use crate::MpinError;

/// A PIN: 0 to 9999 (M-Pin splits 14 bits off the secret).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pin(u16);

impl Pin {
    /// A PIN below 10 000.
    pub fn new(value: u16) -> Result<Self, MpinError> {
        if i32::from(value) >= mpin::MAXPIN {
            return Err(MpinError::Pin);
        }
        Ok(Self(value))
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(****)")
    }
}

/// What a device stores: its client secret with the PIN taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token(G1);

impl ClientSecret {
    /// `s·A − pin·A`: the secret without the PIN, which never is stored.
    pub fn extract_pin(&self, id: &MpinId, pin: Pin) -> Result<Token, MpinError> {
        let pin_part = id.point()?.pin_mul(pin.0);
        self.0
            .sub(&pin_part)
            .map(Token)
            .ok_or(MpinError::Degenerate)
    }
}

impl Token {
    /// Reads a stored token.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MpinError> {
        G1::from_bytes(bytes).map(Self)
    }

    /// The bytes to store.
    pub fn to_bytes(&self) -> [u8; crate::points::G1_LEN] {
        self.0.to_bytes()
    }
}

/// The client's first message: who, for which day, and `U = x·(A+D)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitment {
    /// The identity.
    pub id: MpinId,
    /// The day of the client's time permit.
    pub day: Day,
    /// `U`.
    pub u: G1,
}

/// The server's challenge `y`.
#[derive(Debug)]
pub struct Challenge(pub Scalar);

/// The client's proof `V = −(x+y)·SEC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof(pub G1);

/// A client that sent its commitment and waits for the challenge.
pub struct ClientAwaitingChallenge {
    x: Scalar,
    secret: G1,
}

impl Drop for ClientAwaitingChallenge {
    /// The secret rebuilt with the PIN is wiped (`x` wipes itself).
    fn drop(&mut self) {
        self.secret.wipe();
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        self.0.wipe();
    }
}

impl fmt::Debug for ClientAwaitingChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientAwaitingChallenge(..)")
    }
}

impl ClientAwaitingChallenge {
    /// Pass 1: rebuilds `SEC` from the token, the PIN typed and the permit, and commits.
    pub fn start(
        rng: &mut impl CryptoRngCore,
        id: &MpinId,
        token: &Token,
        pin: Pin,
        permit: &TimePermit,
    ) -> Result<(Self, Commitment), MpinError> {
        let a = id.point()?;
        let a_plus_d = a
            .add(&id.permit_point(permit.day)?)
            .ok_or(MpinError::Degenerate)?;
        let secret = token
            .0
            .add(&a.pin_mul(pin.0))
            .and_then(|s| s.add(&permit.point))
            .ok_or(MpinError::Degenerate)?;
        let x = Scalar::random(rng);
        let commitment = Commitment {
            id: id.clone(),
            day: permit.day,
            u: a_plus_d.mul(&x),
        };
        Ok((Self { x, secret }, commitment))
    }

    /// Pass 2: answers the challenge.
    pub fn prove(self, challenge: &Challenge) -> Result<Proof, MpinError> {
        let mut v = self.secret.to_uncompressed();
        if mpin::client_2(self.x.as_bytes(), challenge.0.as_bytes(), &mut v) != 0 {
            return Err(MpinError::Degenerate);
        }
        G1::from_computed(&v)
            .map(Proof)
            .ok_or(MpinError::Degenerate)
    }
}

/// A server that sent its challenge and waits for the proof.
#[derive(Debug)]
pub struct ServerAwaitingProof {
    commitment: Commitment,
    y: Scalar,
}

/// A verified login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Who logged in.
    pub id: MpinId,
    /// The day of the permit used.
    pub day: Day,
}

impl ServerAwaitingProof {
    /// Receives the commitment for `today`: a permit of another day is refused here.
    pub fn challenge(
        rng: &mut impl CryptoRngCore,
        commitment: Commitment,
        today: Day,
    ) -> Result<(Self, Challenge), MpinError> {
        if commitment.day != today {
            return Err(MpinError::PermitDay {
                permit: commitment.day,
                today,
            });
        }
        let y = Scalar::random(rng);
        let challenge = Challenge(Scalar::from_bytes(&y.to_bytes()[..])?);
        Ok((Self { commitment, y }, challenge))
    }

    /// Checks the proof with the server secret: the pairing equation.
    pub fn verify(self, proof: &Proof, server: &ServerSecret) -> Result<Authenticated, MpinError> {
        let id = &self.commitment.id;
        let a_plus_d = id
            .point()?
            .add(&id.permit_point(self.commitment.day)?)
            .ok_or(MpinError::Degenerate)?;
        let verdict = mpin::server(
            &a_plus_d.to_bytes(),
            self.y.as_bytes(),
            &server.point().to_bytes(),
            &self.commitment.u.to_bytes(),
            &proof.0.to_bytes(),
        );
        if verdict != 0 {
            return Err(MpinError::Refused);
        }
        Ok(Authenticated {
            id: self.commitment.id,
            day: self.commitment.day,
        })
    }
}
