//! SHA-256 digests as a validated newtype.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A SHA-256 digest: of a Birth Certificate, an audit-log root or a batch root.
///
/// Always exactly 32 bytes; shown and parsed as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The length of a digest in bytes.
    pub const LEN: usize = 32;

    /// Hashes `data` with SHA-256.
    pub fn sha256(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// Wraps bytes that already are a SHA-256 output.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Reads a digest from a slice that must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DigestError> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| DigestError::Length(bytes.len()))
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The raw bytes, by value.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }
}

/// Why a digest could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The input was not 32 bytes long.
    #[error("a digest is 32 bytes, got {0}")]
    Length(usize),
    /// The input was not hexadecimal.
    #[error("a digest is 64 hex characters: {0}")]
    Hex(#[from] hex::FromHexError),
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 {
            return Err(DigestError::Length(s.len() / 2));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes)?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_input_is_the_known_value() {
        assert_eq!(
            Digest::sha256(b"").to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hex_round_trips_and_rejects_bad_lengths() {
        let d = Digest::sha256(b"milagro");
        assert_eq!(d.to_string().parse::<Digest>(), Ok(d));
        assert!(matches!(
            "abcd".parse::<Digest>(),
            Err(DigestError::Length(2))
        ));
        assert!(matches!(
            "zz".repeat(32).parse::<Digest>(),
            Err(DigestError::Hex(_))
        ));
        assert!(Digest::from_slice(&[0u8; 31]).is_err());
    }
}
