//! The master-secret share at rest: generated once, sealed with AES-256-GCM, opened at
//! start.
//!
//! The file `master-share.sealed` (mode 0600, written atomically and never replaced) is
//!
//! ```text
//! version (1 byte, 1) ‖ nonce (12 bytes) ‖ AES-256-GCM(share, 48 bytes) ‖ tag (16 bytes)
//! ```
//!
//! with associated data `"milagro-dta/master-share/v1" ‖ 0x00 ‖ version ‖ BC digest`: a
//! sealed share opens only for the D-TA whose Birth Certificate it was made for, and only
//! as this format version, so files cannot be swapped between D-TAs or downgraded. The
//! sealing key (32 bytes, 64 hex characters) comes from an environment variable or an
//! owner-only file ([`MasterKeySource`]); a wrong key refuses to start. Plaintext bytes
//! live only in wiped buffers, and the share itself wipes its scalar on drop.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use milagro_anchor::digest::Digest;
use milagro_mpin::MasterShare;
use milagro_service::files::{self, FileError};
use rand_core::{OsRng, RngCore as _};
use zeroize::Zeroizing;

use crate::config::MasterKeySource;

/// File name of the sealed share in the state directory.
pub const SEALED_FILE: &str = "master-share.sealed";
/// The sealed file's format version.
pub const FORMAT_VERSION: u8 = 1;
const DOMAIN: &[u8] = b"milagro-dta/master-share/v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const SHARE_LEN: usize = milagro_mpin::points::SCALAR_LEN;

/// Why the share could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The sealing key's environment variable is not set (or not Unicode).
    #[error("the master-share sealing key: environment variable {0} is not set")]
    EnvMissing(String),
    /// The sealing key file is readable by others than its owner.
    #[error("the master-share sealing key file {} is readable by others (mode {mode:o}); chmod 600 it", path.display())]
    KeyFileMode {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The sealing key is not 64 hex characters (the key itself is never shown).
    #[error("the master-share sealing key from {0} is not 32 bytes in hex (64 characters)")]
    BadKey(String),
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The sealed file is not in this format.
    #[error("{} is not a sealed master share of format {FORMAT_VERSION}: {detail}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: &'static str,
    },
    /// Authentication failed: another sealing key, another D-TA's file, or tampering.
    #[error("{} does not open with the configured sealing key for this D-TA (wrong key, another D-TA's file, or a modified file); refusing to start", path.display())]
    WrongKey {
        /// The file.
        path: PathBuf,
    },
}

/// The AES-256 key that seals the share (wiped on drop, never printed).
pub struct SealingKey(Zeroizing<[u8; 32]>);

impl SealingKey {
    /// Reads the key from its configured source.
    pub fn load(source: &MasterKeySource) -> Result<Self, SealError> {
        match source {
            MasterKeySource::Env(name) => {
                let text = Zeroizing::new(
                    std::env::var(name).map_err(|_| SealError::EnvMissing(name.clone()))?,
                );
                Self::from_hex(&text).ok_or_else(|| SealError::BadKey(format!("${name}")))
            }
            MasterKeySource::File(path) => {
                let io = |source| FileError::Io {
                    action: "read",
                    path: path.clone(),
                    source,
                };
                let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(SealError::KeyFileMode {
                        path: path.clone(),
                        mode,
                    });
                }
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
                Self::from_hex(&text).ok_or_else(|| SealError::BadKey(path.display().to_string()))
            }
        }
    }

    /// A key from 64 hex characters (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), bytes.as_mut_slice()).ok()?;
        Some(Self(bytes))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(*self.0))
    }
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

fn associated_data(bc_digest: &Digest) -> Vec<u8> {
    let mut aad = Vec::with_capacity(DOMAIN.len() + 2 + 32);
    aad.extend_from_slice(DOMAIN);
    aad.push(0);
    aad.push(FORMAT_VERSION);
    aad.extend_from_slice(bc_digest.as_bytes());
    aad
}

/// Seals `share` for the D-TA of `bc_digest`.
pub fn seal(share: &MasterShare, key: &SealingKey, bc_digest: &Digest) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let plaintext = share.to_bytes();
    let aad = associated_data(bc_digest);
    // Encrypting 48 bytes into a Vec cannot fail (only oversized inputs make aes-gcm fail).
    let sealed = key
        .cipher()
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext.as_slice(),
                aad: &aad,
            },
        )
        .unwrap_or_default();
    let mut file = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    file.push(FORMAT_VERSION);
    file.extend_from_slice(&nonce);
    file.extend_from_slice(&sealed);
    file
}

