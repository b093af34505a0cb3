//! Tenants, device groups and credentials: the values, checked at construction.

use core::fmt;
use core::str::FromStr;

use milagro_anchor::digest::Digest;
use milagro_anchor::keys::PublicKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a tenant-side value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// Not a slug: 1–64 of `a-z`, `0-9`, `-`, starting with a letter or digit.
    #[error("{what} {value:?} is not a slug (1-64 of a-z, 0-9 and '-', not starting with '-')")]
    NotASlug {
        /// Which field.
        what: &'static str,
        /// The value (truncated).
        value: String,
    },
    /// A display name that is empty, too long or has control characters.
    #[error("invalid name: {0}")]
    InvalidName(&'static str),
    /// A service URL that is not http(s).
    #[error("invalid service url {0:?}")]
    InvalidUrl(String),
    /// An enrolment key that is not a compressed secp256k1 key.
    #[error("enrolment key {0:?} is not a compressed secp256k1 key")]
    InvalidKey(String),
    /// A token that is not `mlgt_` followed by 64 hex characters.
    #[error("malformed api token")]
    MalformedToken,
    /// Too many services attached to a group.
    #[error("a group has at most {max} d-tas, got {got}")]
    TooManyServices {
        /// The limit.
        max: usize,
        /// What was asked.
        got: usize,
    },
    /// Too many enrolment keys on a group, or one listed twice.
    #[error("a group has at most {MAX_ENROLMENT_KEYS} distinct enrolment keys, got {0}")]
    EnrolmentKeys(usize),
}

macro_rules! slug_type {
    ($name:ident, $what:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Checks and wraps a slug.
            pub fn new(value: &str) -> Result<Self, ModelError> {
                let ok = (1..=64).contains(&value.len())
                    && !value.starts_with('-')
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if ok {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(ModelError::NotASlug {
                        what: $what,
                        value: value.chars().take(64).collect(),
                    })
                }
            }

            /// The slug.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::new(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

slug_type!(
    TenantId,
    "tenant id",
    "A tenant (an application developer or device maker), e.g. `acme`."
);
slug_type!(
    GroupId,
    "group id",
    "A device group within a tenant, e.g. `eu-thermostats`."
);

/// A checked display name: 1–128 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisplayName(String);

impl DisplayName {
    /// Checks and wraps a name.
    pub fn new(value: &str) -> Result<Self, ModelError> {
        let chars = value.chars().count();
        if chars == 0 {
            return Err(ModelError::InvalidName("empty"));
        }
        if chars > 128 {
            return Err(ModelError::InvalidName("longer than 128 characters"));
        }
        if value.chars().any(char::is_control) {
            return Err(ModelError::InvalidName("contains control characters"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for DisplayName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&text).map_err(serde::de::Error::custom)
    }
}

/// A party a group's devices must use: its anchored Birth Certificate and where it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRef {
    /// Digest of the party's Birth Certificate (checked against the registry on attach).
    pub birth_certificate: Digest,
    /// Its base URL.
    pub url: ServiceUrl,
}

/// An `http://` or `https://` URL with a host, at most 2048 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceUrl(String);

impl ServiceUrl {
    /// Checks and wraps a URL.
    pub fn new(value: &str) -> Result<Self, ModelError> {
        let rest = value
            .strip_prefix("https://")
            .or_else(|| value.strip_prefix("http://"));
        let host_ok = rest.is_some_and(|r| {
            !r.split(['/', '?', '#'])
                .next()
                .unwrap_or_default()
                .is_empty()
        });
        if value.len() > 2048
            || !host_ok
            || value.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ModelError::InvalidUrl(value.chars().take(64).collect()));
        }
        Ok(Self(value.to_owned()))
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ServiceUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&text).map_err(serde::de::Error::custom)
    }
}

/// How a group's devices get on chain: the API's enum, stored as the API shows it
/// (`direct`, `batch`).
pub use milagro_wire::tbs::tenants::EnrolmentMode;

/// The most D-TAs a group may list.
pub const MAX_DTAS: usize = 16;

/// The most enrolment keys a group may list (a maker rotating keys lists two or three).
pub const MAX_ENROLMENT_KEYS: usize = 16;

/// What an admin or tenant sends to create or replace a group, its values checked (read
/// from the API's [`milagro_wire::tbs::tenants::GroupSpec`] by `TryFrom`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// Display name.
    pub name: DisplayName,
    /// Direct or batch enrolment.
    pub mode: EnrolmentMode,
    /// The D-TAs whose key shares the devices collect.
    pub dtas: Vec<ServiceRef>,
    /// The identity provider the devices log in with.
    pub idp: Option<ServiceRef>,
    /// The device maker's enrolment keys: a device enrols only with a credential one of
    /// them signed (`milagro_anchor::enrolment_credential`). None: nobody enrols.
    pub enrolment_keys: Vec<PublicKey>,
}

impl GroupSpec {
    /// Checks limits that serde cannot.
    pub fn check(&self) -> Result<(), ModelError> {
        if self.dtas.len() > MAX_DTAS {
            return Err(ModelError::TooManyServices {
                max: MAX_DTAS,
                got: self.dtas.len(),
            });
        }
        let keys = &self.enrolment_keys;
        let distinct = keys
            .iter()
            .enumerate()
            .all(|(i, key)| !keys[..i].contains(key));
        if keys.len() > MAX_ENROLMENT_KEYS || !distinct {
            return Err(ModelError::EnrolmentKeys(keys.len()));
        }
        Ok(())
    }
}

/// A stored device group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Owning tenant.
    pub tenant: TenantId,
    /// Group id, unique within the tenant.
    pub id: GroupId,
    /// Display name.
    pub name: DisplayName,
    /// Direct or batch enrolment.
    pub mode: EnrolmentMode,
    /// Attached D-TAs.
    pub dtas: Vec<ServiceRef>,
    /// Attached identity provider.
    pub idp: Option<ServiceRef>,
    /// The maker's enrolment keys (a group stored before they existed has none).
    #[serde(default)]
    pub enrolment_keys: Vec<PublicKey>,
    /// Raised on every change, from a counter shared by every group of the TBS, so it never
    /// goes back for a device (not even when a group is deleted and created again):
    /// devices compare it to pick up new instructions and refuse a lower one.
    pub revision: u64,
}

/// A stored tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// The tenant id.
    pub id: TenantId,
    /// Display name.
    pub name: DisplayName,
}

pub use milagro_service::token::{ApiToken, MalformedToken, TokenHash};
