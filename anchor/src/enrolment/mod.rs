//! The messages a device (PAT) sends a TBS to enrol, and the checks the TBS runs on them.
//!
//! 1. [`EnrolmentRequest`]: the device's self-signed Birth Certificate, a fresh
//!    [`InstructionKey`] for the answers, the tenant and group it was provisioned for, the
//!    maker's [`EnrolmentCredential`] letting it enrol there, a
//!    random nonce, its creation time and a **proof of possession**: the device key's
//!    signature over all of these and the TBS's envelope key ([`possession_digest`]);
//!    sealed to that key ([`Purpose::EnrolmentRequest`], sender = the device key). The
//!    envelope key is the `envelope` purpose key the TBS's certificate lists (ADR 0013),
//!    not its anchored key. Opening checks
//!    that the certificate is a `pat` one, signed by the key the envelope names as sender,
//!    that the proof of possession verifies with that key for this TBS, that the credential
//!    verifies and names this device, tenant and group (whether its issuer is one of the
//!    group's enrolment keys is the TBS's check), and that the request is recent. A certificate is public and its self-signature static: without
//!    the fresh signature, anyone holding a device's certificate could enrol it with their
//!    own instruction key (front-running it, and reading what the TBS tells it).
//! 2. The TBS answers with an [`AnchorOffer`](crate::anchor_offer::AnchorOffer) (a PSBT the
//!    device checks itself, so it travels in clear).
//! 3. [`SignedAnchor`]: the signed anchoring transaction, sealed to the TBS
//!    ([`Purpose::SignedAnchorTx`]).
//!
//! Replays: a request carries a random nonce and the envelope a fresh ephemeral key; the
//! TBS remembers both for [`MAX_CLOCK_SKEW_SECS`] either side of `created` and treats a
//! request from an already enrolled device as a lookup of its existing state.

use bitcoin::consensus::encode;
use bitcoin::Transaction;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use sha2::{Digest as _, Sha256};

use crate::birth_certificate::{BcError, BirthCertificate, Role};
use crate::enrolment_credential::{CredentialError, EnrolmentCredential};
use crate::envelope::{
    open, seal, EnvelopeError, InstructionKey, Purpose, SealedEnvelope, SenderId,
};
use crate::keys::{PublicKey, SecretKey, Signature};

/// How far a request's `created` may be from the TBS clock, either way, in seconds.
pub const MAX_CLOCK_SKEW_SECS: u64 = 600;
/// Longest tenant or group name carried (the TBS applies its own, stricter rules).
pub const MAX_NAME_BYTES: usize = 64;

