//! ES256K compact JWS (RFC 7515 §7.1 with RFC 8812's `ES256K`): the one encoding, signing
//! and checking behind the IdP's signed JWKS ([`crate::signed_jwks`]), DPoP proofs
//! ([`crate::dpop`]) and the authentication server's session tokens.
//!
//! This module knows the three base64url parts (no padding) and the low-S ECDSA signature
//! `r ‖ s` over SHA-256 of the first two; it checks no header member and no claim: each
//! caller reads its own header and claims with [`decode_part`] and refuses what its format
//! does not allow.
//!
//! ```
//! use milagro_anchor::jws;
//! use milagro_anchor::keys::SecretKey;
//! use serde_json::json;
//!
//! let key = SecretKey::from_bytes(&[7; 32]).unwrap();
//! let token = jws::sign(&key, &json!({"alg": "ES256K", "typ": "JWT"}), &json!({"sub": "a"}));
//! let parts = jws::split(&token, 4096).unwrap();
//! parts.verify(&key.public_key()).unwrap();
//! let claims: serde_json::Value = jws::decode_part("the claims", parts.payload).unwrap();
//! assert_eq!(claims["sub"], "a");
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::digest::Digest;
use crate::keys::{PublicKey, SecretKey, Signature};

/// The only algorithm: ECDSA on secp256k1 with SHA-256 (RFC 8812).
pub const ALG: &str = "ES256K";

/// Why a compact JWS was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    /// Too long, not three parts, or a part that is not base64url JSON of the right shape.
    #[error("{0}")]
    Malformed(String),
    /// The header names another algorithm, type or key ([`KidHeader::check`]).
    #[error("{0}")]
    Header(String),
    /// The signature is not a compact ECDSA signature, or does not verify under the key.
    #[error("the signature does not verify")]
    Signature,
}

/// `value` as JSON, base64url without padding.
pub fn encode_part(value: &impl Serialize) -> String {
    // The callers' headers and claims are structs of strings, numbers and JSON values:
    // serialising them cannot fail.
    B64URL.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// Signs `header` and `claims` with `key`: `header.claims.signature`.
pub fn sign(key: &SecretKey, header: &impl Serialize, claims: &impl Serialize) -> String {
    let signing_input = format!("{}.{}", encode_part(header), encode_part(claims));
    let signature = key.sign_digest(&Digest::sha256(signing_input.as_bytes()));
    format!("{signing_input}.{}", B64URL.encode(signature.to_compact()))
}

/// Reads `part` (named `what` in errors) as base64url JSON of type `T`.
pub fn decode_part<T: DeserializeOwned>(what: &str, part: &str) -> Result<T, JwsError> {
    let bytes = B64URL
        .decode(part)
        .map_err(|e| JwsError::Malformed(format!("{what} is not base64url: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| JwsError::Malformed(format!("{what} is not the expected JSON: {e}")))
}

/// The header of a JWS signed by an anchored party: the algorithm, the token's type and
/// `kid`, the digest of the signer's Birth Certificate; nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KidHeader {
    /// Always [`ALG`].
    pub alg: String,
    /// The token's type (`JWT`, `jwk-set+jwt`, …).
    pub typ: String,
    /// The signer's certificate digest.
    pub kid: String,
}

impl KidHeader {
    /// The header of a `typ` token signed under the certificate `kid`.
    pub fn new(typ: &str, kid: String) -> Self {
        Self {
            alg: ALG.into(),
            typ: typ.into(),
            kid,
        }
    }

    /// Refuses another algorithm than [`ALG`], another type than `typ` or another key id
    /// than `kid`.
    pub fn check(&self, typ: &str, kid: &str) -> Result<(), JwsError> {
        if self.alg != ALG || self.typ != typ {
            return Err(JwsError::Header(format!(
                "alg {:?} typ {:?}: only {ALG} {typ} is accepted",
                self.alg, self.typ
            )));
        }
        if self.kid != kid {
            return Err(JwsError::Header(format!("kid {:?} is not {kid}", self.kid)));
        }
        Ok(())
    }
}

/// A compact JWS split into its parts; nothing in it is checked yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compact<'a> {
    /// The header, base64url.
    pub header: &'a str,
    /// The payload (the claims), base64url.
    pub payload: &'a str,
    signing_input: &'a str,
    signature: &'a str,
}

/// Splits `token` into its three parts; refuses more than `max_bytes` bytes.
pub fn split(token: &str, max_bytes: usize) -> Result<Compact<'_>, JwsError> {
    if token.len() > max_bytes {
        return Err(JwsError::Malformed(format!(
            "longer than {max_bytes} bytes"
        )));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed("not three parts".into()));
    };
    Ok(Compact {
        header,
        payload,
        signing_input: &token[..header.len() + 1 + payload.len()],
        signature,
    })
}

impl Compact<'_> {
    /// Checks the signature over `header.payload` under `key`.
    pub fn verify(&self, key: &PublicKey) -> Result<(), JwsError> {
        let signature = B64URL
            .decode(self.signature)
            .ok()
            .and_then(|bytes| Signature::from_compact(&bytes).ok())
            .ok_or(JwsError::Signature)?;
        key.verify_digest(&Digest::sha256(self.signing_input.as_bytes()), &signature)
            .map_err(|_| JwsError::Signature)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_bytes(&[3; 32]).unwrap()
    }

    #[test]
    fn a_signed_token_splits_verifies_and_decodes() {
        let token = sign(&key(), &json!({"alg": ALG}), &json!({"n": 1}));
        let parts = split(&token, 1024).unwrap();
        parts.verify(&key().public_key()).unwrap();
        let header: Value = decode_part("the header", parts.header).unwrap();
        assert_eq!(header["alg"], ALG);
    }

    #[test]
    fn another_key_a_changed_part_and_bad_shapes_are_refused() {
        let token = sign(&key(), &json!({"alg": ALG}), &json!({"n": 1}));
        let other = SecretKey::from_bytes(&[4; 32]).unwrap().public_key();
        assert_eq!(
            split(&token, 1024).unwrap().verify(&other),
            Err(JwsError::Signature)
        );
        let (signing_input, signature) = token.rsplit_once('.').unwrap();
        let (header, _) = signing_input.split_once('.').unwrap();
        let changed = format!("{header}.{}.{signature}", encode_part(&json!({"n": 2})));
        assert_eq!(
            split(&changed, 1024).unwrap().verify(&key().public_key()),
            Err(JwsError::Signature)
        );
        assert!(matches!(split(&token, 10), Err(JwsError::Malformed(_))));
        assert!(matches!(split("a.b", 1024), Err(JwsError::Malformed(_))));
        assert!(matches!(
            split("a.b.c.d", 1024),
            Err(JwsError::Malformed(_))
        ));
        assert!(matches!(
            decode_part::<Value>("the claims", "!!"),
            Err(JwsError::Malformed(_))
        ));
    }

    #[test]
    fn a_header_of_another_algorithm_type_or_key_is_refused() {
        let header = KidHeader::new("JWT", "k1".into());
        assert_eq!(header.check("JWT", "k1"), Ok(()));
        for (header, typ, kid) in [
            (
                KidHeader {
                    alg: "ES256".into(),
                    ..header.clone()
                },
                "JWT",
                "k1",
            ),
            (header.clone(), "jwk-set+jwt", "k1"),
            (header.clone(), "JWT", "k2"),
        ] {
            assert!(matches!(header.check(typ, kid), Err(JwsError::Header(_))));
        }
    }
}
