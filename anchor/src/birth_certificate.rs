//! Birth Certificates: the signed JSON document each party anchors on chain.
//!
//! A Birth Certificate (BC) names a party, its role, where to reach it and its secp256k1
//! key. It is signed by that key (proof of possession) and its SHA-256 digest, taken over the
//! RFC 8785 (JCS) canonical form, is what goes into the party's `OP_RETURN`.
//!
//! A [`BirthCertificate`] value can only come from [`BirthCertificate::sign`] or
//! [`BirthCertificate::parse`], and both check every field and the signature: holding one
//! means the document is well formed and self-signed. Whether it is *anchored* is a separate
//! question answered by [`crate::proof`].
//!
//! Wire format (JSON object, every field required, no others allowed):
//!
//! | field | type | rule |
//! |---|---|---|
//! | `version` | integer | `1` |
//! | `role` | string | `tbs`, `idp`, `dta`, `pat` or `authserver` |
//! | `name` | string | 1–256 characters, no control characters |
//! | `endpoints` | array of strings | at most 16 `http://` or `https://` URLs, each ≤ 2048 bytes |
//! | `created` | integer | Unix seconds, 0 ≤ created < 2⁵³ |
//! | `public_key` | string | compressed SEC1 secp256k1 key, 66 hex characters |
//! | `status` | string | `active`, `compromised` or `retired` (the key's canary) |
//! | `previous` | string or null | digest of the BC this one replaces (update, key rotation) |
//! | `signature` | string | 128 hex characters: low-S ECDSA `r ‖ s` by `public_key` over SHA-256 of the JCS form of all the other fields |

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::keys::{KeyError, PublicKey, SecretKey, Signature};

/// Largest BC document accepted by [`BirthCertificate::parse`].
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
const MAX_NAME_CHARS: usize = 256;
const MAX_ENDPOINTS: usize = 16;
const MAX_ENDPOINT_BYTES: usize = 2048;
const MAX_CREATED: u64 = (1 << 53) - 1;

/// The only format version this crate reads and writes.
pub const VERSION: u32 = 1;

/// What a party does in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Trusted Bitcoin Server proxy.
    Tbs,
    /// OpenID Connect identity provider.
    Idp,
    /// Distributed Trust Authority (holds a master-secret share).
    Dta,
    /// People, Apps, Things: a client device or user.
    Pat,
    /// M-Pin authentication server.
    #[serde(rename = "authserver")]
    AuthServer,
}

impl Role {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Tbs => "tbs",
            Role::Idp => "idp",
            Role::Dta => "dta",
            Role::Pat => "pat",
            Role::AuthServer => "authserver",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for Role {
    type Err = BcError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_owned()))
            .map_err(|_| BcError::UnknownRole(s.to_owned()))
    }
}

/// The key's canary: whether relying parties should still trust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// In service.
    Active,
    /// The key is known or suspected to be compromised: trust nothing it signs.
    Compromised,
    /// Withdrawn from service in an orderly way.
    Retired,
}

impl Status {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Compromised => "compromised",
            Status::Retired => "retired",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields of a BC, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BcFields {
    /// Format version; must be [`VERSION`].
    pub version: u32,
    /// The party's role.
    pub role: Role,
    /// Human-readable name.
    pub name: String,
    /// URLs where the party serves its APIs.
    pub endpoints: Vec<String>,
    /// Creation time, Unix seconds (passed in: this crate reads no clock).
    pub created: u64,
    /// The party's secp256k1 key; it signs the BC and the anchoring transaction.
    pub public_key: PublicKey,
    /// The key's canary.
    pub status: Status,
    /// Digest of the BC this one replaces, if any.
    pub previous: Option<Digest>,
}

/// The wire form: the fields plus the signature, flattened into one JSON object.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    version: u32,
    role: Role,
    name: String,
    endpoints: Vec<String>,
    created: u64,
    public_key: PublicKey,
    status: Status,
    // `deserialize_with` makes the field required: serde would otherwise read a missing
    // `previous` as null, and the format says every field is present.
    #[serde(deserialize_with = "Option::deserialize")]
    previous: Option<Digest>,
    signature: Signature,
}

/// A well-formed, self-signed Birth Certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirthCertificate {
    fields: BcFields,
    signature: Signature,
    digest: Digest,
}

