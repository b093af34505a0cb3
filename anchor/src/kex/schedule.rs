//! The key schedule shared by both handshakes: session id, session and confirmation keys,
//! key-confirmation tags, and the established session they lead to.

use core::fmt;
use core::marker::PhantomData;

use hkdf::hmac::{Hmac, Mac};
use hkdf::Hkdf;
use k256::elliptic_curve::subtle::ConstantTimeEq;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::wire::{Finished, Items, TAG_LEN};
use super::{KexError, Party, Protocol, Role, SessionContext};

/// HKDF info label of the session key.
const SESSION_KEY_LABEL: &[u8] = b"milagro/kex/v1 session key";
/// HKDF info label of the key-confirmation key.
const CONFIRMATION_KEY_LABEL: &[u8] = b"milagro/kex/v1 confirmation key";
/// MAC label of the initiator's tag.
const INITIATOR_FINISHED_LABEL: &[u8] = b"milagro/kex/v1 initiator finished";
/// MAC label of the responder's tag.
const RESPONDER_FINISHED_LABEL: &[u8] = b"milagro/kex/v1 responder finished";

/// Names one session: a hash of the protocol, the context, both identities and every
/// message byte (see the [module docs](super)). Public; the same on both sides.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; 32]);

impl SessionId {
    /// `SHA-256(item(label) ‖ item(context) ‖ item(identity_I) ‖ item(identity_Rs)
    /// ‖ item(hello) ‖ item(reply without its tag))`.
    pub(super) fn compute(
        protocol: Protocol,
        context: &SessionContext,
        initiator: &Party,
        responder: &Party,
        hello: &[u8],
        reply_without_tag: &[u8],
    ) -> Self {
        Self(
            Items::new()
                .item(protocol.label().as_bytes())
                .item(context.as_bytes())
                .item(&initiator.to_bytes())
                .item(&responder.to_bytes())
                .item(hello)
                .item(reply_without_tag)
                .sha256(),
        )
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// A 32-byte secret key agreed for one session. Wiped on drop; never printed.
pub struct SessionKey(Zeroizing<[u8; 32]>);

impl SessionKey {
    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

/// A session whose key the peer has confirmed: only a handshake's last step makes one.
#[derive(Debug)]
pub struct Established {
    protocol: Protocol,
    role: Role,
    id: SessionId,
    key: SessionKey,
    local: Party,
    peer: Party,
}

impl Established {
    /// The protocol that agreed the key.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The side this party played.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The session id, the same on both sides.
    pub fn session_id(&self) -> SessionId {
        self.id
    }

    /// The session key.
    pub fn key(&self) -> &SessionKey {
        &self.key
    }

    /// This party.
    pub fn local(&self) -> Party {
        self.local
    }

    /// The peer, whose anchor's nonce secret was needed to confirm the key.
    pub fn peer(&self) -> Party {
        self.peer
    }

    /// Keeps only the key.
    pub fn into_key(self) -> SessionKey {
        self.key
    }
}

/// A responder that has sent its reply and waits for the initiator's finished message:
/// the same for every protocol once the keys are derived. It holds the session's keys
/// (wiped on drop), neither its nonce nor an ephemeral secret. `P` is the protocol's
/// marker type ([`super::ecdh::Ecdh`], [`super::yak::Yak`]), whose module makes one
/// (`ecdh::Responder::respond`, `yak::Responder::respond`).
pub struct ProtocolResponder<P> {
    schedule: KeySchedule,
    local: Party,
    peer: Party,
    protocol: PhantomData<P>,
}

impl<P> ProtocolResponder<P> {
    /// The state after answering `peer` as `local`, with the session's keys.
    pub(super) fn new(schedule: KeySchedule, local: Party, peer: Party) -> Self {
        Self {
            schedule,
            local,
            peer,
            protocol: PhantomData,
        }
    }

    /// Checks the initiator's tag; on success the session is established.
    pub fn finish(self, finished: &Finished) -> Result<Established, KexError> {
        self.schedule
            .confirm_finished(finished, self.local, self.peer)
    }

    /// The session id, known to the responder before the initiator confirms it.
    pub fn session_id(&self) -> SessionId {
        self.schedule.id()
    }
}

impl<P> fmt::Debug for ProtocolResponder<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("protocol", &self.schedule.protocol.label())
            .field("local", &self.local)
            .field("peer", &self.peer)
            .field("session_id", &self.schedule.id())
            .finish_non_exhaustive()
    }
}

/// The keys of one session, derived from the shared x coordinate and the session id.
pub(super) struct KeySchedule {
    protocol: Protocol,
    id: SessionId,
    session_key: Zeroizing<[u8; 32]>,
    confirmation_key: Zeroizing<[u8; 32]>,
}

impl KeySchedule {
    /// `prk = HKDF-Extract(label, x)`, then one HKDF-Expand per key, each bound to the id.
    pub(super) fn derive(
        protocol: Protocol,
        shared_x: &[u8],
        id: SessionId,
    ) -> Result<Self, KexError> {
        let hkdf = Hkdf::<Sha256>::new(Some(protocol.label().as_bytes()), shared_x);
        let mut session_key = Zeroizing::new([0u8; 32]);
        let mut confirmation_key = Zeroizing::new([0u8; 32]);
        for (label, out) in [
            (SESSION_KEY_LABEL, &mut session_key),
            (CONFIRMATION_KEY_LABEL, &mut confirmation_key),
        ] {
            let info = Items::new().item(label).item(id.as_bytes());
            hkdf.expand(info.as_bytes(), out.as_mut())
                .map_err(|_| KexError::Internal("HKDF-SHA256 expand of 32 bytes"))?;
        }
        Ok(Self {
            protocol,
            id,
            session_key,
            confirmation_key,
        })
    }

