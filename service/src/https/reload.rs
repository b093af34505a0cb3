//! The certificate a listener serves, swapped in place when its files change.
//!
//! rustls asks a [`ResolvesServerCert`] for the certificate of every handshake, so the
//! resolver here holds the last good chain and key behind a lock and [`ServerTls::reload`]
//! replaces them: connections already open keep the session they have, new ones get the
//! new certificate. Nothing is restarted and no listener is rebound.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize as _, Zeroizing};

use super::TlsSettings;

/// How often the certificate and key files are read to see whether they changed. Two
/// small files every few seconds cost nothing, and a renewal is served within seconds.
pub const RELOAD_POLL: Duration = Duration::from_secs(2);

/// Why the certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable certificate chain or private key.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong (never the key's bytes).
        reason: String,
    },
    /// The key is not the key of the chain's first certificate.
    #[error("the key in {} is not the key of the certificate in {}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: std::path::PathBuf,
        /// The key file.
        key: std::path::PathBuf,
    },
    /// rustls refused the configuration.
    #[error("cannot configure TLS: {0}")]
    Config(String),
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reloaded {
    /// The files were the ones already served.
    Unchanged,
    /// A new certificate is served from now on.
    Replaced,
}

/// The certificate served now.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// A listener's HTTPS: its settings, the certificate served, and the digest of the files
/// last looked at. Clones share all three.
#[derive(Debug, Clone)]
pub struct ServerTls {
    settings: TlsSettings,
    current: Arc<Current>,
    /// SHA-256 of the certificate and key files last loaded or last refused, so that a
    /// broken renewal is warned about once, not at every poll.
    seen: Arc<Mutex<[u8; 32]>>,
}

impl ServerTls {
    /// Reads the certificate chain and key of `settings`; fails if they do not make a
    /// usable pair.
    pub fn load(settings: &TlsSettings) -> Result<Self, TlsError> {
        let files = Files::read(settings)?;
        let certified = files.certified_key(settings)?;
        Ok(Self {
            settings: settings.clone(),
            current: Arc::new(Current(RwLock::new(Arc::new(certified)))),
            seen: Arc::new(Mutex::new(files.digest)),
        })
    }

    /// The rustls configuration of the listener: ring provider, TLS 1.2 and 1.3, no
    /// client authentication, the certificate from this resolver (actix sets ALPN).
    pub fn server_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.current.clone()))
    }

    /// The DER of the certificate served now (the chain's first).
    pub fn served_certificate(&self) -> Vec<u8> {
        let current = self
            .current
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        current.cert.first().map(|c| c.to_vec()).unwrap_or_default()
    }

    /// Reads the files again and serves them if they differ from what is served; on any
    /// error the old certificate stays.
    pub fn reload(&self) -> Result<Reloaded, TlsError> {
        let files = Files::read(&self.settings)?;
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let served = self.served_certificate();
        if files.digest == *seen && files.chain.first().map(|c| c.as_ref()) == Some(&served[..]) {
            return Ok(Reloaded::Unchanged);
        }
        *seen = files.digest;
        let certified = files.certified_key(&self.settings)?;
        *self
            .current
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(certified);
        Ok(Reloaded::Replaced)
    }

    /// Whether the files differ from the ones last looked at (read errors count as no
    /// change: a renewal may be half written; the next poll sees the result).
    pub(crate) fn changed(&self) -> bool {
        match Files::digest(&self.settings) {
            Ok(digest) => digest != *self.seen.lock().unwrap_or_else(PoisonError::into_inner),
            Err(_) => false,
        }
    }

    /// Reloads when the files change (every [`RELOAD_POLL`]) and, with `on_sighup`, on
    /// every SIGHUP; runs until dropped (with the server's actix system). Reading two
    /// small files is done on the system's thread: it takes microseconds.
    pub async fn watch(self, on_sighup: bool) {
        let mut hangups = if on_sighup {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::hangup()) {
                Ok(hangups) => Some(hangups),
                Err(error) => {
                    tracing::warn!(%error, "cannot handle SIGHUP: certificates reload on file change only");
                    None
                }
            }
        } else {
            None
        };
        let mut tick = tokio::time::interval(RELOAD_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let hangup = match hangups.as_mut() {
                Some(hangups) => tokio::select! {
                    _ = tick.tick() => false,
                    got = hangups.recv() => got.is_some(),
                },
                None => {
                    tick.tick().await;
                    false
                }
            };
            if hangup || self.changed() {
                self.log_reload(hangup);
            }
        }
    }

    fn log_reload(&self, hangup: bool) {
        let cert = self.settings.cert.display();
        let trigger = if hangup { "SIGHUP" } else { "file change" };
        match self.reload() {
            Ok(Reloaded::Replaced) => {
                let served = hex::encode(&Sha256::digest(self.served_certificate())[..8]);
                tracing::info!(%cert, %served, trigger, "serving a new TLS certificate");
            }
            Ok(_) if hangup => tracing::info!(%cert, "SIGHUP: the TLS certificate is unchanged"),
            Ok(_) => {}
            Err(error) => tracing::warn!(
                %cert,
                %error,
                trigger,
                "the new TLS certificate or key is not usable; still serving the previous one"
            ),
        }
    }
}

/// The two files as read: the chain, the key's PEM (zeroized on drop), and their digest.
struct Files {
    chain: Vec<CertificateDer<'static>>,
    key_pem: Zeroizing<Vec<u8>>,
    digest: [u8; 32],
}

fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
}

impl Files {
    fn digest(settings: &TlsSettings) -> Result<[u8; 32], TlsError> {
        let cert = read(&settings.cert)?;
        let key = read(&settings.key)?;
        Ok(Self::digest_of(&cert, &key))
    }

    fn digest_of(cert: &[u8], key: &[u8]) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update((cert.len() as u64).to_be_bytes());
        hash.update(cert);
        hash.update(key);
        hash.finalize().into()
    }

    fn read(settings: &TlsSettings) -> Result<Self, TlsError> {
        let cert_pem = read(&settings.cert)?;
        let key_pem = read(&settings.key)?;
        let invalid = |reason: String| TlsError::Invalid {
            path: settings.cert.clone(),
            reason,
        };
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("not a PEM certificate chain: {e}")))?;
        if chain.is_empty() {
            return Err(invalid("holds no CERTIFICATE block".into()));
        }
        Ok(Self {
            digest: Self::digest_of(&cert_pem, &key_pem),
            chain,
            key_pem,
        })
    }

    /// The chain with its key, loaded by the ring provider; the key's DER is zeroized
    /// once ring holds it.
    fn certified_key(&self, settings: &TlsSettings) -> Result<CertifiedKey, TlsError> {
        let invalid = |reason: &str| TlsError::Invalid {
            path: settings.key.clone(),
            reason: reason.to_owned(),
        };
        // The parse error is not shown: it could quote bytes of the key.
        let mut key = PrivateKeyDer::from_pem_slice(&self.key_pem)
            .map_err(|_| invalid("holds no PEM private key (PKCS#8, PKCS#1 or SEC1)"))?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&key);
        key.zeroize();
        let signing = signing.map_err(|_| invalid("a private key ring cannot use"))?;
        let certified = CertifiedKey::new(self.chain.clone(), signing);
        match certified.keys_match() {
            // As rustls's own `CertifiedKey::from_der`: a key that cannot tell its public
            // half is not refused for that.
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
                Ok(certified)
            }
            Err(_) => Err(TlsError::KeyMismatch {
                cert: settings.cert.clone(),
                key: settings.key.clone(),
            }),
        }
    }
}
