//! Sealed messages between parties: envelopes to a public key (ECIES) and instructions
//! under a symmetric key.
//!
//! A PAT knows only the TBS's public key (from the TBS's anchored Birth Certificate). It
//! [`seal`]s its enrolment request, and later its signed anchoring transaction, to that key;
//! inside the enrolment it sends a fresh [`InstructionKey`], with which the TBS
//! [`seal_instructions`] back to the PAT. Both constructions use only vetted primitives
//! (`k256` ECDH, `hkdf` with `sha2`, `aes-gcm`); nothing here draws randomness itself: the
//! caller passes a cryptographic random source.
//!
//! # Envelopes (ECIES on secp256k1)
//!
//! With `R` the recipient's public key and `‖` concatenation, [`seal`] computes:
//!
//! ```text
//! e, E = e·G      ephemeral key pair       (drawn from the rng first)
//! x    = x-coordinate of e·R               (32 bytes big-endian, the SEC1 ECDH value)
//! k    = HKDF-SHA256(salt = "milagro/ecies/v1", ikm = x,
//!                    info = E ‖ R ‖ purpose)              → 32 bytes
//! n    = 12 random bytes                   (drawn from the rng second)
//! AD   = "milagro/envelope/v1" ‖ purpose ‖ len(sender) ‖ sender ‖ R ‖ E
//! c    = AES-256-GCM(k, n, plaintext, AD)  (ciphertext ‖ 16-byte tag)
//! ```
//!
//! Points are 33-byte compressed SEC1, `purpose` one byte ([`Purpose`]), `len(sender)` one
//! byte followed by the 1 to 255 bytes of the [`SenderId`]; the labels are ASCII without a
//! terminator. The wire form ([`SealedEnvelope::to_bytes`]) is
//!
//! ```text
//! version (1 byte, = 1) ‖ purpose (1) ‖ len(sender) (1) ‖ sender ‖ R (33) ‖ E (33)
//!   ‖ n (12) ‖ c (plaintext length + 16)
//! ```
//!
//! at most [`MAX_SEALED_LEN`] bytes in total. The ciphertext runs to the end of the input:
//! bytes appended to a wire form become part of it, and opening fails. In JSON bodies it is
//! one base64url string without padding ([`SealedEnvelope::to_base64`], also its `Display`
//! and serde form).
//!
//! # Instructions (AES-128-GCM under the PAT's key)
//!
//! With `T` the TBS's and `P` the PAT's public key and `seq` a number the TBS increments
//! for every new set of instructions, [`seal_instructions`] computes:
//!
//! ```text
//! n  = 12 random bytes
//! AD = "milagro/instructions/v1" ‖ T (33) ‖ P (33) ‖ seq (8 bytes, big-endian)
//! c  = AES-128-GCM(instruction key, n, plaintext, AD)
//! ```
//!
//! and the wire form ([`SealedInstructions::to_bytes`]) is
//! `version (1 byte, = 1) ‖ seq (8, big-endian) ‖ n (12) ‖ c`, with the same size cap,
//! base64url and serde forms as an envelope.
//!
//! An anchoring offer from the TBS to the PAT ([`seal_offer`], [`SealedOffer`]) is sealed
//! the same way under the same key, with `"milagro/offer/v1"` in place of
//! `"milagro/instructions/v1"` (so neither opens as the other) and the offer's expiry in
//! place of `seq`.
//!
//! # What this guarantees
//!
//! - Only the holder of the recipient's secret key (of the instruction key) can read the
//!   plaintext, and any change to any byte of the wire form makes opening fail.
//! - Everything not secret is bound in the associated data: an envelope cannot be given
//!   another purpose, claimed sender or recipient, and instructions cannot be moved to
//!   another TBS/PAT pair or sequence number, without opening failing.
//! - Failures say as little as possible: every authentication failure is the one
//!   [`EnvelopeError::Decrypt`] (the tag comparison in `aes-gcm` is constant-time). Only
//!   structural problems of the public wire form get their own variants.
//! - Keys, shared secrets and opened plaintexts live in buffers wiped on drop. (The AES key
//!   schedules inside `aes-gcm`'s cipher values, which live for one call, are not: the
//!   `aes` crate wipes them only with its own `zeroize` feature.)
//!
//! # What this does not do
//!
//! - **No sender authentication in envelopes.** Anyone holding the recipient's public key
//!   can seal an envelope claiming any [`SenderId`]: the sender is *bound* (it cannot be
//!   changed in transit) but not *proven*. Authenticate the sender by a signature inside
//!   the plaintext (a PAT's self-signed Birth Certificate, its signature on its anchoring
//!   transaction) and check that the signed identity is [`Opened::sender`].
//! - **No replay protection.** An envelope replayed verbatim opens again. The TBS refuses
//!   replays with nonces it remembers (every honest envelope has a fresh
//!   [`SealedEnvelope::ephemeral_key`]). For instructions, the sequence number is bound and
//!   carried in clear, and it is the caller's job to refuse one not greater than the last
//!   it stored: [`open_instructions`] does not know what came before.
//! - **No forward secrecy for the recipient**: whoever later learns the recipient's secret
//!   key can open every envelope ever sealed to it (only the sender's key is ephemeral).
//! - **Lengths are not hidden**: the ciphertext is as long as the plaintext plus 16 bytes.
//! - An instruction key is for the TBS → PAT direction only (its associated data has no
//!   direction field), and holds for far fewer than 2³² messages of random 96-bit nonces.
//!   AES-GCM is not key-committing, which matters only to someone who holds two keys.
//!
//! # Example
//!
//! ```
//! use milagro_anchor::envelope::{
//!     open, open_instructions, seal, seal_instructions, InstructionKey, Purpose,
//!     SealedEnvelope, SealedInstructions, SenderId,
//! };
//! use milagro_anchor::keys::SecretKey;
//! use zeroize::Zeroizing;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct EnrolmentRequest {
//!     // ...the PAT's Birth Certificate, and:
//!     instruction_key: InstructionKey,
//! }
//!
//! let mut rng = rand_core::OsRng;
//! let tbs = SecretKey::generate(&mut rng);
//! let pat = SecretKey::generate(&mut rng);
//!
//! // The PAT seals its enrolment, with a fresh instruction key inside, to the TBS's key.
//! let key = InstructionKey::generate(&mut rng);
//! let request = EnrolmentRequest { instruction_key: key.clone() };
//! let plaintext = Zeroizing::new(serde_json::to_vec(&request)?);
//! let sender = SenderId::from_public_key(&pat.public_key());
//! let sealed = seal(&mut rng, &tbs.public_key(), Purpose::EnrolmentRequest, &sender, &plaintext)?;
//! let body: String = sealed.to_base64();
//!
//! // The TBS opens it. The sender is only a claim until a signature inside proves it.
//! let opened = open(&tbs, Purpose::EnrolmentRequest, &SealedEnvelope::from_base64(&body)?)?;
//! let claimed_pat = opened.sender.public_key().ok_or("sender is not a key")?;
//! let request: EnrolmentRequest = serde_json::from_slice(&opened.plaintext)?;
//!
//! // It answers with instructions that only the PAT can read...
//! let answer = seal_instructions(
//!     &mut rng, &request.instruction_key, &tbs.public_key(), &claimed_pat, 1, b"idp: ...",
//! )?;
//!
//! // ...and the PAT opens them, then refuses any sequence not above the last it accepted.
//! let answer = SealedInstructions::from_base64(&answer.to_base64())?;
//! let (sequence, instructions) =
//!     open_instructions(&key, &tbs.public_key(), &pat.public_key(), &answer)?;
//! assert_eq!((sequence, &instructions[..]), (1, &b"idp: ..."[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::keys::PublicKey;

