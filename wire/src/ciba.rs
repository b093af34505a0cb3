//! The IdP's backchannel authentication (OpenID Connect CIBA, poll mode): the client's
//! answer from `POST /bc-authorize` (CIBA §7.3) and the device's API (`/v1/ciba/*`): the
//! requests waiting for its person, approved with the two M-Pin passes or denied.
//!
//! | step | request | answer |
//! |---|---|---|
//! | the client asks | `POST /bc-authorize` (form) | [`BackchannelAuthentication`] |
//! | what waits | `GET /v1/ciba/requests?mpin_id=…` + DPoP proof | [`CibaRequests`] |
//! | pass 1 | [`CibaCommit`] `{"request_id", "commitment"}` | the M-Pin challenge answer |
//! | pass 2 | [`CibaProve`] `{"request_id", "proof"}` | [`crate::signin::SigninApproved`] |
//! | no | [`CibaDeny`] `{"request_id", "mpin_id"}` + DPoP proof | [`CibaDenied`] |

use serde::{Deserialize, Serialize};

/// The answer of `POST /bc-authorize` (CIBA §7.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackchannelAuthentication {
    /// What the client polls the token endpoint with (a secret of the client).
    pub auth_req_id: String,
    /// Seconds the request waits for the person.
    pub expires_in: u64,
    /// Seconds between two polls.
    pub interval: u64,
}

/// A request waiting for the device's person, as the device shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CibaRequest {
    /// What the device approves or denies it by (not the client's `auth_req_id`).
    pub request_id: String,
    /// The client asking.
    pub client_id: String,
    /// Its registered name, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// The scopes asked for.
    pub scope: String,
    /// The text the client also shows the person, to tie the two screens together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_message: Option<String>,
    /// Seconds left.
    pub expires_in: u64,
}

/// The requests waiting for the device's person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CibaRequests {
    /// Soonest to expire first.
    pub requests: Vec<CibaRequest>,
}

/// Pass 1 of an approval: the M-Pin commitment, for the request `request_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CibaCommit<C> {
    /// The request.
    pub request_id: String,
    /// The M-Pin commitment (`milagro_mpin::wire::CommitRequest`).
    pub commitment: C,
}

/// Pass 2 of an approval: the M-Pin proof for the challenge pass 1 answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CibaProve<P> {
    /// The same request as pass 1.
    pub request_id: String,
    /// The M-Pin proof (`milagro_mpin::wire::ProveRequest`).
    pub proof: P,
}

/// The person says no to `request_id` (with a DPoP proof by the device's key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CibaDeny {
    /// The request.
    pub request_id: String,
    /// The device's M-Pin identity (hex), which names its registration.
    pub mpin_id: String,
}

/// A request the person denied: the client hears `access_denied`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CibaDenied {
    /// Always `denied`.
    pub status: String,
    /// The client that asked.
    pub client_id: String,
}
