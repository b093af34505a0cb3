//! What a TBS tells an enrolled device, and the device's check of every anchor in it.
//!
//! [`Instructions`] name the device's tenant and group, the group's revision (the
//! sequence number bound into the sealing, so an older set cannot be replayed), the
//! device's own anchor, and the D-TAs and IdP it must use with their anchor proofs. They
//! travel sealed under the device's instruction key
//! ([`seal_instructions`](crate::envelope::seal_instructions)). A device trusts none of it
//! until [`Instructions::verify`] has checked every proof by SPV against its header chain;
//! only then does it get [`VerifiedInstructions`], the value it may store and act on.
//!
//! A device is anchored one of two ways ([`DeviceAnchor`]): **directly**, by its own
//! signature in its own transaction (what ECDH-over-Bitcoin needs), or **in a batch**, as
//! one member of a [`Batch`](crate::batch::Batch) whose root the TBS anchored with its own
//! key. A batched device checks its membership proof from its certificate's digest to the
//! root, then the root's anchor (kind batch root, signed by the TBS key it verified).

use bitcoin::Txid;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use crate::batch::{BatchError, BatchMembershipProof};
use crate::birth_certificate::BirthCertificate;
use crate::digest::Digest;
use crate::envelope::{
    open_instructions, seal_instructions, EnvelopeError, InstructionKey, SealedInstructions,
};
use crate::keys::PublicKey;
use crate::payload::RecordKind;
use crate::proof::{
    AnchorProof, AnchorProofJson, Expected, HeaderChain, ProofError, VerifiedAnchor,
};

/// How the device's certificate is anchored. On the wire a JSON object tagged by `mode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeviceAnchor {
    /// By the device's own transaction, signed with its own key.
    Direct {
        /// The anchoring transaction.
        txid: Txid,
        /// Its proof.
        anchor_proof: AnchorProofJson,
    },
    /// As a member of a batch whose root the TBS anchored.
    Batch {
        /// The transaction anchoring the batch root.
        txid: Txid,
        /// The batch root.
        root: Digest,
        /// The device certificate's membership proof under `root`.
        membership: BatchMembershipProof,
        /// The anchor proof of `root`.
        anchor_proof: AnchorProofJson,
    },
}

impl DeviceAnchor {
    /// The anchoring transaction (the device's own, or its batch's).
    pub fn txid(&self) -> Txid {
        match self {
            Self::Direct { txid, .. } | Self::Batch { txid, .. } => *txid,
        }
    }

    /// The anchor proof of that transaction.
    pub fn anchor_proof(&self) -> &AnchorProofJson {
        match self {
            Self::Direct { anchor_proof, .. } | Self::Batch { anchor_proof, .. } => anchor_proof,
        }
    }

    /// Whether the device is anchored as a batch member.
    pub fn is_batched(&self) -> bool {
        matches!(self, Self::Batch { .. })
    }

    /// Verifies the anchor of `device`'s certificate against `headers`: its own record for
    /// a direct anchor; for a batch, the membership of its digest under the root, then the
    /// root's record, which `tbs` must have signed.
    pub fn verify(
        &self,
        device: &BirthCertificate,
        tbs: &PublicKey,
        headers: &impl HeaderChain,
    ) -> Result<VerifiedAnchor, InstructionsError> {
        let anchor_error = |source| InstructionsError::Anchor {
            what: "the device".into(),
            source,
        };
        let proof = AnchorProof::from_json(self.anchor_proof()).map_err(anchor_error)?;
        match self {
            Self::Direct { .. } => device.verify_anchor(&proof, headers).map_err(anchor_error),
            Self::Batch {
                root, membership, ..
            } => {
                membership
                    .verify(&device.digest(), root)
                    .map_err(InstructionsError::Membership)?;
                let expected = Expected {
                    kind: RecordKind::BatchRoot,
                    digest: *root,
                    signer: Some(*tbs),
                };
                proof.verify(&expected, headers).map_err(anchor_error)
            }
        }
    }
}

