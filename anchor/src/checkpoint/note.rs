//! The C2SP `signed-note` layer under checkpoints: key names, key IDs, and the split of a
//! note into its text and signature lines.

use core::fmt;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use sha2::{Digest as _, Sha256};

use super::{CheckpointError, MAX_NAME_LEN};
use crate::keys::{PublicKey, Signature};

/// The largest note [`super::SignedCheckpoint::parse`] reads, in bytes.
pub const MAX_NOTE_LEN: usize = 64 * 1024;

/// The signature-type bytes hashed into key IDs: the spec's "unassigned" byte `0xff`, then an
/// identifier of this scheme (ECDSA over secp256k1 with SHA-256, compact low-S signatures).
pub const SIGNATURE_TYPE: &[u8] = b"\xffmilagro-trust/ecdsa-secp256k1-sha256";

/// Starts every signature line: U+2014 EM DASH, then a space.
const SIGNATURE_LINE_PREFIX: &str = "\u{2014} ";

/// A signed-note key name: non-empty, at most [`MAX_NAME_LEN`] bytes, without white space,
/// `+` or control characters. Recommended: a schema-less URL such as `milagro.example/tbs`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyName(String);

impl KeyName {
    /// Checks and wraps a key name.
    pub fn new(name: &str) -> Result<Self, CheckpointError> {
        let reason = if name.is_empty() {
            "empty"
        } else if name.len() > MAX_NAME_LEN {
            "too long"
        } else if name.chars().any(char::is_whitespace) {
            "contains white space"
        } else if name.contains('+') {
            "contains '+'"
        } else if name.chars().any(char::is_control) {
            "contains a control character"
        } else {
            return Ok(Self(name.to_owned()));
        };
        Err(CheckpointError::InvalidKeyName {
            name: name.to_owned(),
            reason,
        })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The 4-byte signed-note key ID of a (key name, secp256k1 key) pair, shown as hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 4]);

impl KeyId {
    /// `SHA-256(name ‖ 0x0A ‖ SIGNATURE_TYPE ‖ compressed SEC1 key)[:4]`.
    pub fn of(name: &KeyName, key: &PublicKey) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(name.as_str());
        hasher.update([b'\n']);
        hasher.update(SIGNATURE_TYPE);
        hasher.update(key.to_sec1());
        let hash = hasher.finalize();
        Self([hash[0], hash[1], hash[2], hash[3]])
    }

    /// The ID as it leads a signature (big-endian `u32`).
    pub fn to_bytes(self) -> [u8; 4] {
        self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Splits a note into its text (ending in a newline) and its non-empty block of signature
/// lines, after checking its length, characters and final newline. The text ends at the
/// note's last blank line, as the spec says.
pub(super) fn split(note: &str) -> Result<(&str, &str), CheckpointError> {
    if note.len() > MAX_NOTE_LEN {
        return Err(CheckpointError::TooLong {
            len: note.len(),
            max: MAX_NOTE_LEN,
        });
    }
    if let Some((offset, found)) = note.char_indices().find(|&(_, c)| c < ' ' && c != '\n') {
        return Err(CheckpointError::ControlCharacter { offset, found });
    }
    if !note.ends_with('\n') {
        return Err(CheckpointError::MissingFinalNewline);
    }
    let blank = note.rfind("\n\n").ok_or(CheckpointError::NoSignatures)?;
    let (text, signatures) = (&note[..=blank], &note[blank + 2..]);
    if signatures.is_empty() {
        return Err(CheckpointError::NoSignatures);
    }
    Ok((text, signatures))
}

/// One signature line, `— <name> <base64(key ID ‖ signature)>`.
pub(super) struct SignatureLine<'a> {
    pub(super) name: &'a str,
    pub(super) key_id: [u8; 4],
    pub(super) signature: Vec<u8>,
}

impl<'a> SignatureLine<'a> {
    /// Reads a line; the name must be a valid key name and the base64 hold at least 5 bytes.
    pub(super) fn parse(line: &'a str) -> Result<Self, CheckpointError> {
        let malformed = || CheckpointError::MalformedSignatureLine {
            line: line.to_owned(),
        };
        let (name, encoded) = line
            .strip_prefix(SIGNATURE_LINE_PREFIX)
            .and_then(|rest| rest.split_once(' '))
            .ok_or_else(malformed)?;
        KeyName::new(name).map_err(|_| malformed())?;
        let mut signature = STANDARD.decode(encoded).map_err(|_| malformed())?;
        let [a, b, c, d, _, ..] = signature[..] else {
            return Err(malformed());
        };
        signature.drain(..4);
        Ok(Self {
            name,
            key_id: [a, b, c, d],
            signature,
        })
    }

    /// Writes the line of `signature` by `name`, newline included.
    pub(super) fn format(name: &KeyName, key_id: KeyId, signature: &Signature) -> String {
        let mut bytes = Vec::with_capacity(4 + 64);
        bytes.extend_from_slice(&key_id.0);
        bytes.extend_from_slice(&signature.to_compact());
        format!("{SIGNATURE_LINE_PREFIX}{name} {}\n", STANDARD.encode(bytes))
    }
}
