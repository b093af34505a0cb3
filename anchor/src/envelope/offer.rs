//! An anchoring offer from the TBS to a PAT, sealed under the PAT's instruction key.
//!
//! The construction and wire form are those of instructions (the [module docs](super)),
//! with two differences: the associated data opens with `"milagro/offer/v1"` instead of
//! `"milagro/instructions/v1"`, so an offer never opens as instructions nor instructions as
//! an offer; and the eight bytes that number instructions carry the offer's expiry (Unix
//! seconds), readable before opening and bound like a sequence number.

use core::fmt;

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::instructions::{open_labelled, seal_labelled, Label};
use super::{EnvelopeError, InstructionKey, SealedInstructions, NONCE_LEN};
use crate::keys::PublicKey;

/// An offer sealed by the TBS for one PAT: `version (1) ‖ expiry (8, big-endian) ‖ nonce
/// (12) ‖ ciphertext ‖ tag (16)`, base64url in JSON bodies.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedOffer(SealedInstructions);

/// Seals an offer from `tbs` to `pat` under the PAT's `key`, lapsing at `expires_at` (Unix
/// seconds). Draws the nonce from `rng`; fails only if the wire form would exceed
/// [`MAX_SEALED_LEN`](super::MAX_SEALED_LEN).
pub fn seal_offer(
    rng: &mut impl CryptoRngCore,
    key: &InstructionKey,
    tbs: &PublicKey,
    pat: &PublicKey,
    expires_at: u64,
    plaintext: &[u8],
) -> Result<SealedOffer, EnvelopeError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    seal_labelled(Label::Offer, nonce, key, tbs, pat, expires_at, plaintext).map(SealedOffer)
}

/// Opens an offer sealed by `tbs` for `pat` under `key`, returning its expiry and
/// plaintext. Every failure of authentication (wrong key or parties, altered expiry, nonce
/// or ciphertext, instructions passed off as an offer) is [`EnvelopeError::Decrypt`].
pub fn open_offer(
    key: &InstructionKey,
    tbs: &PublicKey,
    pat: &PublicKey,
    sealed: &SealedOffer,
) -> Result<(u64, Zeroizing<Vec<u8>>), EnvelopeError> {
    open_labelled(Label::Offer, key, tbs, pat, &sealed.0)
}

impl SealedOffer {
    /// When the offer lapses (Unix seconds), readable before opening (bound: altering it
    /// makes opening fail).
    pub fn expires_at(&self) -> u64 {
        self.0.sequence()
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes()
    }

    /// Reads the wire form: refuses a wrong size, an unknown version and a ciphertext
    /// shorter than its tag.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        SealedInstructions::from_bytes(bytes).map(Self)
    }

    /// The wire form as base64url without padding, the form used in JSON bodies.
    pub fn to_base64(&self) -> String {
        self.0.to_base64()
    }

    /// Reads the base64url form (no padding, no white space), then the wire form.
    pub fn from_base64(text: &str) -> Result<Self, EnvelopeError> {
        SealedInstructions::from_base64(text).map(Self)
    }
}

impl fmt::Debug for SealedOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedOffer")
            .field("expires_at", &self.expires_at())
            .field("sealed", &self.0)
            .finish()
    }
}

base64_text_form!(SealedOffer);
