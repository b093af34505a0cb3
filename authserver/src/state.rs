//! What the HTTP handlers share.

use std::sync::Arc;

use milagro_anchor::digest::Digest;
use milagro_mpin::{Day, MpinId};
use milagro_registry::redb_store::RedbStore;
use milagro_service::audit::Audit;
use milagro_service::identity::PartyIdentity;
use milagro_service::own_anchor::OwnAnchor;
use milagro_service::peer_directory::IndexDirectory;
use milagro_verifier::Verifier;

use crate::config::Config;
use crate::error::ApiError;

/// The domain separator of a login log entry.
pub const LOGIN_DOMAIN: &[u8] = b"milagro-authserver/login/v1";

/// The login log's entry of a login of `id` with a permit of `day`:
///
/// ```text
/// SHA-256( "milagro-authserver/login/v1" ‖ 0x00 ‖ mpin_id ‖ day (u32 big-endian) )
/// ```
///
/// The identity is hashed, never logged: whoever knows an identity can find its logins,
/// nobody else.
pub fn login_entry(id: &MpinId, day: Day) -> Digest {
    let mut bytes = Vec::with_capacity(LOGIN_DOMAIN.len() + 1 + id.as_bytes().len() + 4);
    bytes.extend_from_slice(LOGIN_DOMAIN);
    bytes.push(0);
    bytes.extend_from_slice(id.as_bytes());
    bytes.extend_from_slice(&day.0.to_be_bytes());
    Digest::sha256(&bytes)
}

/// Everything a request handler may use. Cheap to clone (shared pointers).
#[derive(Debug, Clone)]
pub struct AppState {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The server's anchored identity (role `authserver`); its session purpose key signs
    /// session tokens.
    pub identity: Arc<PartyIdentity>,
    /// Where its anchor stands (the chain loop writes it).
    pub own_anchor: Arc<OwnAnchor>,
    /// The chain index (the D-TAs' anchors are looked up in it).
    pub index: Arc<RedbStore>,
    /// The login log.
    pub audit: Arc<Audit>,
    /// What the chain loop works on (the identity, anchor, index and log above).
    pub chain: milagro_service::runtime::ChainParts,
    /// The service database (kept open while any handler runs).
    pub db: Arc<sled::Db>,
    /// Where the D-TAs' anchors are looked up: the server's own index and node.
    pub directory: Arc<IndexDirectory>,
    /// The M-Pin verifier: the server secret, pending logins, guess counts, revocations
    /// and the queue both login passes go through.
    pub verifier: Arc<Verifier>,
}

impl AppState {
    /// Appends a successful login of `id` with a permit of `day` to the login log, as
    /// its own leaf (the subject is the one-time `login_id`).
    pub fn log_login(&self, login_id: &str, id: &MpinId, day: Day) -> Result<(), ApiError> {
        let entry = login_entry(id, day);
        let (index, _) = self
            .audit
            .append(login_id.as_bytes(), &entry)
            .map_err(ApiError::internal)?;
        tracing::info!(%index, "login logged");
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_login_entry_is_the_documented_hash() {
        let id = MpinId::new("ab12").unwrap();
        let mut expected = b"milagro-authserver/login/v1\0ab12".to_vec();
        expected.extend_from_slice(&20_000u32.to_be_bytes());
        assert_eq!(login_entry(&id, Day(20_000)), Digest::sha256(&expected));
        assert_ne!(login_entry(&id, Day(20_001)), login_entry(&id, Day(20_000)));
    }
}
