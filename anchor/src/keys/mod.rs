//! secp256k1 keys and ECDSA signatures of a party.
//!
//! Every signature made here is deterministic (RFC 6979, no extra entropy) and low-S, the
//! form Bitcoin relays. Determinism is not a convenience: the nonce of a party's anchoring
//! signature is re-derived later for ECDH/YAK over Bitcoin (see [`crate::nonce`]).

use core::fmt;
use core::str::FromStr;
use std::sync::OnceLock;

#[cfg(test)]
use k256::ecdsa::SigningKey;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::digest::Digest;
use crate::nonce;

mod compressed;

pub use compressed::CompressedKey;

/// A party's secp256k1 secret key. Zeroized on drop; never printed.
#[derive(Clone)]
pub struct SecretKey(k256::SecretKey);

/// A compressed (33-byte SEC1) secp256k1 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(k256::PublicKey);

/// A low-S ECDSA signature over secp256k1, as `r ‖ s` (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(k256::ecdsa::Signature);

/// Why key material or a signature could not be read or checked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not hexadecimal.
    #[error("not hex: {0}")]
    Hex(#[from] hex::FromHexError),
    /// Not a valid secret scalar (zero, or not below the group order).
    #[error("not a valid secp256k1 secret key")]
    InvalidSecretKey,
    /// Not a valid compressed SEC1 point on the curve.
    #[error("not a valid compressed secp256k1 public key")]
    InvalidPublicKey,
    /// Not a valid 64-byte `r ‖ s` or DER signature, or a high-S one.
    #[error("not a valid low-S secp256k1 ECDSA signature")]
    InvalidSignature,
    /// The signature does not verify under the key.
    #[error("signature does not verify")]
    BadSignature,
}

impl SecretKey {
    /// Makes a fresh key from a cryptographic random source.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self(k256::SecretKey::random(rng))
    }

    /// Reads a 32-byte big-endian scalar.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        k256::SecretKey::from_slice(bytes)
            .map(Self)
            .map_err(|_| KeyError::InvalidSecretKey)
    }

    /// Reads 64 hex characters (surrounding white space is ignored).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), bytes.as_mut())?;
        Self::from_bytes(&bytes)
    }

    /// The 32-byte scalar, in a buffer that is wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(<[u8; 32]>::from(self.0.to_bytes()))
    }

    /// The scalar as 64 hex characters, in a buffer that is wiped when dropped.
    pub fn to_hex(&self) -> Zeroizing<String> {
        let bytes = self.to_bytes();
        Zeroizing::new(hex::encode(*bytes))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.public_key())
    }

    /// Signs a 32-byte message digest (RFC 6979 nonce, low-S).
    ///
    /// Signs in libsecp256k1 (about twice as fast as `k256`, which also recomputes the
    /// nonce point); the signature is the one `k256`'s RFC 6979 path makes, so the nonce
    /// stays recoverable with [`NonceSecret::recompute`](crate::nonce::NonceSecret) (both
    /// tested in `nonce`).
    pub fn sign_prehash(&self, prehash: &[u8; 32]) -> Signature {
        use bitcoin::secp256k1::{Message, Secp256k1, SecretKey as SecpKey, SignOnly};
        static SIGNER: OnceLock<Secp256k1<SignOnly>> = OnceLock::new();
        let signer = SIGNER.get_or_init(Secp256k1::signing_only);
        match SecpKey::from_slice(&self.to_bytes()[..]) {
            Ok(mut key) => {
                let signature = signer.sign_ecdsa(&Message::from_digest(*prehash), &key);
                key.non_secure_erase();
                Signature::from_compact(&signature.serialize_compact())
                    .unwrap_or_else(|_| nonce::sign_deterministic(self, prehash).0)
            }
            // Both libraries take the same scalars; kept as a fallback, not a path.
            Err(_) => nonce::sign_deterministic(self, prehash).0,
        }
    }

    /// Signs a [`Digest`] (RFC 6979 nonce, low-S).
    pub fn sign_digest(&self, digest: &Digest) -> Signature {
        self.sign_prehash(digest.as_bytes())
    }

    pub(crate) fn scalar(&self) -> k256::NonZeroScalar {
        self.0.to_nonzero_scalar()
    }

    #[cfg(test)]
    pub(crate) fn signing_key(&self) -> SigningKey {
        SigningKey::from(&self.0)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(<redacted>, public {})", self.public_key())
    }
}

impl PublicKey {
    /// Length of the compressed SEC1 encoding.
    pub const LEN: usize = 33;

