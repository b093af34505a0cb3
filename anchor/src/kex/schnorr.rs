//! Schnorr non-interactive zero-knowledge proof of a discrete logarithm (RFC 8235, the
//! elliptic-curve variant), as YAK uses it for its ephemeral keys.
//!
//! To prove knowledge of `w` with `W = w·G`, for a prover named `UserID`:
//!
//! ```text
//! v  = a fresh random scalar in [1, n−1]       V = v·G
//! c  = SHA-256(item(G) ‖ item(V) ‖ item(W) ‖ item(UserID) ‖ item(OtherInfo)) mod n
//! r  = v − c·w mod n
//! proof = V (33) ‖ r (32)
//! ```
//!
//! and a verifier accepts when `W` and `V` are valid points other than the identity, `r` is
//! below `n`, and `V = r·G + c·W`. Reducing the 256-bit hash mod `n` has a bias below
//! 2⁻¹²⁷ (secp256k1's `n` is within 2¹²⁹ of 2²⁵⁶), which is harmless for a challenge.
//!
//! `v` must never repeat with another challenge (two proofs with one `v` reveal `w`), so it
//! comes from the caller's cryptographic random source and is wiped after use.

use k256::elliptic_curve::ops::{LinearCombination, Reduce};
use k256::{AffinePoint, NonZeroScalar, ProjectivePoint, Scalar, U256};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::wire::{encode_point, parse_point, parse_scalar, Items, POINT_LEN, SCALAR_LEN};
use super::{KexError, Role};

/// A proof of knowledge of the discrete logarithm of one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SchnorrProof {
    /// `V = v·G`.
    commitment: AffinePoint,
    /// `r = v − c·w`.
    response: Scalar,
}

impl SchnorrProof {
    /// Length of the encoding `V ‖ r`.
    pub(super) const LEN: usize = POINT_LEN + SCALAR_LEN;

    /// Proves knowledge of `secret`, whose public point is `public`.
    pub(super) fn prove(
        rng: &mut impl CryptoRngCore,
        secret: &NonZeroScalar,
        public: &AffinePoint,
        user_id: &[u8],
        other_info: &[u8],
    ) -> Self {
        let v = Zeroizing::new(random_scalar(rng));
        let commitment = (ProjectivePoint::GENERATOR * **v).to_affine();
        let c = challenge(&commitment, public, user_id, other_info);
        let response = **v - c * **secret;
        Self {
            commitment,
            response,
        }
    }

    /// Checks the proof for `public`, for a prover named `user_id` in the setting
    /// `other_info`. `prover` only labels the error.
    pub(super) fn verify(
        &self,
        public: &AffinePoint,
        user_id: &[u8],
        other_info: &[u8],
        prover: Role,
    ) -> Result<(), KexError> {
        let c = challenge(&self.commitment, public, user_id, other_info);
        let expected = ProjectivePoint::lincomb(
            &ProjectivePoint::GENERATOR,
            &self.response,
            &ProjectivePoint::from(*public),
            &c,
        );
        if expected == ProjectivePoint::from(self.commitment) {
            Ok(())
        } else {
            Err(KexError::BadProof(prover))
        }
    }

    /// `V (33) ‖ r (32)`.
    pub(super) fn to_bytes(self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..POINT_LEN].copy_from_slice(&encode_point(&self.commitment));
        out[POINT_LEN..].copy_from_slice(&self.response.to_bytes());
        out
    }

    /// Reads `V ‖ r`: `V` a valid point other than the identity, `r` below `n`.
    pub(super) fn from_bytes(bytes: &[u8], message: &'static str) -> Result<Self, KexError> {
        if bytes.len() != Self::LEN {
            return Err(KexError::Malformed {
                message,
                reason: "schnorr proof of the wrong length",
            });
        }
        Ok(Self {
            commitment: parse_point(&bytes[..POINT_LEN], message)?,
            response: parse_scalar(&bytes[POINT_LEN..], message)?,
        })
    }
}

/// `c = SHA-256(item(G) ‖ item(V) ‖ item(W) ‖ item(UserID) ‖ item(OtherInfo)) mod n`.
fn challenge(
    commitment: &AffinePoint,
    public: &AffinePoint,
    user_id: &[u8],
    other_info: &[u8],
) -> Scalar {
    let hash = Items::new()
        .item(&encode_point(&AffinePoint::GENERATOR))
        .item(&encode_point(commitment))
        .item(&encode_point(public))
        .item(user_id)
        .item(other_info)
        .sha256();
    <Scalar as Reduce<U256>>::reduce_bytes(&hash.into())
}

