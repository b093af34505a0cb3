//! ECDH over Bitcoin: `Z = k_A·R_B`, from the two anchoring signatures alone.
//!
//! Both sides compute the same `x(Z)`: `k_A·R_B = k_A·k_B·G = k_B·R_A`.
//!
//! # Non-interactive: [`agree`]
//!
//! With the two identities ordered bytewise (`low` first), and `pair_label` the ASCII string
//! `milagro/kex/ecdh-static/v1`:
//!
//! ```text
//! pair_id  = SHA-256(item(pair_label) ‖ item(context) ‖ item(identity_low)
//!                    ‖ item(identity_high))
//! pair_key = HKDF-SHA256(salt = pair_label, ikm = x(Z),
//!                        info = item("milagro/kex/v1 pair key") ‖ item(pair_id), 32 bytes)
//! ```
//!
//! No message at all: a party can derive the key for any anchored peer offline. The key is
//! the same every time for the same pair and context, and nothing proves to either side
//! that the other holds it; use it only where that is enough, and never as the key of a
//! nonce-based cipher without a fresh nonce per message.
//!
//! # Handshake with key confirmation: [`Initiator`], [`Responder`]
//!
//! Each side sends a fresh 32-byte random nonce (drawn from the caller's random source), so
//! every session has its own id and keys; the key schedule and the confirmation tags are
//! those of the [parent module](super), with label `milagro/kex/ecdh/v1`:
//!
//! ```text
//! hello    = 0x11 ‖ nonce_I (32)
//! reply    = 0x12 ‖ nonce_Rs (32) ‖ tag_Rs (32)
//! finished = 0x13 ‖ tag_I (32)
//! ```
//!
//! # Limits
//!
//! **No forward secrecy**: `x(Z)` never changes for a pair, so whoever learns either party's
//! `k` (or its private key, which gives `k` from the public signature) computes every key the
//! pair ever agreed, past and future. The nonces make keys distinct per session, not secret
//! from such an attacker. Use [YAK](super::yak) where that matters.

use core::fmt;

use hkdf::Hkdf;
use k256::ecdh::SharedSecret;
use rand_core::CryptoRngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::schedule::{KeySchedule, ProtocolResponder};
use super::wire::{fixed, message_type, Items, HELLO, REPLY, TAG_LEN};
use super::{
    Established, Finished, KexError, LocalParty, Party, Protocol, Role, SessionContext, SessionId,
};

/// HKDF salt and first hash item of the non-interactive pair key.
pub const PAIR_LABEL: &str = "milagro/kex/ecdh-static/v1";

/// HKDF info label of the pair key.
const PAIR_KEY_LABEL: &[u8] = b"milagro/kex/v1 pair key";

/// Length of a handshake nonce.
pub const NONCE_LEN: usize = 32;

const PROTOCOL: Protocol = Protocol::EcdhV1;

/// The non-interactive key of a pair of anchored parties: the same on both sides and on
/// every call. Wiped on drop; never printed.
pub struct PairKey(Zeroizing<[u8; 32]>);

impl PairKey {
    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for PairKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairKey(<redacted>)")
    }
}

/// The non-interactive pair key of `local` and `peer` for `context` (see the
/// [module docs](self)). No forward secrecy, no key confirmation.
pub fn agree(
    local: &LocalParty,
    peer: &Party,
    context: &SessionContext,
) -> Result<PairKey, KexError> {
    local.refuse_self(peer)?;
    let shared = shared_x(local, peer);
    let (mine, theirs) = (local.party().to_bytes(), peer.to_bytes());
    let (low, high) = if mine <= theirs {
        (mine, theirs)
    } else {
        (theirs, mine)
    };
    let pair_id = Items::new()
        .item(PAIR_LABEL.as_bytes())
        .item(context.as_bytes())
        .item(&low)
        .item(&high)
        .sha256();
    let info = Items::new().item(PAIR_KEY_LABEL).item(&pair_id);
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(PAIR_LABEL.as_bytes()), shared.raw_secret_bytes())
        .expand(info.as_bytes(), key.as_mut())
        .map_err(|_| KexError::Internal("HKDF-SHA256 expand of 32 bytes"))?;
    Ok(PairKey(key))
}

/// The initiator's first message: its fresh nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    bytes: [u8; Hello::LEN],
}

impl Hello {
    /// Length of the wire form.
    pub const LEN: usize = 1 + NONCE_LEN;

