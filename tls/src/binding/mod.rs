//! The certificate binding: how a throwaway TLS certificate names its owner's anchor.
//!
//! Each side of a Milagro TLS connection makes a fresh P-256 key and a self-signed
//! certificate for it. Nothing about that certificate is trusted except one extension,
//! [`BINDING_OID`], whose value is:
//!
//! ```text
//! MilagroAnchorBinding ::= SEQUENCE {
//!     version           INTEGER,       -- 1
//!     anchor            OCTET STRING,  -- 36 bytes: txid (internal byte order) ‖ input (u32 LE)
//!     birthCertificate  OCTET STRING,  -- the owner's Birth Certificate, RFC 8785 JSON, ≤ 8 KiB
//!     signature         OCTET STRING   -- 64 bytes: compact low-S ECDSA/secp256k1
//! }
//!
//! signature = Sign(certificate key of the Birth Certificate,
//!                  SHA-256("milagro-tls/binding/v1" ‖ 0x00 ‖ anchor ‖ BC digest ‖ SPKI))
//! ```
//!
//! where SPKI is the DER `SubjectPublicKeyInfo` of the throwaway certificate. The signature
//! is by the secp256k1 key the Birth Certificate names, so only that key's holder can bind
//! a TLS key to the certificate; TLS then proves possession of the TLS key. Whether the
//! anchor really anchors this certificate, is deep enough and is still current is checked
//! against the registry afterwards ([`crate::admission`]).
//!
//! The binding is encoded in DER (through `yasna`) and parsed strictly: exactly these four
//! fields, no trailing bytes, fixed lengths where the format has them.

use bitcoin::hashes::Hash as _;
use bitcoin::Txid;
use milagro_anchor::birth_certificate::{BcError, BirthCertificate};
use milagro_anchor::kex::AnchorRef;
use milagro_anchor::keys::{KeyError, SecretKey, Signature};
use sha2::{Digest as _, Sha256};

/// The extension's object identifier: `1.3.6.1.4.1.32473.1.1`.
///
/// Arc `1.3.6.1.4.1.32473` is the private enterprise number IANA reserves for
/// documentation (RFC 5612); the project has no enterprise number of its own yet, and the
/// UUID arc `2.25` cannot be used because `rcgen` takes 64-bit arcs. Changing it is a wire
/// change: `docs/adr/0005-milagro-tls.md`.
pub const BINDING_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 32473, 1, 1];

/// The binding format version this crate writes and reads.
pub const BINDING_VERSION: u32 = 1;

/// Largest Birth Certificate a binding may carry.
pub const MAX_BC_LEN: usize = 8 * 1024;

/// Domain separator of the binding signature.
const SIGNATURE_LABEL: &[u8] = b"milagro-tls/binding/v1";

/// A certificate binding: an anchor, the Birth Certificate it should anchor, and the
/// certificate key's signature over both and the TLS key.
#[derive(Debug, Clone)]
pub struct CertBinding {
    anchor: AnchorRef,
    bc: BirthCertificate,
    signature: Signature,
}

/// A binding whose signature was checked against a TLS key: the peer holds the secp256k1
/// key of `bc` and claims `anchor` as its anchor. Only [`CertBinding::verify`] makes one.
#[derive(Debug, Clone)]
pub struct BoundPeer {
    anchor: AnchorRef,
    bc: BirthCertificate,
}

/// Why a binding could not be made, read or verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// The DER does not have the binding's structure.
    #[error("malformed certificate binding: {0}")]
    Malformed(String),
    /// The version is one this crate does not read.
    #[error("certificate binding version {0} is not supported")]
    Version(u32),
    /// The Birth Certificate in the binding is not valid.
    #[error("the binding's birth certificate is invalid: {0}")]
    BirthCertificate(#[from] BcError),
    /// The signature is malformed or was not made by the certificate's key over this TLS key.
    #[error("the binding signature does not verify: {0}")]
    Signature(KeyError),
    /// The signing key is not the key the Birth Certificate names.
    #[error("the binding key is not the birth certificate's key")]
    KeyMismatch,
}

