//! Files that must never be seen half-written: secret keys, certificates, pending anchors.
//!
//! Every write goes to a temporary file in the same directory, is flushed to disk, and is
//! then renamed (or, for files that must never be replaced, hard-linked without clobbering)
//! into place, so a crash leaves either the old content or the new, never a torn file.
//! Key files are created with mode 0600 from the start: the secret is never readable by
//! others, not even for an instant.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt};
use std::path::{Path, PathBuf};

use milagro_anchor::keys::{KeyError, SecretKey};
use zeroize::Zeroizing;

/// Why a state file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The operating system refused.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// To which file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key file does not hold a secp256k1 secret key in hex.
    #[error("{} does not hold a secp256k1 secret key: {source}", path.display())]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: KeyError,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FileError {
    let path = path.to_path_buf();
    move |source| FileError::Io {
        action,
        path,
        source,
    }
}

/// Reads a secret key file (64 hex characters; surrounding white space is ignored).
pub fn read_key(path: &Path) -> Result<SecretKey, FileError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io("read key file", path))?);
    SecretKey::from_hex(&text).map_err(|source| FileError::BadKey {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the key in `path`, or creates one there: mode 0600, never overwriting a file that
/// appears meanwhile. Returns the key and whether it was created.
pub fn load_or_create_key(path: &Path) -> Result<(SecretKey, bool), FileError> {
    if path.exists() {
        return read_key(path).map(|key| (key, false));
    }
    let key = SecretKey::generate(&mut rand_core::OsRng);
    let created = write_new(path, key.to_hex().as_bytes(), 0o600)?;
    if created {
        Ok((key, true))
    } else {
        // Another process created it first: theirs wins.
        read_key(path).map(|key| (key, false))
    }
}

/// Writes `bytes` to `path` unless it exists; returns whether it wrote.
///
/// The file gets `mode` before any byte is written and appears complete or not at all.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<bool, FileError> {
    let mut tmp = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(parent_dir(path))
        .map_err(io("create a temporary file for", path))?;
    tmp.write_all(bytes).map_err(io("write", path))?;
    tmp.as_file().sync_all().map_err(io("flush", path))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {
            sync_dir(path)?;
            Ok(true)
        }
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io("create", path)(e.error)),
    }
}

/// Replaces `path` with `bytes` (mode 0600) through a temporary file and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let mut tmp = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(parent_dir(path))
        .map_err(io("create a temporary file for", path))?;
    tmp.write_all(bytes).map_err(io("write", path))?;
    tmp.as_file().sync_all().map_err(io("flush", path))?;
    tmp.persist(path)
        .map_err(|e| io("replace", path)(e.error))?;
    sync_dir(path)
}

/// Creates `dir` (and its parents) with mode 0700 if it does not exist.
pub fn create_private_dir(dir: &Path) -> Result<(), FileError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create directory", dir))
}

/// Flushes the directory entry of `path`, so a rename survives a power cut.
fn sync_dir(path: &Path) -> Result<(), FileError> {
    let dir = parent_dir(path);
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("flush directory", dir))
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_private_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let (key, created) = load_or_create_key(&path).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, created) = load_or_create_key(&path).unwrap();
        assert!(!created);
        assert_eq!(again.public_key(), key.public_key());
    }

    #[test]
    fn a_garbled_key_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        std::fs::write(&path, "not hex").unwrap();
        let err = load_or_create_key(&path).unwrap_err();
        assert!(err.to_string().contains("bad.key"), "{err}");
    }

    #[test]
    fn write_new_never_clobbers_and_write_atomically_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(write_new(&path, b"one", 0o644).unwrap());
        assert!(!write_new(&path, b"two", 0o644).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        write_atomically(&path, b"three").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "temporary files left behind");
    }
}
