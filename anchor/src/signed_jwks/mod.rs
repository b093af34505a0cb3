//! A JWK Set signed by its issuer's anchored key: what binds an IdP's rotating ID-token
//! keys to the party its Birth Certificate names (ADR 0010).
//!
//! An IdP's token-signing keys (P-256, rotated) are not its anchored secp256k1 key, so a
//! relying party that takes them from a plain `/jwks` over HTTP trusts whoever is on the
//! path. The IdP therefore also serves its JWK Set as a compact JWS signed with its
//! anchored key, shaped as OpenID Federation 1.0's signed JWK Set (`signed_jwks_uri`,
//! typed `jwk-set+jwt`):
//!
//! ```text
//! header  = {"alg": "ES256K", "typ": "jwk-set+jwt", "kid": <Birth Certificate digest, hex>}
//! claims  = {"iss": issuer, "sub": issuer, "iat", "exp",
//!            "milagro_birth_certificate_digest": digest, "keys": [JWK, ...]}
//! token   = b64url(header) "." b64url(claims) "." b64url(r ‖ s)
//! (r, s)  = ECDSA-secp256k1(SHA-256(b64url(header) "." b64url(claims))), RFC 6979, low S
//! ```
//!
//! **Domain separation.** The signed bytes start with the header, whose `typ`
//! (`jwk-set+jwt`, RFC 8725 §3.11 explicit typing) [`verify`] requires, so a JWS the same
//! key signs for another purpose cannot pass as a key set. Nothing else the anchored key
//! signs can be read as a JWS signing input: Birth Certificates sign the SHA-256 of JCS
//! JSON (it starts with `{`), checkpoints the SHA-256 of a note with newlines, TLS
//! bindings and enrolment proofs a labelled hash, and anchoring transactions a BIP 143
//! sighash (a double SHA-256).
//!
//! [`verify`] accepts only that algorithm and type (never `none`, never a key the token
//! names), exactly these members, a low-S signature by the given key, the given digest as
//! `kid` and claim, the given issuer as `iss` and `sub`, `iat <= now + CLOCK_SKEW_SECS`,
//! `now < exp`, and a validity (`exp - iat`) of at most [`MAX_VALIDITY_SECS`], so a
//! replayed old key set stops counting soon after the IdP drops a key. It returns a
//! [`VerifiedJwks`], which nothing else makes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::jws::{self, JwsError};
use crate::keys::{PublicKey, SecretKey};

/// The JWS algorithm: ECDSA over secp256k1 with SHA-256 (RFC 8812).
pub const ALG: &str = jws::ALG;
/// The JWS type of a signed JWK Set (OpenID Federation 1.0).
pub const TYP: &str = "jwk-set+jwt";
/// The media type a signed JWK Set is served with.
pub const MEDIA_TYPE: &str = "application/jwk-set+jwt";
/// The longest signed key set [`verify`] reads, in bytes.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// The longest validity (`exp - iat`) [`verify`] accepts, in seconds.
pub const MAX_VALIDITY_SECS: u64 = 3600;
/// How far in the future `iat` may be (the two clocks differ a little).
pub const CLOCK_SKEW_SECS: u64 = 60;

/// Why a signed key set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignedJwksError {
    /// Not three base64url parts of JSON of the expected members, or too long.
    #[error("malformed signed jwk set: {0}")]
    Malformed(String),
    /// The header names another algorithm, type or key.
    #[error("signed jwk set header refused: {0}")]
    Header(String),
    /// The signature is not a valid low-S signature of the anchored key over the set.
    #[error("the signed jwk set's signature does not verify with the birth certificate's key")]
    Signature,
    /// Signed by the right key, but about another party.
    #[error("the signed jwk set is about {found}, not {expected}")]
    OtherParty {
        /// What the set names (issuer, subject or certificate digest).
        found: String,
        /// What was expected.
        expected: String,
    },
    /// Expired, not yet issued, or valid for longer than [`MAX_VALIDITY_SECS`].
    #[error("the signed jwk set is valid from {iat} to {exp}, not usable at {now}")]
    Stale {
        /// Issued at.
        iat: u64,
        /// Expires at.
        exp: u64,
        /// The time of the check.
        now: u64,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Claims {
    iss: String,
    sub: String,
    iat: u64,
    exp: u64,
    milagro_birth_certificate_digest: Digest,
    keys: Vec<Value>,
}

/// A key set whose signature by an anchored key was checked, for its issuer, at a time
/// within its validity. Only [`verify`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedJwks {
    keys: Vec<Value>,
    expires: u64,
}

impl VerifiedJwks {
    /// The JWK Set (RFC 7517), `{"keys": [...]}`, as signed.
    pub fn jwks(&self) -> Value {
        serde_json::json!({ "keys": self.keys })
    }

    /// When the signature stops vouching for the set (`exp`, Unix seconds).
    pub fn expires(&self) -> u64 {
        self.expires
    }
}

/// Signs the key set `keys` (the `keys` member of a JWK Set) of `issuer`, whose anchored
/// certificate is `digest` and names `key`, valid from `iat` to `exp` (Unix seconds).
pub fn sign(
    key: &SecretKey,
    digest: Digest,
    issuer: &str,
    keys: Vec<Value>,
    iat: u64,
    exp: u64,
) -> String {
    let header = jws::KidHeader::new(TYP, digest.to_string());
    let claims = Claims {
        iss: issuer.to_owned(),
        sub: issuer.to_owned(),
        iat,
        exp,
        milagro_birth_certificate_digest: digest,
        keys,
    };
    jws::sign(key, &header, &claims)
}

impl From<JwsError> for SignedJwksError {
    fn from(error: JwsError) -> Self {
        match error {
            JwsError::Malformed(reason) => Self::Malformed(reason),
            JwsError::Header(reason) => Self::Header(reason),
            JwsError::Signature => Self::Signature,
        }
    }
}

/// Checks `token` as the key set of `issuer`, signed by `key` of the certificate `digest`
/// (both from its anchored Birth Certificate), at `now` (Unix seconds).
pub fn verify(
    token: &str,
    key: &PublicKey,
    digest: &Digest,
    issuer: &str,
    now: u64,
) -> Result<VerifiedJwks, SignedJwksError> {
    let token = token.trim();
    let parts = jws::split(token, MAX_TOKEN_BYTES)?;
    jws::decode_part::<jws::KidHeader>("the header", parts.header)?
        .check(TYP, &digest.to_string())?;
    parts.verify(key)?;
    let claims: Claims = jws::decode_part("the claims", parts.payload)?;
    for found in [&claims.iss, &claims.sub] {
        if found != issuer {
            return Err(SignedJwksError::OtherParty {
                found: found.clone(),
                expected: issuer.to_owned(),
            });
        }
    }
    if claims.milagro_birth_certificate_digest != *digest {
        return Err(SignedJwksError::OtherParty {
            found: claims.milagro_birth_certificate_digest.to_string(),
            expected: digest.to_string(),
        });
    }
    let stale = || SignedJwksError::Stale {
        iat: claims.iat,
        exp: claims.exp,
        now,
    };
    if claims.exp.saturating_sub(claims.iat) > MAX_VALIDITY_SECS
        || claims.iat > now.saturating_add(CLOCK_SKEW_SECS)
        || now >= claims.exp
    {
        return Err(stale());
    }
    Ok(VerifiedJwks {
        keys: claims.keys,
        expires: claims.exp,
    })
}

#[cfg(test)]
mod tests;
