//! Revoked M-Pin identities: kept in memory, stored in `state_dir/revocations.json`
//! (replaced atomically at each change, so a crash leaves the old list or the new one),
//! read back at start.
//!
//! ```json
//! {"version": 1, "revoked": [{"mpin_id": "…", "revoked_at": 1700000000}]}
//! ```
//!
//! A revoked identity can neither start a login nor finish one already started; its
//! session tokens stay valid until they expire (they are short-lived bearer tokens).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use milagro_mpin::MpinId;
use milagro_service::files::{self, FileError};
use serde::{Deserialize, Serialize};

/// File name of the revocation list in the state directory.
pub const REVOCATIONS_FILE: &str = "revocations.json";
/// The version of the file format.
pub const FORMAT_VERSION: u32 = 1;

/// Why the list could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// The file could not be written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The file could not be read, or is not a revocation list of this version.
    #[error("revocation list {}: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// One revoked identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoked {
    /// The identity, as text.
    pub mpin_id: String,
    /// When it was revoked, Unix seconds.
    pub revoked_at: u64,
}

impl From<Revoked> for milagro_wire::authserver::Revocation {
    /// As the admin API shows it (the file's entries are their own type: the file keeps
    /// its format whatever the API's becomes).
    fn from(entry: Revoked) -> Self {
        Self {
            mpin_id: entry.mpin_id,
            revoked_at: entry.revoked_at,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    version: u32,
    revoked: Vec<Revoked>,
}

/// The revocation list.
#[derive(Debug)]
pub struct Revocations {
    path: PathBuf,
    revoked: RwLock<BTreeMap<String, u64>>,
}

fn text(id: &MpinId) -> String {
    String::from_utf8_lossy(id.as_bytes()).into_owned()
}

impl Revocations {
    /// Reads the list in `state_dir` (none yet: empty).
    pub fn open(state_dir: &Path) -> Result<Self, RevocationError> {
        let path = state_dir.join(REVOCATIONS_FILE);
        let corrupt = |detail: String| RevocationError::Corrupt {
            path: path.clone(),
            detail,
        };
        let revoked = match std::fs::read(&path) {
            Ok(bytes) => {
                let stored: Stored =
                    serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
                if stored.version != FORMAT_VERSION {
                    return Err(corrupt(format!(
                        "format version {}, this server reads {FORMAT_VERSION}",
                        stored.version
                    )));
                }
                stored
                    .revoked
                    .into_iter()
                    .map(|r| (r.mpin_id, r.revoked_at))
                    .collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(corrupt(e.to_string())),
        };
        Ok(Self {
            path,
            revoked: RwLock::new(revoked),
        })
    }

    /// Whether `id` is revoked.
    pub fn is_revoked(&self, id: &MpinId) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&text(id))
    }

    /// Revokes `id` at `now` and stores the list; returns the entry and whether it is new
    /// (an identity revoked before keeps its first time).
    pub fn revoke(&self, id: &MpinId, now: u64) -> Result<(Revoked, bool), RevocationError> {
        let mpin_id = text(id);
        // Writers hold the lock while the file is replaced, so the file never lags behind
        // a revocation that was answered.
        let mut revoked = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(&revoked_at) = revoked.get(&mpin_id) {
            return Ok((
                Revoked {
                    mpin_id,
                    revoked_at,
                },
                false,
            ));
        }
        let mut next = revoked.clone();
        next.insert(mpin_id.clone(), now);
        let stored = Stored {
            version: FORMAT_VERSION,
            revoked: entries(&next),
        };
        let bytes = serde_json::to_vec_pretty(&stored).map_err(|e| RevocationError::Corrupt {
            path: self.path.clone(),
            detail: e.to_string(),
        })?;
        files::write_atomically(&self.path, &bytes)?;
        *revoked = next;
        Ok((
            Revoked {
                mpin_id,
                revoked_at: now,
            },
            true,
        ))
    }

    /// Every revoked identity, in identity order.
    pub fn list(&self) -> Vec<Revoked> {
        entries(&self.revoked.read().unwrap_or_else(PoisonError::into_inner))
    }
}

fn entries(map: &BTreeMap<String, u64>) -> Vec<Revoked> {
    map.iter()
        .map(|(mpin_id, &revoked_at)| Revoked {
            mpin_id: mpin_id.clone(),
            revoked_at,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_is_stored_once_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (MpinId::new("alice").unwrap(), MpinId::new("bob").unwrap());
        let list = Revocations::open(dir.path()).unwrap();
        assert!(!list.is_revoked(&alice));
        let (entry, new) = list.revoke(&alice, 100).unwrap();
        assert!(new);
        assert_eq!(entry.revoked_at, 100);
        let (entry, new) = list.revoke(&alice, 200).unwrap();
        assert_eq!((entry.revoked_at, new), (100, false));
        assert!(list.is_revoked(&alice) && !list.is_revoked(&bob));

        let reopened = Revocations::open(dir.path()).unwrap();
        assert!(reopened.is_revoked(&alice));
        assert_eq!(reopened.list(), list.list());
        assert_eq!(reopened.list().len(), 1);
    }

    #[test]
    fn a_garbled_or_newer_file_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(REVOCATIONS_FILE);
        for bad in [
            "not json",
            r#"{"version": 2, "revoked": []}"#,
            r#"{"version": 1, "revoked": [], "x": 1}"#,
        ] {
            std::fs::write(&path, bad).unwrap();
            let error = Revocations::open(dir.path()).unwrap_err();
            assert!(error.to_string().contains(REVOCATIONS_FILE), "{error}");
        }
    }
}
