//! The IdP's bodies that Milagro programs read or that carry Milagro members
//! (`idp/openapi.json`, `docs/idp.md`): the discovery document with its Milagro members,
//! the device grant's answer (RFC 8628 §3.2), the token answer, the admin API and the
//! activity log's checkpoint. Errors are [`crate::ErrorBody`] (RFC 6749 §5.2's shape).
//!
//! What it leaves to others, on purpose: bodies that only standard relying parties read
//! and that `openidconnect`'s types already describe (dynamic registration, RFC 7591; the
//! JWK Set, RFC 7517, whose keys are open-ended JSON objects; userinfo; WebFinger's JRD),
//! and the claims of the signed JWK Set (`/jwks.jwt`, a compact JWS, not a JSON body),
//! which `milagro_anchor::signed_jwks` defines beside the code that signs and checks them.

use milagro_anchor::digest::Digest;
use serde::{Deserialize, Serialize};

use crate::service::SignedCheckpoint;

/// `GET /.well-known/openid-configuration`: OpenID Connect Discovery 1.0 §3 metadata
/// (RFC 8414 names), with the Milagro members. Members the specifications make optional
/// are `Option`: a reader must cope with an IdP that leaves them out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderMetadata {
    /// The issuer identifier (the IdP's URL).
    pub issuer: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The userinfo endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// The JWK Set of the ID token signing keys.
    pub jwks_uri: String,
    /// The same keys signed by the anchored key (OpenID Federation 1.0's member; Milagro
    /// relying parties refuse an anchored IdP without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_jwks_uri: Option<String>,
    /// Dynamic client registration (RFC 7591).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// Token revocation (RFC 7009).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// The device authorization endpoint (RFC 8628).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    /// Scopes it knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// `response_type` values it serves.
    pub response_types_supported: Vec<String>,
    /// `response_mode` values it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_modes_supported: Option<Vec<String>>,
    /// `prompt` values it understands (OpenID Connect Prompt Create §4.1 lists them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_values_supported: Option<Vec<String>>,
    /// Where relying parties send the browser to log out (RP-Initiated Logout 1.0 §2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    /// Whether it sends logout tokens to clients' `backchannel_logout_uri`s
    /// (Back-Channel Logout 1.0 §2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_supported: Option<bool>,
    /// Whether its logout and ID tokens carry `sid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_session_supported: Option<bool>,
    /// Grant types it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    /// Subject identifier types.
    pub subject_types_supported: Vec<String>,
    /// ID token signing algorithms.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Client authentication methods at the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// Client authentication methods at the revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// PKCE methods (RFC 7636).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// DPoP proof algorithms (RFC 9449 §5.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// Claims it may put in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_supported: Option<Vec<String>>,
    /// The authentication context classes (`acr`) its ID tokens may name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr_values_supported: Option<Vec<String>>,
    /// Whether the `claims` request parameter is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_parameter_supported: Option<bool>,
    /// Whether the `request` parameter is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_parameter_supported: Option<bool>,
    /// Whether the `request_uri` parameter is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_uri_parameter_supported: Option<bool>,
    /// Whether authorization responses carry `iss` (RFC 9207).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// The backchannel authentication endpoint (OpenID Connect CIBA §4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_authentication_endpoint: Option<String>,
    /// The CIBA token delivery modes served (`poll`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_token_delivery_modes_supported: Option<Vec<String>>,
    /// Whether a CIBA request may carry a `user_code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_user_code_parameter_supported: Option<bool>,
    /// The Milagro members.
    #[serde(flatten)]
    pub milagro: MilagroMetadata,
}

/// The Milagro members of the discovery document: what ties the IdP to its anchored
/// Birth Certificate (a relying party checks them against the chain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MilagroMetadata {
    /// Where the IdP serves its anchored certificate
    /// ([`crate::service::AnchoredBirthCertificate`]).
    pub milagro_birth_certificate_uri: String,
    /// Its certificate's digest.
    pub milagro_birth_certificate_digest: Digest,
    /// The anchoring transaction, once broadcast.
    pub milagro_anchor_txid: Option<String>,
    /// Its anchored key, compressed SEC1 hex.
    pub milagro_public_key: String,
}

/// The answer of `POST /device_authorization` (RFC 8628 §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorization {
    /// The code the device polls the token endpoint with (a secret of the device).
    pub device_code: String,
    /// The code the person types.
    pub user_code: String,
    /// Where the person goes.
    pub verification_uri: String,
    /// The same, with the user code filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    /// Seconds the codes are valid for.
    pub expires_in: u64,
    /// Seconds to wait between polls (RFC 8628: 5 if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
}

/// The `200` of `POST /token` (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenAnswer {
    /// The access token.
    pub access_token: String,
    /// `Bearer`, or `DPoP` when the grant is bound to a key (RFC 9449 §5).
    pub token_type: String,
    /// Seconds the access token is valid for.
    pub expires_in: u64,
    /// The ID token (a compact JWS).
    pub id_token: String,
    /// The granted scope.
    pub scope: String,
    /// A refresh token, if the client may refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// `POST /v1/admin/users` (the admin token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 1 to 64 of letters, digits and `. - _ @`.
    pub username: String,
    /// 8 to 1024 bytes.
    pub password: String,
}

/// The `201` of `POST /v1/admin/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedUser {
    /// The username.
    pub username: String,
    /// Its stable subject identifier (`sub`).
    pub subject: String,
}

/// `POST /v1/admin/activation-codes` (the admin token): a one-time code with which the
/// person at `email` registers a device on the IdP's device page, without a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewActivationCode {
    /// The person's e-mail address (at most 64 bytes of letters, digits and `. - _ @`).
    pub email: String,
}

/// The `201` of `POST /v1/admin/activation-codes`: shown once, stored only as its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationCode {
    /// The address, normalised (lowercase): the one to type with the code.
    pub email: String,
    /// The code (secret; single use).
    pub activation_code: String,
    /// Seconds it stays valid.
    pub expires_in: u64,
}

/// The `201` of `POST /v1/devices`: the device that may now sign its person in with
/// M-Pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRegistration {
    /// The person (`sub`).
    pub subject: String,
    /// The device's key (compressed SEC1, hex): the one the request's DPoP proof was by.
    pub device_key: String,
    /// The M-Pin identity of (issuer, subject, device key): what the D-TAs issue shares
    /// for and what the IdP will accept a sign-in from.
    pub mpin_id: String,
    /// When it was registered (Unix seconds).
    pub registered: u64,
    /// The key of the device this registration replaced, which can no longer sign in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_device_key: Option<String>,
}

/// `GET /v1/audit/checkpoint`: the newest signed checkpoint of the activity log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The checkpoint.
    #[serde(flatten)]
    pub signed: SignedCheckpoint,
    /// The log's size now.
    pub log_size: u64,
    /// The log's origin.
    pub origin: String,
}
