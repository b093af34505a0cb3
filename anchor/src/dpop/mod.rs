//! DPoP proofs (RFC 9449) made and checked with a party's anchored secp256k1 key, and the
//! key's JWK thumbprint (RFC 7638) that binds a token to it (ADR 0012).
//!
//! A device proves, at the IdP's token endpoint, that it holds the key its Birth
//! Certificate names; the IdP writes that key's thumbprint into the tokens it issues
//! (`cnf.jkt`, RFC 7800 §3.1, RFC 9449 §6.1), and a D-TA compares it with the key of the
//! Milagro TLS peer presenting the token. A token obtained by one device is then worth
//! nothing on another.
//!
//! ```text
//! header = {"typ": "dpop+jwt", "alg": "ES256K",
//!           "jwk": {"kty": "EC", "crv": "secp256k1", "x", "y"}}
//! claims = {"jti", "htm", "htu", "iat"[, "ath"]}
//! proof  = b64url(header) "." b64url(claims) "." b64url(r ‖ s)
//! (r, s) = ECDSA-secp256k1(SHA-256(b64url(header) "." b64url(claims))), RFC 6979, low S
//! jkt    = b64url(SHA-256({"crv":"secp256k1","kty":"EC","x":…,"y":…}))   (RFC 7638)
//! ```
//!
//! [`verify`] is RFC 9449 §4.3 without its stateful step: exactly one proof, the explicit
//! type, `ES256K` only (never `none`, never a symmetric algorithm), a public key only (a
//! `d` member is refused), a low-S signature by that key, `htm` and `htu` (query and
//! fragment ignored) equal to the request's, `iat` at most [`MAX_AGE_SECS`] old and
//! [`CLOCK_SKEW_SECS`] ahead, and `ath` equal to the hash of the access token presented
//! with it. Refusing a `jti` already seen within that window is the server's, which holds
//! the state (`milagro_idp`'s replay cache). Time is passed in: this crate reads no clock.
//!
//! **Domain separation.** The signed bytes begin with the header, whose `typ` is required,
//! so no other JWS the key signs (a signed JWK Set is `jwk-set+jwt`, ADR 0010) passes as
//! a proof, and nothing else the anchored key signs is a JWS signing input (see
//! [`crate::signed_jwks`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::jws::{self, JwsError};
use crate::keys::{PublicKey, SecretKey};

/// The JWS type of a DPoP proof (RFC 9449 §4.2).
pub const TYP: &str = "dpop+jwt";
/// The only proof algorithm: ECDSA over secp256k1 with SHA-256 (RFC 8812).
pub const ALG: &str = jws::ALG;
/// The name of the HTTP header that carries a proof.
pub const HEADER: &str = "DPoP";
/// The longest proof [`verify`] reads, in bytes.
pub const MAX_PROOF_BYTES: usize = 2048;
/// The longest `jti` accepted, in bytes.
pub const MAX_JTI_BYTES: usize = 128;
/// How old a proof's `iat` may be, in seconds: a proof is used once, right after it is
/// made, and a server must remember its `jti` this long.
pub const MAX_AGE_SECS: u64 = 60;
/// How far ahead of the verifier's clock a proof's `iat` may be, in seconds.
pub const CLOCK_SKEW_SECS: u64 = 10;

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// Not three base64url parts of JSON of the expected members, or too long.
    #[error("malformed dpop proof: {0}")]
    Malformed(String),
    /// The header names another type or algorithm, or a key that is not a secp256k1
    /// public key.
    #[error("dpop proof header refused: {0}")]
    Header(String),
    /// The signature is not a valid low-S signature by the header's key.
    #[error("the dpop proof's signature does not verify with the key in its header")]
    Signature,
    /// Signed, but for another request: `what` (`htm`, `htu` or `ath`) differs.
    #[error("the dpop proof's {what} is {found:?}, the request's {expected:?}")]
    OtherRequest {
        /// The claim.
        what: &'static str,
        /// What the proof says.
        found: String,
        /// What the request is.
        expected: String,
    },
    /// Made too long ago, or in the future.
    #[error("the dpop proof was made at {iat}, not usable at {now}")]
    Stale {
        /// Its `iat`.
        iat: u64,
        /// The time of the check.
        now: u64,
    },
}

