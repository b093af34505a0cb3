//! The recoverable nonce of an anchoring signature.
//!
//! A party signs its anchoring transaction with an RFC 6979 nonce `k`, so `k` is a function
//! of its key and the signed sighash: nothing extra is stored, and anyone who sees the
//! signature on chain can rebuild the nonce *point* `R = k·G` from `r`. ECDH and YAK over
//! Bitcoin (McCorry et al., 2015) use `k` as a long-term secret and `R` as its public half.
//!
//! **Parity convention.** `r` fixes only the x coordinate of `R`, and low-S normalisation
//! silently swaps `k` for `-k`. Both are settled the BIP 340 way: the public nonce point is
//! always the one with an *even* y coordinate ([`NoncePoint`]), and the secret half
//! ([`NonceSecret`]) is whichever of `k`, `-k` maps to it. Both parties derive the same pair
//! without exchanging a parity bit.
//!
//! Knowing `k` and the signature reveals the private key (`d = (s·k − z)/r`): a
//! [`NonceSecret`] is guarded like the key itself, zeroized on drop and never printed.

use core::fmt;

use k256::elliptic_curve::group::prime::PrimeCurveAffine;
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::point::{AffineCoordinates, DecompressPoint};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::elliptic_curve::subtle::Choice;
use k256::elliptic_curve::{Curve, FieldBytesEncoding, PrimeField};
use k256::{AffinePoint, NonZeroScalar, ProjectivePoint, Scalar, Secp256k1, U256};
use sha2::Sha256;
use zeroize::Zeroize;

use crate::keys::{SecretKey, Signature};

/// The secret nonce of one of our own signatures, normalised so that `k·G` has even y.
pub struct NonceSecret(NonZeroScalar);

/// The public nonce point `R` of an on-chain signature, always with even y.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NoncePoint(AffinePoint);

/// Why a nonce could not be recovered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// `r` is not the x coordinate of a curve point (or is its reduction mod n, which
    /// happens with probability about 2⁻¹²⁸ and is refused).
    #[error("the signature's r is not the x coordinate of a curve point")]
    NotOnCurve,
    /// The signature was not made by this key over this message with an RFC 6979 nonce.
    #[error("the signature was not made by this key with an RFC 6979 nonce over this message")]
    NotOurSignature,
}

/// Signs `prehash` with the RFC 6979 nonce and returns the low-S signature with its nonce.
pub(crate) fn sign_deterministic(key: &SecretKey, prehash: &[u8; 32]) -> (Signature, NonceSecret) {
    let d = key.scalar();
    let k_bytes = rfc6979::generate_k::<Sha256, _>(
        &d.to_repr(),
        &Secp256k1::ORDER.encode_field_bytes(),
        prehash.into(),
        &[],
    );
    // RFC 6979 draws k in [1, n-1] by construction; r or s being zero has probability 2⁻²⁵⁶.
    #[allow(clippy::expect_used)]
    let k = Option::<NonZeroScalar>::from(NonZeroScalar::from_repr(k_bytes))
        .expect("RFC 6979 yields a non-zero scalar below n");
    #[allow(clippy::expect_used)]
    let (sig, _) = k256::ecdsa::hazmat::sign_prehashed::<Secp256k1, Scalar>(&d, *k, prehash.into())
        .expect("r and s are non-zero except with negligible probability");
    let sig = sig.normalize_s().unwrap_or(sig);
    #[allow(clippy::expect_used)]
    let sig = Signature::from_k256(sig).expect("normalised signatures are low-S");
    (sig, NonceSecret::even(k))
}

impl NonceSecret {
    /// Re-derives the nonce of `signature`, checking that `key` made it over `prehash`.
    pub fn recompute(
        key: &SecretKey,
        prehash: &[u8; 32],
        signature: &Signature,
    ) -> Result<Self, NonceError> {
        let (again, nonce) = sign_deterministic(key, prehash);
        if &again != signature {
            return Err(NonceError::NotOurSignature);
        }
        Ok(nonce)
    }

    fn even(k: NonZeroScalar) -> Self {
        let point = (ProjectivePoint::GENERATOR * *k).to_affine();
        if bool::from(point.y_is_odd()) {
            Self(-k)
        } else {
            Self(k)
        }
    }

