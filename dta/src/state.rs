//! What the HTTP handlers share.

use std::sync::{Arc, PoisonError, RwLock};

use milagro_mpin::MasterShare;
use milagro_registry::redb_store::RedbStore;
use milagro_service::audit::Audit;
use milagro_service::identity::PartyIdentity;
use milagro_service::own_anchor::OwnAnchor;
use milagro_service::peer_directory::IndexDirectory;

use crate::config::Config;
use crate::error::ApiError;

/// Everything a request handler may use. Cheap to clone (shared pointers).
#[derive(Debug, Clone)]
pub struct AppState {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The D-TA's anchored identity (role `dta`).
    pub identity: Arc<PartyIdentity>,
    /// Where its anchor stands (the chain loop writes it).
    pub own_anchor: Arc<OwnAnchor>,
    /// The chain index (the anchor, and the peers' anchors, are looked up in it).
    pub index: Arc<RedbStore>,
    /// The issuance log.
    pub audit: Arc<Audit>,
    /// The service database (kept open while any handler runs).
    pub db: Arc<sled::Db>,
    /// The master-secret share, opened at start; it wipes itself when the last handler
    /// lets go of it. Never logged ([`MasterShare`]'s `Debug` shows nothing) or served.
    pub master: Arc<MasterShare>,
    /// Where peers' and IdPs' anchors are looked up: the D-TA's own index and node.
    pub directory: Arc<IndexDirectory>,
    /// Which identity each device holds a client share of (for permit renewals).
    pub issued: Arc<crate::issued::IssuedIdentities>,
    /// The IdPs whose keys were checked recently.
    pub checked_idps: Arc<crate::relying_party::CheckedIdps>,
    /// The share API's bound socket address (it serves once the anchor is confirmed).
    pub share_listen: std::net::SocketAddr,
    /// What the chain loop works on (the identity, anchor, index and log above).
    pub chain: milagro_service::runtime::ChainParts,
    /// Where the share API listens once the anchor is confirmed.
    pub tls_addr: Arc<RwLock<Option<std::net::SocketAddr>>>,
}

impl AppState {
    /// Appends `entry` to the issuance log (once: the entry is its own subject).
    pub fn log_issuance(&self, entry: &milagro_anchor::digest::Digest) -> Result<(), ApiError> {
        let (index, new) = self
            .audit
            .append(entry.as_bytes(), entry)
            .map_err(ApiError::internal)?;
        if new {
            tracing::info!(%index, "issuance logged");
        }
        Ok(())
    }

    /// The share API's address, once it serves.
    pub fn tls_addr(&self) -> Option<std::net::SocketAddr> {
        *self.tls_addr.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where clients reach the share API (`tls_public_addr`, else the bound address),
    /// once it serves.
    pub fn share_api_addr(&self) -> Option<String> {
        let bound = self.tls_addr()?;
        Some(
            self.config
                .tls_public_addr
                .clone()
                .unwrap_or_else(|| bound.to_string()),
        )
    }
}
