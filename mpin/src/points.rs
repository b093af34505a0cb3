//! Points and scalars of BLS12-381 as this crate exchanges them: checked on the way in.
//!
//! Every point read from bytes must be the canonical compressed encoding of a point of
//! the prime-order subgroup, not the identity ([`G1::from_bytes`], [`G2::from_bytes`]):
//! a small-subgroup or off-curve point from the network could otherwise leak a share of a
//! master secret or make a check pass. Encodings are SEC1-style compressed: a `0x02` or
//! `0x03` byte for the sign of `y`, then `x` big-endian (G1: 1 + 48 bytes; G2: 1 + 96,
//! `x` as two field elements, miracl_core's order).

use core::fmt;

use miracl_core::bls12381::big::{BIG, MODBYTES};
use miracl_core::bls12381::dbig::DBIG;
use miracl_core::bls12381::ecp::ECP;
use miracl_core::bls12381::ecp2::ECP2;
use miracl_core::bls12381::{mpin, pair, rom};
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::MpinError;

/// Length of a compressed G1 point.
pub const G1_LEN: usize = 1 + MODBYTES;
/// Length of an uncompressed G1 point.
pub(crate) const G1_UNCOMPRESSED_LEN: usize = 1 + 2 * MODBYTES;
/// Length of a compressed G2 point.
pub const G2_LEN: usize = 1 + 2 * MODBYTES;
/// Length of a scalar (big-endian, below the group order).
pub const SCALAR_LEN: usize = MODBYTES;

/// A point of G1's prime-order subgroup, never the identity.
#[derive(Clone)]
pub struct G1(ECP);

/// A point of G2's prime-order subgroup, never the identity.
#[derive(Clone)]
pub struct G2(ECP2);

impl G1 {
    /// Overwrites the coordinates (with the identity's), for secrets being dropped:
    /// miracl_core's points have no `zeroize`. Only `Drop` impls call it, so the
    /// never-the-identity invariant holds for every point still in use.
    pub(crate) fn wipe(&mut self) {
        self.0.inf();
        std::hint::black_box(&self.0);
    }
}

impl G2 {
    /// As [`G1::wipe`].
    pub(crate) fn wipe(&mut self) {
        self.0.inf();
        std::hint::black_box(&self.0);
    }
}

/// A non-zero scalar modulo the group order `r`, wiped on drop.
pub struct Scalar(Zeroizing<[u8; SCALAR_LEN]>);

fn order() -> BIG {
    BIG::new_ints(&rom::CURVE_ORDER)
}

impl G1 {
    /// Reads a point: canonical compressed encoding, in the subgroup, not the identity.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MpinError> {
        let bytes: &[u8; G1_LEN] = bytes
            .try_into()
            .map_err(|_| MpinError::Point("a G1 point is 49 bytes"))?;
        if bytes[0] != 0x02 && bytes[0] != 0x03 {
            return Err(MpinError::Point("not a compressed G1 point"));
        }
        let point = ECP::frombytes(bytes);
        if point.is_infinity() {
            return Err(MpinError::Point("not on the curve"));
        }
        if !pair::g1member(&point) {
            return Err(MpinError::Point("not in the prime-order subgroup"));
        }
        let parsed = Self(point);
        if parsed.to_bytes() != *bytes {
            return Err(MpinError::Point("not the canonical encoding"));
        }
        Ok(parsed)
    }

    /// The compressed encoding.
    pub fn to_bytes(&self) -> [u8; G1_LEN] {
        let mut out = [0u8; G1_LEN];
        self.0.tobytes(&mut out, true);
        out
    }

    /// `H(dst, message)`: hash to the curve (RFC 9380 style, miracl_core's
    /// `encode_to_curve` with SHA-256), always a subgroup point.
    pub(crate) fn hash(dst: &[u8], message: &[u8]) -> Result<Self, MpinError> {
        let mut uncompressed = [0u8; G1_UNCOMPRESSED_LEN];
        mpin::encode_to_curve(dst, message, &mut uncompressed);
        let point = ECP::frombytes(&uncompressed);
        if point.is_infinity() {
            // Probability negligible; refuse rather than carry an identity around.
            return Err(MpinError::Point("hashed to the identity"));
        }
        Ok(Self(point))
    }

    pub(crate) fn mul(&self, scalar: &Scalar) -> Self {
        Self(pair::g1mul(&self.0, &scalar.big()))
    }

    /// `self + other`; `None` if the sum is the identity (shares that cancel).
    pub fn add(&self, other: &Self) -> Option<Self> {
        let mut sum = self.0.clone();
        sum.add(&other.0);
        (!sum.is_infinity()).then_some(Self(sum))
    }

    /// `self - other`; `None` if they are equal.
    pub(crate) fn sub(&self, other: &Self) -> Option<Self> {
        let mut difference = self.0.clone();
        difference.sub(&other.0);
        (!difference.is_infinity()).then_some(Self(difference))
    }

    /// `pin · self` the way M-Pin splits a PIN off a secret (miracl_core's `pinmul`).
    pub(crate) fn pin_mul(&self, pin: u16) -> Self {
        Self(self.0.pinmul(i32::from(pin), mpin::PBLEN))
    }

    /// The uncompressed encoding (`0x04 ‖ x ‖ y`), which miracl_core's M-Pin steps write.
    pub(crate) fn to_uncompressed(&self) -> [u8; G1_UNCOMPRESSED_LEN] {
        let mut out = [0u8; G1_UNCOMPRESSED_LEN];
        self.0.tobytes(&mut out, false);
        out
    }

    /// A point miracl_core computed (not read from the network): only the identity is
    /// refused.
    pub(crate) fn from_computed(uncompressed: &[u8; G1_UNCOMPRESSED_LEN]) -> Option<Self> {
        let point = ECP::frombytes(uncompressed);
        (!point.is_infinity()).then_some(Self(point))
    }
}

