//! The ID-token signing keys: ES256 (ECDSA on P-256 with SHA-256), rotated on a schedule.
//!
//! The ring lives in `state_dir/signing-keys.json` (mode 0600, replaced atomically). Each
//! key carries the time it *activates*, and the rules are:
//!
//! - the signing key is the newest key whose activation time has passed;
//! - a new key is made `rotation - prepublish` after the signing key activated, and
//!   activates `prepublish` later: relying parties that cache the JWKS see it before any
//!   token is signed with it (the first key of an empty ring activates at once);
//! - a key that stopped signing is published until every token it signed has expired
//!   (`retain`, the longest token lifetime, after its successor activated), then dropped.
//!
//! The key id (`kid`) is the key's RFC 7638 JWK thumbprint. Signatures are encoded as JWS
//! wants them, `r ‖ s` (64 bytes). The `p256` key is the one stored, published and
//! verified with; `ring` signs with the same scalar (its P-256 is several times faster,
//! and signing is most of an exchange's work at the token endpoint), with nonces from
//! fresh randomness and the key (ADR 0020). The `p256` scalar is zeroized when dropped;
//! `ring`'s copy lives as long as the key, like the TLS keys it holds; neither is logged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use milagro_service::files::{self, FileError};
use openidconnect::core::{CoreJsonCurveType, CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKeyId, PrivateSigningKey, SigningError};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::config::KeyRotation;

/// File name of the key ring in the state directory.
pub const KEYS_FILE: &str = "signing-keys.json";

/// Why the key ring could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The file does not hold a key ring.
    #[error("{} is corrupt: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// One ES256 key and its place in the rotation.
pub struct Es256Key {
    kid: String,
    activates: u64,
    key: SigningKey,
    /// The same key, for `ring` to sign with.
    signer: EcdsaKeyPair,
}

impl Es256Key {
    /// A fresh random key that signs from `activates` (Unix seconds).
    pub fn generate(activates: u64) -> Self {
        loop {
            // `ring` takes every scalar `p256` makes; the loop is never taken twice.
            if let Some(key) = Self::new(SigningKey::random(&mut rand_core::OsRng), activates) {
                return key;
            }
        }
    }

    /// The key `key`, signing from `activates`; `None` if `ring` refuses the scalar.
    fn new(key: SigningKey, activates: u64) -> Option<Self> {
        let secret = Zeroizing::new(key.to_bytes().to_vec());
        let public = key.verifying_key().to_encoded_point(false);
        let signer = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            secret.as_slice(),
            public.as_bytes(),
            &SystemRandom::new(),
        )
        .ok()?;
        Some(Self {
            kid: thumbprint(key.verifying_key()),
            activates,
            key,
            signer,
        })
    }

    /// The key id (RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (`kty`, `crv`, `x`, `y`, `kid`, `use`, `alg`).
    pub fn jwk(&self) -> Value {
        let (x, y) = coordinates(self.key.verifying_key());
        json!({
            "kty": "EC", "crv": "P-256", "x": B64URL.encode(x), "y": B64URL.encode(y),
            "kid": self.kid, "use": "sig", "alg": "ES256",
        })
    }

    /// Signs `message` (ES256, `r ‖ s`); `None` only if the system's randomness fails.
    pub fn sign_jws(&self, message: &[u8]) -> Option<[u8; 64]> {
        let signature = self.signer.sign(&SystemRandom::new(), message).ok()?;
        signature.as_ref().try_into().ok()
    }
}

impl std::fmt::Debug for Es256Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Es256Key")
            .field("kid", &self.kid)
            .field("activates", &self.activates)
            .finish_non_exhaustive()
    }
}

impl PrivateSigningKey for Es256Key {
    type VerificationKey = CoreJsonWebKey;

