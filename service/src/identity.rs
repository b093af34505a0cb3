//! A service's identity: its secp256k1 key and its Birth Certificate, made once.
//!
//! On first start [`PartyIdentity::load_or_create`] creates the key file (mode 0600, named
//! by the service, e.g. `tbs.key`) and signs `birth-certificate.json` (the service's role,
//! the configured name, `endpoints = [public_url]`) in the state directory; both appear
//! atomically and are never overwritten. Later starts read them back and check that they
//! still match each other and the configuration: a changed `name` or `public_url` is
//! refused rather than silently served, because changing them means a new, anchored
//! certificate that names the old one as `previous`.
//!
//! The certificate is version 2 and lists the role's purpose keys
//! ([`milagro_anchor::purpose_keys`], ADR 0013), derived from the key at every start (no
//! second secret file to back up); a certificate on disk that does not list exactly the
//! keys derived from `key` (a version 1 one lists none) is refused, because verifiers
//! would refuse the checkpoints, tokens or envelopes made with them.

use std::fmt;
use std::path::{Path, PathBuf};

use milagro_anchor::birth_certificate::{
    BcError, BcFields, BirthCertificate, Role, Status, VERSION,
};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::{PublicKey, SecretKey};
use milagro_anchor::purpose_keys::{KeyPurpose, PurposeKeyError, PurposeSecrets};

use crate::files::{self, FileError};

/// File name of the Birth Certificate in the state directory.
pub const BC_FILE: &str = "birth-certificate.json";

/// Which party a state directory belongs to: its role and the name of its key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartyKind {
    /// The role written in the certificate.
    pub role: Role,
    /// The key file's name in the state directory.
    pub key_file: &'static str,
}

/// A service's key and its signed Birth Certificate (which names that key).
pub struct PartyIdentity {
    key: SecretKey,
    /// `key`'s public half, derived once (a scalar multiplication).
    public: PublicKey,
    bc: BirthCertificate,
    /// The role's purpose keys, derived from `key`; the certificate lists their public
    /// halves.
    purposes: PurposeSecrets,
    /// The checkpoint key (every service role has one), kept apart so that the audit
    /// loop needs no lookup that could fail.
    checkpoint: SecretKey,
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
    /// The certificate on disk does not belong to this service or no longer matches the
    /// configuration.
    #[error("birth certificate {} {reason}", path.display())]
    Mismatch {
        /// The certificate file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A purpose key could not be derived from the key, or the role has no checkpoint
    /// key (only services have identities here).
    #[error("purpose keys of the {role}: {source}")]
    Purpose {
        /// The role.
        role: Role,
        /// What failed.
        #[source]
        source: PurposeKeyError,
    },
}

impl PartyIdentity {
    /// Reads the key and certificate in `state_dir`, creating whichever is missing.
    ///
    /// `created` (Unix seconds) is used only when a new certificate is made.
    pub fn load_or_create(
        kind: PartyKind,
        state_dir: &Path,
        name: &str,
        public_url: &str,
        created: u64,
    ) -> Result<Self, IdentityError> {
        let PartyKind { role, key_file } = kind;
        let (key, key_created) = files::load_or_create_key(&state_dir.join(key_file))?;
        if key_created {
            tracing::info!(%role, public_key = %key.public_key(), "created the service key");
        }
        let purpose_error = |source| IdentityError::Purpose { role, source };
        let purposes = PurposeSecrets::derive(role, &key).map_err(purpose_error)?;
        let checkpoint = purposes
            .get(KeyPurpose::Checkpoint)
            .map_err(purpose_error)?
            .clone();
        let path = state_dir.join(BC_FILE);
        let bad_bc = |source| IdentityError::Bc {
            path: path.clone(),
            source,
        };
        if !path.exists() {
            let fields = BcFields {
                version: VERSION,
                role,
                name: name.to_owned(),
                endpoints: vec![public_url.to_owned()],
                created,
                public_key: key.public_key(),
                status: Status::Active,
                previous: None,
                keys: purposes.public_keys(),
            };
            let bc = BirthCertificate::sign(fields, &key).map_err(bad_bc)?;
            if files::write_new(&path, bc.to_pretty_json().as_bytes(), 0o644)? {
                tracing::info!(%role, digest = %bc.digest(), "created the birth certificate");
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
                "names key {}, not {key_file}'s",
                bc.public_key()
            )));
        }
        if bc.role() != role {
            return Err(mismatch(format!("has role {}, not {role}", bc.role())));
        }
        if bc.fields().keys != purposes.public_keys() {
            return Err(mismatch(format!(
                "(version {}) does not list the purpose keys derived from {key_file}; \
                 issue a version 2 certificate that names this one as previous",
                bc.fields().version
            )));
        }
        if bc.fields().name != name {
            return Err(mismatch(format!(
                "names the {role} {:?} but the configuration says {name:?}",
                bc.fields().name
            )));
        }
        if bc.fields().endpoints != [public_url] {
            return Err(mismatch(format!(
                "lists endpoints {:?} but the configuration's public_url is {public_url:?}",
                bc.fields().endpoints
            )));
        }
        Ok(Self {
            public: key.public_key(),
            key,
            bc,
            purposes,
            checkpoint,
        })
    }

    /// The signed Birth Certificate.
    pub fn bc(&self) -> &BirthCertificate {
        &self.bc
    }

    /// The certificate's digest: what the service anchors and what clients pin.
    pub fn digest(&self) -> Digest {
        self.bc.digest()
    }

    /// The service's public key.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The service's role.
    pub fn role(&self) -> Role {
        self.bc.role()
    }

    /// The anchored secret key: it signs the service's certificate, its anchoring
    /// transactions (whose nonce ECDH/YAK over Bitcoin uses) and its Milagro TLS binding,
    /// and nothing else. Never log or serve it.
    pub fn secret_key(&self) -> &SecretKey {
        &self.key
    }

    /// The key that signs the service's checkpoint notes (listed in its certificate as
    /// `checkpoint`). Never log or serve it.
    pub fn checkpoint_key(&self) -> &SecretKey {
        &self.checkpoint
    }

    /// The secret key of `purpose`, if the service's role has one (listed in its
    /// certificate under `keys`). Never log or serve it.
    pub fn purpose_key(&self, purpose: KeyPurpose) -> Result<&SecretKey, PurposeKeyError> {
        self.purposes.get(purpose)
    }
}