/// A party the device must use: where it is, which certificate it has, and that anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAnchor {
    /// Its base URL.
    pub url: String,
    /// The digest of its Birth Certificate (the device fetches the document from `url`
    /// and compares).
    pub birth_certificate: Digest,
    /// The anchor proof of that digest.
    pub anchor_proof: AnchorProofJson,
}

/// The instructions plaintext (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instructions {
    /// The device's tenant.
    pub tenant: String,
    /// Its group.
    pub group: String,
    /// The group's revision: also the sealing sequence number.
    pub revision: u64,
    /// The device's own anchor.
    pub device: DeviceAnchor,
    /// The D-TAs to collect key shares from.
    pub dtas: Vec<ServiceAnchor>,
    /// The identity provider to log in with.
    pub idp: Option<ServiceAnchor>,
}

/// Instructions whose every anchor verified; only [`Instructions::verify`] makes them.
#[derive(Debug, Clone)]
pub struct VerifiedInstructions {
    instructions: Instructions,
    device_anchor: VerifiedAnchor,
    services: Vec<VerifiedAnchor>,
}

/// Why instructions were refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstructionsError {
    /// They do not open under this key and these parties, or are malformed on the wire.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The plaintext is not instructions JSON.
    #[error("malformed instructions: {0}")]
    Malformed(String),
    /// The sealed sequence and the revision inside disagree.
    #[error("sealed as sequence {sealed} but say revision {revision}")]
    SequenceMismatch {
        /// The sequence bound in the sealing.
        sealed: u64,
        /// The revision in the plaintext.
        revision: u64,
    },
    /// The device's certificate is not a member of the batch its instructions name.
    #[error("the device is not in the batch: {0}")]
    Membership(#[source] BatchError),
    /// An anchor proof does not verify.
    #[error("anchor of {what} does not verify: {source}")]
    Anchor {
        /// Which anchor.
        what: String,
        /// Why.
        #[source]
        source: ProofError,
    },
}

impl Instructions {
    /// TBS side: seals the instructions for `device` (sequence = revision).
    pub fn seal(
        &self,
        rng: &mut impl CryptoRngCore,
        key: &InstructionKey,
        tbs: &PublicKey,
        device: &PublicKey,
    ) -> Result<SealedInstructions, InstructionsError> {
        let plaintext =
            serde_json::to_vec(self).map_err(|e| InstructionsError::Malformed(e.to_string()))?;
        Ok(seal_instructions(
            rng,
            key,
            tbs,
            device,
            self.revision,
            &plaintext,
        )?)
    }

    /// Device side: opens sealed instructions. Nothing in them is trusted yet.
    pub fn open(
        key: &InstructionKey,
        tbs: &PublicKey,
        device: &PublicKey,
        sealed: &SealedInstructions,
    ) -> Result<Self, InstructionsError> {
        let (sequence, plaintext) = open_instructions(key, tbs, device, sealed)?;
        let instructions: Self = serde_json::from_slice(&plaintext)
            .map_err(|e| InstructionsError::Malformed(e.to_string()))?;
        if instructions.revision != sequence {
            return Err(InstructionsError::SequenceMismatch {
                sealed: sequence,
                revision: instructions.revision,
            });
        }
        Ok(instructions)
    }

    /// Device side: verifies the device's own anchor ([`DeviceAnchor::verify`]; `tbs` is
    /// the key a batch root must be signed with) and every service's (a Birth Certificate
    /// record of the named digest) against `headers`.
    pub fn verify(
        self,
        device: &BirthCertificate,
        tbs: &PublicKey,
        headers: &impl HeaderChain,
    ) -> Result<VerifiedInstructions, InstructionsError> {
        let anchor_error = |what: String| move |source| InstructionsError::Anchor { what, source };
        let device_anchor = self.device.verify(device, tbs, headers)?;
        let mut services = Vec::new();
        for service in self.dtas.iter().chain(self.idp.iter()) {
            let what = format!("{} ({})", service.url, service.birth_certificate);
            let proof = AnchorProof::from_json(&service.anchor_proof)
                .map_err(anchor_error(what.clone()))?;
            let expected = Expected {
                kind: RecordKind::BirthCertificate,
                digest: service.birth_certificate,
                signer: None,
            };
            services.push(
                proof
                    .verify(&expected, headers)
                    .map_err(anchor_error(what))?,
            );
        }
        Ok(VerifiedInstructions {
            instructions: self,
            device_anchor,
            services,
        })
    }
}