/// Why a Birth Certificate was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BcError {
    /// The document is larger than [`MAX_DOCUMENT_BYTES`].
    #[error("birth certificate is {0} bytes, the limit is {MAX_DOCUMENT_BYTES}")]
    TooLarge(usize),
    /// Not JSON of the right shape (missing, unknown, duplicated or mistyped field).
    #[error("malformed birth certificate: {0}")]
    Malformed(String),
    /// A version this crate does not know.
    #[error("unsupported birth certificate version {0}")]
    UnsupportedVersion(u32),
    /// A role name this crate does not know.
    #[error("unknown role {0:?}")]
    UnknownRole(String),
    /// The name is empty, too long or has control characters.
    #[error("invalid name: {0}")]
    InvalidName(&'static str),
    /// An endpoint is not an acceptable URL, or there are too many.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The offending value (truncated to 64 characters).
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `created` is out of range.
    #[error("created time {0} is out of range")]
    InvalidCreated(u64),
    /// The signing key is not the key named in the document.
    #[error("the signing key does not match the certificate's public key")]
    KeyMismatch,
    /// The signature does not verify under the document's key.
    #[error("the certificate signature does not verify: {0}")]
    BadSignature(#[source] KeyError),
}

impl BcFields {
    fn check(&self) -> Result<(), BcError> {
        if self.version != VERSION {
            return Err(BcError::UnsupportedVersion(self.version));
        }
        let chars = self.name.chars().count();
        if chars == 0 {
            return Err(BcError::InvalidName("empty"));
        }
        if chars > MAX_NAME_CHARS {
            return Err(BcError::InvalidName("longer than 256 characters"));
        }
        if self.name.chars().any(char::is_control) {
            return Err(BcError::InvalidName("contains control characters"));
        }
        if self.endpoints.len() > MAX_ENDPOINTS {
            return Err(BcError::InvalidEndpoint {
                endpoint: format!("{} endpoints", self.endpoints.len()),
                reason: "at most 16 endpoints",
            });
        }
        for endpoint in &self.endpoints {
            check_endpoint(endpoint)?;
        }
        if self.created > MAX_CREATED {
            return Err(BcError::InvalidCreated(self.created));
        }
        Ok(())
    }

    /// SHA-256 of the JCS form of these fields: what the BC signature signs.
    fn signing_digest(&self) -> Digest {
        Digest::sha256(&canonical(self))
    }
}

fn check_endpoint(endpoint: &str) -> Result<(), BcError> {
    let bad = |reason| BcError::InvalidEndpoint {
        endpoint: endpoint.chars().take(64).collect(),
        reason,
    };
    if endpoint.len() > MAX_ENDPOINT_BYTES {
        return Err(bad("longer than 2048 bytes"));
    }
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .ok_or_else(|| bad("not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if endpoint
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad("contains white space or control characters"));
    }
    Ok(())
}

/// RFC 8785 canonical JSON of a value whose fields are strings, integers, arrays and nulls.
fn canonical<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialization of these types cannot fail: every field is a string, an integer below
    // 2^53, an array of strings or null, all of which JCS represents exactly.
    #[allow(clippy::expect_used)]
    serde_jcs::to_vec(value).expect("BC fields are always representable in JCS")
}

impl BirthCertificate {
    /// Checks `fields` and signs them with `key`, which must be the key they name.
    pub fn sign(fields: BcFields, key: &SecretKey) -> Result<Self, BcError> {
        fields.check()?;
        if key.public_key() != fields.public_key {
            return Err(BcError::KeyMismatch);
        }
        let signature = key.sign_digest(&fields.signing_digest());
        Ok(Self::assemble(fields, signature))
    }

    /// Parses and checks a JSON document, including its signature.
    pub fn parse(json: &[u8]) -> Result<Self, BcError> {
        if json.len() > MAX_DOCUMENT_BYTES {
            return Err(BcError::TooLarge(json.len()));
        }
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| BcError::Malformed(e.to_string()))?;
        // Give unknown versions and roles their own errors before the shape check.
        if let Some(version) = value.get("version").and_then(serde_json::Value::as_u64) {
            if version != u64::from(VERSION) {
                return Err(BcError::UnsupportedVersion(
                    u32::try_from(version).unwrap_or(u32::MAX),
                ));
            }
        }
        if let Some(role) = value.get("role").and_then(serde_json::Value::as_str) {
            role.parse::<Role>()?;
        }
        // Parse from the bytes again (not the Value) so duplicate keys are refused.
        let wire: Wire =
            serde_json::from_slice(json).map_err(|e| BcError::Malformed(e.to_string()))?;
        let fields = BcFields {
            version: wire.version,
            role: wire.role,
            name: wire.name,
            endpoints: wire.endpoints,
            created: wire.created,
            public_key: wire.public_key,
            status: wire.status,
            previous: wire.previous,
        };
        fields.check()?;
        fields
            .public_key
            .verify_digest(&fields.signing_digest(), &wire.signature)
            .map_err(BcError::BadSignature)?;
        Ok(Self::assemble(fields, wire.signature))
    }

    fn assemble(fields: BcFields, signature: Signature) -> Self {
        let digest = Digest::sha256(&canonical(&Self::wire(&fields, &signature)));
        Self {
            fields,
            signature,
            digest,
        }
    }

    fn wire(fields: &BcFields, signature: &Signature) -> Wire {
        Wire {
            version: fields.version,
            role: fields.role,
            name: fields.name.clone(),
            endpoints: fields.endpoints.clone(),
            created: fields.created,
            public_key: fields.public_key,
            status: fields.status,
            previous: fields.previous,
            signature: *signature,
        }
    }

    /// The RFC 8785 canonical JSON: the bytes whose SHA-256 is [`Self::digest`].
    pub fn to_canonical_json(&self) -> Vec<u8> {
        canonical(&Self::wire(&self.fields, &self.signature))
    }

    /// Indented JSON for people; parses back to the same certificate.
    pub fn to_pretty_json(&self) -> String {
        // Same argument as `canonical`: these types always serialize.
        #[allow(clippy::expect_used)]
        serde_json::to_string_pretty(&Self::wire(&self.fields, &self.signature))
            .expect("BC fields always serialize")
    }

    /// SHA-256 of the canonical JSON: the value anchored on chain.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The signed fields.
    pub fn fields(&self) -> &BcFields {
        &self.fields
    }

    /// The party's public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.fields.public_key
    }

    /// The party's role.
    pub fn role(&self) -> Role {
        self.fields.role
    }

    /// The key's canary status.
    pub fn status(&self) -> Status {
        self.fields.status
    }

    /// The self-signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }
}

#[cfg(test)]
#[path = "birth_certificate_tests.rs"]
mod tests;
