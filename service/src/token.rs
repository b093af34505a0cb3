//! Bearer credentials a service hands out once and keeps only as hashes: operator admin
//! tokens, tenant tokens, initial access tokens.

use core::fmt;

use rand_core::CryptoRngCore;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The text is not a token (or a token hash) of this format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed token")]
pub struct MalformedToken;

/// A bearer credential: `mlgt_` and 64 hex characters (32 random bytes). Shown once; the
/// service keeps only its [`TokenHash`]. Never printed by `Debug`.
pub struct ApiToken(Zeroizing<String>);

impl ApiToken {
    const PREFIX: &'static str = "mlgt_";

    /// Draws a fresh token.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Self(Zeroizing::new(format!(
            "{}{}",
            Self::PREFIX,
            hex::encode(*bytes)
        )))
    }

    /// Reads a presented token (e.g. from an `Authorization: Bearer` header).
    pub fn parse(text: &str) -> Result<Self, MalformedToken> {
        let hex_part = text.strip_prefix(Self::PREFIX).ok_or(MalformedToken)?;
        if hex_part.len() != 64
            || !hex_part
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(MalformedToken);
        }
        Ok(Self(Zeroizing::new(text.to_owned())))
    }

    /// The token text, to hand to its owner once.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// What the service stores.
    pub fn hash(&self) -> TokenHash {
        TokenHash(<[u8; 32]>::from(Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// SHA-256 of an [`ApiToken`]. Tokens carry 256 random bits, so a fast hash is enough
/// (no password stretching needed); comparisons are constant-time.
#[derive(Clone, Copy, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The raw hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Reads a stored hash (64 hex characters), e.g. the admin token hash in the config.
    pub fn from_hex(text: &str) -> Result<Self, MalformedToken> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut out).map_err(|_| MalformedToken)?;
        Ok(Self(out))
    }

    /// Whether `token` hashes to this value, in constant time.
    pub fn matches(&self, token: &ApiToken) -> bool {
        self.0.ct_eq(token.hash().as_bytes()).into()
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Display for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({self})")
    }
}
