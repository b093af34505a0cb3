//! YAK over Bitcoin: `Z = (k_A + w_A)·(R_B + W_B)`, with a Schnorr proof of each `w`.
//!
//! Each side draws an ephemeral `w` and sends `W = w·G` with a Schnorr proof of knowledge of
//! `w` (RFC 8235). Both sides compute the same point:
//! `(k_A + w_A)·(R_B + W_B) = (k_A + w_A)(k_B + w_B)·G = (k_B + w_B)·(R_A + W_A)`. That is why
//! the parity convention of [`crate::nonce`] matters here: `R` is added, not only
//! multiplied, so both sides must agree which of `±k` goes with it.
//!
//! # Proofs
//!
//! A proof is `V (33) ‖ r (32)` with challenge
//! `c = SHA-256(item(G) ‖ item(V) ‖ item(W) ‖ item(UserID) ‖ item(OtherInfo)) mod n`, where
//! `UserID` is the prover's 69-byte identity and (`label` = `milagro/kex/yak/v1`, role byte
//! `0x01` initiator, `0x02` responder):
//!
//! ```text
//! OtherInfo_I  = item(label) ‖ item(context) ‖ item(0x01) ‖ item(identity_Rs)
//! OtherInfo_Rs = item(label) ‖ item(context) ‖ item(0x02) ‖ item(identity_I) ‖ item(hello)
//! ```
//!
//! So a proof names its prover, its verifier, the protocol and the context; the responder's
//! proof also covers the initiator's whole hello (its fresh `W` and proof), so it cannot be
//! replayed into any other session, and a proof reflected back to its sender names the
//! wrong prover.
//!
//! Random choices, in this order, each the first 32 bytes drawn from the caller's source
//! that form a scalar in `[1, n−1]`: `w`, then the proof's `v`.
//!
//! # Messages
//!
//! ```text
//! hello    = 0x21 ‖ W_I (33) ‖ proof_I (65)                   99 bytes
//! reply    = 0x22 ‖ W_Rs (33) ‖ proof_Rs (65) ‖ tag_Rs (32)   131 bytes
//! finished = 0x23 ‖ tag_I (32)                                33 bytes
//! ```
//!
//! Session id, keys and tags are those of the [parent module](super), with `x(Z)` as input
//! keying material. A peer's proof is checked before its `W` is used; a `W` that cancels
//! the peer's `R` (making `Z` the identity) is refused.
//!
//! # Limits
//!
//! Forward secrecy: `Z = (k_A + w_A)(k_B + w_B)·G`. With both `k`s, the term `w_A·w_B·G` is
//! out of reach; with both `w`s, `k_A·k_B·G`; with `k_A` and `w_B`, `w_A·k_B·G` (each a
//! Diffie-Hellman problem). So once both sides have wiped their `w` (the states do on drop),
//! losing both `k`s does not reveal the session key. One side's `k` *and* its own `w` give
//! `k + w`, hence the key: a state holding `k + w` is as secret as the key. As in the paper,
//! authentication rests on the anchors: a man in the middle with a valid anchor of its own
//! fails, either at the proof (which names it) or at key confirmation.

use core::fmt;

use k256::{AffinePoint, NonZeroScalar, ProjectivePoint};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::schedule::{KeySchedule, ProtocolResponder};
use super::schnorr::{random_scalar, SchnorrProof};
use super::wire::{encode_point, fixed, message_type, parse_point, Items, HELLO, POINT_LEN};
use super::wire::{REPLY, TAG_LEN};
use super::{
    Established, Finished, KexError, LocalParty, Party, Protocol, Role, SessionContext, SessionId,
};

const PROTOCOL: Protocol = Protocol::YakV1;

/// Bytes of an ephemeral key and its proof, after the type byte.
const EPHEMERAL_LEN: usize = POINT_LEN + SchnorrProof::LEN;

/// The initiator's first message: its ephemeral key `W_I` and the proof of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    bytes: [u8; Hello::LEN],
    ephemeral: AffinePoint,
    proof: SchnorrProof,
}

impl Hello {
    /// Length of the wire form.
    pub const LEN: usize = 1 + EPHEMERAL_LEN;

    /// Reads the wire form: both points must be valid and not the identity, the proof's
    /// scalar below `n`. The proof itself is checked by [`Responder::respond`], which knows
    /// who should have made it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KexError> {
        let message = "yak hello";
        let bytes = fixed(bytes, message_type(PROTOCOL, HELLO), message)?;
        let (ephemeral, proof) = parse_ephemeral(&bytes[1..], message)?;
        Ok(Self {
            bytes,
            ephemeral,
            proof,
        })
    }

    /// The wire form.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        self.bytes
    }

    /// The initiator's ephemeral key `W_I`, compressed.
    pub fn ephemeral_key(&self) -> [u8; POINT_LEN] {
        encode_point(&self.ephemeral)
    }
}

