//! Key agreement between two anchored parties: ECDH and YAK over Bitcoin.
//!
//! Two parties that each have an anchoring signature on chain agree a key from those
//! signatures alone, with no certificate authority (McCorry, Shahandashti, Clarke, Hao,
//! "Authenticated Key Exchange over Bitcoin", 2015). A party's long-term secret is the
//! nonce `k` of its anchoring signature ([`NonceSecret`](crate::nonce::NonceSecret),
//! re-derived from its key and the sighash) and its public half is `R = k·G`, rebuilt by
//! anyone from the signature's `r` ([`NoncePoint`](crate::nonce::NoncePoint), even `y`).
//!
//! - [`ecdh`]: `Z = k_A·R_B`. [`ecdh::agree`] is non-interactive (a [`ecdh::PairKey`] the
//!   same for every call); the [`ecdh`] handshake adds fresh nonces and key confirmation.
//!   **No forward secrecy.**
//! - [`yak`]: each side adds an ephemeral `W = w·G` with a Schnorr proof of knowledge of
//!   `w` (RFC 8235); `Z = (k_A + w_A)·(R_B + W_B)`. Forward secrecy: a later leak of both
//!   `k`s does not reveal past session keys.
//!
//! Both handshakes have the same three messages and the same state machine; each step
//! consumes its state, so none can be skipped or repeated:
//!
//! ```text
//! Initiator::start(rng, local, peer, context) → (Initiator, Hello)     ──Hello──►
//!                   Responder::respond(rng, local, peer, context, &Hello) → (Responder, Reply)
//!                                                                      ◄──Reply──
//! Initiator::finish(&Reply) → (Established, Finished)                  ──Finished──►
//!                                          Responder::finish(&Finished) → Established
//! ```
//!
//! An [`Established`] session exists only once the peer's key-confirmation tag checked: it
//! is the proof that the peer holds the key.
//!
//! # Identities and encodings
//!
//! - Points are 33-byte compressed SEC1; scalars 32 bytes big-endian, below the group order
//!   `n`; `x(P)` is the 32-byte big-endian x coordinate; `‖` is concatenation.
//! - An **anchor reference** ([`AnchorRef`]) is the 36-byte Bitcoin serialization of
//!   `(txid, input index)`, laid out like an outpoint: the txid in its internal byte order
//!   (the reverse of the hex that RPCs show) followed by the input index as a 4-byte
//!   little-endian integer. It names the input whose signature carries `R`; a Milagro
//!   record's signature is always input 0.
//! - A **party identity** ([`Party::to_bytes`]) is `anchor reference (36) ‖ R (33)`, 69 bytes.
//! - `item(x)` is `len(x)` as a 4-byte big-endian integer followed by `x`: every input of a
//!   hash, KDF info or MAC below is a concatenation of items, so it decodes one way only
//!   (the rule RFC 8235 recommends for its challenge hash).
//! - The **session context** ([`SessionContext`], 0 to 1,024 bytes) is whatever both sides
//!   already share about this session: the TLS exporter value when the handshake runs
//!   inside TLS, so that no message of one channel is accepted in another.
//!
//! # Session id, keys and confirmation (both protocols)
//!
//! With `I` the initiator, `Rs` the responder, `label` the protocol label
//! ([`Protocol::label`]: `milagro/kex/ecdh/v1` or `milagro/kex/yak/v1`), `hello` the
//! initiator's whole message and `reply'` the responder's message without its final tag:
//!
//! ```text
//! session_id       = SHA-256(item(label) ‖ item(context) ‖ item(identity_I)
//!                            ‖ item(identity_Rs) ‖ item(hello) ‖ item(reply'))
//! prk              = HKDF-Extract(salt = label, ikm = x(Z))
//! session_key      = HKDF-Expand(prk, item("milagro/kex/v1 session key")
//!                                     ‖ item(session_id), 32)
//! confirmation_key = HKDF-Expand(prk, item("milagro/kex/v1 confirmation key")
//!                                     ‖ item(session_id), 32)
//! tag_Rs           = HMAC-SHA256(confirmation_key,
//!                                item("milagro/kex/v1 responder finished") ‖ item(session_id))
//! tag_I            = HMAC-SHA256(confirmation_key,
//!                                item("milagro/kex/v1 initiator finished") ‖ item(session_id))
//! ```
//!
//! The session id binds the protocol and version, the context, both anchors, both `R`s and
//! every byte both sides sent (for YAK both `W`s and both proofs); tags are compared in
//! constant time; the confirmation key never leaves this module.
//!
//! # Messages
//!
//! The first byte of every message is its type: high nibble the protocol (1 = ECDH v1,
//! 2 = YAK v1), low nibble the message (1 = hello, 2 = reply, 3 = finished). Every message
//! has a fixed length; decoders refuse any other length, an unknown type and any invalid
//! point or scalar, before any secret is touched.
//!
//! ```text
//! ECDH hello    = 0x11 ‖ nonce_I (32)                                     33 bytes
//! ECDH reply    = 0x12 ‖ nonce_Rs (32) ‖ tag_Rs (32)                       65 bytes
//! YAK hello     = 0x21 ‖ W_I (33) ‖ proof_I (65)                           99 bytes
//! YAK reply     = 0x22 ‖ W_Rs (33) ‖ proof_Rs (65) ‖ tag_Rs (32)          131 bytes
//! finished      = 0x13 (ECDH) or 0x23 (YAK) ‖ tag_I (32)                  33 bytes
//! proof         = V (33) ‖ r (32)                 (see [`yak`] for its challenge)
//! ```
//!
//! # What this guarantees, and what it does not
//!
//! - **Authentication is exactly as good as the peer's anchor.** Only the holder of the
//!   expected peer's nonce secret can confirm the key: a man in the middle with an anchor of
//!   its own gets another key and fails confirmation. Whether the expected anchor is the
//!   right one (confirmed deep enough, not reorged away, its Birth Certificate not marked
//!   compromised or retired) is for the caller to check before building the [`Party`]:
//!   prefer [`Party::from_verified`].
//! - **Replay**: a reply or finished message replayed into another session fails, because
//!   the peer's fresh nonce or ephemeral key differs and it is bound into the session id
//!   (and, for YAK, into the responder's proof). A hello replayed with the same context is
//!   answered, but the session fails key confirmation; with a fresh context (a TLS
//!   exporter) it is refused at once.
//! - **Guard `k` like the private key**: `k` and the public signature give `d = (s·k − z)/r`.
//!   Every secret a value here holds (nonce, ephemeral scalars, `k + w`, shared coordinates,
//!   keys) is wiped when it is dropped and never printed; copies the field arithmetic leaves
//!   on the stack are not.
//! - **ECDH has no forward secrecy**: whoever learns either `k` computes every key the pair
//!   ever agreed, past and future. A YAK key survives the loss of both `k`s, or of both
//!   `w`s, but not the loss of one side's `k` together with that same side's `w` (which is
//!   why the states wipe `w`, or `k + w`, as soon as they can).
//! - A party's anchor is a public, permanent identity: sessions are linkable to it.
//! - No identity hiding, no negotiation, no retries: a failed step consumes its state.
//! - No I/O: finding and checking the peer's anchor, carrying the messages (inside TLS,
//!   with the exporter value as context) and timeouts belong to the caller.
//!
//! # Example
//!
//! ```
//! use bitcoin::hashes::Hash as _;
//! use milagro_anchor::kex::{yak, AnchorRef, LocalParty, Party, SessionContext};
//! use milagro_anchor::keys::SecretKey;
//! use milagro_anchor::nonce::NonceSecret;
//!
//! // Each party's anchoring signature (here over a made-up sighash), and its nonce.
//! let anchored = |seed: u8| -> Result<LocalParty, Box<dyn std::error::Error>> {
//!     let key = SecretKey::from_bytes(&[seed; 32])?;
//!     let sighash = [seed ^ 0x5a; 32];
//!     let signature = key.sign_prehash(&sighash);
//!     let nonce = NonceSecret::recompute(&key, &sighash, &signature)?;
//!     let anchor = AnchorRef::new(bitcoin::Txid::from_byte_array([seed; 32]), 0);
//!     Ok(LocalParty::new(anchor, nonce))
//! };
//! let (alice, bob) = (anchored(1)?, anchored(2)?);
//! // Each knows the other only from the chain: an anchor and its signature's R.
//! let (alice_seen, bob_seen) = (alice.party(), bob.party());
//! let context = SessionContext::new(*b"the TLS exporter value, say")?;
//!
//! let mut rng = rand_core::OsRng;
//! let (alice_state, hello) = yak::Initiator::start(&mut rng, &alice, &bob_seen, &context)?;
//! let (bob_state, reply) =
//!     yak::Responder::respond(&mut rng, &bob, &alice_seen, &context, &hello)?;
//! let (alice_session, finished) = alice_state.finish(&reply)?;
//! let bob_session = bob_state.finish(&finished)?;
//! assert_eq!(alice_session.key().as_bytes(), bob_session.key().as_bytes());
//! assert_eq!(alice_session.session_id(), bob_session.session_id());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use crate::nonce::NonceError;