impl AsRef<PartyIdentity> for PartyIdentity {
    fn as_ref(&self) -> &PartyIdentity {
        self
    }
}

impl fmt::Debug for PartyIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartyIdentity")
            .field("role", &self.bc.role())
            .field("digest", &self.bc.digest())
            .field("public_key", &self.public)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const IDP: PartyKind = PartyKind {
        role: Role::Idp,
        key_file: "idp.key",
    };
    const URL: &str = "https://idp.milagro.test";

    #[test]
    fn the_identity_is_made_once_and_read_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let first = PartyIdentity::load_or_create(IDP, dir.path(), "IdP", URL, 1_750_000_000);
        let first = first.unwrap();
        let again = PartyIdentity::load_or_create(IDP, dir.path(), "IdP", URL, 1_760_000_000);
        let again = again.unwrap();
        assert_eq!(again.digest(), first.digest());
        assert_eq!(again.public_key(), first.public_key());
        assert_eq!(first.bc().fields().endpoints, [URL]);
        assert_eq!(first.role(), Role::Idp);
        assert!(dir.path().join("idp.key").exists());
    }

    #[test]
    fn a_changed_name_url_or_role_is_refused_not_served() {
        let dir = tempfile::tempdir().unwrap();
        PartyIdentity::load_or_create(IDP, dir.path(), "IdP", URL, 1).unwrap();
        let renamed = PartyIdentity::load_or_create(IDP, dir.path(), "Other", URL, 1);
        let renamed = renamed.unwrap_err();
        assert!(renamed.to_string().contains("\"Other\""), "{renamed}");
        let moved = PartyIdentity::load_or_create(IDP, dir.path(), "IdP", "https://x.test", 1);
        assert!(matches!(moved, Err(IdentityError::Mismatch { .. })));
        let dta = PartyKind {
            role: Role::Dta,
            key_file: "idp.key",
        };
        let other_role = PartyIdentity::load_or_create(dta, dir.path(), "IdP", URL, 1);
        assert!(matches!(other_role, Err(IdentityError::Mismatch { .. })));
    }

    #[test]
    fn the_certificate_lists_the_derived_purpose_keys_and_a_version_1_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let idp = PartyIdentity::load_or_create(IDP, dir.path(), "IdP", URL, 1).unwrap();
        let listed = idp.bc().purpose_key(KeyPurpose::Checkpoint).unwrap();
        assert_eq!(*listed, idp.checkpoint_key().public_key());
        assert_ne!(*listed, idp.public_key());
        assert!(idp.purpose_key(KeyPurpose::Session).is_err());
        // A version 1 certificate of the same key lists no purpose key: refused at start.
        let v1 = BcFields {
            version: milagro_anchor::birth_certificate::VERSION_1,
            keys: milagro_anchor::purpose_keys::PurposeKeys::none(),
            ..idp.bc().fields().clone()
        };
        let v1 = BirthCertificate::sign(v1, idp.secret_key()).unwrap();
        std::fs::write(dir.path().join(BC_FILE), v1.to_pretty_json()).unwrap();
        let err = PartyIdentity::load_or_create(IDP, dir.path(), "IdP", URL, 1).unwrap_err();
        assert!(err.to_string().contains("version 1"), "{err}");
        assert!(matches!(err, IdentityError::Mismatch { .. }));
    }

    #[test]
    fn a_certificate_of_another_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        PartyIdentity::load_or_create(IDP, dir.path(), "IdP", URL, 1).unwrap();
        std::fs::remove_file(dir.path().join("idp.key")).unwrap();
        let err = PartyIdentity::load_or_create(IDP, dir.path(), "IdP", URL, 1).unwrap_err();
        assert!(matches!(err, IdentityError::Mismatch { .. }), "{err}");
    }
}
