//! The devices people registered: for each subject, the one device whose M-Pin key may
//! sign them in, in the `devices` and `device_ids` trees.
//!
//! A registration binds a subject to a device key and to the M-Pin identity the D-TAs
//! derive from both ([`milagro_mpin::MpinId::of_device`]). It is what the IdP later
//! accepts: an M-Pin sign-in names its identity, and only the *current* registration's
//! identity finds its subject here. Registering again (a lost or replaced device)
//! replaces the registration in the same transaction, so the old device's identity stops
//! finding anyone at once; revoking removes it.
//!
//! What is stored is public: a device key and a hash. Nothing here could sign anyone in:
//! that needs the client secret on the device and the PIN in the person's head.

use milagro_anchor::keys::CompressedKey;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

/// One subject's registered device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The person (`sub`).
    pub subject: String,
    /// The device's secp256k1 key (SEC1 compressed).
    pub device_key: CompressedKey,
    /// The M-Pin identity of (this issuer, subject, device key): hex of its SHA-256.
    pub mpin_id: String,
    /// When it was registered (Unix seconds).
    pub registered: u64,
}

/// Why the device table could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// sled failed.
    #[error("device storage: {0}")]
    Storage(#[from] sled::Error),
    /// A row that does not parse (a bug or a damaged database).
    #[error("device storage holds an unreadable row: {0}")]
    Corrupt(String),
}

/// The registrations: `devices` maps a subject to its registration, `device_ids` an M-Pin
/// identity to its subject.
#[derive(Debug, Clone)]
pub struct Devices {
    by_subject: sled::Tree,
    by_mpin_id: sled::Tree,
}

fn read(bytes: &[u8]) -> Result<Registration, DeviceError> {
    serde_json::from_slice(bytes).map_err(|e| DeviceError::Corrupt(e.to_string()))
}

fn flatten(error: TransactionError<DeviceError>) -> DeviceError {
    match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => DeviceError::Storage(error),
    }
}

impl Devices {
    /// Opens the trees in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, DeviceError> {
        Ok(Self {
            by_subject: db.open_tree("devices")?,
            by_mpin_id: db.open_tree("device_ids")?,
        })
    }

    /// Makes `registration` its subject's device and returns the registration it replaced
    /// (whose identity no longer finds anyone). One transaction: never two current
    /// devices, never none in between.
    pub fn register(
        &self,
        registration: &Registration,
    ) -> Result<Option<Registration>, DeviceError> {
        let row =
            serde_json::to_vec(registration).map_err(|e| DeviceError::Corrupt(e.to_string()))?;
        let replaced = (&self.by_subject, &self.by_mpin_id)
            .transaction(|(by_subject, by_mpin_id)| {
                let old = by_subject.insert(registration.subject.as_bytes(), row.as_slice())?;
                let old = match old {
                    Some(bytes) => Some(read(&bytes).map_err(ConflictableTransactionError::Abort)?),
                    None => None,
                };
                if let Some(old) = &old {
                    by_mpin_id.remove(old.mpin_id.as_bytes())?;
                }
                by_mpin_id.insert(
                    registration.mpin_id.as_bytes(),
                    registration.subject.as_bytes(),
                )?;
                Ok(old)
            })
            .map_err(flatten)?;
        self.by_subject.flush()?;
        Ok(replaced)
    }

    /// The current registration of `subject`.
    pub fn current(&self, subject: &str) -> Result<Option<Registration>, DeviceError> {
        self.by_subject
            .get(subject.as_bytes())?
            .map(|bytes| read(&bytes))
            .transpose()
    }

    /// The current registration whose M-Pin identity is `mpin_id` (hex); `None` for an
    /// identity nobody registered or one a newer registration replaced.
    pub fn by_mpin_id(&self, mpin_id: &str) -> Result<Option<Registration>, DeviceError> {
        let Some(subject) = self.by_mpin_id.get(mpin_id.as_bytes())? else {
            return Ok(None);
        };
        let subject =
            std::str::from_utf8(&subject).map_err(|e| DeviceError::Corrupt(e.to_string()))?;
        // Both trees change in one transaction; the check only guards a damaged database.
        Ok(self
            .current(subject)?
            .filter(|registration| registration.mpin_id == mpin_id))
    }

    /// Removes `subject`'s registration (a device reported lost, with no replacement yet)
    /// and returns it.
    pub fn revoke(&self, subject: &str) -> Result<Option<Registration>, DeviceError> {
        let removed = (&self.by_subject, &self.by_mpin_id)
            .transaction(|(by_subject, by_mpin_id)| {
                let Some(bytes) = by_subject.remove(subject.as_bytes())? else {
                    return Ok(None);
                };
                let old = read(&bytes).map_err(ConflictableTransactionError::Abort)?;
                by_mpin_id.remove(old.mpin_id.as_bytes())?;
                Ok(Some(old))
            })
            .map_err(flatten)?;
        self.by_subject.flush()?;
        Ok(removed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use milagro_anchor::keys::SecretKey;

    fn registration(subject: &str, seed: u8, at: u64) -> Registration {
        let key = SecretKey::from_bytes(&[seed; 32]).unwrap().public_key();
        let id =
            milagro_mpin::MpinId::of_device("https://idp.test", subject, &key.to_sec1()).unwrap();
        Registration {
            subject: subject.to_owned(),
            device_key: CompressedKey::from(&key),
            mpin_id: String::from_utf8(id.as_bytes().to_vec()).unwrap(),
            registered: at,
        }
    }

    fn devices() -> Devices {
        let db = sled::Config::new().temporary(true).open().unwrap();
        Devices::open(&db).unwrap()
    }

    #[test]
    fn a_registration_is_found_by_subject_and_by_identity() {
        let devices = devices();
        let alice = registration("alice", 1, 10);
        assert_eq!(devices.register(&alice).unwrap(), None);
        assert_eq!(devices.current("alice").unwrap(), Some(alice.clone()));
        assert_eq!(devices.by_mpin_id(&alice.mpin_id).unwrap(), Some(alice));
        assert_eq!(devices.current("bob").unwrap(), None);
        assert_eq!(devices.by_mpin_id("00").unwrap(), None);
    }

    #[test]
    fn registering_again_replaces_the_old_device_at_once() {
        let devices = devices();
        let lost = registration("alice", 1, 10);
        let new = registration("alice", 2, 20);
        devices.register(&lost).unwrap();
        assert_eq!(devices.register(&new).unwrap(), Some(lost.clone()));
        assert_eq!(devices.by_mpin_id(&lost.mpin_id).unwrap(), None);
        assert_eq!(devices.by_mpin_id(&new.mpin_id).unwrap(), Some(new.clone()));
        assert_eq!(devices.current("alice").unwrap(), Some(new));
    }

    #[test]
    fn a_revoked_device_finds_nobody() {
        let devices = devices();
        let alice = registration("alice", 1, 10);
        let bob = registration("bob", 3, 10);
        devices.register(&alice).unwrap();
        devices.register(&bob).unwrap();
        assert_eq!(devices.revoke("alice").unwrap(), Some(alice.clone()));
        assert_eq!(devices.revoke("alice").unwrap(), None);
        assert_eq!(devices.by_mpin_id(&alice.mpin_id).unwrap(), None);
        assert_eq!(devices.by_mpin_id(&bob.mpin_id).unwrap(), Some(bob));
    }
}
