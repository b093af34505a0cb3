//! Admitting a peer: what the registry must say about the anchor a certificate claims.
//!
//! The TLS verifiers check only what the certificate itself proves (the binding signature,
//! the Birth Certificate's own signature and status, the expected peer). They do no I/O,
//! because rustls calls them inside the handshake. Right after the handshake, before any
//! key agreement message, each side asks a [`PeerDirectory`] for the claimed anchor and
//! `admit` decides; a refused peer gets a refusal frame and the connection is closed.

use bitcoin::Txid;
use milagro_anchor::birth_certificate::{BirthCertificate, Status};
use milagro_anchor::digest::Digest;
use milagro_anchor::kex::Party;
use milagro_anchor::payload::RecordKind;
use milagro_anchor::proof::VerifiedAnchor;

use crate::binding::BoundPeer;

/// Where a party looks up the anchors its peers claim: the local registry index, or a TBS
/// whose answers are checked by SPV. Implementations do blocking I/O; they are called on a
/// blocking thread.
pub trait PeerDirectory: Send + Sync {
    /// The standing of the record anchored by transaction `txid`.
    fn standing(&self, txid: Txid) -> Result<Standing, DirectoryError>;
}

/// What the registry says about an anchor.
#[derive(Debug, Clone)]
pub struct Standing {
    /// The record, verified by SPV against headers the directory trusts (its depth is
    /// counted from that chain's tip).
    pub anchor: VerifiedAnchor,
    /// A later Birth Certificate record anchored by the same key, if any: the peer's
    /// certificate was replaced (updated, retired or declared compromised).
    pub superseded_by: Option<Txid>,
}

/// Why a directory could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// No block holds a record in that transaction (unknown, unconfirmed or reorged away).
    #[error("transaction {0} anchors no record in the chain")]
    NotAnchored(Txid),
    /// The directory's answer did not verify.
    #[error("the directory's answer for {txid} does not verify: {reason}")]
    Invalid {
        /// The transaction asked about.
        txid: Txid,
        /// What failed.
        reason: String,
    },
    /// The directory could not be reached or failed.
    #[error("the directory is unavailable: {0}")]
    Unavailable(String),
}

/// Why a peer was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The peer's certificate or binding is invalid.
    #[error("bad certificate: {0}")]
    Certificate(String),
    /// The peer's Birth Certificate is not active.
    #[error("the peer's birth certificate is {0}")]
    Status(Status),
    /// The peer is a valid party, but not the one expected.
    #[error("expected the party of birth certificate {expected}, the peer is {found}")]
    UnexpectedPeer {
        /// Whom the caller asked for.
        expected: Digest,
        /// Who answered.
        found: Digest,
    },
    /// The claimed anchor could not be established: not in the chain (unknown,
    /// unconfirmed, reorged away) or the directory failed (fail closed).
    #[error("the peer's anchor: {0}")]
    Anchor(DirectoryError),
    /// The claimed anchor is in the chain but not deep enough.
    #[error("the peer's anchor has {depth} confirmations, {required} required")]
    Unconfirmed {
        /// Its confirmations.
        depth: u32,
        /// The minimum.
        required: u32,
    },
    /// The claimed anchor anchors something else (another digest, kind, key or input).
    #[error("the anchor {anchor} does not anchor the peer's birth certificate: {reason}")]
    WrongAnchor {
        /// The claimed anchor, `txid:input`.
        anchor: String,
        /// What differs.
        reason: &'static str,
    },
    /// A later Birth Certificate of the same key exists.
    #[error("the peer's birth certificate was superseded by the record in {0}")]
    Superseded(Txid),
    /// The key agreement's messages were refused (bad proof, wrong protocol, bad framing).
    #[error("key agreement refused: {0}")]
    KeyAgreement(String),
}

/// A peer whose certificate, anchor and standing all passed.
#[derive(Debug, Clone)]
pub struct AdmittedPeer {
    bc: BirthCertificate,
    anchor: VerifiedAnchor,
}

impl AdmittedPeer {
    /// The peer's Birth Certificate.
    pub fn birth_certificate(&self) -> &BirthCertificate {
        &self.bc
    }

