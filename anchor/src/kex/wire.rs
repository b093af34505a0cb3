//! Encodings shared by both handshakes: length-prefixed items, points and scalars, message
//! types, and the finished message (see the [module docs](super) for the layouts).

use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::elliptic_curve::PrimeField;
use k256::{AffinePoint, Scalar};
use sha2::{Digest as _, Sha256};

use super::{KexError, Protocol};

/// Low nibble of a hello's type byte.
pub(super) const HELLO: u8 = 1;
/// Low nibble of a reply's type byte.
pub(super) const REPLY: u8 = 2;
/// Low nibble of a finished message's type byte.
pub(super) const FINISHED: u8 = 3;

/// Length of a compressed point.
pub(super) const POINT_LEN: usize = 33;
/// Length of a scalar.
pub(super) const SCALAR_LEN: usize = 32;
/// Length of a key-confirmation tag (a whole HMAC-SHA256 output).
pub(super) const TAG_LEN: usize = 32;

/// The type byte of a message.
pub(super) const fn message_type(protocol: Protocol, kind: u8) -> u8 {
    protocol.type_base() | kind
}

/// A concatenation of `item(x) = len(x) (4 bytes, big-endian) ‖ x`, which decodes one way
/// only whatever the items hold.
#[derive(Default)]
pub(super) struct Items(Vec<u8>);

impl Items {
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// Appends one item.
    pub(super) fn item(mut self, bytes: &[u8]) -> Self {
        // Every item is a label, a point, an identity, a message or a context, all far
        // below 4 GiB (the context is capped at 1 KiB), so the length always fits.
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub(super) fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.0).into()
    }
}

/// Checks a message's exact length and type byte, and returns its bytes.
pub(super) fn fixed<const N: usize>(
    bytes: &[u8],
    expected_type: u8,
    message: &'static str,
) -> Result<[u8; N], KexError> {
    let bytes = <[u8; N]>::try_from(bytes).map_err(|_| KexError::Malformed {
        message,
        reason: "wrong length",
    })?;
    if bytes[0] != expected_type {
        return Err(KexError::Malformed {
            message,
            reason: "wrong message type",
        });
    }
    Ok(bytes)
}

/// Reads a 33-byte compressed point; the identity and points off the curve are refused
/// (`k256::PublicKey` cannot hold the identity, and secp256k1 has no small subgroup).
pub(super) fn parse_point(bytes: &[u8], message: &'static str) -> Result<AffinePoint, KexError> {
    if bytes.len() != POINT_LEN || !matches!(bytes[0], 0x02 | 0x03) {
        return Err(KexError::Malformed {
            message,
            reason: "not a compressed point",
        });
    }
    k256::PublicKey::from_sec1_bytes(bytes)
        .map(|key| *key.as_affine())
        .map_err(|_| KexError::Malformed {
            message,
            reason: "not a point on secp256k1",
        })
}

/// The compressed encoding of a point that is not the identity.
pub(super) fn encode_point(point: &AffinePoint) -> [u8; POINT_LEN] {
    let mut out = [0u8; POINT_LEN];
    let encoded = point.to_encoded_point(true);
    // Only the identity encodes to fewer bytes, and no caller passes it (every point here
    // is a parsed point, the generator, or a non-zero multiple of it).
    if let Some(bytes) = encoded.as_bytes().get(..POINT_LEN) {
        out.copy_from_slice(bytes);
    }
    out
}

/// Reads a 32-byte scalar, refusing values not below the group order.
pub(super) fn parse_scalar(bytes: &[u8], message: &'static str) -> Result<Scalar, KexError> {
    let malformed = KexError::Malformed {
        message,
        reason: "scalar not below the group order",
    };
    let bytes = <[u8; SCALAR_LEN]>::try_from(bytes).map_err(|_| malformed.clone())?;
    Option::from(Scalar::from_repr(bytes.into())).ok_or(malformed)
}

/// The last message: the initiator's key-confirmation tag.
///
/// `type (0x13 for ECDH, 0x23 for YAK) ‖ tag (32)`. Both protocols share this type; a
/// responder refuses one made for the other protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    protocol: Protocol,
    bytes: [u8; Finished::LEN],
}

impl Finished {
    /// Length of the wire form.
    pub const LEN: usize = 1 + TAG_LEN;

    pub(super) fn new(protocol: Protocol, tag: &[u8; TAG_LEN]) -> Self {
        let mut bytes = [0u8; Self::LEN];
        bytes[0] = message_type(protocol, FINISHED);
        bytes[1..].copy_from_slice(tag);
        Self { protocol, bytes }
    }

    /// Reads the wire form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KexError> {
        let message = "finished";
        let protocol = match bytes.first() {
            Some(&t) if t == message_type(Protocol::EcdhV1, FINISHED) => Protocol::EcdhV1,
            Some(&t) if t == message_type(Protocol::YakV1, FINISHED) => Protocol::YakV1,
            _ => {
                return Err(KexError::Malformed {
                    message,
                    reason: "wrong message type",
                })
            }
        };
        let bytes = fixed(bytes, message_type(protocol, FINISHED), message)?;
        Ok(Self { protocol, bytes })
    }

    /// The wire form.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        self.bytes
    }

    /// The protocol this message belongs to.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The initiator's tag.
    pub(super) fn tag(&self) -> &[u8] {
        &self.bytes[1..]
    }
}