impl VerifiedInstructions {
    /// The instructions.
    pub fn instructions(&self) -> &Instructions {
        &self.instructions
    }

    /// The device's verified anchor: its own transaction, or its batch root's.
    pub fn device_anchor(&self) -> &VerifiedAnchor {
        &self.device_anchor
    }

    /// The services' verified anchors, D-TAs first then the IdP, in order.
    pub fn service_anchors(&self) -> &[VerifiedAnchor] {
        &self.services
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;
    use bitcoin::hashes::Hash;
    use rand_core::OsRng;

    fn sample(revision: u64) -> Instructions {
        let proof = AnchorProofJson {
            version: crate::proof::PROOF_VERSION,
            tx: "00".into(),
            funding_tx: "00".into(),
            coinbase_tx: "00".into(),
            txoutproof: "00".into(),
        };
        Instructions {
            tenant: "acme".into(),
            group: "eu".into(),
            revision,
            device: DeviceAnchor::Direct {
                txid: Txid::from_byte_array([1; 32]),
                anchor_proof: proof.clone(),
            },
            dtas: vec![ServiceAnchor {
                url: "https://dta1.example".into(),
                birth_certificate: Digest::sha256(b"dta"),
                anchor_proof: proof,
            }],
            idp: None,
        }
    }

    fn parties() -> (InstructionKey, PublicKey, PublicKey) {
        let tbs = SecretKey::from_bytes(&[1; 32]).unwrap().public_key();
        let device = SecretKey::from_bytes(&[2; 32]).unwrap().public_key();
        (InstructionKey::generate(&mut OsRng), tbs, device)
    }

    #[test]
    fn instructions_round_trip_under_the_device_key_only() {
        let (key, tbs, device) = parties();
        let sealed = sample(3).seal(&mut OsRng, &key, &tbs, &device).unwrap();
        assert_eq!(sealed.sequence(), 3);
        assert_eq!(
            Instructions::open(&key, &tbs, &device, &sealed).unwrap(),
            sample(3)
        );
        let other = InstructionKey::generate(&mut OsRng);
        assert!(matches!(
            Instructions::open(&other, &tbs, &device, &sealed),
            Err(InstructionsError::Envelope(_))
        ));
        assert!(Instructions::open(&key, &device, &tbs, &sealed).is_err());
    }

    #[test]
    fn a_revision_that_disagrees_with_the_sealed_sequence_is_refused() {
        let (key, tbs, device) = parties();
        let plaintext = serde_json::to_vec(&sample(7)).unwrap();
        let sealed = seal_instructions(&mut OsRng, &key, &tbs, &device, 8, &plaintext).unwrap();
        assert!(matches!(
            Instructions::open(&key, &tbs, &device, &sealed),
            Err(InstructionsError::SequenceMismatch {
                sealed: 8,
                revision: 7
            })
        ));
    }

    #[test]
    fn malformed_plaintexts_are_refused() {
        let (key, tbs, device) = parties();
        for plaintext in [&b"nope"[..], b"{}", br#"{"tenant":"a","extra":1}"#] {
            let sealed = seal_instructions(&mut OsRng, &key, &tbs, &device, 1, plaintext).unwrap();
            assert!(matches!(
                Instructions::open(&key, &tbs, &device, &sealed),
                Err(InstructionsError::Malformed(_))
            ));
        }
    }
}

#[cfg(test)]
mod batch_tests;