impl PartialEq for G1 {
    fn eq(&self, other: &Self) -> bool {
        self.0.equals(&other.0)
    }
}

impl Eq for G1 {}

impl fmt::Debug for G1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "G1({})", hex::encode(self.to_bytes()))
    }
}

impl G2 {
    /// Reads a point: canonical compressed encoding, in the subgroup, not the identity.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MpinError> {
        let bytes: &[u8; G2_LEN] = bytes
            .try_into()
            .map_err(|_| MpinError::Point("a G2 point is 97 bytes"))?;
        if bytes[0] != 0x02 && bytes[0] != 0x03 {
            return Err(MpinError::Point("not a compressed G2 point"));
        }
        let point = ECP2::frombytes(bytes);
        if point.is_infinity() {
            return Err(MpinError::Point("not on the curve"));
        }
        if !pair::g2member(&point) {
            return Err(MpinError::Point("not in the prime-order subgroup"));
        }
        let parsed = Self(point);
        if parsed.to_bytes() != *bytes {
            return Err(MpinError::Point("not the canonical encoding"));
        }
        Ok(parsed)
    }

    /// The compressed encoding.
    pub fn to_bytes(&self) -> [u8; G2_LEN] {
        let mut out = [0u8; G2_LEN];
        self.0.tobytes(&mut out, true);
        out
    }

    /// `scalar · Q`, `Q` the fixed generator of G2.
    pub(crate) fn generator_mul(scalar: &Scalar) -> Self {
        Self(pair::g2mul(&ECP2::generator(), &scalar.big()))
    }

    /// `self + other`; `None` if the sum is the identity.
    pub fn add(&self, other: &Self) -> Option<Self> {
        let mut sum = self.0.clone();
        sum.add(&other.0);
        (!sum.is_infinity()).then_some(Self(sum))
    }
}

impl PartialEq for G2 {
    fn eq(&self, other: &Self) -> bool {
        self.0.equals(&other.0)
    }
}

impl Eq for G2 {}

impl fmt::Debug for G2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "G2({})", hex::encode(self.to_bytes()))
    }
}

impl Scalar {
    /// A uniformly random non-zero scalar: 64 random bytes reduced modulo `r` (bias
    /// below 2^-128).
    pub fn random(rng: &mut impl CryptoRngCore) -> Self {
        loop {
            let mut wide = Zeroizing::new([0u8; 2 * MODBYTES]);
            rng.fill_bytes(&mut wide[..]);
            let mut reduced = DBIG::frombytes(&wide[..]).dmod(&order());
            if !reduced.iszilch() {
                let mut out = Zeroizing::new([0u8; SCALAR_LEN]);
                reduced.tobytes(&mut out[..]);
                reduced.zero();
                return Self(out);
            }
        }
    }

    /// Reads a scalar: big-endian, non-zero and below `r`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MpinError> {
        let bytes: &[u8; SCALAR_LEN] = bytes
            .try_into()
            .map_err(|_| MpinError::Scalar("a scalar is 48 bytes"))?;
        let value = BIG::frombytes(bytes);
        if value.iszilch() || BIG::comp(&value, &order()) >= 0 {
            return Err(MpinError::Scalar("not in 1..r"));
        }
        Ok(Self(Zeroizing::new(*bytes)))
    }

    /// The big-endian bytes (secret: wiped on drop).
    pub fn to_bytes(&self) -> Zeroizing<[u8; SCALAR_LEN]> {
        self.0.clone()
    }

    /// `self + other mod r`; `None` if zero.
    pub fn add(&self, other: &Self) -> Option<Self> {
        let mut sum = self.big();
        sum.add(&other.big());
        sum.rmod(&order());
        if sum.iszilch() {
            return None;
        }
        let mut out = Zeroizing::new([0u8; SCALAR_LEN]);
        sum.tobytes(&mut out[..]);
        sum.zero();
        Some(Self(out))
    }

    pub(crate) fn big(&self) -> BIG {
        BIG::frombytes(&self.0[..])
    }

    pub(crate) fn as_bytes(&self) -> &[u8; SCALAR_LEN] {
        &self.0
    }
}

impl fmt::Debug for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scalar(..)")
    }
}

impl Drop for Scalar {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}