/// `Display`, `FromStr` and serde for a sealed type, all as its base64url wire form
/// (`to_base64` / `from_base64`), so JSON bodies carry it as one string.
macro_rules! base64_text_form {
    ($sealed:ty) => {
        impl core::fmt::Display for $sealed {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(&self.to_base64())
            }
        }

        impl core::str::FromStr for $sealed {
            type Err = EnvelopeError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_base64(s)
            }
        }

        impl serde::Serialize for $sealed {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_base64())
            }
        }

        impl<'de> serde::Deserialize<'de> for $sealed {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::from_base64(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

mod ecies;
mod instructions;
mod offer;

pub use ecies::{open, seal, Opened, SealedEnvelope};
pub use instructions::{open_instructions, seal_instructions, InstructionKey, SealedInstructions};
pub use offer::{open_offer, seal_offer, SealedOffer};

/// The largest wire form of a sealed message, envelope or instructions, in bytes (64 KiB).
pub const MAX_SEALED_LEN: usize = 64 * 1024;

/// The largest base64url text of a sealed message: [`MAX_SEALED_LEN`] bytes, encoded.
const MAX_BASE64_LEN: usize = (MAX_SEALED_LEN * 4).div_ceil(3);

/// The only wire version defined so far, for both kinds of sealed message.
const VERSION: u8 = 1;

/// Length of an AES-GCM nonce.
const NONCE_LEN: usize = 12;

/// Length of an AES-GCM authentication tag.
const TAG_LEN: usize = 16;

/// What an envelope is for. Bound in the key derivation and the associated data, so an
/// envelope sealed for one purpose never opens as another.
///
/// New purposes may be added (the enum is `#[non_exhaustive]`); decoding refuses any byte
/// that is not one of the purposes below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum Purpose {
    /// A PAT's enrolment request to the TBS (its Birth Certificate and instruction key).
    EnrolmentRequest = 1,
    /// A PAT's signed anchoring transaction, sent back to the TBS for broadcast.
    SignedAnchorTx = 2,
    /// Instructions sealed to a party's public key.
    Instructions = 3,
    /// Any other party-to-party message.
    Message = 4,
}

impl Purpose {
    /// The byte that stands for this purpose on the wire.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for Purpose {
    type Error = EnvelopeError;

    fn try_from(byte: u8) -> Result<Self, Self::Error> {
        match byte {
            1 => Ok(Self::EnrolmentRequest),
            2 => Ok(Self::SignedAnchorTx),
            3 => Ok(Self::Instructions),
            4 => Ok(Self::Message),
            other => Err(EnvelopeError::UnknownPurpose(other)),
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EnrolmentRequest => "enrolment request",
            Self::SignedAnchorTx => "signed anchor transaction",
            Self::Instructions => "instructions",
            Self::Message => "message",
        })
    }
}

