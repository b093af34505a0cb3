//! Every outbound HTTP client of Milagro Trust is built here, so that they all follow one
//! rule (ADR 0014):
//!
//! - `https://` is verified (chain and host name, webpki) against the system's roots
//!   ([`Roots::System`], read with `rustls-native-certs`) or, when the operator names one,
//!   against a CA bundle only ([`Roots::Bundle`], PEM); the TLS stack is rustls with the
//!   `ring` provider, like Milagro TLS, so no second crypto library is built;
//! - plain `http://` is allowed only to a loopback host (`localhost`, `127.0.0.0/8`,
//!   `::1`) unless [`ClientOptions::allow_plain_http`] says otherwise; any other URL is
//!   refused with [`ClientError::PlainHttpRefused`] before a byte is sent
//!   ([`Outbound::check_url`]), and redirects obey the same rule.
//!
//! [`Outbound::builder`] gives a `reqwest` blocking client builder with that TLS
//! configuration and redirect policy; callers add their timeouts. reqwest is built with
//! `rustls-no-provider`: a client built any other way has no crypto provider and fails,
//! so clippy's `disallowed-methods` (workspace `clippy.toml`) keeps every client coming
//! from here.
//!
//! [`test_ca`] (feature `test-ca`) makes a CA and server certificates for tests.
//!
//! It does not pin certificates, check revocation (no CRL or OCSP: renewals are short,
//! as with the web's CAs), or give any client authentication; what a service believes of
//! a Milagro party still rests on its anchor, not on the channel.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

/// How many redirects a client follows at most (reqwest's default too).
pub const MAX_REDIRECTS: usize = 10;

/// Why a client could not be made, or a URL is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The CA bundle could not be read or holds no usable certificate.
    #[error("CA bundle {}: {reason}", path.display())]
    CaBundle {
        /// The bundle.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An `https://` URL while the system has no root certificates to verify it with.
    #[error(
        "cannot verify {url}: no system root certificates were found ({reason}); \
         install the system's CA certificates or give a CA bundle (--ca-bundle)"
    )]
    NoSystemRoots {
        /// The URL.
        url: String,
        /// What loading them said.
        reason: String,
    },
    /// A plain `http://` URL to a host that is not loopback, without the explicit
    /// permission: its answers could be read and changed by anyone on the path.
    #[error(
        "{url}: plain http:// is allowed only to a loopback host; use https:// \
         (or allow plain http explicitly in the configuration)"
    )]
    PlainHttpRefused {
        /// The URL.
        url: String,
    },
    /// Not an `http://` or `https://` URL with a host.
    #[error("{url:?} is not an http:// or https:// URL with a host")]
    NotHttp {
        /// The URL.
        url: String,
    },
    /// reqwest refused the configuration.
    #[error("cannot build an HTTP client: {0}")]
    Build(String),
}

/// The certificates a server's chain must lead to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Roots {
    /// The operating system's store (on Linux the OpenSSL locations, or `SSL_CERT_FILE` /
    /// `SSL_CERT_DIR`): what the operator already manages for every other program.
    #[default]
    System,
    /// Only the certificates of this PEM file (a private CA, a test CA).
    Bundle(PathBuf),
}

/// What a deployment says about its outbound HTTP (a `--ca-bundle` flag, a
/// `ca_bundle`/`allow_plain_http` configuration key).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Whose certificates to trust.
    pub roots: Roots,
    /// Plain `http://` to hosts other than loopback (an operator's explicit choice, e.g.
    /// behind a TLS-terminating sidecar on a private network).
    pub allow_plain_http: bool,
}

impl ClientOptions {
    /// The options of a `ca_bundle` path (none: the system's roots) and the flag.
    pub fn new(ca_bundle: Option<&Path>, allow_plain_http: bool) -> Self {
        Self {
            roots: ca_bundle.map_or(Roots::System, |path| Roots::Bundle(path.to_path_buf())),
            allow_plain_http,
        }
    }
}

/// The outbound policy of one deployment, ready to build clients with. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbound {
    tls: Arc<rustls::ClientConfig>,
    /// Why https cannot be verified (no system roots), if so.
    no_roots: Option<String>,
    allow_plain_http: bool,
}

impl Outbound {
    /// The system's roots, plain HTTP to loopback only: the default of every client.
    /// Without system roots it still builds (loopback needs none), and refuses every
    /// `https://` URL with [`ClientError::NoSystemRoots`].
    pub fn system() -> Result<Self, ClientError> {
        let (roots, no_roots) = system_roots();
        Ok(Self {
            tls: client_config(roots)?,
            no_roots,
            allow_plain_http: false,
        })
    }

