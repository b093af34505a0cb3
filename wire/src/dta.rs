//! The D-TA's public API over plain HTTP (`dta/openapi.json`): its status. Its share API
//! over Milagro TLS is [`crate::shares`].

use milagro_anchor::birth_certificate::Role;
use milagro_anchor::digest::Digest;
use serde::{Deserialize, Serialize};

use crate::service::AnchorStatus;

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Its role: always `dta`.
    pub role: Role,
    /// Its Birth Certificate digest.
    pub digest: Digest,
    /// Its anchored key, compressed SEC1 hex.
    pub public_key: String,
    /// Where its own anchor stands.
    pub anchor: AnchorStatus,
    /// The height of its index's tip.
    pub index_height: Option<u32>,
    /// The hash of its index's tip.
    pub index_hash: Option<String>,
    /// How many entries its issuance log holds.
    pub audit_size: u64,
    /// `host:port` of the share API (Milagro TLS), once it serves.
    pub share_api: Option<String>,
    /// The IdPs whose ID tokens it accepts.
    pub trusted_idps: Vec<TrustedIdp>,
}

/// An IdP a D-TA trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedIdp {
    /// Its issuer.
    pub issuer: String,
    /// The D-TA's client id there (the audience of the ID tokens it accepts).
    pub client_id: String,
}
