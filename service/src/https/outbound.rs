//! `[outbound_http]`: how a service's own HTTP clients reach other parties (the D-TA's
//! relying party fetching an IdP's documents). Checked purely; the CA bundle is read
//! when the service starts ([`milagro_http_client::Outbound::new`]).

use std::path::PathBuf;

use milagro_http_client::ClientOptions;
use serde::Deserialize;

use crate::config::{invalid, ConfigError};

/// The keys of `[outbound_http]`, for a service's schema.
pub const OUTBOUND_HTTP_KEYS: &[&str] = &["ca_bundle", "allow_plain_http"];

/// `[outbound_http]` as written (defaults: the system's roots, plain HTTP to loopback
/// only).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOutboundHttp {
    ca_bundle: Option<PathBuf>,
    allow_plain_http: bool,
}

impl RawOutboundHttp {
    /// Checks every value.
    pub fn check(self) -> Result<ClientOptions, ConfigError> {
        if self
            .ca_bundle
            .as_ref()
            .is_some_and(|path| path.as_os_str().is_empty())
        {
            return Err(invalid("outbound_http.ca_bundle", "empty path"));
        }
        Ok(ClientOptions::new(
            self.ca_bundle.as_deref(),
            self.allow_plain_http,
        ))
    }
}

/// Checks that `url` (the value of `key`) may be fetched under `options`: `https://`, or
/// `http://` to loopback unless `outbound_http.allow_plain_http`.
pub fn check_outbound_url(
    key: &'static str,
    url: &str,
    options: &ClientOptions,
) -> Result<(), ConfigError> {
    milagro_http_client::check_scheme(url, options.allow_plain_http)
        .map(|_| ())
        .map_err(|e| invalid(key, e.to_string()))
}
