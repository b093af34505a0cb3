//! The TBS's identity: the shared party identity ([`PartyIdentity`], role `tbs`, key file
//! `tbs.key`, with its checkpoint and envelope purpose keys) plus the key of its funding
//! pool, derived from the TBS key.
//!
//! Making, reading and checking the key and Birth Certificate is
//! [`milagro_service::identity`]'s job, as for every service; this module only names the
//! TBS's files and adds what is the TBS's own.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::{PublicKey, SecretKey};
use milagro_anchor::purpose_keys::{KeyPurpose, PurposeKeyError};
pub use milagro_service::identity::BC_FILE;
use milagro_service::identity::{PartyIdentity, PartyKind};

/// File name of the secret key in the state directory.
pub const KEY_FILE: &str = "tbs.key";

/// The TBS as a party: role `tbs`, key in [`KEY_FILE`].
pub const KIND: PartyKind = PartyKind {
    role: Role::Tbs,
    key_file: KEY_FILE,
};

/// The TBS's key and its signed Birth Certificate (which names that key).
pub struct Identity {
    /// Shared with the chain loop, which anchors with it.
    party: Arc<PartyIdentity>,
    /// The envelope purpose key, fetched once so that opening needs no lookup that could
    /// fail.
    envelope_key: SecretKey,
    pool_key: SecretKey,
    pool_public: PublicKey,
}

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The key or certificate could not be read, made, or does not match.
    #[error(transparent)]
    Party(#[from] milagro_service::identity::IdentityError),
    /// The funding pool key derived from the TBS key is not a valid scalar (probability
    /// about 2^-128).
    #[error("the funding pool key derived from {KEY_FILE} is invalid")]
    PoolKey,
    /// The identity has no envelope key (cannot happen for role `tbs`, whose certificate
    /// must list one).
    #[error(transparent)]
    EnvelopeKey(#[from] PurposeKeyError),
}

impl Identity {
    /// Reads the key and certificate in `state_dir`, creating whichever is missing.
    ///
    /// `created` (Unix seconds) is used only when a new certificate is made.
    pub fn load_or_create(
        state_dir: &Path,
        name: &str,
        public_url: &str,
        created: u64,
    ) -> Result<Self, IdentityError> {
        let party = PartyIdentity::load_or_create(KIND, state_dir, name, public_url, created)?;
        Self::from_party(Arc::new(party))
    }

    /// The TBS identity of `party` (loaded by [`milagro_service::base::ServiceBase`] with
    /// [`KIND`]): derives the funding pool key and fetches the envelope key.
    pub fn from_party(party: Arc<PartyIdentity>) -> Result<Self, IdentityError> {
        let pool_key = derive_pool_key(party.secret_key()).ok_or(IdentityError::PoolKey)?;
        let envelope_key = party.purpose_key(KeyPurpose::Envelope)?.clone();
        Ok(Self {
            pool_public: pool_key.public_key(),
            party,
            envelope_key,
            pool_key,
        })
    }

    /// The signed Birth Certificate.
    pub fn bc(&self) -> &BirthCertificate {
        self.party.bc()
    }

    /// The certificate's digest: what the TBS anchors and what PATs are provisioned with.
    pub fn digest(&self) -> Digest {
        self.party.digest()
    }

    /// The TBS's public key.
    pub fn public_key(&self) -> PublicKey {
        self.party.public_key()
    }

    /// The TBS's anchored secret key: it signs the TBS's certificate and anchors. Never
    /// log or serve it.
    pub fn secret_key(&self) -> &SecretKey {
        self.party.secret_key()
    }

    /// The key that opens the envelopes devices seal to the TBS (enrolment requests,
    /// signed anchors), listed in its certificate as `envelope` (ADR 0013): envelopes
    /// sealed to the anchored key do not open. Never log or serve it.
    pub fn envelope_key(&self) -> &SecretKey {
        &self.envelope_key
    }

    /// The key that signs the TBS's checkpoint notes, listed as `checkpoint`.
    pub fn checkpoint_key(&self) -> &SecretKey {
        self.party.checkpoint_key()
    }

    /// The key of the funding pool (`crate::enrolment::pool`), derived from the TBS key:
    /// `SHA-256("milagro-tbs/funding-pool/v1" ‖ 0x00 ‖ TBS secret key)`. A separate key
    /// keeps the pool's coins apart from the TBS key's, which the TBS spends on its own
    /// anchors; deriving it needs no second secret file to back up.
    pub fn funding_pool_key(&self) -> &SecretKey {
        &self.pool_key
    }

    /// The funding pool key's public half.
    pub fn funding_pool_public_key(&self) -> PublicKey {
        self.pool_public
    }
}

impl AsRef<PartyIdentity> for Identity {
    fn as_ref(&self) -> &PartyIdentity {
        &self.party
    }
}

fn derive_pool_key(key: &SecretKey) -> Option<SecretKey> {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    hash.update(b"milagro-tbs/funding-pool/v1\0");
    hash.update(key.to_bytes().as_slice());
    let bytes = zeroize::Zeroizing::new(<[u8; 32]>::from(hash.finalize()));
    SecretKey::from_bytes(&bytes).ok()
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("digest", &self.digest())
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tbs_identity_is_a_tbs_party_with_a_stable_pool_key_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let url = "https://tbs.milagro.test";
        let first = Identity::load_or_create(dir.path(), "TBS", url, 1_750_000_000).unwrap();
        let again = Identity::load_or_create(dir.path(), "TBS", url, 1_760_000_000).unwrap();
        assert_eq!(again.digest(), first.digest());
        assert_eq!(first.bc().role(), Role::Tbs);
        assert!(dir.path().join(KEY_FILE).exists());
        assert_eq!(
            again.funding_pool_public_key(),
            first.funding_pool_public_key()
        );
        assert_ne!(first.funding_pool_public_key(), first.public_key());
        // The envelope key is the listed one, stable, and neither the anchored key nor the
        // pool key.
        let listed = *first.bc().purpose_key(KeyPurpose::Envelope).unwrap();
        assert_eq!(listed, first.envelope_key().public_key());
        assert_eq!(listed, again.envelope_key().public_key());
        assert_ne!(listed, first.public_key());
        assert_ne!(listed, first.funding_pool_public_key());
    }

    #[test]
    fn a_changed_name_is_refused_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let url = "https://tbs.milagro.test";
        Identity::load_or_create(dir.path(), "TBS", url, 1).unwrap();
        let renamed = Identity::load_or_create(dir.path(), "Other", url, 1).unwrap_err();
        assert!(renamed.to_string().contains("\"Other\""), "{renamed}");
    }
}