/// Why an enrolment message was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrolmentError {
    /// The envelope does not open, or is not of the expected purpose.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The plaintext is not the expected JSON.
    #[error("malformed enrolment message: {0}")]
    Malformed(String),
    /// The Birth Certificate is invalid.
    #[error("invalid birth certificate: {0}")]
    BirthCertificate(#[from] BcError),
    /// The certificate is not a device (`pat`) certificate.
    #[error("only a pat certificate can enrol, got {0}")]
    NotAPat(Role),
    /// The envelope's sender is not the certificate's key.
    #[error("the envelope sender is not the certificate's key")]
    SenderMismatch,
    /// `created` is too far from the TBS clock.
    #[error("request created at {created}, more than {MAX_CLOCK_SKEW_SECS} s from now ({now})")]
    Stale {
        /// The request's time.
        created: u64,
        /// The TBS clock.
        now: u64,
    },
    /// A tenant or group name is empty or too long.
    #[error("invalid {0} name")]
    InvalidName(&'static str),
    /// The proof of possession does not verify with the certificate's key for this TBS:
    /// the request was not made by the device (a certificate replayed with another
    /// instruction key, or a request made for another TBS).
    #[error("the proof of possession does not verify with the device key for this tbs")]
    NoPossession,
    /// The secret key given to sign the request is not the certificate's.
    #[error("the signing key is not the certificate's key")]
    WrongSigningKey,
    /// The enrolment credential does not verify, or is for another device, tenant or
    /// group.
    #[error(transparent)]
    Credential(#[from] CredentialError),
}

/// The domain separator of a proof of possession.
pub const POSSESSION_DOMAIN: &[u8] = b"milagro/enrolment-request/v1";

/// What a device signs to show it holds its key for one request to one TBS:
///
/// ```text
/// SHA-256( "milagro/enrolment-request/v1" ‖ 0x00 ‖ nonce (16) ‖ created (u64 big-endian)
///          ‖ len(tenant) (1) ‖ tenant ‖ len(group) (1) ‖ group
///          ‖ SHA-256("milagro/instruction-key/v1" ‖ 0x00 ‖ instruction key)
///          ‖ TBS envelope key (33, compressed SEC1) )
/// ```
///
/// The instruction key enters as a hash (the signature never sits next to the secret
/// key it commits to); names are at most [`MAX_NAME_BYTES`], so one length byte each.
pub fn possession_digest(
    nonce: &[u8; 16],
    created: u64,
    tenant: &str,
    group: &str,
    instruction_key: &InstructionKey,
    tbs: &PublicKey,
) -> [u8; 32] {
    let key_commitment = Sha256::new()
        .chain_update(b"milagro/instruction-key/v1")
        .chain_update([0])
        .chain_update(instruction_key.to_bytes().as_slice())
        .finalize();
    let length = |name: &str| [u8::try_from(name.len()).unwrap_or(u8::MAX)];
    Sha256::new()
        .chain_update(POSSESSION_DOMAIN)
        .chain_update([0])
        .chain_update(nonce)
        .chain_update(created.to_be_bytes())
        .chain_update(length(tenant))
        .chain_update(tenant.as_bytes())
        .chain_update(length(group))
        .chain_update(group.as_bytes())
        .chain_update(key_commitment)
        .chain_update(tbs.to_sec1())
        .finalize()
        .into()
}

/// A device's request to enrol.
#[derive(Debug)]
pub struct EnrolmentRequest {
    /// The device's self-signed certificate.
    pub birth_certificate: BirthCertificate,
    /// The key the TBS seals its answers with.
    pub instruction_key: InstructionKey,
    /// The tenant the device was provisioned for.
    pub tenant: String,
    /// The device group within it.
    pub group: String,
    /// The maker's permission for this device key to enrol in this group.
    pub credential: EnrolmentCredential,
    /// 16 random bytes, unique per request.
    pub nonce: [u8; 16],
    /// When the device made the request (Unix seconds).
    pub created: u64,
    /// The device key's signature over [`possession_digest`] of this request and the TBS.
    pub possession: Signature,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestWire {
    birth_certificate: serde_json::Value,
    instruction_key: InstructionKey,
    tenant: String,
    group: String,
    credential: EnrolmentCredential,
    nonce: String,
    created: u64,
    /// 64 bytes `r ‖ s`, hex.
    possession: String,
}

impl EnrolmentRequest {
    /// A fresh request to the TBS whose envelope key is `tbs`, with a new nonce, signed by the
    /// device key `device` (which must be the certificate's), for the tenant and group
    /// `credential` names (which must be for this device).
    pub fn new(
        rng: &mut impl CryptoRngCore,
        device: &SecretKey,
        birth_certificate: BirthCertificate,
        instruction_key: InstructionKey,
        credential: EnrolmentCredential,
        tbs: &PublicKey,
        now: u64,
    ) -> Result<Self, EnrolmentError> {
        let (tenant, group) = (credential.tenant(), credential.group());
        check_name(tenant, "tenant")?;
        check_name(group, "group")?;
        if device.public_key() != *birth_certificate.public_key() {
            return Err(EnrolmentError::WrongSigningKey);
        }
        credential.check(tenant, group, birth_certificate.public_key())?;
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let digest = possession_digest(&nonce, now, tenant, group, &instruction_key, tbs);
        Ok(Self {
            birth_certificate,
            instruction_key,
            tenant: tenant.to_owned(),
            group: group.to_owned(),
            credential,
            nonce,
            created: now,
            possession: device.sign_prehash(&digest),
        })
    }

    /// Seals the request to the TBS's envelope key `tbs`; the sender is the device key.
    pub fn seal(
        &self,
        rng: &mut impl CryptoRngCore,
        tbs: &PublicKey,
    ) -> Result<SealedEnvelope, EnrolmentError> {
        let certificate: serde_json::Value =
            serde_json::from_slice(&self.birth_certificate.to_canonical_json())
                .map_err(|e| EnrolmentError::Malformed(e.to_string()))?;
        let wire = RequestWire {
            birth_certificate: certificate,
            instruction_key: self.instruction_key.clone(),
            tenant: self.tenant.clone(),
            group: self.group.clone(),
            credential: self.credential.clone(),
            nonce: hex::encode(self.nonce),
            created: self.created,
            possession: hex::encode(self.possession.to_compact()),
        };
        let plaintext = zeroize::Zeroizing::new(
            serde_json::to_vec(&wire).map_err(|e| EnrolmentError::Malformed(e.to_string()))?,
        );
        let sender = SenderId::from_public_key(self.birth_certificate.public_key());
        Ok(seal(
            rng,
            tbs,
            Purpose::EnrolmentRequest,
            &sender,
            &plaintext,
        )?)
    }

    /// TBS side: opens and checks a request at time `now` with the TBS's envelope key.
    pub fn open(
        tbs_key: &SecretKey,
        envelope: &SealedEnvelope,
        now: u64,
    ) -> Result<Self, EnrolmentError> {
        let opened = open(tbs_key, Purpose::EnrolmentRequest, envelope)?;
        let wire: RequestWire = serde_json::from_slice(&opened.plaintext)
            .map_err(|e| EnrolmentError::Malformed(e.to_string()))?;
        let certificate = serde_json::to_vec(&wire.birth_certificate)
            .map_err(|e| EnrolmentError::Malformed(e.to_string()))?;
        let birth_certificate = BirthCertificate::parse(&certificate)?;
        if birth_certificate.role() != Role::Pat {
            return Err(EnrolmentError::NotAPat(birth_certificate.role()));
        }
        if opened.sender.public_key().as_ref() != Some(birth_certificate.public_key()) {
            return Err(EnrolmentError::SenderMismatch);
        }
        if wire.created.abs_diff(now) > MAX_CLOCK_SKEW_SECS {
            return Err(EnrolmentError::Stale {
                created: wire.created,
                now,
            });
        }
        check_name(&wire.tenant, "tenant")?;
        check_name(&wire.group, "group")?;
        wire.credential
            .check(&wire.tenant, &wire.group, birth_certificate.public_key())?;
        let mut nonce = [0u8; 16];
        hex::decode_to_slice(&wire.nonce, &mut nonce)
            .map_err(|e| EnrolmentError::Malformed(format!("nonce: {e}")))?;
        let mut signature = [0u8; 64];
        hex::decode_to_slice(&wire.possession, &mut signature)
            .map_err(|e| EnrolmentError::Malformed(format!("possession: {e}")))?;
        let possession =
            Signature::from_compact(&signature).map_err(|_| EnrolmentError::NoPossession)?;
        let digest = possession_digest(
            &nonce,
            wire.created,
            &wire.tenant,
            &wire.group,
            &wire.instruction_key,
            &tbs_key.public_key(),
        );
        birth_certificate
            .public_key()
            .verify_prehash(&digest, &possession)
            .map_err(|_| EnrolmentError::NoPossession)?;
        Ok(Self {
            birth_certificate,
            instruction_key: wire.instruction_key,
            tenant: wire.tenant,
            group: wire.group,
            credential: wire.credential,
            nonce,
            created: wire.created,
            possession,
        })
    }

    /// The device key.
    pub fn device(&self) -> &PublicKey {
        self.birth_certificate.public_key()
    }
}

fn check_name(name: &str, what: &'static str) -> Result<(), EnrolmentError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(EnrolmentError::InvalidName(what));
    }
    Ok(())
}

/// The device's signed anchoring transaction, on its way back to the TBS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAnchor {
    /// The device key (the envelope's sender).
    pub device: PublicKey,
    /// The signed transaction.
    pub tx: Transaction,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedAnchorWire {
    tx: String,
}

impl SignedAnchor {
    /// Seals the signed transaction to the TBS's envelope key.
    pub fn seal(
        &self,
        rng: &mut impl CryptoRngCore,
        tbs: &PublicKey,
    ) -> Result<SealedEnvelope, EnrolmentError> {
        let wire = SignedAnchorWire {
            tx: encode::serialize_hex(&self.tx),
        };
        let plaintext =
            serde_json::to_vec(&wire).map_err(|e| EnrolmentError::Malformed(e.to_string()))?;
        Ok(seal(
            rng,
            tbs,
            Purpose::SignedAnchorTx,
            &SenderId::from_public_key(&self.device),
            &plaintext,
        )?)
    }

    /// TBS side: opens the envelope. Whether the transaction is the one offered, signed by
    /// the device, is [`AnchorOffer::accept`](crate::anchor_offer::AnchorOffer::accept)'s
    /// check.
    pub fn open(tbs_key: &SecretKey, envelope: &SealedEnvelope) -> Result<Self, EnrolmentError> {
        let opened = open(tbs_key, Purpose::SignedAnchorTx, envelope)?;
        let device = opened
            .sender
            .public_key()
            .ok_or(EnrolmentError::SenderMismatch)?;
        let wire: SignedAnchorWire = serde_json::from_slice(&opened.plaintext)
            .map_err(|e| EnrolmentError::Malformed(e.to_string()))?;
        let tx = encode::deserialize_hex(&wire.tx)
            .map_err(|e| EnrolmentError::Malformed(format!("tx: {e}")))?;
        Ok(Self { device, tx })
    }
}

#[cfg(test)]
mod tests;
