//! Signed tree heads in the C2SP `tlog-checkpoint` format, a C2SP `signed-note`.
//!
//! A checkpoint states an audit log's origin, size and root; a party signs it with its
//! secp256k1 key and the [`SignedCheckpoint::digest`] (SHA-256 of the body) is what gets
//! anchored on chain as an audit-log root record. The note looks like:
//!
//! ```text
//! milagro.example/tbs/audit
//! 42
//! <base64 of the 32-byte root>
//!
//! — milagro.example/tbs <base64 of key ID ‖ 64-byte signature>
//! ```
//!
//! **Signature type.** The signed-note spec assigns type bytes to Ed25519 (`0x01`) and to
//! NIST-curve ECDSA (`0x02`), none to secp256k1, and reserves `0xff` for "signature types
//! without an identifier byte assigned by this specification", to be followed by a longer
//! identifier unlikely to collide. So the key ID is
//! `SHA-256(key name ‖ 0x0A ‖ 0xff ‖ "milagro-trust/ecdsa-secp256k1-sha256" ‖ SEC1 key)[:4]`
//! ([`SIGNATURE_TYPE`], compressed 33-byte key) and the signature is the 64-byte compact,
//! low-S, RFC 6979 ECDSA signature over SHA-256 of the note text (the body). Other note
//! verifiers will not know this type; they must ignore such signatures, as the spec says.
//!
//! **Parsing** ([`SignedCheckpoint::parse`]) verifies as it reads, so a [`SignedCheckpoint`]
//! only exists signed by the expected key. It refuses notes over [`MAX_NOTE_LEN`], control
//! characters, a missing final newline, fewer than three body lines or an empty one, an
//! empty or over-long origin, a tree size that is not canonical decimal, a root that is not
//! canonical padded base64 of 32 bytes, malformed signature lines, two signatures by the
//! expected key, no signature by it, and a signature that does not verify. Signatures by
//! other keys are ignored (and not kept), as the spec requires.
//!
//! This module does not check that the origin is the one you expect, nor that a new
//! checkpoint is consistent with the previous one: compare [`Checkpoint::origin`] yourself,
//! and check an [`crate::audit_log::ConsistencyProof`] between the two tree heads.

use base64::{engine::general_purpose::STANDARD, Engine as _};

use crate::audit_log::{TreeHead, TreeSize};
use crate::birth_certificate::BirthCertificate;
use crate::digest::Digest;
use crate::keys::{KeyError, PublicKey, SecretKey, Signature};
use crate::purpose_keys::{KeyPurpose, PurposeKeyError};

mod note;

use note::SignatureLine;
pub use note::{KeyId, KeyName, MAX_NOTE_LEN, SIGNATURE_TYPE};

