//! Which M-Pin identity the D-TA issued a client share for, by device key: what lets a
//! device renew its time permit each day without its user logging in again.
//!
//! A device that proved its user once (an ID token, `POST /v1/shares/client`) holds a
//! client secret bound to its own key; the next days, its anchored key alone (Milagro
//! TLS) gets it the permit of the same identity (`POST /v1/shares/permit`). The identity
//! the D-TA computed is kept here (sled tree `issued_identities`: the key's 33 SEC1 bytes
//! → the identity), replaced when the device proves another user.

use milagro_anchor::keys::PublicKey;
use milagro_mpin::MpinId;

/// The identities issued, by device key.
#[derive(Debug, Clone)]
pub struct IssuedIdentities {
    db: sled::Db,
    tree: sled::Tree,
}

/// The store failed (the disk, or a damaged value).
#[derive(Debug, thiserror::Error)]
#[error("issued identities: {0}")]
pub struct IssuedError(String);

impl IssuedIdentities {
    /// The tree in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, IssuedError> {
        let tree = db
            .open_tree("issued_identities")
            .map_err(|e| IssuedError(e.to_string()))?;
        Ok(Self {
            db: db.clone(),
            tree,
        })
    }

    /// Records that the device of `key` holds a client share of `id`; durable on return.
    /// A record that is already there costs one read: a device asking again writes and
    /// flushes nothing.
    pub fn record(&self, key: &PublicKey, id: &MpinId) -> Result<(), IssuedError> {
        let failed = |e: sled::Error| IssuedError(e.to_string());
        let key = key.to_sec1();
        if self.tree.get(key).map_err(failed)?.as_deref() == Some(id.as_bytes()) {
            return Ok(());
        }
        self.tree.insert(key, id.as_bytes()).map_err(failed)?;
        self.db.flush().map(drop).map_err(failed)
    }

    /// The identity issued to the device of `key`, if any.
    pub fn of(&self, key: &PublicKey) -> Result<Option<MpinId>, IssuedError> {
        let Some(bytes) = self
            .tree
            .get(key.to_sec1())
            .map_err(|e| IssuedError(e.to_string()))?
        else {
            return Ok(None);
        };
        MpinId::new(bytes.to_vec())
            .map(Some)
            .map_err(|e| IssuedError(e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_identity_of_a_device_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let key = milagro_anchor::keys::SecretKey::generate(&mut rand_core::OsRng).public_key();
        let other = milagro_anchor::keys::SecretKey::generate(&mut rand_core::OsRng).public_key();
        {
            let db = milagro_service::sled_db::open_waiting_for_lock(dir.path()).unwrap();
            let issued = IssuedIdentities::open(&db).unwrap();
            assert_eq!(issued.of(&key).unwrap(), None);
            issued.record(&key, &MpinId::new("alice").unwrap()).unwrap();
            issued.record(&key, &MpinId::new("bob").unwrap()).unwrap();
        }
        let db = milagro_service::sled_db::open_waiting_for_lock(dir.path()).unwrap();
        let issued = IssuedIdentities::open(&db).unwrap();
        assert_eq!(issued.of(&key).unwrap(), Some(MpinId::new("bob").unwrap()));
        assert_eq!(issued.of(&other).unwrap(), None);
    }
}
