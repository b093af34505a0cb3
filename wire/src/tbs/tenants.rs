//! The tenant API: operators create tenants, tenants manage their device groups
//! (`/v1/admin/tenants`, `/v1/tenants/{tenant}/tokens`, `/v1/tenants/{tenant}/groups…`).
//!
//! Ids, names, URLs and keys are text here; the TBS parses them into its checked types
//! (slugs, display names, `http(s)` URLs, compressed keys) and refuses the request
//! otherwise.

use milagro_anchor::digest::Digest;
use serde::{Deserialize, Serialize};

/// `POST /v1/admin/tenants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// The tenant id, a slug (1 to 64 of `a-z`, `0-9`, `-`, not starting with `-`).
    pub id: String,
    /// The display name (1 to 128 characters, no control characters).
    pub name: String,
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// The tenant id.
    pub id: String,
    /// The display name.
    pub name: String,
}

/// The `201` of `POST /v1/admin/tenants`: the tenant and its first API token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedTenant {
    /// The tenant.
    pub tenant: Tenant,
    /// Its first API token (`mlgt_` and 64 hex digits), shown once.
    pub token: String,
}

/// `GET /v1/admin/tenants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenants {
    /// Every tenant.
    pub tenants: Vec<Tenant>,
}

/// The `201` of `POST /v1/tenants/{tenant}/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Another API token of the tenant, shown once.
    pub token: String,
}

/// How a group's devices get on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnrolmentMode {
    /// Each device signs its own anchoring transaction (needed for ECDH over Bitcoin).
    #[default]
    Direct,
    /// Device digests are anchored as one batch root per interval.
    Batch,
}

/// A party a group's devices must use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRef {
    /// The digest of its anchored Birth Certificate (the TBS refuses one not anchored).
    pub birth_certificate: Digest,
    /// Its base URL (`http://` or `https://` with a host, at most 2048 bytes).
    pub url: String,
}

/// `PUT /v1/tenants/{tenant}/groups/{group}`: a group, created or replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// The display name.
    pub name: String,
    /// Direct or batch enrolment.
    #[serde(default)]
    pub mode: EnrolmentMode,
    /// The D-TAs whose key shares the devices collect (at most 16).
    #[serde(default)]
    pub dtas: Vec<ServiceRef>,
    /// The identity provider the devices log in with.
    #[serde(default)]
    pub idp: Option<ServiceRef>,
    /// The device maker's enrolment keys (compressed SEC1 hex, at most 16, distinct): a
    /// device enrols only with a credential one of them signed. None: nobody enrols.
    #[serde(default)]
    pub enrolment_keys: Vec<String>,
}

/// A stored group: `GET /v1/tenants/{tenant}/groups/{group}` and the answer of `PUT`
/// (`GET /v1/tenants/{tenant}/groups` lists them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The owning tenant.
    pub tenant: String,
    /// The group id, unique within the tenant.
    pub id: String,
    /// The display name.
    pub name: String,
    /// Direct or batch enrolment.
    pub mode: EnrolmentMode,
    /// The attached D-TAs.
    pub dtas: Vec<ServiceRef>,
    /// The attached identity provider.
    pub idp: Option<ServiceRef>,
    /// Raised on every change, from a counter shared by every group of the TBS, so it
    /// never goes back for a device: devices refresh their instructions when it moves.
    pub revision: u64,
    /// The maker's enrolment keys, compressed SEC1 hex.
    pub enrolment_keys: Vec<String>,
}
