//! Purpose keys: the separate keys a party uses for session tokens, checkpoint notes and
//! envelopes, derived from its anchored key and listed in its Birth Certificate.
//!
//! The anchored key (the one a Birth Certificate names as `public_key`) must stay in use
//! for the certificate itself, the party's anchoring transactions and the Milagro TLS
//! binding: ECDH/YAK over Bitcoin needs the nonce of its anchoring signature. Nothing else
//! needs it, so every other use gets a key of its own (ADR 0013). A leak of one of those
//! keys (a token signer's memory, an envelope-opening worker) then gives that one use, not
//! the party's coins, certificate, TLS identity or the other uses.
//!
//! **Derivation** ([`derive`]), hardened so that no public value links a purpose key to
//! the anchored key:
//!
//! ```text
//! secret(purpose) = SHA-256( "milagro/purpose-key/v1/" ‖ purpose ‖ 0x00 ‖ anchored secret (32) )
//! ```
//!
//! read as a big-endian scalar (a result of zero or above the group order, probability
//! about 2⁻¹²⁸, is [`PurposeKeyError::InvalidDerivedKey`]). An additive tweak
//! (`secret + t`, `t` public) would not separate anything: the purpose key and the public
//! `t` give back the anchored secret. The hash is one-way, so a purpose secret reveals
//! neither the anchored secret nor another purpose's secret.
//!
//! **Publication**: the public halves are listed in the party's version 2 Birth
//! Certificate under `keys` ([`PurposeKeys`]), which the anchored key signs and the chain
//! anchors; a verifier learns them from the document it already checks. Which purposes a
//! role lists is fixed ([`required`]): exactly those, no others.

use core::fmt;
use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize as _, Zeroizing};

use crate::birth_certificate::Role;
use crate::keys::{PublicKey, SecretKey};

/// The domain label that starts every derivation, before the purpose name.
pub const DERIVATION_LABEL: &[u8] = b"milagro/purpose-key/v1/";

/// What a purpose key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum KeyPurpose {
    /// Signs the party's audit-log checkpoint notes (C2SP signed notes).
    Checkpoint,
    /// Opens envelopes sealed to the party (the TBS: devices' enrolment requests and
    /// signed anchors).
    Envelope,
    /// Signs session tokens (the authentication server's ES256K JWTs).
    Session,
}

impl KeyPurpose {
    /// Every purpose, in wire-name order.
    pub const ALL: [KeyPurpose; 3] = [
        KeyPurpose::Checkpoint,
        KeyPurpose::Envelope,
        KeyPurpose::Session,
    ];

    /// The wire name (a key of the certificate's `keys` object).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::Checkpoint => "checkpoint",
            KeyPurpose::Envelope => "envelope",
            KeyPurpose::Session => "session",
        }
    }

    /// The purpose of a wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The purposes a certificate of `role` lists, no more and no fewer.
///
/// Every service keeps an audit log with signed checkpoints; the TBS also opens
/// envelopes and the authentication server signs session tokens. A device (`pat`) signs
/// nothing but its certificate and its anchor, so it lists none.
pub fn required(role: Role) -> &'static [KeyPurpose] {
    match role {
        Role::Tbs => &[KeyPurpose::Checkpoint, KeyPurpose::Envelope],
        Role::Idp | Role::Dta => &[KeyPurpose::Checkpoint],
        Role::AuthServer => &[KeyPurpose::Checkpoint, KeyPurpose::Session],
        Role::Pat => &[],
    }
}

/// Why a purpose key could not be derived, or a certificate has none for a purpose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PurposeKeyError {
    /// The hash is not a valid secret scalar (probability about 2⁻¹²⁸).
    #[error("the derived {0} key is not a valid secret key")]
    InvalidDerivedKey(KeyPurpose),
    /// The certificate lists no key for this purpose (a version 1 certificate lists
    /// none): the use is refused rather than served by the anchored key.
    #[error("the birth certificate lists no {0} key")]
    NotListed(KeyPurpose),
}

/// Derives the secret key of `purpose` from the anchored secret key (see the module
/// documentation). The intermediate hash is wiped; the result zeroizes itself on drop.
pub fn derive(anchored: &SecretKey, purpose: KeyPurpose) -> Result<SecretKey, PurposeKeyError> {
    let secret = anchored.to_bytes();
    let mut hash = Sha256::new()
        .chain_update(DERIVATION_LABEL)
        .chain_update(purpose.as_str())
        .chain_update([0])
        .chain_update(secret.as_slice())
        .finalize();
    let bytes = Zeroizing::new(<[u8; 32]>::from(hash));
    // The conversion copied the derived secret: wipe the hash it came from too.
    hash[..].zeroize();
    SecretKey::from_bytes(&bytes).map_err(|_| PurposeKeyError::InvalidDerivedKey(purpose))
}

/// The public purpose keys a certificate lists: purpose → compressed SEC1 key.
///
/// Serialized as a JSON object of wire names to 66-hex-character keys; reading one back
/// is the certificate parser's job, which gives each fault its own error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurposeKeys(BTreeMap<KeyPurpose, PublicKey>);

impl PurposeKeys {
    /// No purpose keys (a device's, or a version 1 certificate's).
    pub fn none() -> Self {
        Self::default()
    }

    /// Derives the keys `role` lists from the anchored secret key.
    pub fn derive(role: Role, anchored: &SecretKey) -> Result<Self, PurposeKeyError> {
        Ok(PurposeSecrets::derive(role, anchored)?.public_keys())
    }

    /// Adds or replaces the key of `purpose` (certificate checks decide whether the
    /// result is acceptable for a role).
    pub fn insert(&mut self, purpose: KeyPurpose, key: PublicKey) {
        self.0.insert(purpose, key);
    }

    /// The key listed for `purpose`.
    pub fn get(&self, purpose: KeyPurpose) -> Result<&PublicKey, PurposeKeyError> {
        self.0
            .get(&purpose)
            .ok_or(PurposeKeyError::NotListed(purpose))
    }

    /// Whether no key is listed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The listed purposes and keys, in wire-name order.
    pub fn iter(&self) -> impl Iterator<Item = (KeyPurpose, &PublicKey)> {
        self.0.iter().map(|(purpose, key)| (*purpose, key))
    }
}

impl Serialize for PurposeKeys {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (purpose, key) in &self.0 {
            map.serialize_entry(purpose.as_str(), key)?;
        }
        map.end()
    }
}

/// The secret halves of a party's purpose keys, derived at start-up and held next to the
/// anchored key. Each zeroizes itself on drop.
#[derive(Clone)]
pub struct PurposeSecrets(BTreeMap<KeyPurpose, SecretKey>);

impl PurposeSecrets {
    /// Derives the keys of every purpose `role` lists.
    pub fn derive(role: Role, anchored: &SecretKey) -> Result<Self, PurposeKeyError> {
        let mut keys = BTreeMap::new();
        for &purpose in required(role) {
            keys.insert(purpose, derive(anchored, purpose)?);
        }
        Ok(Self(keys))
    }

    /// The secret key of `purpose`, if the role has one.
    pub fn get(&self, purpose: KeyPurpose) -> Result<&SecretKey, PurposeKeyError> {
        self.0
            .get(&purpose)
            .ok_or(PurposeKeyError::NotListed(purpose))
    }

    /// The public halves, as a certificate lists them.
    pub fn public_keys(&self) -> PurposeKeys {
        PurposeKeys(
            self.0
                .iter()
                .map(|(purpose, key)| (*purpose, key.public_key()))
                .collect(),
        )
    }
}

impl fmt::Debug for PurposeSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[cfg(test)]
mod tests;
