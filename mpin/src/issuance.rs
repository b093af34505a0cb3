//! What authorities issue, and how the shares combine.
//!
//! Each authority (D-TA) `i` holds a master-secret share `s_i`. For an identity `ID` with
//! `A = H_id(ID)` in G1 it issues:
//!
//! - a client-secret share `s_i·A`;
//! - a time permit share for day `d`: `s_i·D` with `D = H_permit(d ‖ A)`;
//! - to an authentication server, a server-secret share `s_i·Q` (`Q` the generator of G2).
//!
//! Shares add up (G1 or G2 addition) to what one authority holding `s = Σ s_i` would have
//! issued, and no authority ever sees `s`: [`ClientSecret::combine`],
//! [`TimePermit::combine`], [`ServerSecret::combine`].

use core::fmt;

use rand_core::CryptoRngCore;

use crate::points::{Scalar, G1, G2};
use crate::MpinError;

/// Domain separation tag of identity hashing.
const DST_ID: &[u8] = b"MILAGRO-MPIN-V1_ID_XMD:SHA-256_SSWU_RO_";
/// Domain separation tag of time-permit hashing.
const DST_PERMIT: &[u8] = b"MILAGRO-MPIN-V1_PERMIT_XMD:SHA-256_SSWU_RO_";

/// Longest identity, in bytes.
pub const MAX_ID_LEN: usize = 1024;

/// The domain separator of a device's identity ([`MpinId::of_device`]).
pub const MPIN_ID_DOMAIN: &[u8] = b"milagro-dta/mpin-id/v1";

/// An M-Pin identity: opaque bytes the issuers agree on (the D-TA binds the IdP issuer,
/// the subject and the device key into it).
#[derive(Clone, PartialEq, Eq)]
pub struct MpinId(Vec<u8>);

impl MpinId {
    /// An identity of 1 to [`MAX_ID_LEN`] bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, MpinError> {
        let bytes = bytes.into();
        if bytes.is_empty() || bytes.len() > MAX_ID_LEN {
            return Err(MpinError::Identity(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// The identity of user `subject` of the OpenID provider `issuer` on the device whose
    /// secp256k1 key is `device_key` (SEC1 compressed, 33 bytes):
    ///
    /// ```text
    /// hex( SHA-256( "milagro-dta/mpin-id/v1" ‖ 0x00 ‖ issuer ‖ 0x00 ‖ sub ‖ 0x00 ‖ key ) )
    /// ```
    ///
    /// Every D-TA computes the same identity, so the shares add up, and the verifier (the
    /// IdP, the auth server) computes it again from what it knows of the person: binding
    /// the device key means a key made on another device, even for the same user, is
    /// another identity.
    pub fn of_device(
        issuer: &str,
        subject: &str,
        device_key: &[u8; 33],
    ) -> Result<Self, MpinError> {
        use sha2::{Digest as _, Sha256};
        let mut hash = Sha256::new();
        hash.update(MPIN_ID_DOMAIN);
        hash.update([0]);
        hash.update(issuer.as_bytes());
        hash.update([0]);
        hash.update(subject.as_bytes());
        hash.update([0]);
        hash.update(device_key);
        Self::new(hex::encode(hash.finalize()))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `A = H_id(ID)`.
    pub(crate) fn point(&self) -> Result<G1, MpinError> {
        G1::hash(DST_ID, &self.0)
    }

    /// `D = H_permit(day ‖ A)`.
    pub(crate) fn permit_point(&self, day: Day) -> Result<G1, MpinError> {
        let mut message = day.0.to_be_bytes().to_vec();
        message.extend_from_slice(&self.point()?.to_bytes());
        G1::hash(DST_PERMIT, &message)
    }
}

impl fmt::Debug for MpinId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MpinId({})", String::from_utf8_lossy(&self.0))
    }
}

/// A day: days since the Unix epoch (UTC). Time permits are valid for one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub u32);

impl Day {
    /// The day that contains `unix_secs`.
    pub fn from_unix_secs(unix_secs: u64) -> Self {
        Self(u32::try_from(unix_secs / 86_400).unwrap_or(u32::MAX))
    }
}

/// An authority's share `s_i` of the master secret. Never leaves the authority.
pub struct MasterShare(Scalar);

impl MasterShare {
    /// A new random share.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self(Scalar::random(rng))
    }

    /// Reads a stored share (48 bytes, big-endian, in `1..r`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MpinError> {
        Scalar::from_bytes(bytes).map(Self)
    }

