//! The D-TA's public API over plain HTTP (`dta/openapi.json`): its status. Its share API
//! over Milagro TLS is [`crate::shares`].

use serde::{Deserialize, Serialize};

use crate::service::PartyStatus;

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Who it is (role `dta`), its anchor, its index, the size of its issuance log.
    #[serde(flatten)]
    pub party: PartyStatus,
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
