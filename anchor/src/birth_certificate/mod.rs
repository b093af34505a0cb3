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
//! | `version` | integer | `2` (this crate writes); `1` is still read, see below |
//! | `role` | string | `tbs`, `idp`, `dta`, `pat` or `authserver` |
//! | `name` | string | 1–256 characters, no control characters |
//! | `endpoints` | array of strings | at most 16 `http://` or `https://` URLs, each ≤ 2048 bytes |
//! | `created` | integer | Unix seconds, 0 ≤ created < 2⁵³ |
//! | `public_key` | string | compressed SEC1 secp256k1 key, 66 hex characters |
//! | `status` | string | `active`, `compromised` or `retired` (the key's canary) |
//! | `previous` | string or null | digest of the BC this one replaces (update, key rotation) |
//! | `keys` | object | version 2 only: purpose name → compressed SEC1 key (66 hex characters), exactly the role's purposes (below) |
//! | `signature` | string | 128 hex characters: low-S ECDSA `r ‖ s` by `public_key` over SHA-256 of the JCS form of all the other fields |
//!
//! `keys` lists the party's purpose keys ([`crate::purpose_keys`], ADR 0013): `tbs`
//! lists `checkpoint` and `envelope`; `idp` and `dta` list `checkpoint`; `authserver`
//! lists `checkpoint` and `session`; `pat` lists none (`{}`). Each differs from
//! `public_key` and from the others. A version 1 document has no `keys` member: it still
//! parses (devices' certificates anchored before version 2 stay valid), but it lists no
//! purpose key, so [`BirthCertificate::purpose_key`] refuses every purpose use of it
//! rather than accepting the anchored key in its place.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::keys::{KeyError, PublicKey, SecretKey, Signature};
use crate::purpose_keys::{self, KeyPurpose, PurposeKeyError, PurposeKeys};

mod wire;
use wire::{Unsigned, Wire};

/// Largest BC document accepted by [`BirthCertificate::parse`].
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
const MAX_NAME_CHARS: usize = 256;
const MAX_ENDPOINTS: usize = 16;
const MAX_ENDPOINT_BYTES: usize = 2048;
const MAX_CREATED: u64 = (1 << 53) - 1;

/// The first format version: no purpose keys. Still read, no longer written by services.
pub const VERSION_1: u32 = 1;
/// The format version with purpose keys (`keys`).
pub const VERSION_2: u32 = 2;
/// The format version this crate writes.
pub const VERSION: u32 = VERSION_2;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BcFields {
    /// Format version: [`VERSION_2`] (or [`VERSION_1`], which has no `keys`).
    pub version: u32,
    /// The party's role.
    pub role: Role,
    /// Human-readable name.
    pub name: String,
    /// URLs where the party serves its APIs.
    pub endpoints: Vec<String>,
    /// Creation time, Unix seconds (passed in: this crate reads no clock).
    pub created: u64,
    /// The party's anchored secp256k1 key; it signs the BC, the anchoring transaction and
    /// the Milagro TLS binding.
    pub public_key: PublicKey,
    /// The key's canary.
    pub status: Status,
    /// Digest of the BC this one replaces, if any.
    pub previous: Option<Digest>,
    /// The purpose keys (version 2): exactly [`purpose_keys::required`] for the role.
    /// Must be empty in a version 1 document, which has no `keys` member.
    pub keys: PurposeKeys,
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
    /// A version 1 document with a `keys` member (or fields with purpose keys given
    /// version 1).
    #[error("a version 1 birth certificate has no purpose keys")]
    KeysInVersion1,
    /// `keys` names a purpose this crate does not know.
    #[error("unknown key purpose {0:?}")]
    UnknownPurpose(String),
    /// `keys` names a purpose twice.
    #[error("the {0} key is listed twice")]
    DuplicatePurpose(KeyPurpose),
    /// A listed key is not a compressed SEC1 secp256k1 key.
    #[error("the {purpose} key is invalid: {source}")]
    InvalidPurposeKey {
        /// Which purpose.
        purpose: KeyPurpose,
        /// What is wrong with the key.
        #[source]
        source: KeyError,
    },
    /// The role needs a key for this purpose and none is listed.
    #[error("a {role} birth certificate must list a {purpose} key")]
    MissingPurposeKey {
        /// The certificate's role.
        role: Role,
        /// The missing purpose.
        purpose: KeyPurpose,
    },
    /// The role has no use for a key of this purpose.
    #[error("a {role} birth certificate has no use for a {purpose} key")]
    UnexpectedPurposeKey {
        /// The certificate's role.
        role: Role,
        /// The purpose listed.
        purpose: KeyPurpose,
    },
    /// A purpose key is the anchored key or another purpose's key: it would separate
    /// nothing.
    #[error(
        "the {0} key is not a key of its own (it repeats the anchored key or another purpose's)"
    )]
    PurposeKeyNotSeparate(KeyPurpose),
}