    /// Reads the wire form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KexError> {
        let bytes = fixed(bytes, message_type(PROTOCOL, HELLO), "ecdh hello")?;
        Ok(Self { bytes })
    }

    /// The wire form.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        self.bytes
    }
}

/// The responder's answer: its fresh nonce and its key-confirmation tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    bytes: [u8; Reply::LEN],
}

impl Reply {
    /// Length of the wire form.
    pub const LEN: usize = 1 + NONCE_LEN + TAG_LEN;

    /// Reads the wire form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KexError> {
        let bytes = fixed(bytes, message_type(PROTOCOL, REPLY), "ecdh reply")?;
        Ok(Self { bytes })
    }

    /// The wire form.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        self.bytes
    }

    /// Everything but the tag: what the session id binds.
    fn without_tag(&self) -> &[u8] {
        &self.bytes[..Self::LEN - TAG_LEN]
    }

    fn tag(&self) -> &[u8] {
        &self.bytes[Self::LEN - TAG_LEN..]
    }
}

/// The initiator, waiting for the reply. Holds `x(Z)` (wiped on drop), not `k`.
pub struct Initiator {
    local: Party,
    peer: Party,
    context: SessionContext,
    shared: SharedSecret,
    hello: Hello,
}

impl Initiator {
    /// Starts a session with `peer`: draws a 32-byte nonce from `rng` and computes `x(Z)`.
    pub fn start(
        rng: &mut impl CryptoRngCore,
        local: &LocalParty,
        peer: &Party,
        context: &SessionContext,
    ) -> Result<(Self, Hello), KexError> {
        local.refuse_self(peer)?;
        let mut bytes = [0u8; Hello::LEN];
        bytes[0] = message_type(PROTOCOL, HELLO);
        rng.fill_bytes(&mut bytes[1..]);
        let hello = Hello { bytes };
        let state = Self {
            local: local.party(),
            peer: *peer,
            context: context.clone(),
            shared: shared_x(local, peer),
            hello: hello.clone(),
        };
        Ok((state, hello))
    }

    /// Checks the responder's tag; on success the session is established, and the
    /// finished message goes back to the responder.
    pub fn finish(self, reply: &Reply) -> Result<(Established, Finished), KexError> {
        let id = SessionId::compute(
            PROTOCOL,
            &self.context,
            &self.local,
            &self.peer,
            &self.hello.bytes,
            reply.without_tag(),
        );
        let schedule = KeySchedule::derive(PROTOCOL, self.shared.raw_secret_bytes(), id)?;
        schedule.confirm_reply(reply.tag(), self.local, self.peer)
    }
}

impl fmt::Debug for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ecdh::Initiator")
            .field("local", &self.local)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// The ECDH protocol as a type: it names its [`Responder`].
#[derive(Debug)]
pub enum Ecdh {}

/// The responder, waiting for the initiator's finished message
/// ([`ProtocolResponder::finish`]).
pub type Responder = ProtocolResponder<Ecdh>;

impl Responder {
    /// Answers `hello` from `peer`: draws a 32-byte nonce from `rng`, derives the session
    /// keys and sends its own key-confirmation tag.
    pub fn respond(
        rng: &mut impl CryptoRngCore,
        local: &LocalParty,
        peer: &Party,
        context: &SessionContext,
        hello: &Hello,
    ) -> Result<(Self, Reply), KexError> {
        local.refuse_self(peer)?;
        let mut bytes = [0u8; Reply::LEN];
        bytes[0] = message_type(PROTOCOL, REPLY);
        rng.fill_bytes(&mut bytes[1..1 + NONCE_LEN]);
        let shared = shared_x(local, peer);
        let me = local.party();
        let id = SessionId::compute(
            PROTOCOL,
            context,
            peer,
            &me,
            &hello.bytes,
            &bytes[..Reply::LEN - TAG_LEN],
        );
        let schedule = KeySchedule::derive(PROTOCOL, shared.raw_secret_bytes(), id)?;
        bytes[Reply::LEN - TAG_LEN..].copy_from_slice(&schedule.tag(Role::Responder)?);
        let state = Self::new(schedule, me, *peer);
        Ok((state, Reply { bytes }))
    }
}

/// `x(k_local · R_peer)`, in a buffer wiped on drop. `R` is never the identity and `k`
/// never zero, so neither is the product (secp256k1 has prime order).
fn shared_x(local: &LocalParty, peer: &Party) -> SharedSecret {
    k256::ecdh::diffie_hellman(local.nonce_scalar(), peer.nonce_point().as_affine())
}