    /// The matching public point.
    pub fn public(&self) -> NoncePoint {
        NoncePoint((ProjectivePoint::GENERATOR * *self.0).to_affine())
    }

    /// The scalar itself, for the key agreements of [`crate::kex`] only.
    pub(crate) fn scalar(&self) -> &NonZeroScalar {
        &self.0
    }
}

impl Drop for NonceSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for NonceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceSecret(<redacted>)")
    }
}

impl NoncePoint {
    /// Rebuilds `R` (even y) from any signature's `r`.
    pub fn from_signature(signature: &Signature) -> Result<Self, NonceError> {
        let r = signature.r_bytes();
        let point =
            Option::<AffinePoint>::from(AffinePoint::decompress((&r).into(), Choice::from(0)))
                .ok_or(NonceError::NotOnCurve)?;
        // `r` is x mod n; refuse the (astronomically rare) x ≥ n case rather than guess.
        let x_reduced = <Scalar as Reduce<U256>>::reduce_bytes(&point.x());
        if x_reduced.to_repr() != point.x() || bool::from(point.is_identity()) {
            return Err(NonceError::NotOnCurve);
        }
        Ok(Self(point))
    }

    /// The 32-byte x coordinate (equal to the signature's `r`).
    pub fn x_only(&self) -> [u8; 32] {
        self.0.x().into()
    }

    /// The point itself, for the key agreements of [`crate::kex`].
    pub(crate) fn as_affine(&self) -> &AffinePoint {
        &self.0
    }

    /// The compressed SEC1 encoding (always prefix `0x02`).
    pub fn to_sec1(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out.copy_from_slice(self.0.to_encoded_point(true).as_bytes());
        out
    }
}

impl fmt::Debug for NoncePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoncePoint({})", hex::encode(self.to_sec1()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::signature::hazmat::PrehashSigner;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes(&[byte; 32]).unwrap()
    }

    #[test]
    fn our_signatures_are_standard_rfc6979() {
        for i in 1..40u8 {
            let sk = key(i);
            let z = [i.wrapping_mul(37); 32];
            let ours = sk.sign_prehash(&z);
            let theirs: k256::ecdsa::Signature = sk.signing_key().sign_prehash(&z).unwrap();
            let theirs = theirs.normalize_s().unwrap_or(theirs);
            assert_eq!(ours.to_compact(), <[u8; 64]>::from(theirs.to_bytes()));
        }
    }

    #[test]
    fn libsecp256k1_makes_the_same_signature_so_any_bitcoin_wallet_nonce_is_recoverable() {
        let secp = bitcoin::secp256k1::Secp256k1::signing_only();
        for i in 1..20u8 {
            let sk = key(i);
            let z = [i; 32];
            let secp_key = bitcoin::secp256k1::SecretKey::from_slice(&*sk.to_bytes()).unwrap();
            let msg = bitcoin::secp256k1::Message::from_digest(z);
            let theirs = secp.sign_ecdsa(&msg, &secp_key).serialize_compact();
            assert_eq!(sk.sign_prehash(&z).to_compact(), theirs);
        }
    }

    #[test]
    fn the_recomputed_nonce_matches_the_point_recovered_from_r() {
        for i in 1..40u8 {
            let sk = key(i);
            let z = [i ^ 0x5a; 32];
            let (sig, nonce) = sign_deterministic(&sk, &z);
            let recovered = NoncePoint::from_signature(&sig).unwrap();
            assert_eq!(nonce.public(), recovered);
            assert_eq!(recovered.x_only(), sig.r_bytes());
            assert_eq!(recovered.to_sec1()[0], 0x02);
            let again = NonceSecret::recompute(&sk, &z, &sig).unwrap();
            assert_eq!(again.public(), recovered);
        }
    }

    #[test]
    fn recompute_refuses_a_signature_of_another_key_or_message() {
        let (sig, _) = sign_deterministic(&key(1), &[1; 32]);
        assert_eq!(
            NonceSecret::recompute(&key(2), &[1; 32], &sig).unwrap_err(),
            NonceError::NotOurSignature
        );
        assert_eq!(
            NonceSecret::recompute(&key(1), &[2; 32], &sig).unwrap_err(),
            NonceError::NotOurSignature
        );
    }
}