impl BcFields {
    fn check(&self) -> Result<(), BcError> {
        match self.version {
            VERSION_1 if !self.keys.is_empty() => return Err(BcError::KeysInVersion1),
            VERSION_1 => {}
            VERSION_2 => self.check_keys()?,
            other => return Err(BcError::UnsupportedVersion(other)),
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

    /// Exactly the role's purposes, each with a key of its own.
    fn check_keys(&self) -> Result<(), BcError> {
        let required = purpose_keys::required(self.role);
        for &purpose in required {
            if self.keys.get(purpose).is_err() {
                return Err(BcError::MissingPurposeKey {
                    role: self.role,
                    purpose,
                });
            }
        }
        let mut seen = vec![self.public_key];
        for (purpose, key) in self.keys.iter() {
            if !required.contains(&purpose) {
                return Err(BcError::UnexpectedPurposeKey {
                    role: self.role,
                    purpose,
                });
            }
            if seen.contains(key) {
                return Err(BcError::PurposeKeyNotSeparate(purpose));
            }
            seen.push(*key);
        }
        Ok(())
    }

    /// The wire form of these fields, with `signature` if given.
    fn unsigned<'a>(&'a self, signature: Option<&'a Signature>) -> Unsigned<'a> {
        Unsigned {
            version: self.version,
            role: self.role,
            name: &self.name,
            endpoints: &self.endpoints,
            created: self.created,
            public_key: &self.public_key,
            status: self.status,
            previous: &self.previous,
            keys: (self.version != VERSION_1).then_some(&self.keys),
            signature,
        }
    }

    /// SHA-256 of the JCS form of these fields: what the BC signature signs.
    fn signing_digest(&self) -> Digest {
        Digest::sha256(&canonical(&self.unsigned(None)))
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

/// RFC 8785 canonical JSON of a value whose fields are strings, integers, arrays, objects
/// of strings and nulls.
fn canonical<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialization of these types cannot fail: every field is a string, an integer below
    // 2^53, an array of strings, an object of strings (`keys`) or null, all of which JCS
    // represents exactly.
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
            if version != u64::from(VERSION_1) && version != u64::from(VERSION_2) {
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
            keys: match (wire.version, wire.keys) {
                (VERSION_1, Some(_)) => return Err(BcError::KeysInVersion1),
                (VERSION_1, None) => PurposeKeys::none(),
                (_, Some(raw)) => raw.into_keys()?,
                (_, None) => return Err(BcError::Malformed("missing field `keys`".into())),
            },
        };
        fields.check()?;
        fields
            .public_key
            .verify_digest(&fields.signing_digest(), &wire.signature)
            .map_err(BcError::BadSignature)?;
        Ok(Self::assemble(fields, wire.signature))
    }

    fn assemble(fields: BcFields, signature: Signature) -> Self {
        let digest = Digest::sha256(&canonical(&fields.unsigned(Some(&signature))));
        Self {
            fields,
            signature,
            digest,
        }
    }

    /// The RFC 8785 canonical JSON: the bytes whose SHA-256 is [`Self::digest`].
    pub fn to_canonical_json(&self) -> Vec<u8> {
        canonical(&self.fields.unsigned(Some(&self.signature)))
    }

    /// Indented JSON for people; parses back to the same certificate.
    pub fn to_pretty_json(&self) -> String {
        // Same argument as `canonical`: these types always serialize.
        #[allow(clippy::expect_used)]
        serde_json::to_string_pretty(&self.fields.unsigned(Some(&self.signature)))
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

    /// The party's anchored public key: it signs the certificate, the party's anchors and
    /// its Milagro TLS binding, and nothing else a verifier should accept.
    pub fn public_key(&self) -> &PublicKey {
        &self.fields.public_key
    }

    /// The key the party uses for `purpose`, as listed under `keys`. A version 1
    /// certificate, or a role without that purpose, has none: the caller must refuse the
    /// use, never fall back to [`Self::public_key`].
    pub fn purpose_key(&self, purpose: KeyPurpose) -> Result<&PublicKey, PurposeKeyError> {
        self.fields.keys.get(purpose)
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
mod tests;