impl CertBinding {
    /// Binds the TLS key `spki` to `anchor` and `bc`, signing with `key` (the key `bc` names).
    pub fn sign(
        anchor: AnchorRef,
        bc: &BirthCertificate,
        key: &SecretKey,
        spki: &[u8],
    ) -> Result<Self, BindingError> {
        if key.public_key() != *bc.public_key() {
            return Err(BindingError::KeyMismatch);
        }
        let signature = key.sign_prehash(&signed_hash(&anchor, bc, spki));
        Ok(Self {
            anchor,
            bc: bc.clone(),
            signature,
        })
    }

    /// The DER encoding carried in the certificate extension.
    pub fn to_der(&self) -> Vec<u8> {
        let bc = self.bc.to_canonical_json();
        yasna::construct_der(|writer| {
            writer.write_sequence(|seq| {
                seq.next().write_u32(BINDING_VERSION);
                seq.next().write_bytes(&self.anchor.to_bytes());
                seq.next().write_bytes(&bc);
                seq.next().write_bytes(&self.signature.to_compact());
            })
        })
    }

    /// Reads a binding (the extension's value). Checks structure and the certificate's own
    /// signature, not the binding signature: see [`Self::verify`].
    pub fn from_der(der: &[u8]) -> Result<Self, BindingError> {
        let malformed = |e: yasna::ASN1Error| BindingError::Malformed(format!("{e:?}"));
        let (version, anchor, bc, signature) = yasna::parse_der(der, |reader| {
            reader.read_sequence(|seq| {
                let version = seq.next().read_u32()?;
                let anchor = seq.next().read_bytes()?;
                let bc = seq.next().read_bytes()?;
                let signature = seq.next().read_bytes()?;
                Ok((version, anchor, bc, signature))
            })
        })
        .map_err(malformed)?;
        if version != BINDING_VERSION {
            return Err(BindingError::Version(version));
        }
        let anchor = parse_anchor(&anchor)?;
        if bc.len() > MAX_BC_LEN {
            return Err(BindingError::Malformed(format!(
                "birth certificate of {} bytes exceeds {MAX_BC_LEN}",
                bc.len()
            )));
        }
        let bc = BirthCertificate::parse(&bc)?;
        let signature = Signature::from_compact(&signature).map_err(BindingError::Signature)?;
        Ok(Self {
            anchor,
            bc,
            signature,
        })
    }

    /// Checks that the Birth Certificate's key signed this binding for the TLS key `spki`.
    pub fn verify(self, spki: &[u8]) -> Result<BoundPeer, BindingError> {
        self.bc
            .public_key()
            .verify_prehash(&signed_hash(&self.anchor, &self.bc, spki), &self.signature)
            .map_err(BindingError::Signature)?;
        Ok(BoundPeer {
            anchor: self.anchor,
            bc: self.bc,
        })
    }
}

impl BoundPeer {
    /// The anchor the peer claims.
    pub fn anchor(&self) -> AnchorRef {
        self.anchor
    }

    /// The peer's Birth Certificate (self-signed; not yet checked against the chain).
    pub fn birth_certificate(&self) -> &BirthCertificate {
        &self.bc
    }
}

fn signed_hash(anchor: &AnchorRef, bc: &BirthCertificate, spki: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(SIGNATURE_LABEL);
    hash.update([0u8]);
    hash.update(anchor.to_bytes());
    hash.update(bc.digest().as_bytes());
    hash.update(spki);
    hash.finalize().into()
}

fn parse_anchor(bytes: &[u8]) -> Result<AnchorRef, BindingError> {
    let bytes: &[u8; AnchorRef::LEN] = bytes.try_into().map_err(|_| {
        BindingError::Malformed(format!(
            "anchor of {} bytes, expected {}",
            bytes.len(),
            AnchorRef::LEN
        ))
    })?;
    let (txid, input) = bytes.split_at(32);
    let txid: [u8; 32] = txid
        .try_into()
        .map_err(|_| BindingError::Malformed("anchor txid".into()))?;
    let input: [u8; 4] = input
        .try_into()
        .map_err(|_| BindingError::Malformed("anchor input".into()))?;
    Ok(AnchorRef::new(
        Txid::from_byte_array(txid),
        u32::from_le_bytes(input),
    ))
}

#[cfg(test)]
mod tests;