/// The longest origin or key name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Why a checkpoint could not be built, or a note could not be read or verified.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The signer's certificate lists no checkpoint key.
    #[error("the signer's certificate lists no checkpoint key: {0}")]
    NoCheckpointKey(#[source] PurposeKeyError),
    /// The note is longer than [`MAX_NOTE_LEN`].
    #[error("note is {len} bytes, the limit is {max}")]
    TooLong {
        /// The note's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The note holds a control character other than newline.
    #[error("note has control character {found:?} at byte {offset}")]
    ControlCharacter {
        /// Byte offset of the character.
        offset: usize,
        /// The character.
        found: char,
    },
    /// The note does not end with a newline.
    #[error("note does not end with a newline")]
    MissingFinalNewline,
    /// No blank line followed by signature lines.
    #[error("note has no signature lines after a blank line")]
    NoSignatures,
    /// The body has fewer than origin, size and root lines.
    #[error("checkpoint body has {found} lines, needs at least 3")]
    TooFewLines {
        /// The number of body lines.
        found: usize,
    },
    /// A body line is empty (1-based line number).
    #[error("checkpoint body line {line} is empty")]
    EmptyLine {
        /// The line number, from 1.
        line: usize,
    },
    /// The origin is empty, too long, or holds a control character.
    #[error("invalid origin {origin:?}: {reason}")]
    InvalidOrigin {
        /// The origin given or read.
        origin: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key name is empty, too long, or holds white space, `+` or a control character.
    #[error("invalid key name {name:?}: {reason}")]
    InvalidKeyName {
        /// The name given or read.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The size line is not a canonical decimal `u64` (no sign, no leading zero).
    #[error("tree size {text:?} is not a canonical decimal number")]
    InvalidTreeSize {
        /// The size line.
        text: String,
    },
    /// The root line is not canonical padded standard base64.
    #[error("root hash {text:?} is not canonical base64")]
    InvalidRootEncoding {
        /// The root line.
        text: String,
        /// The decoder's complaint.
        #[source]
        source: base64::DecodeError,
    },
    /// The root decodes to other than 32 bytes.
    #[error("root hash is {len} bytes, not 32")]
    InvalidRootLength {
        /// The decoded length.
        len: usize,
    },
    /// A signature line is not `— <name> <base64 of at least 5 bytes>`.
    #[error("malformed signature line {line:?}")]
    MalformedSignatureLine {
        /// The line.
        line: String,
    },
    /// The expected key signed the note twice.
    #[error("more than one signature by key {key_name}")]
    DuplicateSignature {
        /// The expected key's name.
        key_name: String,
    },
    /// No signature line has the expected key's name and key ID.
    #[error("no signature by key {key_name} (key ID {key_id})")]
    NoSignatureFromKey {
        /// The expected key's name.
        key_name: String,
        /// The expected key's ID.
        key_id: KeyId,
    },
    /// The expected key's signature is malformed or does not verify.
    #[error("signature by key {key_name} does not verify")]
    BadSignature {
        /// The expected key's name.
        key_name: String,
        /// Why it failed.
        #[source]
        source: KeyError,
    },
}

/// An unsigned checkpoint: a log's origin and a tree head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    head: TreeHead,
    /// Opaque extension lines, kept only so a parsed body re-serialises byte for byte.
    extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint of `head` for the log named `origin` (non-empty, at most
    /// [`MAX_NAME_LEN`] bytes, no control characters).
    pub fn new(origin: &str, head: TreeHead) -> Result<Self, CheckpointError> {
        check_origin(origin)?;
        Ok(Self {
            origin: origin.to_owned(),
            head,
            extensions: Vec::new(),
        })
    }

    /// The log's origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The tree size.
    pub fn size(&self) -> TreeSize {
        self.head.size
    }

    /// The root hash.
    pub fn root(&self) -> Digest {
        self.head.root
    }

    /// The size and root together.
    pub fn tree_head(&self) -> TreeHead {
        self.head
    }

    /// Extension lines read from a note (none for checkpoints built here).
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The note text: origin, size and base64 root lines (and any extension lines), each
    /// ending in a newline.
    pub fn to_body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.head.size,
            STANDARD.encode(self.head.root.as_bytes())
        );
        for line in &self.extensions {
            body.push_str(line);
            body.push('\n');
        }
        body
    }

    /// Signs the body with `key`, under `key_name`.
    pub fn sign(&self, key_name: &KeyName, key: &SecretKey) -> SignedCheckpoint {
        SignedCheckpoint {
            signature: key.sign_digest(&Digest::sha256(self.to_body().as_bytes())),
            key_id: KeyId::of(key_name, &key.public_key()),
            key_name: key_name.clone(),
            checkpoint: self.clone(),
        }
    }

    fn parse_body(text: &str) -> Result<Self, CheckpointError> {
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .unwrap_or(text)
            .split('\n')
            .collect();
        if let Some(empty) = lines.iter().position(|line| line.is_empty()) {
            return Err(CheckpointError::EmptyLine { line: empty + 1 });
        }
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(CheckpointError::TooFewLines { found: lines.len() });
        };
        check_origin(origin)?;
        let head = TreeHead {
            size: parse_tree_size(size)?,
            root: parse_root(root)?,
        };
        Ok(Self {
            origin: (*origin).to_owned(),
            head,
            extensions: extensions.iter().map(|line| (*line).to_owned()).collect(),
        })
    }
}

