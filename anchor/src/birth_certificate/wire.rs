//! The wire form of a Birth Certificate: the borrowed form that is signed and hashed, and
//! the owned form that is read (with the `keys` object read entry by entry, so that each
//! fault gets its own [`BcError`]).

use core::fmt;

use serde::{Deserialize, Serialize};

use super::{BcError, Role, Status};
use crate::digest::Digest;
use crate::keys::{PublicKey, Signature};
use crate::purpose_keys::{KeyPurpose, PurposeKeys};

/// The signed part of the wire form (every field but the signature), borrowed: what the
/// signature covers, and with the signature what the digest covers.
#[derive(Serialize)]
pub(super) struct Unsigned<'a> {
    pub(super) version: u32,
    pub(super) role: Role,
    pub(super) name: &'a str,
    pub(super) endpoints: &'a [String],
    pub(super) created: u64,
    pub(super) public_key: &'a PublicKey,
    pub(super) status: Status,
    pub(super) previous: &'a Option<Digest>,
    // Absent in version 1 documents, present (possibly `{}`) in version 2 ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) keys: Option<&'a PurposeKeys>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) signature: Option<&'a Signature>,
}

/// The wire form as read: the fields plus the signature, flattened into one JSON object.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Wire {
    pub(super) version: u32,
    pub(super) role: Role,
    pub(super) name: String,
    pub(super) endpoints: Vec<String>,
    pub(super) created: u64,
    pub(super) public_key: PublicKey,
    pub(super) status: Status,
    // `deserialize_with` makes the field required: serde would otherwise read a missing
    // `previous` as null, and the format says every field is present.
    #[serde(deserialize_with = "Option::deserialize")]
    pub(super) previous: Option<Digest>,
    // Absent is `None` (version 1); `null` is refused, not read as absent, so a version 1
    // document has exactly one spelling of "no keys".
    #[serde(default, deserialize_with = "present")]
    pub(super) keys: Option<RawKeys>,
    pub(super) signature: Signature,
}

/// Reads a `keys` member that is there: it must be an object.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<RawKeys>, D::Error> {
    RawKeys::deserialize(deserializer).map(Some)
}

/// The `keys` object as written, entries in document order and duplicates kept, so that
/// the parser can give each fault its own error.
pub(super) struct RawKeys(Vec<(String, String)>);

impl<'de> Deserialize<'de> for RawKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawKeys;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of purpose names to hex keys")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawKeys, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    // More entries than purposes cannot be valid; stop reading early.
                    if entries.len() > KeyPurpose::ALL.len() {
                        return Err(serde::de::Error::custom("too many purpose keys"));
                    }
                    entries.push(entry);
                }
                Ok(RawKeys(entries))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

impl RawKeys {
    /// Reads the entries, refusing unknown purposes, duplicates and invalid keys.
    pub(super) fn into_keys(self) -> Result<PurposeKeys, BcError> {
        let mut keys = PurposeKeys::none();
        for (name, value) in self.0 {
            let purpose = KeyPurpose::from_name(&name)
                .ok_or_else(|| BcError::UnknownPurpose(name.chars().take(64).collect()))?;
            if keys.get(purpose).is_ok() {
                return Err(BcError::DuplicatePurpose(purpose));
            }
            let key = value
                .parse::<PublicKey>()
                .map_err(|source| BcError::InvalidPurposeKey { purpose, source })?;
            keys.insert(purpose, key);
        }
        Ok(keys)
    }
}