    /// The policy `options` describe; reads the CA bundle if there is one.
    pub fn new(options: &ClientOptions) -> Result<Self, ClientError> {
        let mut outbound = match &options.roots {
            Roots::System => Self::system()?,
            Roots::Bundle(path) => Self {
                tls: client_config(Arc::new(read_bundle(path)?))?,
                no_roots: None,
                allow_plain_http: false,
            },
        };
        outbound.allow_plain_http = options.allow_plain_http;
        Ok(outbound)
    }

    /// Whether plain `http://` to other hosts than loopback is allowed.
    pub fn allows_plain_http(&self) -> bool {
        self.allow_plain_http
    }

    /// The rustls client configuration (ring provider, the roots, HTTP/1.1 by ALPN), for
    /// a client that is not reqwest.
    pub fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        self.tls.clone()
    }

    /// Whether a request may be sent to `url` (see the module documentation).
    pub fn check_url(&self, url: &str) -> Result<(), ClientError> {
        if check_scheme(url, self.allow_plain_http)? == Scheme::Https {
            if let Some(reason) = &self.no_roots {
                return Err(ClientError::NoSystemRoots {
                    url: url.into(),
                    reason: reason.clone(),
                });
            }
        }
        Ok(())
    }

    /// A blocking client builder with this TLS configuration, and a redirect policy that
    /// follows at most [`MAX_REDIRECTS`] redirects, each to a URL [`Self::check_url`]
    /// accepts. Callers still check their own base URL with [`Self::check_url`].
    pub fn builder(&self) -> reqwest::blocking::ClientBuilder {
        let policy = self.clone();
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error("too many redirects");
            }
            match policy.check_url(attempt.url().as_str()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        });
        #[allow(clippy::disallowed_methods)] // the one place clients are made
        let builder = reqwest::blocking::Client::builder();
        builder
            .tls_backend_preconfigured((*self.tls).clone())
            .redirect(redirect)
    }

    /// [`Self::builder`] built as is.
    pub fn client(&self) -> Result<reqwest::blocking::Client, ClientError> {
        self.builder()
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))
    }
}

/// The scheme of a URL [`check_scheme`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// `https://`.
    Https,
    /// `http://`, to loopback or allowed.
    Http,
}

/// The plain-HTTP rule alone, without reading any roots (for configuration checks): an
/// `https://` URL with a host, or an `http://` one to loopback or with `allow_plain_http`.
pub fn check_scheme(url: &str, allow_plain_http: bool) -> Result<Scheme, ClientError> {
    let not_http = || ClientError::NotHttp { url: url.into() };
    let parsed = reqwest::Url::parse(url).map_err(|_| not_http())?;
    let host = parsed.host().ok_or_else(not_http)?;
    match parsed.scheme() {
        "https" => Ok(Scheme::Https),
        "http" if allow_plain_http || is_loopback(&host) => Ok(Scheme::Http),
        "http" => Err(ClientError::PlainHttpRefused { url: url.into() }),
        _ => Err(not_http()),
    }
}

/// `localhost` or a loopback address: traffic that never leaves the machine.
pub fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// The rustls client configuration of `roots`, on the ring provider.
fn client_config(roots: Arc<RootCertStore>) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Build(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // reqwest is built without HTTP/2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The system's roots, read once per process (a few hundred files on some systems), and
/// why there are none if so.
fn system_roots() -> (Arc<RootCertStore>, Option<String>) {
    static SYSTEM: OnceLock<(Arc<RootCertStore>, Option<String>)> = OnceLock::new();
    SYSTEM
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            // Unparsable system certificates are skipped, as every TLS client does.
            let (_added, _ignored) = store.add_parsable_certificates(found.certs);
            let none = store.is_empty().then(|| {
                found
                    .errors
                    .first()
                    .map_or_else(|| "the store is empty".to_owned(), ToString::to_string)
            });
            (Arc::new(store), none)
        })
        .clone()
}

/// The certificates of the PEM file at `path`, each a root.
pub fn read_bundle(path: &Path) -> Result<RootCertStore, ClientError> {
    let refuse = |reason: String| ClientError::CaBundle {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read(path).map_err(|e| refuse(e.to_string()))?;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&text) {
        let cert = cert.map_err(|e| refuse(format!("not PEM: {e}")))?;
        store
            .add(cert)
            .map_err(|e| refuse(format!("not a usable CA certificate: {e}")))?;
    }
    if store.is_empty() {
        return Err(refuse("holds no CERTIFICATE block".into()));
    }
    Ok(store)
}

#[cfg(feature = "test-ca")]
pub mod test_ca;

#[cfg(test)]
mod tests;