    /// Reads a compressed SEC1 point (33 bytes); uncompressed keys are refused because
    /// Bitcoin's P2WPKH only admits compressed ones.
    ///
    /// The point is decompressed by libsecp256k1 (already linked through `bitcoin`), which
    /// takes the square root about a third faster than `k256` here; an indexer parses one
    /// key per record. `k256` then only checks the uncompressed point is on the curve.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != Self::LEN {
            return Err(KeyError::InvalidPublicKey);
        }
        let point = bitcoin::secp256k1::PublicKey::from_slice(bytes)
            .map_err(|_| KeyError::InvalidPublicKey)?;
        k256::PublicKey::from_sec1_bytes(&point.serialize_uncompressed())
            .map(Self)
            .map_err(|_| KeyError::InvalidPublicKey)
    }

    /// The affine coordinates `(x, y)`, big-endian: what a JSON Web Key of the key holds
    /// (RFC 7518 §6.2.1, `crv` `secp256k1` per RFC 8812).
    pub fn to_coordinates(&self) -> ([u8; 32], [u8; 32]) {
        let point = self.0.to_encoded_point(false);
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        // An uncompressed SEC1 point of a valid key: 0x04 ‖ x (32) ‖ y (32).
        let bytes = point.as_bytes();
        x.copy_from_slice(&bytes[1..33]);
        y.copy_from_slice(&bytes[33..65]);
        (x, y)
    }

    /// The key at the affine coordinates `(x, y)`; refused unless the point is on the
    /// curve (and not the identity).
    pub fn from_coordinates(x: &[u8; 32], y: &[u8; 32]) -> Result<Self, KeyError> {
        let mut uncompressed = [0u8; 65];
        uncompressed[0] = 0x04;
        uncompressed[1..33].copy_from_slice(x);
        uncompressed[33..].copy_from_slice(y);
        k256::PublicKey::from_sec1_bytes(&uncompressed)
            .map(Self)
            .map_err(|_| KeyError::InvalidPublicKey)
    }

    /// The key as a transaction carries it (see [`CompressedKey`]).
    pub fn compressed(&self) -> CompressedKey {
        CompressedKey::from(self)
    }

    /// The compressed SEC1 encoding.
    pub fn to_sec1(&self) -> [u8; 33] {
        let point = self.0.to_encoded_point(true);
        let mut out = [0u8; 33];
        out.copy_from_slice(point.as_bytes());
        out
    }

    /// Checks a signature over a 32-byte message digest.
    ///
    /// Verification runs in libsecp256k1 (already linked through `bitcoin`), about three
    /// times faster than `k256` here; signing stays in `k256`, whose low-level API exposes
    /// the RFC 6979 nonce. The two agree on SEC1 and compact encodings (tested).
    pub fn verify_prehash(&self, prehash: &[u8; 32], sig: &Signature) -> Result<(), KeyError> {
        use bitcoin::secp256k1::{ecdsa, Message, PublicKey as SecpKey, Secp256k1, VerifyOnly};
        static VERIFIER: OnceLock<Secp256k1<VerifyOnly>> = OnceLock::new();
        let verifier = VERIFIER.get_or_init(Secp256k1::verification_only);
        let key = SecpKey::from_slice(&self.to_sec1()).map_err(|_| KeyError::InvalidPublicKey)?;
        let sig = ecdsa::Signature::from_compact(&sig.to_compact())
            .map_err(|_| KeyError::InvalidSignature)?;
        verifier
            .verify_ecdsa(&Message::from_digest(*prehash), &sig, &key)
            .map_err(|_| KeyError::BadSignature)
    }

    /// Checks a signature over a [`Digest`].
    pub fn verify_digest(&self, digest: &Digest, sig: &Signature) -> Result<(), KeyError> {
        self.verify_prehash(digest.as_bytes(), sig)
    }

    /// The same key as a `bitcoin` crate key, for scripts and addresses.
    pub fn to_bitcoin(&self) -> bitcoin::CompressedPublicKey {
        // A valid k256 point is always a valid libsecp256k1 point; the two libraries agree
        // on SEC1, so this conversion cannot fail for a value of this type.
        #[allow(clippy::expect_used)]
        bitcoin::CompressedPublicKey::from_slice(&self.to_sec1())
            .expect("a valid compressed SEC1 point is accepted by libsecp256k1")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.to_sec1()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_sec1(&hex::decode(s)?)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Signature {
    /// Reads `r ‖ s` (64 bytes); a high-S signature is refused.
    pub fn from_compact(bytes: &[u8]) -> Result<Self, KeyError> {
        let sig =
            k256::ecdsa::Signature::from_slice(bytes).map_err(|_| KeyError::InvalidSignature)?;
        Self::from_k256(sig)
    }

    /// Reads a DER signature (as found in Bitcoin witnesses, without the sighash byte).
    ///
    /// A high-S signature (valid by consensus in segwit v0, though not relayed) is
    /// normalised to low-S: same `r`, equally valid, so nothing is lost.
    pub fn from_der(bytes: &[u8]) -> Result<Self, KeyError> {
        let sig =
            k256::ecdsa::Signature::from_der(bytes).map_err(|_| KeyError::InvalidSignature)?;
        Self::from_k256(sig.normalize_s().unwrap_or(sig))
    }

    pub(crate) fn from_k256(sig: k256::ecdsa::Signature) -> Result<Self, KeyError> {
        if sig.normalize_s().is_some() {
            return Err(KeyError::InvalidSignature);
        }
        Ok(Self(sig))
    }

    /// `r ‖ s`, 64 bytes.
    pub fn to_compact(&self) -> [u8; 64] {
        self.0.to_bytes().into()
    }

    /// The DER encoding Bitcoin puts in witnesses (before the sighash byte).
    pub fn to_der(&self) -> Vec<u8> {
        self.0.to_der().as_bytes().to_vec()
    }

    /// The `r` value: the x coordinate of the nonce point, reduced mod n.
    pub fn r_bytes(&self) -> [u8; 32] {
        self.0.r().to_bytes().into()
    }

    #[cfg(test)]
    pub(crate) fn inner(&self) -> &k256::ecdsa::Signature {
        &self.0
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.to_compact()))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl FromStr for Signature {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_compact(&hex::decode(s)?)
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes(&[byte; 32]).unwrap()
    }

    #[test]
    fn signatures_verify_and_are_deterministic_and_low_s() {
        let sk = key(7);
        let d = Digest::sha256(b"birth");
        let sig = sk.sign_digest(&d);
        assert_eq!(sig, sk.sign_digest(&d));
        sk.public_key().verify_digest(&d, &sig).unwrap();
        assert_eq!(
            key(8).public_key().verify_digest(&d, &sig),
            Err(KeyError::BadSignature)
        );
        assert!(sig.inner().normalize_s().is_none());
    }

    #[test]
    fn encodings_round_trip() {
        let sk = key(9);
        let pk = sk.public_key();
        assert_eq!(pk.to_string().parse::<PublicKey>(), Ok(pk));
        let sig = sk.sign_digest(&Digest::sha256(b"x"));
        assert_eq!(Signature::from_der(&sig.to_der()), Ok(sig));
        assert_eq!(sig.to_string().parse::<Signature>(), Ok(sig));
        assert_eq!(SecretKey::from_hex(&sk.to_hex()).unwrap().public_key(), pk);
    }

    #[test]
    fn parsing_through_libsecp256k1_agrees_with_k256_on_any_compressed_point() {
        use rand_core::RngCore as _;
        let mut bytes = [0u8; 33];
        for i in 0..2_000 {
            rand_core::OsRng.fill_bytes(&mut bytes);
            bytes[0] = [2, 3, 4, 0][i % 4];
            if i % 97 == 0 {
                bytes[1..].fill(0xff); // x above the field prime
            }
            let ours = PublicKey::from_sec1(&bytes).ok();
            let theirs = k256::PublicKey::from_sec1_bytes(&bytes).ok();
            assert_eq!(ours.map(|k| k.0), theirs, "{}", hex::encode(bytes));
        }
    }

    #[test]
    fn bad_keys_are_refused() {
        assert_eq!(
            SecretKey::from_bytes(&[0; 32]).unwrap_err(),
            KeyError::InvalidSecretKey
        );
        assert_eq!(
            SecretKey::from_bytes(&[0xff; 32]).unwrap_err(),
            KeyError::InvalidSecretKey
        );
        assert_eq!(
            PublicKey::from_sec1(&[5; 33]).unwrap_err(),
            KeyError::InvalidPublicKey
        );
        let uncompressed = key(3).public_key().0.to_encoded_point(false);
        assert!(PublicKey::from_sec1(uncompressed.as_bytes()).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let sk = key(5);
        assert!(!format!("{sk:?}").contains(&*sk.to_hex()));
    }

    #[test]
    fn libsecp256k1_verification_agrees_with_k256_on_valid_and_invalid_signatures() {
        use k256::ecdsa::signature::hazmat::PrehashVerifier;
        for i in 1..30u8 {
            let sk = key(i);
            let z = [i.wrapping_mul(3); 32];
            let sig = sk.sign_prehash(&z);
            let k256_key = k256::ecdsa::VerifyingKey::from(&sk.public_key().0);
            for (prehash, expect) in [(z, true), ([i ^ 1; 32], false)] {
                assert_eq!(k256_key.verify_prehash(&prehash, &sig.0).is_ok(), expect);
                assert_eq!(
                    sk.public_key().verify_prehash(&prehash, &sig).is_ok(),
                    expect
                );
            }
        }
    }

    #[test]
    fn bitcoin_conversion_is_the_same_point() {
        let pk = key(4).public_key();
        assert_eq!(pk.to_bitcoin().to_bytes(), pk.to_sec1());
    }
}