/// Who claims to have sealed an envelope: 1 to 255 bytes, for example a PAT's compressed
/// public key ([`SenderId::from_public_key`]) or a tenant or device-group id.
///
/// The id is bound to the envelope, not authenticated (see the [module docs](self)): treat
/// it as a claim until a signature inside the plaintext proves it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SenderId(Vec<u8>);

impl SenderId {
    /// The longest id, in bytes (its length is one byte on the wire).
    pub const MAX_LEN: usize = 255;

    /// Takes 1 to [`Self::MAX_LEN`] bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, EnvelopeError> {
        let bytes = bytes.into();
        if bytes.is_empty() || bytes.len() > Self::MAX_LEN {
            return Err(EnvelopeError::SenderLength(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// The 33-byte compressed encoding of a public key, as a sender id.
    pub fn from_public_key(key: &PublicKey) -> Self {
        Self(key.to_sec1().to_vec())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The public key this id encodes, if it is a 33-byte compressed point.
    pub fn public_key(&self) -> Option<PublicKey> {
        PublicKey::from_sec1(&self.0).ok()
    }

    /// `len ‖ bytes`, as in the wire form and the associated data.
    fn write_prefixed(&self, out: &mut Vec<u8>) {
        // The constructor keeps the length within one byte.
        out.push(self.0.len() as u8);
        out.extend_from_slice(&self.0);
    }
}

impl fmt::Display for SenderId {
    /// Printable ASCII is shown as is, anything else as hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(text) if text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') => {
                f.write_str(text)
            }
            _ => f.write_str(&hex::encode(&self.0)),
        }
    }
}

impl fmt::Debug for SenderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SenderId({self})")
    }
}