/// The RFC 7638 SHA-256 thumbprint of a key's JWK, base64url (43 characters): what
/// `cnf.jkt` holds. Only made from a key or by parsing exactly that form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Thumbprint(String);

impl Thumbprint {
    /// The thumbprint of `key`'s JWK ([`jwk`]).
    pub fn of(key: &PublicKey) -> Self {
        Self(B64URL.encode(Sha256::digest(canonical_jwk(key).as_bytes())))
    }

    /// Its base64url text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::str::FromStr for Thumbprint {
    type Err = DpopError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Canonical only: 32 bytes, and re-encoding gives the same text.
        match B64URL.decode(text) {
            Ok(bytes) if bytes.len() == 32 && B64URL.encode(&bytes) == text => {
                Ok(Self(text.to_owned()))
            }
            _ => Err(DpopError::Malformed(format!(
                "{text:?} is not a base64url SHA-256 thumbprint"
            ))),
        }
    }
}

impl TryFrom<String> for Thumbprint {
    type Error = DpopError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Thumbprint> for String {
    fn from(thumbprint: Thumbprint) -> Self {
        thumbprint.0
    }
}

/// The confirmation claim of a key-bound token (RFC 7800 §3.1): `{"jkt": thumbprint}`
/// (RFC 9449 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The thumbprint of the key the token is bound to.
    pub jkt: Thumbprint,
}

/// A secp256k1 public JWK (RFC 7518 §6.2.1, RFC 8812 §3.1).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Jwk {
    kty: String,
    crv: String,
    x: String,
    y: String,
}

/// The members RFC 7638 §3.2 hashes, in lexicographic order, with no whitespace.
fn canonical_jwk(key: &PublicKey) -> String {
    let (x, y) = key.to_coordinates();
    format!(
        r#"{{"crv":"secp256k1","kty":"EC","x":"{}","y":"{}"}}"#,
        B64URL.encode(x),
        B64URL.encode(y)
    )
}

fn to_jwk(key: &PublicKey) -> Jwk {
    let (x, y) = key.to_coordinates();
    Jwk {
        kty: "EC".into(),
        crv: "secp256k1".into(),
        x: B64URL.encode(x),
        y: B64URL.encode(y),
    }
}

/// `key` as a public JWK: `{"kty": "EC", "crv": "secp256k1", "x", "y"}`.
pub fn jwk(key: &PublicKey) -> serde_json::Value {
    serde_json::to_value(to_jwk(key)).unwrap_or_default()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    typ: String,
    alg: String,
    jwk: Jwk,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
}

/// The request a proof is for.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The HTTP method (`POST`).
    pub method: &'a str,
    /// The target URI without query or fragment (`https://idp.example/token`).
    pub uri: &'a str,
    /// The access token sent with the request, if any (then the proof carries its hash,
    /// `ath`).
    pub access_token: Option<&'a str>,
}

/// `ath`: the base64url SHA-256 of an access token (RFC 9449 §4.2).
pub fn access_token_hash(access_token: &str) -> String {
    B64URL.encode(Sha256::digest(access_token.as_bytes()))
}

/// A proof by `key` for `request`, identified by `jti` (at least 96 random bits, never
/// reused), made at `iat` (Unix seconds).
pub fn sign(key: &SecretKey, request: &Request<'_>, jti: &str, iat: u64) -> String {
    let header = Header {
        typ: TYP.into(),
        alg: ALG.into(),
        jwk: to_jwk(&key.public_key()),
    };
    let claims = Claims {
        jti: jti.to_owned(),
        htm: request.method.to_owned(),
        htu: request.uri.to_owned(),
        iat,
        ath: request.access_token.map(access_token_hash),
    };
    jws::sign(key, &header, &claims)
}

/// A proof whose signature, request and age were checked. Only [`verify`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    key: PublicKey,
    thumbprint: Thumbprint,
    jti: String,
    iat: u64,
}

