//! HTTPS on a service's public listener: the `[tls]` configuration section every service
//! shares, and the certificate that is served from it and reloaded without a restart.
//!
//! - [`RawTls`] / [`TlsSettings`]: `[tls]` with `cert` (the PEM certificate chain, leaf
//!   first) and `key` (its PEM private key: PKCS#8, PKCS#1 or SEC1), checked purely like
//!   the other sections of [`crate::config`]; the files are read at start;
//! - [`ServerTls`]: the rustls server configuration (ring provider, TLS 1.2 and 1.3) whose
//!   certificate comes from a resolver that holds the last good chain and key.
//!   [`ServerTls::watch`] reloads them when the files change (polled every
//!   [`RELOAD_POLL`]) or, in a process that handles signals, on SIGHUP; a reload that does
//!   not parse, or whose key does not match its certificate, keeps the old certificate
//!   and logs a warning, so a renewal written one file at a time is picked up once both
//!   files are in place.
//!
//! - [`RawOutboundHttp`]: `[outbound_http]`, the CA bundle and plain-HTTP permission of
//!   a service's own HTTP clients ([`milagro_http_client`] builds them).
//!
//! [`crate::http::spawn`] serves a listener over HTTPS only when it is given a
//! [`TlsSettings`]; without one it serves plain HTTP and warns if the address is not
//! loopback. It does not ask for client certificates, staple OCSP, or obtain
//! certificates (ACME): the operator's renewal tool writes the files. The D-TA's share
//! API speaks Milagro TLS, not this.

mod outbound;
mod reload;

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{invalid, ConfigError};

pub use outbound::{check_outbound_url, RawOutboundHttp, OUTBOUND_HTTP_KEYS};
pub use reload::{Reloaded, ServerTls, TlsError, RELOAD_POLL};

/// The keys of `[tls]`, for a service's schema.
pub const TLS_KEYS: &[&str] = &["cert", "key"];

/// `[tls]`: the certificate the public listener serves. With it the listener speaks
/// HTTPS only.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsSettings {
    /// The PEM certificate chain, the service's own certificate first.
    pub cert: PathBuf,
    /// The PEM private key of that certificate (mode 0600, readable by the service).
    pub key: PathBuf,
}

impl TlsSettings {
    /// The settings of these two files.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
        }
    }
}

/// `[tls]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    cert: PathBuf,
    key: PathBuf,
}

impl RawTls {
    /// Checks every value (the files are read when the service starts).
    pub fn check(self) -> Result<TlsSettings, ConfigError> {
        if self.cert.as_os_str().is_empty() {
            return Err(invalid("tls.cert", "empty path"));
        }
        if self.key.as_os_str().is_empty() {
            return Err(invalid("tls.key", "empty path"));
        }
        if self.cert == self.key {
            return Err(invalid(
                "tls.key",
                "the same file as tls.cert: keep the private key in a file of its own",
            ));
        }
        Ok(TlsSettings {
            cert: self.cert,
            key: self.key,
        })
    }
}

/// What [`crate::http::spawn`] serves on `listen`: with `tls`, the loaded certificate and
/// the rustls configuration that serves it; without, `None` (plain HTTP), after warning
/// if `listen` is reachable from other machines.
pub fn listener_tls(
    listen: std::net::SocketAddr,
    tls: Option<&TlsSettings>,
) -> Result<Option<(ServerTls, rustls::ServerConfig)>, TlsError> {
    let Some(settings) = tls else {
        if !listen.ip().is_loopback() {
            tracing::warn!(
                %listen,
                "serving plain HTTP on an address other machines can reach: anyone on the \
                 path can read and change requests and answers; add a [tls] section"
            );
        }
        return Ok(None);
    };
    let tls = ServerTls::load(settings)?;
    let config = tls.server_config()?;
    Ok(Some((tls, config)))
}

/// Sets `TCP_NODELAY` on an accepted connection (`connection` as actix's `on_connect`
/// gives it: a TCP stream, or the TLS stream over one). Over HTTPS the server writes its
/// TLS 1.3 session ticket and then the answer; with Nagle's algorithm the answer waits for
/// the client's delayed acknowledgement of the ticket (about 40 ms per new connection).
pub fn set_nodelay(connection: &dyn std::any::Any) {
    use actix_web::rt::net::TcpStream;
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<TcpStream>;
    let tcp = match connection.downcast_ref::<Tls>() {
        Some(tls) => Some(tls.get_ref().0),
        None => connection.downcast_ref::<TcpStream>(),
    };
    if let Some(tcp) = tcp {
        // A socket that refuses the option still works, only slower.
        let _ = tcp.set_nodelay(true);
    }
}

/// An optional `[tls]` section, checked.
pub fn check_tls(raw: Option<RawTls>) -> Result<Option<TlsSettings>, ConfigError> {
    raw.map(RawTls::check).transpose()
}

#[cfg(test)]
mod tests;