/// Opens a sealed share (`path` only names the file in errors).
pub fn open(
    bytes: &[u8],
    key: &SealingKey,
    bc_digest: &Digest,
    path: &Path,
) -> Result<MasterShare, SealError> {
    let format = |detail| SealError::Format {
        path: path.to_path_buf(),
        detail,
    };
    if bytes.len() != 1 + NONCE_LEN + SHARE_LEN + TAG_LEN {
        return Err(format("wrong length"));
    }
    if bytes[0] != FORMAT_VERSION {
        return Err(format("unknown version"));
    }
    let (nonce, sealed) = bytes[1..].split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| format("wrong length"))?;
    let aad = associated_data(bc_digest);
    let plaintext = Zeroizing::new(
        key.cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::WrongKey {
                path: path.to_path_buf(),
            })?,
    );
    MasterShare::from_bytes(&plaintext).map_err(|_| format("the share is not a valid scalar"))
}

/// Opens the sealed share in `state_dir`, or generates and seals one there on first start.
/// Returns the share and whether it was created now.
pub fn load_or_create(
    state_dir: &Path,
    key: &SealingKey,
    bc_digest: &Digest,
) -> Result<(MasterShare, bool), SealError> {
    let path = state_dir.join(SEALED_FILE);
    if !path.exists() {
        let share = MasterShare::generate(&mut OsRng);
        if files::write_new(&path, &seal(&share, key, bc_digest), 0o600)? {
            tracing::info!(file = %path.display(), "created and sealed the master-secret share");
            return Ok((share, true));
        }
        // Another process sealed one first: theirs is the share.
    }
    let bytes = Zeroizing::new(std::fs::read(&path).map_err(|source| FileError::Io {
        action: "read",
        path: path.clone(),
        source,
    })?);
    open(&bytes, key, bc_digest, &path).map(|share| (share, false))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use milagro_mpin::MpinId;

    fn key(byte: u8) -> SealingKey {
        SealingKey::from_hex(&hex::encode([byte; 32])).unwrap()
    }

    fn same(a: &MasterShare, b: &MasterShare) -> bool {
        let id = MpinId::new("probe").unwrap();
        a.client_share(&id).unwrap() == b.client_share(&id).unwrap()
    }

    #[test]
    fn a_share_is_made_once_sealed_private_and_opens_only_with_its_key_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let digest = Digest::sha256(b"dta bc");
        let (share, created) = load_or_create(dir.path(), &key(1), &digest).unwrap();
        assert!(created);
        let path = dir.path().join(SEALED_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes
            .windows(SHARE_LEN)
            .any(|w| w == share.to_bytes().as_slice()));
        let (again, created) = load_or_create(dir.path(), &key(1), &digest).unwrap();
        assert!(!created && same(&share, &again));

        let wrong = load_or_create(dir.path(), &key(2), &digest).unwrap_err();
        assert!(matches!(wrong, SealError::WrongKey { .. }));
        assert!(wrong.to_string().contains("refusing to start"), "{wrong}");
        let other_dta = load_or_create(dir.path(), &key(1), &Digest::sha256(b"other"));
        assert!(matches!(other_dta, Err(SealError::WrongKey { .. })));
    }

    #[test]
    fn tampered_truncated_or_future_files_are_refused() {
        let digest = Digest::sha256(b"dta bc");
        let share = MasterShare::generate(&mut OsRng);
        let sealed = seal(&share, &key(1), &digest);
        let path = Path::new("x");
        assert!(same(
            &open(&sealed, &key(1), &digest, path).unwrap(),
            &share
        ));
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(matches!(
            open(&flipped, &key(1), &digest, path),
            Err(SealError::WrongKey { .. })
        ));
        let mut future = sealed.clone();
        future[0] = 2;
        assert!(matches!(
            open(&future, &key(1), &digest, path),
            Err(SealError::Format { .. })
        ));
        assert!(matches!(
            open(&sealed[..40], &key(1), &digest, path),
            Err(SealError::Format { .. })
        ));
    }

    #[test]
    fn the_key_comes_from_an_env_var_or_an_owner_only_file_and_is_never_shown() {
        let secret = hex::encode([7u8; 32]);
        let name = "MILAGRO_DTA_TEST_SEALING_KEY_UNIT";
        std::env::set_var(name, &secret);
        assert!(SealingKey::load(&MasterKeySource::Env(name.into())).is_ok());
        let missing = SealingKey::load(&MasterKeySource::Env("MILAGRO_DTA_UNSET_X".into()));
        assert!(matches!(missing, Err(SealError::EnvMissing(_))));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k");
        std::fs::write(&file, format!("{secret}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open_to_all = SealingKey::load(&MasterKeySource::File(file.clone())).unwrap_err();
        assert!(matches!(
            open_to_all,
            SealError::KeyFileMode { mode: 0o644, .. }
        ));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(SealingKey::load(&MasterKeySource::File(file.clone())).is_ok());
        std::fs::write(&file, "abcd").unwrap();
        let bad = SealingKey::load(&MasterKeySource::File(file)).unwrap_err();
        assert!(!bad.to_string().contains("abcd"));
        assert!(format!("{:?}", key(9)).contains(".."));
    }
}