    fn sign(
        &self,
        signature_alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, SigningError> {
        match signature_alg {
            CoreJwsSigningAlgorithm::EcdsaP256Sha256 => self
                .sign_jws(message)
                .map(|signature| signature.to_vec())
                .ok_or(SigningError::CryptoError),
            other => Err(SigningError::UnsupportedAlg(
                serde_json::to_string(other).unwrap_or_default(),
            )),
        }
    }

    fn as_verification_key(&self) -> CoreJsonWebKey {
        let (x, y) = coordinates(self.key.verifying_key());
        CoreJsonWebKey::new_ec(
            x,
            y,
            CoreJsonCurveType::P256,
            Some(JsonWebKeyId::new(self.kid.clone())),
        )
    }
}

fn coordinates(key: &VerifyingKey) -> (Vec<u8>, Vec<u8>) {
    let point = key.to_encoded_point(false);
    let x = point.x().map(|x| x.to_vec()).unwrap_or_default();
    let y = point.y().map(|y| y.to_vec()).unwrap_or_default();
    (x, y)
}

/// RFC 7638: SHA-256 of the required members in lexicographic order, no white space.
fn thumbprint(key: &VerifyingKey) -> String {
    let (x, y) = coordinates(key);
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        B64URL.encode(x),
        B64URL.encode(y)
    );
    B64URL.encode(Sha256::digest(canonical.as_bytes()))
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKey {
    activates: u64,
    /// The secret scalar, hex.
    secret: String,
}

/// The signing keys, their rotation, and the JWKS they make.
#[derive(Debug)]
pub struct KeyRing {
    path: PathBuf,
    rotation: KeyRotation,
    retain: Duration,
    /// Oldest first.
    keys: RwLock<Vec<Arc<Es256Key>>>,
}

impl KeyRing {
    /// Reads the ring in `state_dir` (an absent file is an empty ring) and applies the
    /// rules at `now`. `retain` is the longest lifetime of a signed token.
    pub fn open(
        state_dir: &Path,
        rotation: KeyRotation,
        retain: Duration,
        now: u64,
    ) -> Result<Self, KeyError> {
        let path = state_dir.join(KEYS_FILE);
        let keys = match std::fs::read(&path) {
            Ok(bytes) => parse(&path, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(FileError::Io {
                    action: "read",
                    path,
                    source,
                }
                .into())
            }
        };
        let ring = Self {
            path,
            rotation,
            retain,
            keys: RwLock::new(keys),
        };
        ring.rotate(now)?;
        Ok(ring)
    }

    /// Applies the rotation rules at `now`, persisting any change before it takes effect.
    pub fn rotate(&self, now: u64) -> Result<(), KeyError> {
        let current = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let next = plan(&current, self.rotation, self.retain, now);
        if next.len() == current.len() && next.iter().zip(&current).all(|(a, b)| Arc::ptr_eq(a, b))
        {
            return Ok(());
        }
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have rotated meanwhile: plan again from what is there now.
        let next = plan(&keys, self.rotation, self.retain, now);
        let stored: Vec<StoredKey> = next
            .iter()
            .map(|k| StoredKey {
                activates: k.activates,
                secret: hex::encode(k.key.to_bytes()),
            })
            .collect();
        let json =
            Zeroizing::new(
                serde_json::to_vec_pretty(&stored).map_err(|e| KeyError::Corrupt {
                    path: self.path.clone(),
                    detail: e.to_string(),
                })?,
            );
        files::write_atomically(&self.path, &json)?;
        for key in next.iter().filter(|k| !keys.iter().any(|o| o.kid == k.kid)) {
            tracing::info!(
                kid = key.kid,
                activates = key.activates,
                "new ID-token signing key"
            );
        }
        *keys = next;
        Ok(())
    }

    /// The key that signs at `now` (rotating first if due; a failure to persist a rotation
    /// is logged and the current key kept).
    pub fn signer(&self, now: u64) -> Option<Arc<Es256Key>> {
        if let Err(error) = self.rotate(now) {
            tracing::warn!(%error, "rotating the signing keys failed; keeping the current one");
        }
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.iter().rev().find(|k| k.activates <= now).cloned()
    }

