//! The authentication server's status and admin API (`authserver/openapi.json`); its
//! login API is [`crate::login`].

use milagro_anchor::digest::Digest;
use serde::{Deserialize, Serialize};

use crate::service::PartyStatus;

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Who it is (role `authserver`), its anchor, its index, the size of its login log.
    #[serde(flatten)]
    pub party: PartyStatus,
    /// The server secret's progress.
    pub server_secret: ServerSecretStatus,
}

/// Whether the server holds the sum of every D-TA's server-secret share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSecretStatus {
    /// Ready once every share is fetched; logins are refused before.
    pub state: SecretState,
    /// Each configured D-TA and its share.
    pub dtas: Vec<DtaShareStatus>,
}

/// [`ServerSecretStatus::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretState {
    /// Every share is summed.
    Ready,
    /// Some D-TA has not answered yet.
    Waiting,
}

/// One D-TA's server-secret share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtaShareStatus {
    /// The D-TA's Birth Certificate digest.
    pub digest: Digest,
    /// Whether its share is in.
    pub state: ShareState,
    /// Why it is not, once a fetch failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// [`DtaShareStatus::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareState {
    /// Fetched and summed.
    Fetched,
    /// Not fetched yet.
    Waiting,
}

/// `POST /v1/admin/revocations` (the admin token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// The M-Pin identity to refuse from now on, 1 to 1024 bytes of UTF-8.
    pub mpin_id: String,
}

/// A revoked identity: the answer of `POST /v1/admin/revocations` (`201` when revoked
/// now, `200` when revoked before).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The identity, as text.
    pub mpin_id: String,
    /// When it was revoked, Unix seconds.
    pub revoked_at: u64,
}

/// `GET /v1/admin/revocations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocations {
    /// Every revoked identity.
    pub revocations: Vec<Revocation>,
}