impl VerifiedProof {
    /// The key that signed it.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// That key's thumbprint: what a token bound to it carries as `cnf.jkt`.
    pub fn thumbprint(&self) -> &Thumbprint {
        &self.thumbprint
    }

    /// Its identifier, which the server must not accept twice within [`MAX_AGE_SECS`] of
    /// [`Self::iat`].
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// When it was made (Unix seconds).
    pub fn iat(&self) -> u64 {
        self.iat
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(what: &str, part: &str) -> Result<T, DpopError> {
    Ok(jws::decode_part(what, part)?)
}

impl From<JwsError> for DpopError {
    fn from(error: JwsError) -> Self {
        match error {
            JwsError::Malformed(reason) => Self::Malformed(reason),
            JwsError::Header(reason) => Self::Header(reason),
            JwsError::Signature => Self::Signature,
        }
    }
}

fn coordinate(text: &str) -> Result<[u8; 32], DpopError> {
    B64URL
        .decode(text)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| DpopError::Header("a jwk coordinate is not 32 bytes of base64url".into()))
}

/// The header's key, if it is a secp256k1 public key.
fn header_key(header: &str) -> Result<PublicKey, DpopError> {
    let raw: serde_json::Value = decode_json("the header", header)?;
    if raw.get("jwk").and_then(|jwk| jwk.get("d")).is_some() {
        return Err(DpopError::Header("the jwk holds a private key".into()));
    }
    let decoded: Header = serde_json::from_value(raw)
        .map_err(|e| DpopError::Malformed(format!("the header is not the expected JSON: {e}")))?;
    if decoded.typ != TYP || decoded.alg != ALG {
        return Err(DpopError::Header(format!(
            "typ {:?} alg {:?}: only {TYP} {ALG} is accepted",
            decoded.typ, decoded.alg
        )));
    }
    let jwk = decoded.jwk;
    if jwk.kty != "EC" || jwk.crv != "secp256k1" {
        return Err(DpopError::Header(format!(
            "a {} {} key, not an EC secp256k1 one",
            jwk.kty, jwk.crv
        )));
    }
    PublicKey::from_coordinates(&coordinate(&jwk.x)?, &coordinate(&jwk.y)?)
        .map_err(|_| DpopError::Header("the jwk is not a point on secp256k1".into()))
}

/// Checks `proof` (the `DPoP` header's value) for `request` at `now` (Unix seconds); see
/// the module documentation. The caller must still refuse a [`VerifiedProof::jti`] it has
/// seen.
pub fn verify(proof: &str, request: &Request<'_>, now: u64) -> Result<VerifiedProof, DpopError> {
    let parts = jws::split(proof, MAX_PROOF_BYTES)?;
    let key = header_key(parts.header)?;
    parts.verify(&key)?;
    let claims: Claims = decode_json("the claims", parts.payload)?;
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_BYTES {
        return Err(DpopError::Malformed(format!(
            "jti is {} bytes, not 1 to {MAX_JTI_BYTES}",
            claims.jti.len()
        )));
    }
    let other = |what, found: &str, expected: &str| DpopError::OtherRequest {
        what,
        found: found.to_owned(),
        expected: expected.to_owned(),
    };
    if claims.htm != request.method {
        return Err(other("htm", &claims.htm, request.method));
    }
    // RFC 9449 §4.3: the query and fragment are not part of the comparison.
    let htu = claims.htu.split(['?', '#']).next().unwrap_or_default();
    if htu != request.uri {
        return Err(other("htu", &claims.htu, request.uri));
    }
    if let Some(token) = request.access_token {
        let expected = access_token_hash(token);
        let found = claims.ath.as_deref().unwrap_or_default();
        if found != expected {
            return Err(other("ath", found, &expected));
        }
    }
    if claims.iat > now.saturating_add(CLOCK_SKEW_SECS)
        || claims.iat.saturating_add(MAX_AGE_SECS) < now
    {
        return Err(DpopError::Stale {
            iat: claims.iat,
            now,
        });
    }
    Ok(VerifiedProof {
        thumbprint: Thumbprint::of(&key),
        key,
        jti: claims.jti,
        iat: claims.iat,
    })
}

#[cfg(test)]
mod tests;
