//! The rustls verifiers: accept a certificate only for its anchor binding.
//!
//! One [`BindingVerifier`] serves one connection, on either side. It checks what the
//! certificate proves by itself ([`crate::admission::check_certificate`]) and keeps the
//! verdict, so that after the handshake the caller takes the bound peer (or the typed
//! reason it was refused) instead of rustls's generic error. TLS 1.2 is never offered
//! (the configs are TLS 1.3 only), so its signature check refuses.

use std::sync::{Arc, Mutex, PoisonError};

use milagro_anchor::digest::Digest;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature_with_raw_key, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, SignatureScheme,
};

use crate::admission::{check_certificate, Refusal};
use crate::binding::BoundPeer;
use crate::certificate::{read_peer, spki_of};

/// Checks one peer certificate and remembers the verdict.
#[derive(Debug)]
pub(crate) struct BindingVerifier {
    expected: Option<Digest>,
    algorithms: WebPkiSupportedAlgorithms,
    verdict: Mutex<Option<Result<BoundPeer, Refusal>>>,
}

impl BindingVerifier {
    /// A verifier that wants the party of certificate `expected`, or any anchored party.
    pub(crate) fn new(expected: Option<Digest>, algorithms: WebPkiSupportedAlgorithms) -> Self {
        Self {
            expected,
            algorithms,
            verdict: Mutex::new(None),
        }
    }

    /// The verdict on the peer's certificate, once the handshake got that far.
    pub(crate) fn take_verdict(&self) -> Option<Result<BoundPeer, Refusal>> {
        self.verdict
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn check(&self, end_entity: &CertificateDer<'_>, intermediates: usize) -> Result<(), Error> {
        let verdict = if intermediates != 0 {
            Err(Refusal::Certificate(
                "a milagro certificate is self-signed: no chain".into(),
            ))
        } else {
            read_peer(end_entity)
                .and_then(|peer| peer.binding.verify(&peer.spki))
                .map_err(|e| Refusal::Certificate(e.to_string()))
                .and_then(|bound| check_certificate(&bound, self.expected).map(|()| bound))
        };
        let outcome = match &verdict {
            Ok(_) => Ok(()),
            Err(refusal) => Err(Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(RefusalMessage(refusal.to_string()))),
            ))),
        };
        *self.verdict.lock().unwrap_or_else(PoisonError::into_inner) = Some(verdict);
        outcome
    }

    fn tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let spki =
            spki_of(cert).map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(spki.as_slice()),
            dss,
            &self.algorithms,
        )
    }
}

/// Milagro TLS is TLS 1.3 only; rustls never asks for a 1.2 signature under its configs.
fn tls12_refused() -> Error {
    Error::General("milagro tls is tls 1.3 only".into())
}

/// A refusal as rustls carries it (it needs an owned `std::error::Error`).
#[derive(Debug)]
struct RefusalMessage(String);

impl std::fmt::Display for RefusalMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RefusalMessage {}

impl ServerCertVerifier for BindingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.check(end_entity, intermediates.len())
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for BindingVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.check(end_entity, intermediates.len())
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
