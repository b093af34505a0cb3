//! The `OP_RETURN` payload of a Milagro record.
//!
//! Layout (38 bytes, one push, so the whole script is 40 bytes: inside the 42-byte limit
//! Bitcoin Knots may go back to, and far inside Core's 83):
//!
//! ```text
//! offset  size  field
//! 0       4     magic "MLGR"
//! 4       1     version (1)
//! 5       1     record kind (1 birth certificate, 2 audit-log root, 3 batch root)
//! 6       32    SHA-256 digest
//! ```
//!
//! Decoding never panics on foreign data: any `OP_RETURN` that is not exactly this shape is
//! reported as [`PayloadError::NotMilagro`] (someone else's protocol) or as a specific error
//! when the magic matches but the rest does not.

use bitcoin::opcodes::all::OP_RETURN;
use bitcoin::script::{Instruction, PushBytesBuf, Script, ScriptBuf};

use crate::digest::Digest;

/// The four bytes every Milagro payload starts with.
pub const MAGIC: [u8; 4] = *b"MLGR";
/// The payload format version written by this crate.
pub const PAYLOAD_VERSION: u8 = 1;
/// Length of an encoded payload.
pub const PAYLOAD_LEN: usize = 38;

/// What a record's digest commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum RecordKind {
    /// SHA-256 of a Birth Certificate's canonical JSON.
    BirthCertificate = 1,
    /// SHA-256 of a signed audit-log checkpoint body.
    AuditLogRoot = 2,
    /// RFC 6962 root over many Birth Certificate digests.
    BatchRoot = 3,
}

impl RecordKind {
    /// The byte written on chain.
    pub fn to_byte(self) -> u8 {
        self as u8
    }

    /// Reads the on-chain byte.
    pub fn from_byte(byte: u8) -> Result<Self, PayloadError> {
        match byte {
            1 => Ok(Self::BirthCertificate),
            2 => Ok(Self::AuditLogRoot),
            3 => Ok(Self::BatchRoot),
            other => Err(PayloadError::UnknownKind(other)),
        }
    }

    /// A stable lowercase name for JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BirthCertificate => "birth_certificate",
            Self::AuditLogRoot => "audit_log_root",
            Self::BatchRoot => "batch_root",
        }
    }
}

impl core::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for RecordKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for RecordKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        [Self::BirthCertificate, Self::AuditLogRoot, Self::BatchRoot]
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown record kind {name:?}")))
    }
}

/// A decoded Milagro payload: a record kind and the digest it anchors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Payload {
    /// What the digest commits to.
    pub kind: RecordKind,
    /// The anchored digest.
    pub digest: Digest,
}

/// Why an output is not a Milagro payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// Not an `OP_RETURN` with one push starting with [`MAGIC`]: another protocol's data.
    #[error("not a milagro payload")]
    NotMilagro,
    /// The magic matches but the push is not [`PAYLOAD_LEN`] bytes.
    #[error("milagro payload is {0} bytes, expected {PAYLOAD_LEN}")]
    Length(usize),
    /// A payload version this crate does not read.
    #[error("unsupported milagro payload version {0}")]
    UnsupportedVersion(u8),
    /// A record kind this crate does not know.
    #[error("unknown milagro record kind {0}")]
    UnknownKind(u8),
}

impl Payload {
    /// A payload for `digest` of the given kind.
    pub fn new(kind: RecordKind, digest: Digest) -> Self {
        Self { kind, digest }
    }

    /// The 38 payload bytes.
    pub fn to_bytes(&self) -> [u8; PAYLOAD_LEN] {
        let mut out = [0u8; PAYLOAD_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4] = PAYLOAD_VERSION;
        out[5] = self.kind.to_byte();
        out[6..].copy_from_slice(self.digest.as_bytes());
        out
    }

