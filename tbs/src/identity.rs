//! The TBS's identity: its secp256k1 key and its Birth Certificate, made once.
//!
//! On first start [`Identity::load_or_create`] creates `tbs.key` (mode 0600) and signs
//! `birth-certificate.json` (role `tbs`, the configured name, `endpoints = [public_url]`) in
//! the state directory; both appear atomically and are never overwritten. Later starts
//! read them back and check that they still match each other and the configuration: a
//! changed `name` or `public_url` is refused rather than silently served, because changing
//! them means a new, anchored certificate that names the old one as `previous`.

use std::fmt;
use std::path::{Path, PathBuf};

use milagro_anchor::birth_certificate::{
    BcError, BcFields, BirthCertificate, Role, Status, VERSION,
};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::{PublicKey, SecretKey};

use crate::files::{self, FileError};

/// File name of the secret key in the state directory.
pub const KEY_FILE: &str = "tbs.key";
/// File name of the Birth Certificate in the state directory.
pub const BC_FILE: &str = "birth-certificate.json";

/// The TBS's key and its signed Birth Certificate (which names that key).
pub struct Identity {
    key: SecretKey,
    /// `key`'s public half, derived once (a scalar multiplication).
    public: PublicKey,
    bc: BirthCertificate,
    pool_key: SecretKey,
    pool_public: PublicKey,
}

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A state file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The certificate file is not a valid Birth Certificate, or the configuration does not
    /// make one (e.g. a `public_url` the certificate format refuses).
    #[error("birth certificate {}: {source}", path.display())]
    Bc {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: BcError,
    },
    /// The funding pool key derived from the TBS key is not a valid scalar (probability
    /// about 2^-128).
    #[error("the funding pool key derived from {KEY_FILE} is invalid")]
    PoolKey,
    /// The certificate on disk does not belong to this TBS or no longer matches the
    /// configuration.
    #[error("birth certificate {} {reason}", path.display())]
    Mismatch {
        /// The certificate file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
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
        let (key, key_created) = files::load_or_create_key(&state_dir.join(KEY_FILE))?;
        if key_created {
            tracing::info!(public_key = %key.public_key(), "created the TBS key");
        }
        let path = state_dir.join(BC_FILE);
        let bad_bc = |source| IdentityError::Bc {
            path: path.clone(),
            source,
        };
        if !path.exists() {
            let fields = BcFields {
                version: VERSION,
                role: Role::Tbs,
                name: name.to_owned(),
                endpoints: vec![public_url.to_owned()],
                created,
                public_key: key.public_key(),
                status: Status::Active,
                previous: None,
            };
            let bc = BirthCertificate::sign(fields, &key).map_err(bad_bc)?;
            if files::write_new(&path, bc.to_pretty_json().as_bytes(), 0o644)? {
                tracing::info!(digest = %bc.digest(), "created the TBS birth certificate");
            }
        }
        let bytes = std::fs::read(&path).map_err(|source| FileError::Io {
            action: "read",
            path: path.clone(),
            source,
        })?;
        let bc = BirthCertificate::parse(&bytes).map_err(bad_bc)?;
        let mismatch = |reason: String| IdentityError::Mismatch {
            path: path.clone(),
            reason,
        };
        if *bc.public_key() != key.public_key() {
            return Err(mismatch(format!(
                "names key {}, not {KEY_FILE}'s",
                bc.public_key()
            )));
        }
        if bc.role() != Role::Tbs {
            return Err(mismatch(format!("has role {}, not tbs", bc.role())));
        }
        if bc.fields().name != name {
            return Err(mismatch(format!(
                "names the TBS {:?} but the configuration says {name:?}",
                bc.fields().name
            )));
        }
        if bc.fields().endpoints != [public_url] {
            return Err(mismatch(format!(
                "lists endpoints {:?} but the configuration's public_url is {public_url:?}",
                bc.fields().endpoints
            )));
        }
        let pool_key = derive_pool_key(&key).ok_or(IdentityError::PoolKey)?;
        Ok(Self {
            public: key.public_key(),
            pool_public: pool_key.public_key(),
            key,
            bc,
            pool_key,
        })
    }

    /// The signed Birth Certificate.
    pub fn bc(&self) -> &BirthCertificate {
        &self.bc
    }

    /// The certificate's digest: what the TBS anchors and what PATs are provisioned with.
    pub fn digest(&self) -> Digest {
        self.bc.digest()
    }

    /// The TBS's public key.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The TBS's secret key: it signs the TBS's anchors and (in later versions) opens the
    /// envelopes PATs seal to it. Never log or serve it.
    pub fn secret_key(&self) -> &SecretKey {
        &self.key
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
            .field("digest", &self.bc.digest())
            .field("public_key", &self.key.public_key())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_made_once_and_read_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let url = "https://tbs.milagro.test";
        let first = Identity::load_or_create(dir.path(), "TBS", url, 1_750_000_000).unwrap();
        let again = Identity::load_or_create(dir.path(), "TBS", url, 1_760_000_000).unwrap();
        assert_eq!(again.digest(), first.digest());
        assert_eq!(again.public_key(), first.public_key());
        assert_eq!(first.bc().fields().endpoints, [url]);
        assert_eq!(first.bc().role(), Role::Tbs);
    }

    #[test]
    fn a_changed_name_or_url_is_refused_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let url = "https://tbs.milagro.test";
        Identity::load_or_create(dir.path(), "TBS", url, 1).unwrap();
        let renamed = Identity::load_or_create(dir.path(), "Other", url, 1).unwrap_err();
        assert!(renamed.to_string().contains("\"Other\""), "{renamed}");
        let moved = Identity::load_or_create(dir.path(), "TBS", "https://x.test", 1).unwrap_err();
        assert!(matches!(moved, IdentityError::Mismatch { .. }), "{moved}");
    }

    #[test]
    fn a_certificate_of_another_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let url = "https://tbs.milagro.test";
        Identity::load_or_create(dir.path(), "TBS", url, 1).unwrap();
        std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
        let err = Identity::load_or_create(dir.path(), "TBS", url, 1).unwrap_err();
        assert!(matches!(err, IdentityError::Mismatch { .. }), "{err}");
    }
}
