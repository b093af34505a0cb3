//! The baseline of `bench kex`: plain rustls TLS 1.3 on the same provider (ring) and
//! the same key type (P-256), with a certificate authority made once: server
//! authentication only, and mutual (the client presents a CA-issued certificate too),
//! which is what Milagro TLS is compared with, since both its sides authenticate.

use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Client and server configurations of one baseline.
pub struct PlainTls {
    /// The client side.
    pub client: Arc<ClientConfig>,
    /// The server side.
    pub server: Arc<ServerConfig>,
    /// The name the server's certificate is for.
    pub server_name: ServerName<'static>,
}

/// A certificate and its key, issued by the bench's CA.
struct Issued {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A CA and a server certificate; clients authenticate with a CA-issued certificate
/// when `mutual`.
pub fn configs(mutual: bool) -> Result<PlainTls> {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let issue = |name: &str| -> Result<Issued> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = CertificateParams::new(vec![name.to_owned()])?.signed_by(&key, &issuer)?;
        Ok(Issued {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    };
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).context("the CA certificate")?;
    let roots = Arc::new(roots);

    let server_cert = issue("localhost")?;
    let server_builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let server = if mutual {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider()).build()?;
        server_builder.with_client_cert_verifier(verifier)
    } else {
        server_builder.with_no_client_auth()
    }
    .with_single_cert(server_cert.chain, server_cert.key)?;

    let client_builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots);
    let client = if mutual {
        let client_cert = issue("client.localhost")?;
        client_builder.with_client_auth_cert(client_cert.chain, client_cert.key)?
    } else {
        client_builder.with_no_client_auth()
    };
    Ok(PlainTls {
        client: Arc::new(client),
        server: Arc::new(server),
        server_name: ServerName::try_from("localhost")?.to_owned(),
    })
}