/// Why a sealed message could not be made, read or opened.
///
/// Structural problems of the public wire form have their own variants; every failure of
/// authentication (wrong key, altered ciphertext, associated data, nonce or ephemeral key)
/// is the one [`EnvelopeError::Decrypt`], so that a failure reveals nothing more.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The message (or its base64url text) exceeds the size limit.
    #[error("sealed message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The length found (or that sealing would produce).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The wire form ends before the named field is complete.
    #[error("sealed message ends inside its {field}")]
    Truncated {
        /// The field that is cut short.
        field: &'static str,
    },
    /// The version byte is not one this code reads.
    #[error("unknown sealed message version {0}")]
    UnknownVersion(u8),
    /// The purpose byte is not a known [`Purpose`].
    #[error("unknown envelope purpose {0}")]
    UnknownPurpose(u8),
    /// A sender id must be 1 to 255 bytes.
    #[error("a sender id is 1 to 255 bytes, got {0}")]
    SenderLength(usize),
    /// A public key in the wire form is not a compressed point on the curve.
    #[error("the {field} key is not a compressed secp256k1 point")]
    InvalidPoint {
        /// Which key: `recipient` or `ephemeral`.
        field: &'static str,
    },
    /// The ciphertext is too short to hold even the authentication tag.
    #[error("ciphertext of {0} bytes is shorter than the 16-byte tag")]
    ShortCiphertext(usize),
    /// The envelope was sealed for another purpose than the one expected.
    #[error("envelope is for {found}, expected {expected}")]
    WrongPurpose {
        /// The purpose the caller expected.
        expected: Purpose,
        /// The purpose written in the envelope.
        found: Purpose,
    },
    /// The envelope is addressed to another public key than the opener's.
    #[error("envelope is sealed to another key, {found}")]
    WrongRecipient {
        /// The recipient written in the envelope.
        found: PublicKey,
    },
    /// Authentication failed: wrong key, or something was altered. Deliberately says no
    /// more.
    #[error("cannot open: wrong key, or the message was altered")]
    Decrypt,
    /// The text is not base64url without padding.
    #[error("not base64url without padding: {0}")]
    Base64(#[from] base64::DecodeError),
    /// An instruction key is 16 bytes.
    #[error("an instruction key is 16 bytes, got {0}")]
    InstructionKeyLength(usize),
    /// An instruction key in hex is not hexadecimal.
    #[error("instruction key is not hex: {0}")]
    Hex(#[from] hex::FromHexError),
    /// A primitive refused input that this module guarantees to be valid: a bug here, never
    /// expected; please report it.
    #[error("internal error in {0}")]
    Internal(&'static str),
}

/// Reads a wire form front to back, field by field.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], EnvelopeError> {
        if self.0.len() < len {
            return Err(EnvelopeError::Truncated { field });
        }
        let (head, tail) = self.0.split_at(len);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], EnvelopeError> {
        let bytes = self.take(N, field)?;
        <[u8; N]>::try_from(bytes).map_err(|_| EnvelopeError::Truncated { field })
    }

    fn byte(&mut self, field: &'static str) -> Result<u8, EnvelopeError> {
        let [byte] = self.array::<1>(field)?;
        Ok(byte)
    }

    /// Reads the version byte and refuses any but [`VERSION`].
    fn version(&mut self) -> Result<(), EnvelopeError> {
        match self.byte("version")? {
            VERSION => Ok(()),
            other => Err(EnvelopeError::UnknownVersion(other)),
        }
    }

    /// Everything left: the ciphertext and its tag, which must hold at least the tag.
    fn ciphertext(self) -> Result<&'a [u8], EnvelopeError> {
        if self.0.len() < TAG_LEN {
            return Err(EnvelopeError::ShortCiphertext(self.0.len()));
        }
        Ok(self.0)
    }
}

/// Refuses a wire form (or one about to be made) above [`MAX_SEALED_LEN`].
fn check_size(len: usize) -> Result<(), EnvelopeError> {
    if len > MAX_SEALED_LEN {
        return Err(EnvelopeError::TooLarge {
            len,
            max: MAX_SEALED_LEN,
        });
    }
    Ok(())
}

/// base64url without padding.
fn to_base64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url without padding (no padding, no white space, no stray bits), with the
/// length checked before anything is decoded.
fn from_base64(text: &str) -> Result<Vec<u8>, EnvelopeError> {
    if text.len() > MAX_BASE64_LEN {
        return Err(EnvelopeError::TooLarge {
            len: text.len(),
            max: MAX_BASE64_LEN,
        });
    }
    Ok(URL_SAFE_NO_PAD.decode(text)?)
}

#[cfg(test)]
mod instructions_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vector_tests;
