//! A public key as a transaction carries it, not decompressed.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{KeyError, PublicKey};

/// A compressed SEC1 public key as read from a witness: 33 bytes, the first 2 or 3.
///
/// Unlike [`PublicKey`] it holds the bytes only: whether `x` is the coordinate of a point
/// is not checked, because checking means decompressing (a square root, about 10 µs: the
/// largest cost of reading a record out of a block). That is what an index of records
/// wants of the keys it finds in blocks its node validated: consensus ran `OP_CHECKSIG`
/// with each of them, which fails on bytes that are no point
/// ([`crate::record::RecordCandidate::attribute_in_validated_block`]), so the index stores
/// and compares them as bytes. Whatever computes with a key (verifying a signature, ECDH)
/// takes a [`PublicKey`] from [`Self::to_public_key`], which checks the point.
///
/// Two keys are equal exactly when their compressed encodings are, so a `CompressedKey`
/// compares equal to the [`PublicKey`] it encodes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CompressedKey([u8; PublicKey::LEN]);

impl CompressedKey {
    /// Reads 33 bytes whose first is 2 or 3 (the point is not checked: see the type).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        match <[u8; PublicKey::LEN]>::try_from(bytes) {
            Ok(bytes) if matches!(bytes[0], 2 | 3) => Ok(Self(bytes)),
            _ => Err(KeyError::InvalidPublicKey),
        }
    }

    /// The 33 bytes.
    pub fn as_bytes(&self) -> &[u8; PublicKey::LEN] {
        &self.0
    }

    /// The key as a point; refused if the bytes are not one.
    pub fn to_public_key(&self) -> Result<PublicKey, KeyError> {
        PublicKey::from_sec1(&self.0)
    }
}

impl From<&PublicKey> for CompressedKey {
    fn from(key: &PublicKey) -> Self {
        Self(key.to_sec1())
    }
}

impl PartialEq<PublicKey> for CompressedKey {
    fn eq(&self, other: &PublicKey) -> bool {
        self.0 == other.to_sec1()
    }
}

impl PartialEq<CompressedKey> for PublicKey {
    fn eq(&self, other: &CompressedKey) -> bool {
        other == self
    }
}

impl fmt::Display for CompressedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for CompressedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompressedKey({self})")
    }
}

impl FromStr for CompressedKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_slice(&hex::decode(s)?)
    }
}

/// The same text as a [`PublicKey`]'s: 66 hex characters.
impl Serialize for CompressedKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The same text as a [`PublicKey`]'s; bytes that are not a compressed key's encoding
/// are refused.
impl<'de> Deserialize<'de> for CompressedKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;

    #[test]
    fn a_compressed_key_is_the_encoding_of_its_public_key() {
        let key = SecretKey::from_bytes(&[3; 32]).unwrap().public_key();
        let compressed = key.compressed();
        assert_eq!(compressed.as_bytes(), &key.to_sec1());
        assert_eq!(compressed, key);
        assert_eq!(key, compressed);
        assert_ne!(
            compressed,
            SecretKey::from_bytes(&[4; 32]).unwrap().public_key()
        );
        assert_eq!(compressed.to_public_key(), Ok(key));
        assert_eq!(compressed.to_string(), key.to_string());
        assert_eq!(compressed.to_string().parse(), Ok(compressed));
        assert_eq!(
            serde_json::to_value(compressed).unwrap(),
            serde_json::to_value(key).unwrap()
        );
    }

    #[test]
    fn a_compressed_key_reads_back_what_it_writes_and_refuses_other_bytes() {
        let key = SecretKey::from_bytes(&[3; 32])
            .unwrap()
            .public_key()
            .compressed();
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<CompressedKey>(&json).unwrap(), key);
        let uncompressed = format!("\"04{}\"", "00".repeat(32));
        assert!(serde_json::from_str::<CompressedKey>(&uncompressed).is_err());
    }

    #[test]
    fn only_the_shape_is_checked_until_the_point_is_wanted() {
        for bad in [&[2u8; 32][..], &[2; 34], &[4; 33], &[0; 33]] {
            assert_eq!(
                CompressedKey::from_slice(bad),
                Err(KeyError::InvalidPublicKey)
            );
        }
        // x = 5 is no point's coordinate on secp256k1 (5³ + 7 = 132 is not a square).
        let mut off_curve = [0u8; 33];
        off_curve[0] = 2;
        off_curve[32] = 5;
        let key = CompressedKey::from_slice(&off_curve).unwrap();
        assert_eq!(key.to_public_key(), Err(KeyError::InvalidPublicKey));
    }
}
