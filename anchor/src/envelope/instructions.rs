//! Instructions from the TBS to a PAT, sealed with AES-128-GCM under the PAT's own key.

use core::fmt;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes128Gcm;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use super::{check_size, EnvelopeError, Reader, NONCE_LEN, TAG_LEN, VERSION};
use crate::keys::PublicKey;

/// First bytes of the associated data of sealed instructions.
const AD_LABEL: &[u8] = b"milagro/instructions/v1";

/// What a message sealed under an instruction key is: its label opens the associated
/// data, so a message sealed as one kind never opens as another (an offer is not
/// instructions, nor the reverse), whatever else it binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Label {
    /// Instructions ([`seal_instructions`]).
    Instructions,
    /// An anchoring offer ([`seal_offer`](super::seal_offer)).
    Offer,
}

impl Label {
    fn as_bytes(self) -> &'static [u8] {
        match self {
            Self::Instructions => AD_LABEL,
            Self::Offer => b"milagro/offer/v1",
        }
    }
}

/// Length of the fixed fields of the wire form: version, sequence, nonce.
const FIXED_LEN: usize = 1 + 8 + NONCE_LEN;

/// A PAT's AES-128-GCM key for the instructions the TBS sends it.
///
/// The PAT makes it, sends it to the TBS inside its (sealed) enrolment request, and keeps
/// it. Wiped on drop, never printed. Its text forms ([`Self::to_hex`], [`Self::to_base64`],
/// serde as base64url) exist to carry it inside that sealed request and nowhere else.
#[derive(Clone)]
pub struct InstructionKey(Zeroizing<[u8; InstructionKey::LEN]>);

impl InstructionKey {
    /// Length of the key in bytes.
    pub const LEN: usize = 16;

    /// Makes a fresh key from a cryptographic random source.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut key = Zeroizing::new([0u8; Self::LEN]);
        rng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// Wraps 16 key bytes.
    pub fn from_bytes(bytes: &[u8; Self::LEN]) -> Self {
        Self(Zeroizing::new(*bytes))
    }

    /// Reads a key from a slice that must be exactly 16 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let mut key = Zeroizing::new([0u8; Self::LEN]);
        if bytes.len() != Self::LEN {
            return Err(EnvelopeError::InstructionKeyLength(bytes.len()));
        }
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }

    /// The key bytes, in a buffer wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; Self::LEN]> {
        self.0.clone()
    }

    /// The key as 32 lowercase hex characters, in a buffer wiped when dropped.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(*self.0))
    }

    /// Reads 32 hex characters.
    pub fn from_hex(text: &str) -> Result<Self, EnvelopeError> {
        if text.len() != 2 * Self::LEN {
            return Err(EnvelopeError::InstructionKeyLength(text.len() / 2));
        }
        let mut key = Zeroizing::new([0u8; Self::LEN]);
        hex::decode_to_slice(text, key.as_mut())?;
        Ok(Self(key))
    }

    /// The key as base64url without padding (22 characters), in a buffer wiped when
    /// dropped.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(super::to_base64(self.0.as_ref()))
    }

    /// Reads base64url without padding.
    pub fn from_base64(text: &str) -> Result<Self, EnvelopeError> {
        let bytes = Zeroizing::new(super::from_base64(text)?);
        Self::from_slice(&bytes)
    }

    fn cipher(&self) -> Aes128Gcm {
        Aes128Gcm::new((&*self.0).into())
    }
}

impl fmt::Debug for InstructionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InstructionKey(<redacted>)")
    }
}

impl Serialize for InstructionKey {
    /// Writes the secret key as base64url: only ever inside a sealed envelope.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for InstructionKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(deserializer)?);
        Self::from_base64(&text).map_err(serde::de::Error::custom)
    }
}

/// Instructions sealed by the TBS for one PAT (see the [module docs](super) for the
/// construction and the wire form).
///
/// The sequence number is readable without the key ([`Self::sequence`]) and bound in the
/// associated data: a PAT refuses instructions whose sequence is not greater than the last
/// it accepted. That comparison is the caller's, since only the caller stores the last one.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedInstructions {
    sequence: u64,
    nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the 16-byte tag.
    ciphertext: Vec<u8>,
}

/// Seals instructions from `tbs` to `pat` under the PAT's `key`, numbered `sequence`.
///
/// Draws the nonce from `rng`. Fails only if the wire form would exceed
/// [`MAX_SEALED_LEN`](super::MAX_SEALED_LEN).
pub fn seal_instructions(
    rng: &mut impl CryptoRngCore,
    key: &InstructionKey,
    tbs: &PublicKey,
    pat: &PublicKey,
    sequence: u64,
    plaintext: &[u8],
) -> Result<SealedInstructions, EnvelopeError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    seal_instructions_with(nonce, key, tbs, pat, sequence, plaintext)
}

/// [`seal_instructions`] with the nonce chosen.
pub(super) fn seal_instructions_with(
    nonce: [u8; NONCE_LEN],
    key: &InstructionKey,
    tbs: &PublicKey,
    pat: &PublicKey,
    sequence: u64,
    plaintext: &[u8],
) -> Result<SealedInstructions, EnvelopeError> {
    seal_labelled(
        Label::Instructions,
        nonce,
        key,
        tbs,
        pat,
        sequence,
        plaintext,
    )
}