pub mod ecdh;
mod party;
mod schedule;
mod schnorr;
mod wire;
pub mod yak;

#[cfg(test)]
mod adversarial_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vector_tests;

pub use party::{AnchorRef, LocalParty, Party};
pub use schedule::{Established, ProtocolResponder, SessionId, SessionKey};
pub use wire::Finished;

/// The two key agreements, each with its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// ECDH over Bitcoin, version 1: static, no forward secrecy.
    EcdhV1,
    /// YAK over Bitcoin, version 1: ephemeral keys with Schnorr proofs, forward secrecy.
    YakV1,
}

impl Protocol {
    /// The ASCII label bound into every hash, KDF and MAC of the protocol.
    pub const fn label(self) -> &'static str {
        match self {
            Self::EcdhV1 => "milagro/kex/ecdh/v1",
            Self::YakV1 => "milagro/kex/yak/v1",
        }
    }

    /// Whether session keys survive a later leak of both parties' long-term nonces.
    pub const fn is_forward_secret(self) -> bool {
        matches!(self, Self::YakV1)
    }

    /// The protocol a hello message is for, read from its type byte (nothing else of the
    /// message is checked); `None` if it is no hello of a known protocol.
    pub fn of_hello(message: &[u8]) -> Option<Self> {
        let first = *message.first()?;
        [Self::EcdhV1, Self::YakV1]
            .into_iter()
            .find(|protocol| wire::message_type(*protocol, wire::HELLO) == first)
    }

    /// The high nibble of this protocol's message types.
    const fn type_base(self) -> u8 {
        match self {
            Self::EcdhV1 => 0x10,
            Self::YakV1 => 0x20,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Which side of a handshake a party plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sends the hello and the finished message.
    Initiator,
    /// Answers the hello with the reply.
    Responder,
}

impl Role {
    /// The byte that stands for the role in a Schnorr proof's challenge.
    const fn as_u8(self) -> u8 {
        match self {
            Self::Initiator => 1,
            Self::Responder => 2,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Initiator => "initiator",
            Self::Responder => "responder",
        })
    }
}

