//! Throwaway certificates: made fresh for every connection, read back by the peer.

use rcgen::{CertificateParams, CustomExtension, KeyPair, PublicKeyData as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::binding::{BindingError, CertBinding, BINDING_OID};
use crate::LocalIdentity;

/// A self-signed certificate for a fresh P-256 key, carrying the local party's binding.
pub(crate) struct Throwaway {
    pub(crate) certificate: CertificateDer<'static>,
    pub(crate) key: PrivateKeyDer<'static>,
}

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// `rcgen` failed to make the key or the certificate.
    #[error("making the throwaway certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// The local identity cannot sign a binding (its key is not its certificate's).
    #[error(transparent)]
    Binding(#[from] BindingError),
}

/// Makes the certificate for one connection.
pub(crate) fn throwaway(local: &LocalIdentity) -> Result<Throwaway, CertificateError> {
    let key_pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let binding = CertBinding::sign(
        local.party().party().anchor(),
        local.birth_certificate(),
        local.key(),
        &key_pair.subject_public_key_info(),
    )?;
    // Not marked critical: rustls checks that a certificate matches its key with webpki,
    // which refuses unknown critical extensions. Nothing is lost: no verifier but ours
    // ever sees these certificates, and ours refuses any certificate without a binding.
    let extension = CustomExtension::from_oid_content(BINDING_OID, binding.to_der());
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.custom_extensions.push(extension);
    let certificate = params.self_signed(&key_pair)?;
    Ok(Throwaway {
        certificate: certificate.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der())),
    })
}

/// What a peer's certificate says: its TLS key and its binding (not yet verified).
pub(crate) struct PeerCertificate {
    /// DER `SubjectPublicKeyInfo` of the TLS key.
    pub(crate) spki: Vec<u8>,
    pub(crate) binding: CertBinding,
}

/// Reads a peer's certificate: one X.509 certificate, nothing after it, exactly one
/// binding extension.
pub(crate) fn read_peer(der: &[u8]) -> Result<PeerCertificate, BindingError> {
    let (rest, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| BindingError::Malformed(format!("certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(BindingError::Malformed(
            "bytes after the certificate".into(),
        ));
    }
    let mut bindings = certificate.extensions().iter().filter(|extension| {
        extension
            .oid
            .iter()
            .is_some_and(|arcs| arcs.eq(BINDING_OID.iter().copied()))
    });
    let extension = bindings.next().ok_or_else(|| {
        BindingError::Malformed("the certificate has no milagro binding extension".into())
    })?;
    if bindings.next().is_some() {
        return Err(BindingError::Malformed(
            "the certificate has two milagro binding extensions".into(),
        ));
    }
    Ok(PeerCertificate {
        spki: certificate.public_key().raw.to_vec(),
        binding: CertBinding::from_der(extension.value)?,
    })
}

/// The TLS key of a certificate already accepted by [`read_peer`].
pub(crate) fn spki_of(der: &[u8]) -> Result<Vec<u8>, BindingError> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| BindingError::Malformed(format!("certificate: {e}")))?;
    Ok(certificate.public_key().raw.to_vec())
}
