//! HTTPS fixtures: a test CA, the certificate and key files a service's `[tls]` section
//! names, and clients that trust that CA (or not), so tests can serve a real service over
//! HTTPS and connect with verification on.

use std::path::{Path, PathBuf};

use milagro_http_client::test_ca::{Leaf, TestCa};
use milagro_http_client::{ClientOptions, Outbound};

/// A CA, a leaf for `localhost` and `127.0.0.1` in `cert.pem` / `key.pem`, and the CA in
/// `ca.pem`, all in a temporary directory.
pub struct TestTls {
    /// The CA that signs the leaves.
    pub ca: TestCa,
    /// The leaf served now (as last written).
    pub leaf: Leaf,
    dir: tempfile::TempDir,
}

impl TestTls {
    /// A new CA and a first leaf (serial 1).
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("Milagro test CA");
        ca.write_bundle(&dir.path().join("ca.pem"));
        let leaf = ca.leaf(1);
        leaf.write(dir.path());
        Self { ca, leaf, dir }
    }

    /// The directory of the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA bundle (PEM).
    pub fn bundle(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The `[tls]` section serving the leaf.
    pub fn section(&self) -> String {
        format!(
            "[tls]\ncert = {:?}\nkey = {:?}\n",
            self.dir.path().join("cert.pem"),
            self.dir.path().join("key.pem")
        )
    }

    /// Replaces the files with a new leaf of the same CA (serial `serial`), as a renewal
    /// tool does; returns it.
    pub fn renew(&mut self, serial: u64) -> Leaf {
        self.leaf = self.ca.leaf(serial);
        self.leaf.write(self.dir.path());
        self.leaf.clone()
    }

    /// The outbound policy that trusts this CA only.
    pub fn outbound(&self) -> Outbound {
        Outbound::new(&ClientOptions::new(Some(&self.bundle()), false)).unwrap()
    }
}

impl Default for TestTls {
    fn default() -> Self {
        Self::new()
    }
}

/// The DER of the certificate `url` (an `https://` URL) serves, fetched on a new
/// connection by a client of `outbound`, or the error that client got.
pub fn served_certificate(outbound: &Outbound, url: &str) -> Result<Vec<u8>, reqwest::Error> {
    let client = outbound
        .builder()
        .tls_info(true)
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let response = client.get(url).send()?;
    Ok(response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec)
        .unwrap_or_default())
}

/// Whether `error` (or one of its sources) says the server's certificate was not trusted.
pub fn is_untrusted_certificate(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        let text = e.to_string();
        if text.contains("UnknownIssuer") || text.contains("invalid peer certificate") {
            return true;
        }
        source = e.source();
    }
    false
}