/// A uniformly random scalar in `[1, n−1]`: the first 32 bytes drawn from `rng` that, read
/// big-endian, are such a scalar (rejection sampling, so the choice is reproducible from
/// the random bytes: the known-answer vectors rely on it).
pub(super) fn random_scalar(rng: &mut impl CryptoRngCore) -> NonZeroScalar {
    loop {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        if let Some(scalar) =
            Option::<NonZeroScalar>::from(NonZeroScalar::from_repr((*bytes).into()))
        {
            return scalar;
        }
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::kex::tests::ScriptedRng;

    fn keypair(rng: &mut ChaCha20Rng) -> (NonZeroScalar, AffinePoint) {
        let w = random_scalar(rng);
        (w, (ProjectivePoint::GENERATOR * *w).to_affine())
    }

    #[test]
    fn an_honest_proof_verifies_and_round_trips() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let (w, big_w) = keypair(&mut rng);
        let proof = SchnorrProof::prove(&mut rng, &w, &big_w, b"alice", b"session 1");
        proof
            .verify(&big_w, b"alice", b"session 1", Role::Initiator)
            .unwrap();
        let again = SchnorrProof::from_bytes(&proof.to_bytes(), "test").unwrap();
        assert_eq!(again, proof);
    }

    #[test]
    fn a_proof_binds_the_point_the_prover_and_the_setting() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let (w, big_w) = keypair(&mut rng);
        let (_, other_w) = keypair(&mut rng);
        let proof = SchnorrProof::prove(&mut rng, &w, &big_w, b"alice", b"session 1");
        let bad = Err(KexError::BadProof(Role::Responder));
        assert_eq!(
            proof.verify(&other_w, b"alice", b"session 1", Role::Responder),
            bad
        );
        assert_eq!(
            proof.verify(&big_w, b"mallory", b"session 1", Role::Responder),
            bad
        );
        assert_eq!(
            proof.verify(&big_w, b"alice", b"session 2", Role::Responder),
            bad
        );
        // Items keep their boundaries: moving a byte from one to the other changes `c`.
        assert_eq!(
            proof.verify(&big_w, b"alices", b"ession 1", Role::Responder),
            bad
        );
    }

    #[test]
    fn a_proof_of_another_secret_does_not_verify() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let (_, big_w) = keypair(&mut rng);
        let (not_w, _) = keypair(&mut rng);
        let proof = SchnorrProof::prove(&mut rng, &not_w, &big_w, b"alice", b"");
        assert!(proof
            .verify(&big_w, b"alice", b"", Role::Initiator)
            .is_err());
    }

    #[test]
    fn a_tampered_response_or_commitment_does_not_verify() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let (w, big_w) = keypair(&mut rng);
        let proof = SchnorrProof::prove(&mut rng, &w, &big_w, b"alice", b"");
        let mut tampered = proof;
        tampered.response += Scalar::ONE;
        assert!(tampered
            .verify(&big_w, b"alice", b"", Role::Initiator)
            .is_err());
        let mut tampered = proof;
        tampered.commitment = big_w;
        assert!(tampered
            .verify(&big_w, b"alice", b"", Role::Initiator)
            .is_err());
    }

    #[test]
    fn invalid_encodings_are_refused() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let (w, big_w) = keypair(&mut rng);
        let good = SchnorrProof::prove(&mut rng, &w, &big_w, b"a", b"").to_bytes();
        let mut identity = good;
        identity[..POINT_LEN].fill(0);
        let mut uncompressed_tag = good;
        uncompressed_tag[0] = 0x04;
        let mut r_too_big = good;
        r_too_big[POINT_LEN..].fill(0xff);
        let mut off_curve = good;
        // x = 5 is not the x coordinate of any secp256k1 point (5³ + 7 = 132 is a
        // non-residue mod p).
        off_curve[1..POINT_LEN].fill(0);
        off_curve[POINT_LEN - 1] = 5;
        for bytes in [identity, uncompressed_tag, r_too_big, off_curve] {
            assert!(matches!(
                SchnorrProof::from_bytes(&bytes, "test"),
                Err(KexError::Malformed { .. })
            ));
        }
        assert!(SchnorrProof::from_bytes(&good[1..], "test").is_err());
    }

    #[test]
    fn random_scalars_are_the_first_valid_32_bytes_drawn() {
        // Zero and 2²⁵⁶ − 1 (above n) are rejected; 7 is taken.
        let mut seven = [0u8; 32];
        seven[31] = 7;
        let mut rng = ScriptedRng::new(&[[0; 32], [0xff; 32], seven]);
        assert_eq!(<[u8; 32]>::from(random_scalar(&mut rng).to_bytes()), seven);
        assert!(rng.is_empty());
    }
}