/// A checkpoint with a signature by a known key: made by [`Checkpoint::sign`], or read by
/// [`SignedCheckpoint::parse`], which verifies the signature before returning one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    checkpoint: Checkpoint,
    key_name: KeyName,
    key_id: KeyId,
    signature: Signature,
}

impl SignedCheckpoint {
    /// Reads a note signed by the party of `bc`: verifies its signature by the
    /// `checkpoint` key the certificate lists (ADR 0013) under `key_name`. A note signed
    /// by the certificate's anchored key is refused like any other foreign signature, and
    /// a certificate that lists no checkpoint key (version 1) verifies no note.
    pub fn parse_certified(
        note: &str,
        key_name: &KeyName,
        bc: &BirthCertificate,
    ) -> Result<Self, CheckpointError> {
        let key = bc
            .purpose_key(KeyPurpose::Checkpoint)
            .map_err(CheckpointError::NoCheckpointKey)?;
        Self::parse(note, key_name, key)
    }

    /// Reads a note and verifies its signature by `key` under `key_name` (see the module
    /// documentation for everything refused).
    pub fn parse(note: &str, key_name: &KeyName, key: &PublicKey) -> Result<Self, CheckpointError> {
        let (text, signatures) = note::split(note)?;
        let checkpoint = Checkpoint::parse_body(text)?;

        let key_id = KeyId::of(key_name, key);
        let digest = Digest::sha256(text.as_bytes());
        let bad = |source| CheckpointError::BadSignature {
            key_name: key_name.to_string(),
            source,
        };
        let mut found = None;
        for line in signatures.split_terminator('\n') {
            let line = SignatureLine::parse(line)?;
            if line.name != key_name.as_str() || line.key_id != key_id.to_bytes() {
                continue;
            }
            if found.is_some() {
                return Err(CheckpointError::DuplicateSignature {
                    key_name: key_name.to_string(),
                });
            }
            let signature = Signature::from_compact(&line.signature).map_err(bad)?;
            key.verify_digest(&digest, &signature).map_err(bad)?;
            found = Some(signature);
        }
        let signature = found.ok_or_else(|| CheckpointError::NoSignatureFromKey {
            key_name: key_name.to_string(),
            key_id,
        })?;
        Ok(Self {
            checkpoint,
            key_name: key_name.clone(),
            key_id,
            signature,
        })
    }

    /// The note: body, blank line, and this key's signature line.
    pub fn to_note(&self) -> String {
        let body = self.checkpoint.to_body();
        let line = SignatureLine::format(&self.key_name, self.key_id, &self.signature);
        format!("{body}\n{line}")
    }

    /// SHA-256 of the body: the digest that is signed, and that is anchored on chain.
    pub fn digest(&self) -> Digest {
        Digest::sha256(self.checkpoint.to_body().as_bytes())
    }

    /// The checkpoint that was signed.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The signing key's name.
    pub fn key_name(&self) -> &KeyName {
        &self.key_name
    }

    /// The signing key's ID.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The ECDSA signature over [`Self::digest`].
    pub fn signature(&self) -> &Signature {
        &self.signature
    }
}

fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    let reason = if origin.is_empty() {
        "empty"
    } else if origin.len() > MAX_NAME_LEN {
        "too long"
    } else if origin.chars().any(char::is_control) {
        "contains a control character"
    } else {
        return Ok(());
    };
    Err(CheckpointError::InvalidOrigin {
        origin: origin.to_owned(),
        reason,
    })
}

fn parse_tree_size(text: &str) -> Result<TreeSize, CheckpointError> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    let invalid = || CheckpointError::InvalidTreeSize {
        text: text.to_owned(),
    };
    if !canonical {
        return Err(invalid());
    }
    text.parse::<u64>()
        .map(TreeSize::new)
        .map_err(|_| invalid())
}

fn parse_root(text: &str) -> Result<Digest, CheckpointError> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|source| CheckpointError::InvalidRootEncoding {
            text: text.to_owned(),
            source,
        })?;
    Digest::from_slice(&bytes).map_err(|_| CheckpointError::InvalidRootLength { len: bytes.len() })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panicking test is a failing test
mod tests;