    /// Decodes payload bytes (the data of the `OP_RETURN` push).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PayloadError> {
        if !bytes.starts_with(&MAGIC) {
            return Err(PayloadError::NotMilagro);
        }
        if bytes.len() != PAYLOAD_LEN {
            return Err(PayloadError::Length(bytes.len()));
        }
        if bytes[4] != PAYLOAD_VERSION {
            return Err(PayloadError::UnsupportedVersion(bytes[4]));
        }
        let kind = RecordKind::from_byte(bytes[5])?;
        let digest =
            Digest::from_slice(&bytes[6..]).map_err(|_| PayloadError::Length(bytes.len()))?;
        Ok(Self { kind, digest })
    }

    /// The `OP_RETURN <38 bytes>` output script.
    pub fn to_script(&self) -> ScriptBuf {
        // 38 bytes always fit a single push.
        let push = PushBytesBuf::from(self.to_bytes());
        ScriptBuf::new_op_return(push)
    }

    /// Decodes an output script: exactly `OP_RETURN` then one data push, nothing after it.
    pub fn from_script(script: &Script) -> Result<Self, PayloadError> {
        let mut instructions = script.instructions();
        match instructions.next() {
            Some(Ok(Instruction::Op(op))) if op == OP_RETURN => {}
            _ => return Err(PayloadError::NotMilagro),
        }
        let data = match instructions.next() {
            Some(Ok(Instruction::PushBytes(data))) => data,
            _ => return Err(PayloadError::NotMilagro),
        };
        if instructions.next().is_some() {
            return Err(PayloadError::NotMilagro);
        }
        Self::from_bytes(data.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Payload {
        Payload::new(RecordKind::BatchRoot, Digest::sha256(b"batch"))
    }

    #[test]
    fn script_is_forty_bytes_and_round_trips() {
        let script = sample().to_script();
        assert_eq!(script.len(), 40);
        assert!(script.is_op_return());
        assert_eq!(Payload::from_script(&script), Ok(sample()));
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let bytes =
            Payload::new(RecordKind::BirthCertificate, Digest::from_bytes([0xab; 32])).to_bytes();
        assert_eq!(&bytes[..6], b"MLGR\x01\x01");
        assert_eq!(&bytes[6..], &[0xab; 32]);
    }

    #[test]
    fn foreign_and_broken_payloads_get_specific_errors() {
        let mut bytes = sample().to_bytes();
        bytes[4] = 9;
        assert_eq!(
            Payload::from_bytes(&bytes),
            Err(PayloadError::UnsupportedVersion(9))
        );
        bytes[4] = 1;
        bytes[5] = 0;
        assert_eq!(
            Payload::from_bytes(&bytes),
            Err(PayloadError::UnknownKind(0))
        );
        assert_eq!(
            Payload::from_bytes(&bytes[..20]),
            Err(PayloadError::Length(20))
        );
        assert_eq!(
            Payload::from_bytes(b"omni\0\0\0\0"),
            Err(PayloadError::NotMilagro)
        );
        let ots = ScriptBuf::new_op_return(PushBytesBuf::from([0x42u8; 32]));
        assert_eq!(Payload::from_script(&ots), Err(PayloadError::NotMilagro));
        let p2wpkh = ScriptBuf::from_hex("0014751e76e8199196d454941c45d1b3a323f1433bd6").unwrap();
        assert_eq!(Payload::from_script(&p2wpkh), Err(PayloadError::NotMilagro));
    }

    #[test]
    fn trailing_script_data_is_refused() {
        let mut script = sample().to_script().into_bytes();
        script.push(0x51);
        assert_eq!(
            Payload::from_script(Script::from_bytes(&script)),
            Err(PayloadError::NotMilagro)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        #[test]
        fn random_scripts_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = Payload::from_script(Script::from_bytes(&bytes));
            let _ = Payload::from_bytes(&bytes);
        }

        #[test]
        fn magic_prefixed_random_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..60)) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend(tail);
            if let Ok(p) = Payload::from_bytes(&bytes) {
                prop_assert_eq!(p.to_bytes().to_vec(), bytes);
            }
        }

        #[test]
        fn every_payload_round_trips(kind in 1u8..=3, digest in any::<[u8; 32]>()) {
            let p = Payload::new(RecordKind::from_byte(kind).unwrap(), Digest::from_bytes(digest));
            prop_assert_eq!(Payload::from_script(&p.to_script()), Ok(p));
        }
    }
}