    /// The share's bytes, for encrypted storage (wiped on drop).
    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; crate::points::SCALAR_LEN]> {
        self.0.to_bytes()
    }

    /// `s_i·A`: this authority's share of `id`'s client secret.
    pub fn client_share(&self, id: &MpinId) -> Result<ClientSecretShare, MpinError> {
        Ok(ClientSecretShare(id.point()?.mul(&self.0)))
    }

    /// `s_i·D`: this authority's share of `id`'s time permit for `day`.
    pub fn time_permit_share(&self, id: &MpinId, day: Day) -> Result<TimePermitShare, MpinError> {
        Ok(TimePermitShare {
            day,
            point: id.permit_point(day)?.mul(&self.0),
        })
    }

    /// `s_i·Q`: this authority's share of the authentication server's secret.
    pub fn server_share(&self) -> ServerSecretShare {
        ServerSecretShare(G2::generator_mul(&self.0))
    }

    /// `s_a + s_b`: what one authority holding both shares would hold (for tests and
    /// the property that combining issued shares equals issuing with the sum).
    pub fn sum(&self, other: &Self) -> Option<Self> {
        self.0.add(&other.0).map(Self)
    }
}

impl fmt::Debug for MasterShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterShare(..)")
    }
}

/// One authority's share of a client secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecretShare(pub G1);

/// One authority's share of a time permit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimePermitShare {
    /// The day it is for.
    pub day: Day,
    /// `s_i·D`.
    pub point: G1,
}

/// One authority's share of a server secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSecretShare(pub G2);

/// A whole client secret `s·A` (before the PIN is taken out of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecret(pub(crate) G1);

/// A whole time permit `s·D` for one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimePermit {
    pub(crate) day: Day,
    pub(crate) point: G1,
}

/// A whole server secret `s·Q`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSecret(pub(crate) G2);

// The whole secrets are wiped when dropped (the shares are single points an authority can
// issue again; the sums are what an attacker wants).
impl Drop for ClientSecret {
    fn drop(&mut self) {
        self.0.wipe();
    }
}

impl Drop for ServerSecret {
    fn drop(&mut self) {
        self.0.wipe();
    }
}

/// Adds G1 points; fails on none or on shares that cancel out.
fn sum_g1<'a>(mut points: impl Iterator<Item = &'a G1>) -> Result<G1, MpinError> {
    let first = points.next().ok_or(MpinError::NoShares)?;
    points.try_fold(first.clone(), |sum, point| {
        sum.add(point).ok_or(MpinError::Degenerate)
    })
}

impl ClientSecret {
    /// The sum of every authority's share.
    pub fn combine(shares: &[ClientSecretShare]) -> Result<Self, MpinError> {
        sum_g1(shares.iter().map(|s| &s.0)).map(Self)
    }

    /// The point, for comparison with what a single authority would issue.
    pub fn point(&self) -> &G1 {
        &self.0
    }
}

impl TimePermit {
    /// The sum of every authority's share; all must be for the same day.
    pub fn combine(shares: &[TimePermitShare]) -> Result<Self, MpinError> {
        let day = shares.first().ok_or(MpinError::NoShares)?.day;
        if shares.iter().any(|s| s.day != day) {
            return Err(MpinError::MixedDays);
        }
        Ok(Self {
            day,
            point: sum_g1(shares.iter().map(|s| &s.point))?,
        })
    }

    /// The day it is valid for.
    pub fn day(&self) -> Day {
        self.day
    }

    /// Reads a stored permit.
    pub fn from_parts(day: Day, point: G1) -> Self {
        Self { day, point }
    }

    /// The point.
    pub fn point(&self) -> &G1 {
        &self.point
    }
}

impl ServerSecret {
    /// The sum of every authority's share.
    pub fn combine(shares: &[ServerSecretShare]) -> Result<Self, MpinError> {
        let first = shares.first().ok_or(MpinError::NoShares)?;
        shares[1..]
            .iter()
            .try_fold(first.0.clone(), |sum, share| {
                sum.add(&share.0).ok_or(MpinError::Degenerate)
            })
            .map(Self)
    }

    /// The point.
    pub fn point(&self) -> &G2 {
        &self.0
    }
}