    /// The JWKS (RFC 7517) at `now`: every key that signs, will sign, or signed tokens
    /// that may still be valid.
    pub fn jwks(&self, now: u64) -> Value {
        json!({ "keys": self.public_keys(now) })
    }

    /// The members of [`Self::jwks`]'s `keys`, one JWK per key, oldest first (what the
    /// signed JWKS carries).
    pub fn public_keys(&self, now: u64) -> Vec<Value> {
        if let Err(error) = self.rotate(now) {
            tracing::warn!(%error, "rotating the signing keys failed");
        }
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.iter().map(|k| k.jwk()).collect()
    }
}

impl KeyRing {
    /// A compact JWS of `claims` with header `typ`, signed at `now` by the signing key
    /// (ES256; `kid` names the key), or `None` when no key signs.
    pub fn sign_jwt(&self, typ: &str, claims: &Value, now: u64) -> Option<String> {
        let key = self.signer(now)?;
        let header = json!({ "alg": "ES256", "kid": key.kid, "typ": typ });
        let input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let signature = key.sign_jws(input.as_bytes())?;
        Some(format!("{input}.{}", B64URL.encode(signature)))
    }

    /// The claims of a compact JWS that one of the ring's keys signed (ES256), whatever
    /// its `exp`: what a logout request's `id_token_hint` is checked with (RP-Initiated
    /// Logout 1.0 §2 lets an expired ID token name the session). `None` if it is malformed
    /// or no key of the ring signed it.
    pub fn verify_own(&self, jws: &str) -> Option<Value> {
        use p256::ecdsa::signature::Verifier as _;
        if jws.len() > 16 * 1024 {
            return None;
        }
        let mut parts = jws.split('.');
        let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&B64URL.decode(header).ok()?).ok()?;
        if header["alg"] != "ES256" {
            return None;
        }
        let kid = header["kid"].as_str()?;
        let signature = Signature::from_slice(&B64URL.decode(signature).ok()?).ok()?;
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let key = keys.iter().find(|k| k.kid == kid)?;
        let input = &jws[..header_and_payload_len(jws)?];
        key.key
            .verifying_key()
            .verify(input.as_bytes(), &signature)
            .ok()?;
        let claims: Value = serde_json::from_slice(&B64URL.decode(payload).ok()?).ok()?;
        claims.is_object().then_some(claims)
    }
}