/// The responder's answer: its ephemeral key `W_Rs`, the proof of it, and its
/// key-confirmation tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    bytes: [u8; Reply::LEN],
    ephemeral: AffinePoint,
    proof: SchnorrProof,
}

impl Reply {
    /// Length of the wire form.
    pub const LEN: usize = 1 + EPHEMERAL_LEN + TAG_LEN;

    /// Reads the wire form (same checks as [`Hello::from_bytes`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KexError> {
        let message = "yak reply";
        let bytes = fixed(bytes, message_type(PROTOCOL, REPLY), message)?;
        let (ephemeral, proof) = parse_ephemeral(&bytes[1..1 + EPHEMERAL_LEN], message)?;
        Ok(Self {
            bytes,
            ephemeral,
            proof,
        })
    }

    /// The wire form.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        self.bytes
    }

    /// The responder's ephemeral key `W_Rs`, compressed.
    pub fn ephemeral_key(&self) -> [u8; POINT_LEN] {
        encode_point(&self.ephemeral)
    }

    fn without_tag(&self) -> &[u8] {
        &self.bytes[..Self::LEN - TAG_LEN]
    }

    fn tag(&self) -> &[u8] {
        &self.bytes[Self::LEN - TAG_LEN..]
    }
}

/// The initiator, waiting for the reply. Holds `k + w` (wiped on drop), from which neither
/// `k` nor `w` can be told apart.
pub struct Initiator {
    local: Party,
    peer: Party,
    context: SessionContext,
    secret: Zeroizing<NonZeroScalar>,
    hello: Hello,
}

impl Initiator {
    /// Starts a session with `peer`: draws `w_I`, then the proof's nonce, from `rng`.
    pub fn start(
        rng: &mut impl CryptoRngCore,
        local: &LocalParty,
        peer: &Party,
        context: &SessionContext,
    ) -> Result<(Self, Hello), KexError> {
        local.refuse_self(peer)?;
        let me = local.party();
        let w = Zeroizing::new(random_scalar(rng));
        let ephemeral = (ProjectivePoint::GENERATOR * **w).to_affine();
        let other_info = other_info(context, Role::Initiator, peer, None);
        let proof = SchnorrProof::prove(rng, &w, &ephemeral, &me.to_bytes(), &other_info);
        let mut bytes = [0u8; Hello::LEN];
        bytes[0] = message_type(PROTOCOL, HELLO);
        bytes[1..1 + POINT_LEN].copy_from_slice(&encode_point(&ephemeral));
        bytes[1 + POINT_LEN..].copy_from_slice(&proof.to_bytes());
        let hello = Hello {
            bytes,
            ephemeral,
            proof,
        };
        let state = Self {
            local: me,
            peer: *peer,
            context: context.clone(),
            secret: long_term_plus_ephemeral(local, &w)?,
            hello: hello.clone(),
        };
        Ok((state, hello))
    }

    /// Checks the responder's proof, then its tag; on success the session is established,
    /// and the finished message goes back to the responder.
    pub fn finish(self, reply: &Reply) -> Result<(Established, Finished), KexError> {
        let other_info = other_info(
            &self.context,
            Role::Responder,
            &self.local,
            Some(&self.hello.bytes),
        );
        reply.proof.verify(
            &reply.ephemeral,
            &self.peer.to_bytes(),
            &other_info,
            Role::Responder,
        )?;
        let shared = shared_x(&self.secret, &self.peer, &reply.ephemeral)?;
        let id = SessionId::compute(
            PROTOCOL,
            &self.context,
            &self.local,
            &self.peer,
            &self.hello.bytes,
            reply.without_tag(),
        );
        let schedule = KeySchedule::derive(PROTOCOL, shared.raw_secret_bytes(), id)?;
        schedule.confirm_reply(reply.tag(), self.local, self.peer)
    }
}

impl fmt::Debug for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("yak::Initiator")
            .field("local", &self.local)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// The YAK protocol as a type: it names its [`Responder`].
#[derive(Debug)]
pub enum Yak {}

/// The responder, waiting for the initiator's finished message
/// ([`ProtocolResponder::finish`]).
pub type Responder = ProtocolResponder<Yak>;

