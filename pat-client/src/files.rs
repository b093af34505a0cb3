//! Files that are never seen half-written: every write goes to a fresh temporary file in
//! the same directory (created with its final mode, so a secret is never readable by
//! others even for an instant), is flushed, and is then renamed into place (or, for files
//! that must never be replaced, hard-linked without clobbering). The directory entry is
//! flushed too, so the change survives a power cut. Only `std` is used.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use rand_core::RngCore as _;
use zeroize::Zeroizing;

use crate::error::Error;

/// The largest state file read (a device's state is a few kilobytes).
const MAX_FILE_BYTES: u64 = 256 * 1024;

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// Creates `dir` (and missing parents) with mode 0700 if it does not exist.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create directory", dir))
}

/// A fresh temporary file next to `path` holding `bytes`, flushed, with `mode`.
fn write_temporary(path: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf, Error> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::corrupt(path, "not a file path"))?;
    let tmp = path.with_file_name(format!(
        ".{}.{:016x}.tmp",
        name.to_string_lossy(),
        rand_core::OsRng.next_u64()
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io("create a temporary file for", path))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io("write", path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map(|()| tmp)
}

/// Replaces `path` with `bytes` (mode 0600) through a temporary file and a rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = write_temporary(path, bytes, 0o600)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io("replace", path)(e)
    })?;
    sync_parent(path)
}

/// Deletes `path` if it exists.
pub(crate) fn remove_if_present(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("delete", path)(e)),
    }
}

/// Writes `bytes` (mode 0600) to `path` unless it exists; returns whether it wrote. The
/// file appears complete or not at all, and an existing one is never replaced.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> Result<bool, Error> {
    let tmp = write_temporary(path, bytes, 0o600)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => sync_parent(path).map(|()| true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io("create", path)(e)),
    }
}

/// Reads a file of at most [`MAX_FILE_BYTES`]; `None` if it does not exist.
pub(crate) fn read(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("open", path)(e)),
    };
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io("read", path))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::corrupt(
            path,
            format!("larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    Ok(Some(bytes))
}

/// Reads a secret file, refusing one that group or others may read.
pub(crate) fn read_secret(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    let Some(bytes) = read(path)? else {
        return Ok(None);
    };
    let mode = std::fs::metadata(path)
        .map_err(io("inspect", path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Error::InsecurePermissions {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(Some(bytes))
}

/// Flushes the directory entry of `path`.
fn sync_parent(path: &Path) -> Result<(), Error> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("flush directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_are_private_written_once_and_leave_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b");
        create_private_dir(&state).unwrap();
        assert_eq!(mode(&state), 0o700);
        let path = state.join("k");
        assert!(write_new(&path, b"one").unwrap());
        assert!(!write_new(&path, b"two").unwrap());
        assert_eq!(&read_secret(&path).unwrap().unwrap()[..], b"one");
        assert_eq!(mode(&path), 0o600);
        write_atomically(&path, b"three").unwrap();
        assert_eq!(&read(&path).unwrap().unwrap()[..], b"three");
        assert_eq!(std::fs::read_dir(&state).unwrap().count(), 1);
        assert!(read(&state.join("missing")).unwrap().is_none());
    }

    #[test]
    fn a_secret_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_new(&path, b"secret").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            read_secret(&path),
            Err(Error::InsecurePermissions { mode: 0o644, .. })
        ));
    }
}
