//! M-Pin: zero-knowledge two-factor authentication whose key no single authority holds.
//!
//! Pure (no I/O, no clock: the day is passed in) and built on `miracl_core`'s BLS12-381
//! pairing and its M-Pin primitives (`encode_to_curve`, `pinmul`, `client_2`, `server`).
//! Several authorities (D-TAs) each hold a share of the master secret; a device sums its
//! client-secret shares and time-permit shares, takes its PIN out and stores only the
//! resulting token; an authentication server sums its server-secret shares and checks
//! logins with one pairing equation. Neither the PIN nor any secret crosses the wire.
//!
//! # Main types
//!
//! - [`MasterShare`]: an authority's share `s_i`; it issues [`ClientSecretShare`],
//!   [`TimePermitShare`] and [`ServerSecretShare`] ([`issuance`] has the formulas);
//! - [`ClientSecret`], [`TimePermit`], [`ServerSecret`]: shares summed;
//! - [`Pin`] and [`Token`] ([`ClientSecret::extract_pin`]);
//! - the login as states that consume themselves: [`ClientAwaitingChallenge`] →
//!   [`Commitment`]; [`ServerAwaitingProof`] → [`Challenge`]; [`Proof`] →
//!   [`Authenticated`] ([`login`] has the protocol);
//! - [`wire`]: the login's messages as JSON;
//! - [`G1`], [`G2`], [`Scalar`]: every point read from bytes is checked to be the
//!   canonical encoding of a non-identity point of the prime-order subgroup.
//!
//! # What it does not do
//!
//! Transport, storage and identity binding are the callers' (the D-TA and the PAT). The
//! PIN is 4 digits, as M-Pin defines it: its strength is that a stolen token alone is
//! useless and a wrong guess is visible to the server, which must rate-limit.
//!
//! ```
//! use milagro_mpin::*;
//! # fn main() -> Result<(), MpinError> {
//! let mut rng = rand_core::OsRng;
//! let (dta1, dta2) = (MasterShare::generate(&mut rng), MasterShare::generate(&mut rng));
//! let id = MpinId::new("alice@idp.example|device-key")?;
//! let today = Day(20_000);
//! let secret = ClientSecret::combine(&[dta1.client_share(&id)?, dta2.client_share(&id)?])?;
//! let permit = TimePermit::combine(&[
//!     dta1.time_permit_share(&id, today)?,
//!     dta2.time_permit_share(&id, today)?,
//! ])?;
//! let server = ServerSecret::combine(&[dta1.server_share(), dta2.server_share()])?;
//! let token = secret.extract_pin(&id, Pin::new(1234)?)?;
//!
//! let (client, commitment) =
//!     ClientAwaitingChallenge::start(&mut rng, &id, &token, Pin::new(1234)?, &permit)?;
//! let (pending, challenge) = ServerAwaitingProof::challenge(&mut rng, commitment, today)?;
//! let proof = client.prove(&challenge)?;
//! assert_eq!(pending.verify(&proof, &server)?.id, id);
//! # Ok(()) }
//! ```

pub mod issuance;
pub mod login;
pub mod points;
pub mod wire;

pub use issuance::{
    ClientSecret, ClientSecretShare, Day, MasterShare, MpinId, ServerSecret, ServerSecretShare,
    TimePermit, TimePermitShare,
};
pub use login::{
    Authenticated, Challenge, ClientAwaitingChallenge, Commitment, Pin, Proof, ServerAwaitingProof,
    Token,
};
pub use points::{Scalar, G1, G2};

/// Why an M-Pin operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MpinError {
    /// A point from bytes is malformed, off the curve, outside the subgroup or the
    /// identity.
    #[error("invalid point: {0}")]
    Point(&'static str),
    /// A scalar from bytes is malformed, zero or not below the group order.
    #[error("invalid scalar: {0}")]
    Scalar(&'static str),
    /// An identity is empty or too long.
    #[error("an identity must be 1 to {max} bytes, not {0}", max = issuance::MAX_ID_LEN)]
    Identity(usize),
    /// A PIN of 10 000 or more.
    #[error("a pin is 0 to 9999")]
    Pin,
    /// Nothing to combine.
    #[error("no shares to combine")]
    NoShares,
    /// Time permit shares of different days.
    #[error("time permit shares are for different days")]
    MixedDays,
    /// A sum or difference came out as the identity point.
    #[error("degenerate point (shares or secrets that cancel out)")]
    Degenerate,
    /// The time permit is not for the server's day.
    #[error("the time permit is for day {} but today is day {}", permit.0, today.0)]
    PermitDay {
        /// The permit's day.
        permit: Day,
        /// The server's day.
        today: Day,
    },
    /// The pairing check failed: wrong PIN, wrong token, or a secret missing a share.
    #[error("authentication refused")]
    Refused,
}

#[cfg(test)]
mod tests;