    /// Its anchor, as the directory proved it.
    pub fn anchor(&self) -> &VerifiedAnchor {
        &self.anchor
    }

    /// Its key-agreement identity.
    pub fn party(&self) -> Party {
        Party::from_verified(&self.anchor)
    }
}

/// The checks of the certificate alone (run inside the TLS handshake).
pub(crate) fn check_certificate(peer: &BoundPeer, expected: Option<Digest>) -> Result<(), Refusal> {
    let bc = peer.birth_certificate();
    if bc.status() != Status::Active {
        return Err(Refusal::Status(bc.status()));
    }
    match expected {
        Some(expected) if expected != bc.digest() => Err(Refusal::UnexpectedPeer {
            expected,
            found: bc.digest(),
        }),
        _ => Ok(()),
    }
}

/// The checks against the registry's answer.
pub(crate) fn admit(
    peer: BoundPeer,
    standing: Result<Standing, DirectoryError>,
    min_depth: u32,
) -> Result<AdmittedPeer, Refusal> {
    let standing = standing.map_err(Refusal::Anchor)?;
    let claimed = peer.anchor();
    let bc = peer.birth_certificate();
    let anchor = standing.anchor;
    let wrong = |reason| Refusal::WrongAnchor {
        anchor: claimed.to_string(),
        reason,
    };
    if anchor.txid() != claimed.txid() {
        return Err(wrong("the directory answered for another transaction"));
    }
    // Records are signed on the first input (anchor::record), so that is where the nonce is.
    if claimed.input() != 0 {
        return Err(wrong("a record's signature is on input 0"));
    }
    if anchor.kind() != RecordKind::BirthCertificate {
        return Err(wrong("the record is not a birth certificate"));
    }
    if anchor.digest() != bc.digest() {
        return Err(wrong("the record anchors another digest"));
    }
    if anchor.signer() != *bc.public_key() {
        return Err(wrong("the record is signed by another key"));
    }
    if anchor.depth() < min_depth {
        return Err(Refusal::Unconfirmed {
            depth: anchor.depth(),
            required: min_depth,
        });
    }
    if let Some(later) = standing.superseded_by {
        return Err(Refusal::Superseded(later));
    }
    Ok(AdmittedPeer {
        bc: peer.birth_certificate().clone(),
        anchor,
    })
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::Hash as _;
    use milagro_anchor::birth_certificate::{BcFields, Role, VERSION};
    use milagro_anchor::kex::AnchorRef;
    use milagro_anchor::keys::SecretKey;
    use milagro_anchor::purpose_keys::PurposeKeys;

    use super::*;
    use crate::binding::CertBinding;

    fn bound(status: Status) -> BoundPeer {
        let key = SecretKey::from_bytes(&[5; 32]).unwrap();
        let bc = BirthCertificate::sign(
            BcFields {
                version: VERSION,
                role: Role::Dta,
                name: "D-TA".into(),
                endpoints: vec![],
                created: 1_700_000_000,
                public_key: key.public_key(),
                status,
                previous: None,
                keys: PurposeKeys::derive(Role::Dta, &key).unwrap(),
            },
            &key,
        )
        .unwrap();
        let anchor = AnchorRef::new(Txid::from_byte_array([1; 32]), 0);
        CertBinding::sign(anchor, &bc, &key, b"spki")
            .unwrap()
            .verify(b"spki")
            .unwrap()
    }

    #[test]
    fn only_an_active_certificate_of_the_expected_party_passes() {
        let active = bound(Status::Active);
        let digest = active.birth_certificate().digest();
        assert!(check_certificate(&active, None).is_ok());
        assert!(check_certificate(&active, Some(digest)).is_ok());
        let other = Digest::sha256(b"another party");
        assert!(matches!(
            check_certificate(&active, Some(other)),
            Err(Refusal::UnexpectedPeer { expected, found }) if expected == other && found == digest
        ));
        for status in [Status::Compromised, Status::Retired] {
            assert!(matches!(
                check_certificate(&bound(status), None),
                Err(Refusal::Status(s)) if s == status
            ));
        }
    }
}