    pub(super) fn id(&self) -> SessionId {
        self.id
    }

    /// The key-confirmation tag that `role` sends.
    pub(super) fn tag(&self, role: Role) -> Result<[u8; TAG_LEN], KexError> {
        let label = match role {
            Role::Initiator => INITIATOR_FINISHED_LABEL,
            Role::Responder => RESPONDER_FINISHED_LABEL,
        };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.confirmation_key.as_ref())
            .map_err(|_| KexError::Internal("HMAC-SHA256 takes any key length"))?;
        mac.update(Items::new().item(label).item(self.id.as_bytes()).as_bytes());
        Ok(mac.finalize().into_bytes().into())
    }

    /// Checks the tag `role` sent, in constant time.
    pub(super) fn check(&self, role: Role, tag: &[u8]) -> Result<(), KexError> {
        let expected = self.tag(role)?;
        if bool::from(expected.as_slice().ct_eq(tag)) {
            Ok(())
        } else {
            Err(KexError::ConfirmationFailed(role))
        }
    }

    /// Initiator side of key confirmation: checks the responder's tag, then makes the
    /// initiator's finished message.
    pub(super) fn confirm_reply(
        self,
        reply_tag: &[u8],
        local: Party,
        peer: Party,
    ) -> Result<(Established, Finished), KexError> {
        self.check(Role::Responder, reply_tag)?;
        let finished = Finished::new(self.protocol, &self.tag(Role::Initiator)?);
        Ok((self.establish(Role::Initiator, local, peer), finished))
    }

    /// Responder side of key confirmation: checks the initiator's finished message.
    pub(super) fn confirm_finished(
        self,
        finished: &Finished,
        local: Party,
        peer: Party,
    ) -> Result<Established, KexError> {
        if finished.protocol() != self.protocol {
            return Err(KexError::Malformed {
                message: "finished",
                reason: "sent for another protocol",
            });
        }
        self.check(Role::Initiator, finished.tag())?;
        Ok(self.establish(Role::Responder, local, peer))
    }

    /// The session, once the peer's tag checked.
    pub(super) fn establish(self, role: Role, local: Party, peer: Party) -> Established {
        Established {
            protocol: self.protocol,
            role,
            id: self.id,
            key: SessionKey(self.session_key),
            local,
            peer,
        }
    }
}
