//! A certificate authority for tests (feature `test-ca`): a self-signed CA and leaf
//! certificates it signs for `localhost` and `127.0.0.1`, as PEM files a service's
//! `[tls]` section and a client's CA bundle read. Never for production: the keys are made
//! in memory and written unprotected.
#![allow(clippy::expect_used)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A CA: its certificate (PEM) and what signs with it.
pub struct TestCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A leaf certificate and its key, as PEM.
#[derive(Clone)]
pub struct Leaf {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PKCS#8 PEM).
    pub key_pem: String,
    /// The certificate (DER), to compare with what a server serves.
    pub der: Vec<u8>,
}

impl TestCa {
    /// A new CA called `name`.
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("a P-256 key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("a self-signed CA");
        Self {
            pem: pem("CERTIFICATE", cert.der()),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA's certificate (PEM): a client's CA bundle.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Writes the CA's certificate to `path`.
    pub fn write_bundle(&self, path: &Path) {
        std::fs::write(path, &self.pem).expect("the CA bundle is written");
    }

    /// A server certificate for `localhost` and `127.0.0.1` with serial `serial`.
    pub fn leaf(&self, serial: u64) -> Leaf {
        self.leaf_for(&["localhost", "127.0.0.1"], serial)
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn leaf_for(&self, names: &[&str], serial: u64) -> Leaf {
        let key = KeyPair::generate().expect("a P-256 key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("leaf parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "milagro test service");
        params.serial_number = Some(serial.into());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).expect("a leaf");
        Leaf {
            cert_pem: pem("CERTIFICATE", cert.der()),
            key_pem: pem("PRIVATE KEY", &key.serialize_der()),
            der: cert.der().to_vec(),
        }
    }
}

impl Leaf {
    /// Writes `cert.pem` and `key.pem` in `dir` (replacing them by rename, as a renewal
    /// tool does); returns their paths.
    pub fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        for (path, text) in [(&key, &self.key_pem), (&cert, &self.cert_pem)] {
            let temporary = path.with_extension("tmp");
            std::fs::write(&temporary, text).expect("a PEM file is written");
            std::fs::rename(&temporary, path).expect("a PEM file is renamed");
        }
        (cert, key)
    }
}

/// `der` as a PEM block labelled `label`.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}