/// Seals a message of kind `label` from `tbs` to `pat` under `key`: the construction of
/// [`seal_instructions`], with `label` opening the associated data.
pub(super) fn seal_labelled(
    label: Label,
    nonce: [u8; NONCE_LEN],
    key: &InstructionKey,
    tbs: &PublicKey,
    pat: &PublicKey,
    sequence: u64,
    plaintext: &[u8],
) -> Result<SealedInstructions, EnvelopeError> {
    check_size(FIXED_LEN + plaintext.len() + TAG_LEN)?;
    // Sized for the tag, so the plaintext is never left behind in a reallocated copy.
    let mut ciphertext = Vec::with_capacity(plaintext.len() + TAG_LEN);
    ciphertext.extend_from_slice(plaintext);
    let tag = key
        .cipher()
        .encrypt_in_place_detached(
            (&nonce).into(),
            &labelled_associated_data(label, tbs, pat, sequence),
            &mut ciphertext,
        )
        .map_err(|_| EnvelopeError::Internal("AES-128-GCM encryption"))?;
    ciphertext.extend_from_slice(&tag);
    Ok(SealedInstructions {
        sequence,
        nonce,
        ciphertext,
    })
}

/// Opens instructions sealed by `tbs` for `pat` under `key`, returning their sequence
/// number and plaintext.
///
/// Every failure (wrong key, wrong TBS or PAT, altered sequence, nonce or ciphertext) is
/// [`EnvelopeError::Decrypt`]. This does **not** refuse a replay of older instructions:
/// compare the returned sequence with the last one stored, and refuse any not greater.
pub fn open_instructions(
    key: &InstructionKey,
    tbs: &PublicKey,
    pat: &PublicKey,
    sealed: &SealedInstructions,
) -> Result<(u64, Zeroizing<Vec<u8>>), EnvelopeError> {
    open_labelled(Label::Instructions, key, tbs, pat, sealed)
}

/// Opens a message of kind `label` sealed by `tbs` for `pat` under `key` (see
/// [`open_instructions`]).
pub(super) fn open_labelled(
    label: Label,
    key: &InstructionKey,
    tbs: &PublicKey,
    pat: &PublicKey,
    sealed: &SealedInstructions,
) -> Result<(u64, Zeroizing<Vec<u8>>), EnvelopeError> {
    let (ciphertext, tag) = sealed
        .ciphertext
        .split_at(sealed.ciphertext.len().saturating_sub(TAG_LEN));
    let tag = <[u8; TAG_LEN]>::try_from(tag).map_err(|_| EnvelopeError::Decrypt)?;
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    key.cipher()
        .decrypt_in_place_detached(
            (&sealed.nonce).into(),
            &labelled_associated_data(label, tbs, pat, sealed.sequence),
            &mut plaintext,
            (&tag).into(),
        )
        .map_err(|_| EnvelopeError::Decrypt)?;
    Ok((sealed.sequence, plaintext))
}

/// `AD_LABEL ‖ tbs ‖ pat ‖ sequence (u64 big-endian)`.
#[cfg(test)]
pub(super) fn associated_data(tbs: &PublicKey, pat: &PublicKey, sequence: u64) -> Vec<u8> {
    labelled_associated_data(Label::Instructions, tbs, pat, sequence)
}

/// `label ‖ tbs ‖ pat ‖ sequence (u64 big-endian)`.
fn labelled_associated_data(
    label: Label,
    tbs: &PublicKey,
    pat: &PublicKey,
    sequence: u64,
) -> Vec<u8> {
    let label = label.as_bytes();
    let mut ad = Vec::with_capacity(label.len() + 2 * PublicKey::LEN + 8);
    ad.extend_from_slice(label);
    ad.extend_from_slice(&tbs.to_sec1());
    ad.extend_from_slice(&pat.to_sec1());
    ad.extend_from_slice(&sequence.to_be_bytes());
    ad
}

impl SealedInstructions {
    /// The sequence number, readable before opening (bound: altering it makes opening
    /// fail).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The wire form: `version (1) ‖ sequence (8, big-endian) ‖ nonce (12) ‖ ciphertext ‖
    /// tag (16)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + self.ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Reads the wire form: refuses a wrong size, an unknown version and a ciphertext
    /// shorter than its tag.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        check_size(bytes.len())?;
        let mut reader = Reader(bytes);
        reader.version()?;
        let sequence = u64::from_be_bytes(reader.array::<8>("sequence")?);
        let nonce = reader.array::<NONCE_LEN>("nonce")?;
        let ciphertext = reader.ciphertext()?.to_vec();
        Ok(Self {
            sequence,
            nonce,
            ciphertext,
        })
    }

    /// The wire form as base64url without padding, the form used in JSON bodies.
    pub fn to_base64(&self) -> String {
        super::to_base64(&self.to_bytes())
    }

    /// Reads the base64url form (no padding, no white space), then the wire form.
    pub fn from_base64(text: &str) -> Result<Self, EnvelopeError> {
        Self::from_bytes(&super::from_base64(text)?)
    }
}

impl fmt::Debug for SealedInstructions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedInstructions")
            .field("sequence", &self.sequence)
            .field("nonce", &format_args!("{}", hex::encode(self.nonce)))
            .field(
                "ciphertext",
                &format_args!("<{} bytes>", self.ciphertext.len()),
            )
            .finish()
    }
}

base64_text_form!(SealedInstructions);