/// The length of `header.payload`, the signed part of a compact JWS.
fn header_and_payload_len(jws: &str) -> Option<usize> {
    jws.rfind('.')
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<Arc<Es256Key>>, KeyError> {
    let corrupt = |detail: String| KeyError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let stored: Vec<StoredKey> =
        serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    let mut keys = Vec::with_capacity(stored.len());
    for entry in stored {
        let secret = Zeroizing::new(
            hex::decode(&entry.secret).map_err(|_| corrupt("a secret is not hex".into()))?,
        );
        let key = SigningKey::from_slice(&secret)
            .ok()
            .and_then(|key| Es256Key::new(key, entry.activates))
            .ok_or_else(|| corrupt("a secret is not a P-256 scalar".into()))?;
        keys.push(Arc::new(key));
    }
    keys.sort_by_key(|k| k.activates);
    Ok(keys)
}

/// The ring the rules want at `now`, given `keys` (oldest first); unchanged keys are
/// the same `Arc`s.
fn plan(
    keys: &[Arc<Es256Key>],
    rotation: KeyRotation,
    retain: Duration,
    now: u64,
) -> Vec<Arc<Es256Key>> {
    let mut keys = keys.to_vec();
    let signing = keys.iter().rposition(|k| k.activates <= now);
    match signing {
        None if keys.is_empty() => keys.push(Arc::new(Es256Key::generate(now))),
        None => {}
        Some(i) => {
            let pending = keys.len() > i + 1;
            let lead = rotation
                .rotation
                .saturating_sub(rotation.prepublish)
                .as_secs();
            if !pending && now >= keys[i].activates.saturating_add(lead) {
                let activates = now.saturating_add(rotation.prepublish.as_secs());
                keys.push(Arc::new(Es256Key::generate(activates)));
            }
            // Drop the keys whose successor took over more than `retain` ago.
            let retain = retain.as_secs();
            let keep_from = (0..i)
                .rev()
                .find(|&j| keys[j + 1].activates.saturating_add(retain) <= now)
                .map_or(0, |j| j + 1);
            keys.drain(..keep_from);
        }
    }
    keys
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rotation(rotation: u64, prepublish: u64) -> KeyRotation {
        KeyRotation {
            rotation: Duration::from_secs(rotation),
            prepublish: Duration::from_secs(prepublish),
        }
    }

    fn kids(ring: &KeyRing, now: u64) -> Vec<String> {
        ring.jwks(now)["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_new_key_is_published_before_it_signs_and_the_old_one_kept_until_its_tokens_expire() {
        let dir = tempfile::tempdir().unwrap();
        // Rotate every 100 s, publish 20 s ahead, tokens live 30 s.
        let ring = KeyRing::open(dir.path(), rotation(100, 20), Duration::from_secs(30), 1000);
        let ring = ring.unwrap();
        let first = ring.signer(1000).unwrap().kid().to_owned();
        assert_eq!(kids(&ring, 1000), std::slice::from_ref(&first));
        // At 1080 the next key appears but does not sign yet.
        let published = kids(&ring, 1080);
        assert_eq!(published.len(), 2);
        assert_eq!(ring.signer(1099).unwrap().kid(), first);
        // At 1100 it signs; the old key stays for the 30 s its tokens may live.
        let second = ring.signer(1100).unwrap().kid().to_owned();
        assert_ne!(second, first);
        assert_eq!(published, [first.clone(), second.clone()]);
        assert_eq!(kids(&ring, 1129), [first, second.clone()]);
        assert_eq!(kids(&ring, 1130), std::slice::from_ref(&second));
        // The ring survives a restart.
        let again = KeyRing::open(dir.path(), rotation(100, 20), Duration::from_secs(30), 1131);
        assert_eq!(again.unwrap().signer(1131).unwrap().kid(), second);
    }

    #[test]
    fn a_signature_verifies_with_the_published_key_and_the_kid_is_its_thumbprint() {
        let key = Es256Key::generate(0);
        let signature = Signature::from_slice(&key.sign_jws(b"header.payload").unwrap()).unwrap();
        use p256::ecdsa::signature::Verifier as _;
        key.key
            .verifying_key()
            .verify(b"header.payload", &signature)
            .unwrap();
        assert_eq!(key.jwk()["kid"], key.kid());
        assert_eq!(key.kid().len(), 43);
    }

    #[test]
    fn a_jwt_signed_by_the_ring_verifies_and_a_changed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let rotation = KeyRotation {
            rotation: Duration::from_secs(1000),
            prepublish: Duration::from_secs(10),
        };
        let ring = KeyRing::open(dir.path(), rotation, Duration::from_secs(60), 5).unwrap();
        let jwt = ring
            .sign_jwt("logout+jwt", &json!({"sub": "alice"}), 5)
            .unwrap();
        assert_eq!(ring.verify_own(&jwt).unwrap()["sub"], "alice");
        let (signed, signature) = jwt.rsplit_once('.').unwrap();
        let forged = format!(
            "{}.{signature}",
            signed.replace(
                &B64URL.encode(r#"{"sub":"alice"}"#),
                &B64URL.encode(r#"{"sub":"bob"}"#)
            )
        );
        assert_ne!(forged, jwt);
        assert!(ring.verify_own(&forged).is_none());
        assert!(ring.verify_own("a.b").is_none());
        let other = KeyRing::open(
            tempfile::tempdir().unwrap().path(),
            rotation,
            Duration::from_secs(60),
            5,
        )
        .unwrap();
        assert!(other.verify_own(&jwt).is_none());
    }
}