/// What both sides already share about one session (for example the TLS exporter value of
/// the channel the handshake runs in), bound into every proof and the session id.
///
/// May be empty; a fresh one per session makes a replayed hello fail at once instead of
/// at key confirmation (see the [module docs](self)).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SessionContext(Vec<u8>);

impl SessionContext {
    /// The longest context, in bytes.
    pub const MAX_LEN: usize = 1024;

    /// Takes 0 to [`Self::MAX_LEN`] bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, KexError> {
        let bytes = bytes.into();
        if bytes.len() > Self::MAX_LEN {
            return Err(KexError::ContextTooLong(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// The empty context.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SessionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionContext({})", hex::encode(&self.0))
    }
}

/// Why a key agreement failed.
///
/// Bad input from the peer is [`Malformed`](Self::Malformed), [`BadProof`](Self::BadProof),
/// [`Degenerate`](Self::Degenerate) or [`ConfirmationFailed`](Self::ConfirmationFailed);
/// misuse by the caller is [`SelfSession`](Self::SelfSession),
/// [`ContextTooLong`](Self::ContextTooLong), [`NonceMismatch`](Self::NonceMismatch) or
/// [`Nonce`](Self::Nonce); [`Internal`](Self::Internal) is our bug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KexError {
    /// A message has the wrong length or type, or an invalid point or scalar.
    #[error("malformed {message}: {reason}")]
    Malformed {
        /// Which message (for example `yak reply`).
        message: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The peer's Schnorr proof of its ephemeral key does not verify for this session.
    #[error("the {0}'s schnorr proof of its ephemeral key does not verify")]
    BadProof(Role),
    /// The peer's key-confirmation tag is wrong: it holds another key (it is not the
    /// expected party) or saw another transcript.
    #[error("key confirmation of the {0} failed")]
    ConfirmationFailed(Role),
    /// The shared point would be the identity (a peer's `W` that cancels its `R`).
    #[error("degenerate key agreement: {0}")]
    Degenerate(&'static str),
    /// The peer is this party itself.
    #[error("the peer has the same anchor or nonce point as this party")]
    SelfSession,
    /// The session context is too long.
    #[error("session context of {0} bytes exceeds {max}", max = SessionContext::MAX_LEN)]
    ContextTooLong(usize),
    /// The nonce secret does not belong to the record's signature.
    #[error("the nonce secret does not match the record's nonce point")]
    NonceMismatch,
    /// A record's nonce point could not be rebuilt.
    #[error(transparent)]
    Nonce(#[from] NonceError),
    /// A primitive failed where it cannot (a bug).
    #[error("internal error: {0}")]
    Internal(&'static str),
}
