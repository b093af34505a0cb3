//! Who takes part in a key agreement: an anchor on chain and the nonce point of its
//! signature, plus, for the local party, the nonce secret.

use core::fmt;

use bitcoin::hashes::Hash as _;
use bitcoin::Txid;
use k256::NonZeroScalar;

use super::KexError;
use crate::nonce::{NoncePoint, NonceSecret};
use crate::proof::VerifiedAnchor;
use crate::record::TxRecord;

/// Which on-chain signature a party's nonce comes from: a transaction and one of its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnchorRef {
    txid: Txid,
    input: u32,
}

impl AnchorRef {
    /// Length of the encoding.
    pub const LEN: usize = 36;

    /// The signature of input `input` of transaction `txid`.
    pub fn new(txid: Txid, input: u32) -> Self {
        Self { txid, input }
    }

    /// The transaction.
    pub fn txid(&self) -> Txid {
        self.txid
    }

    /// The input whose signature carries the nonce.
    pub fn input(&self) -> u32 {
        self.input
    }

    /// `txid (32, internal byte order) ‖ input (4, little-endian)`: the layout of a Bitcoin
    /// outpoint.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..32].copy_from_slice(self.txid.as_byte_array());
        out[32..].copy_from_slice(&self.input.to_le_bytes());
        out
    }
}

impl fmt::Display for AnchorRef {
    /// `txid:input`, the txid in the usual (reversed) hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.txid, self.input)
    }
}

/// The public identity of an anchored party: its anchor and the nonce point `R` of the
/// anchoring signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Party {
    anchor: AnchorRef,
    nonce_point: NoncePoint,
}

impl Party {
    /// Length of the identity encoding ([`Party::to_bytes`]).
    pub const ID_LEN: usize = AnchorRef::LEN + 33;

    /// A party from its anchor and nonce point, as the caller found them.
    ///
    /// The key agreement authenticates exactly this pair: check first that the anchor is
    /// confirmed and its Birth Certificate is in good standing, or use
    /// [`Party::from_verified`].
    pub fn new(anchor: AnchorRef, nonce_point: NoncePoint) -> Self {
        Self {
            anchor,
            nonce_point,
        }
    }

    /// The party behind an anchor that passed its SPV proof. A record's signature is always
    /// its transaction's first input (see `docs/adr/0003-record-signer-and-nonce.md`).
    pub fn from_verified(anchor: &VerifiedAnchor) -> Self {
        Self::new(AnchorRef::new(anchor.txid(), 0), anchor.nonce_point())
    }

    /// The party behind a record found in a transaction (input 0), not yet proven to be in
    /// a block.
    pub fn from_record(record: &TxRecord) -> Result<Self, KexError> {
        Ok(Self::new(
            AnchorRef::new(record.txid, 0),
            record.nonce_point()?,
        ))
    }

    /// The anchor.
    pub fn anchor(&self) -> AnchorRef {
        self.anchor
    }

    /// The nonce point `R` (even y).
    pub fn nonce_point(&self) -> NoncePoint {
        self.nonce_point
    }

    /// `anchor reference (36) ‖ R (33, compressed)`: the identity bound into proofs and
    /// session ids.
    pub fn to_bytes(&self) -> [u8; Self::ID_LEN] {
        let mut out = [0u8; Self::ID_LEN];
        out[..AnchorRef::LEN].copy_from_slice(&self.anchor.to_bytes());
        out[AnchorRef::LEN..].copy_from_slice(&self.nonce_point.to_sec1());
        out
    }

    /// Whether `other` shares this party's anchor or nonce point: talking to oneself (or to
    /// a copy of one's own nonce under another anchor) is refused.
    pub(super) fn overlaps(&self, other: &Party) -> bool {
        self.anchor == other.anchor || self.nonce_point == other.nonce_point
    }
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (R {})",
            self.anchor,
            hex::encode(self.nonce_point.to_sec1())
        )
    }
}

/// This party: its public identity and the nonce secret `k` of its anchoring signature.
///
/// `k` reveals the party's private key to anyone holding the signature: it is wiped on
/// drop and never printed, and a `LocalParty` should live no longer than the key does.
#[derive(Debug)]
pub struct LocalParty {
    party: Party,
    nonce: NonceSecret,
}

impl LocalParty {
    /// This party, from its anchor and the nonce of the signature at that anchor (from
    /// [`anchor_nonce`](crate::anchor_tx::anchor_nonce) or
    /// [`NonceSecret::recompute`]).
    ///
    /// Nothing checks that `nonce` signed `anchor`; a wrong pair fails every key
    /// confirmation. [`LocalParty::from_record`] checks it.
    pub fn new(anchor: AnchorRef, nonce: NonceSecret) -> Self {
        Self {
            party: Party::new(anchor, nonce.public()),
            nonce,
        }
    }

    /// This party from its own record, checking that `nonce` is that record's nonce.
    pub fn from_record(record: &TxRecord, nonce: NonceSecret) -> Result<Self, KexError> {
        let party = Party::from_record(record)?;
        if nonce.public() != party.nonce_point {
            return Err(KexError::NonceMismatch);
        }
        Ok(Self { party, nonce })
    }

    /// The public identity, as peers see it on chain.
    pub fn party(&self) -> Party {
        self.party
    }

    /// `k`.
    pub(super) fn nonce_scalar(&self) -> &NonZeroScalar {
        self.nonce.scalar()
    }

    /// Refuses a peer that shares this party's anchor or nonce point.
    pub(super) fn refuse_self(&self, peer: &Party) -> Result<(), KexError> {
        if self.party.overlaps(peer) {
            return Err(KexError::SelfSession);
        }
        Ok(())
    }
}