impl Responder {
    /// Checks the proof in `hello` as made by `peer`, then draws `w_Rs` and the proof's
    /// nonce from `rng`, derives the session keys and sends its own tag.
    pub fn respond(
        rng: &mut impl CryptoRngCore,
        local: &LocalParty,
        peer: &Party,
        context: &SessionContext,
        hello: &Hello,
    ) -> Result<(Self, Reply), KexError> {
        local.refuse_self(peer)?;
        let me = local.party();
        let their_info = other_info(context, Role::Initiator, &me, None);
        hello.proof.verify(
            &hello.ephemeral,
            &peer.to_bytes(),
            &their_info,
            Role::Initiator,
        )?;
        let w = Zeroizing::new(random_scalar(rng));
        let ephemeral = (ProjectivePoint::GENERATOR * **w).to_affine();
        let my_info = other_info(context, Role::Responder, peer, Some(&hello.bytes));
        let proof = SchnorrProof::prove(rng, &w, &ephemeral, &me.to_bytes(), &my_info);
        let secret = long_term_plus_ephemeral(local, &w)?;
        let shared = shared_x(&secret, peer, &hello.ephemeral)?;

        let mut bytes = [0u8; Reply::LEN];
        bytes[0] = message_type(PROTOCOL, REPLY);
        bytes[1..1 + POINT_LEN].copy_from_slice(&encode_point(&ephemeral));
        bytes[1 + POINT_LEN..1 + EPHEMERAL_LEN].copy_from_slice(&proof.to_bytes());
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
        let reply = Reply {
            bytes,
            ephemeral,
            proof,
        };
        let state = Self::new(schedule, me, *peer);
        Ok((state, reply))
    }
}

/// `OtherInfo` of the challenge of `prover`'s proof, checked by `verifier`.
fn other_info(
    context: &SessionContext,
    prover: Role,
    verifier: &Party,
    hello: Option<&[u8; Hello::LEN]>,
) -> Vec<u8> {
    let items = Items::new()
        .item(PROTOCOL.label().as_bytes())
        .item(context.as_bytes())
        .item(&[prover.as_u8()])
        .item(&verifier.to_bytes());
    match hello {
        Some(hello) => items.item(hello).as_bytes().to_vec(),
        None => items.as_bytes().to_vec(),
    }
}

/// Reads `W (33) ‖ proof (65)`.
fn parse_ephemeral(
    bytes: &[u8],
    message: &'static str,
) -> Result<(AffinePoint, SchnorrProof), KexError> {
    let ephemeral = parse_point(&bytes[..POINT_LEN], message)?;
    let proof = SchnorrProof::from_bytes(&bytes[POINT_LEN..EPHEMERAL_LEN], message)?;
    Ok((ephemeral, proof))
}

/// `k + w`, refusing zero (probability 2⁻²⁵⁶ for an honest `w`).
fn long_term_plus_ephemeral(
    local: &LocalParty,
    w: &NonZeroScalar,
) -> Result<Zeroizing<NonZeroScalar>, KexError> {
    let sum = Zeroizing::new(**local.nonce_scalar() + **w);
    Option::<NonZeroScalar>::from(NonZeroScalar::new(*sum))
        .map(Zeroizing::new)
        .ok_or(KexError::Degenerate("k + w is zero"))
}

/// `x((k + w)·(R_peer + W_peer))`, in a buffer wiped on drop; refuses a `W_peer` that
/// cancels `R_peer`.
fn shared_x(
    secret: &NonZeroScalar,
    peer: &Party,
    peer_ephemeral: &AffinePoint,
) -> Result<k256::ecdh::SharedSecret, KexError> {
    let sum = ProjectivePoint::from(*peer.nonce_point().as_affine()) + peer_ephemeral;
    if sum == ProjectivePoint::IDENTITY {
        return Err(KexError::Degenerate("the peer's W cancels its R"));
    }
    Ok(k256::ecdh::diffie_hellman(secret, sum.to_affine()))
}

/// What only an attacker would send, for the tests.
#[cfg(test)]
pub(super) mod tests_support {
    use super::*;

    /// A reply claiming to come from `claimed`, with a valid proof of a `w` the caller
    /// knows (`w`, or a fresh one) and a tag of zeros: what someone without `claimed`'s `k`
    /// can make.
    pub(crate) fn reply_as(
        rng: &mut impl CryptoRngCore,
        claimed: &Party,
        initiator: &Party,
        context: &SessionContext,
        hello: &Hello,
        w: Option<NonZeroScalar>,
    ) -> Reply {
        let w = w.unwrap_or_else(|| random_scalar(rng));
        let ephemeral = (ProjectivePoint::GENERATOR * *w).to_affine();
        let info = other_info(context, Role::Responder, initiator, Some(&hello.bytes));
        let proof = SchnorrProof::prove(rng, &w, &ephemeral, &claimed.to_bytes(), &info);
        let mut bytes = [0u8; Reply::LEN];
        bytes[0] = message_type(PROTOCOL, REPLY);
        bytes[1..1 + POINT_LEN].copy_from_slice(&encode_point(&ephemeral));
        bytes[1 + POINT_LEN..1 + EPHEMERAL_LEN].copy_from_slice(&proof.to_bytes());
        Reply {
            bytes,
            ephemeral,
            proof,
        }
    }
}
