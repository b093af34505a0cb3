//! What an anchored service opens in its state directory at start.
//!
//! [`ServiceBase::open`] creates the state directory (mode 0700) and the identity if
//! missing, and opens the chain index (`registry/`), the service database (`service/`)
//! and the audit log in it: everything the chain loop ([`crate::runtime`]) works on. A
//! service's [`crate::runtime::Service::open`] starts with it and adds its own stores.

use std::path::PathBuf;
use std::sync::Arc;

use milagro_registry::redb_store::RedbStore;

use crate::audit::Audit;
use crate::files::{self, FileError};
use crate::identity::{IdentityError, PartyIdentity, PartyKind};
use crate::own_anchor::OwnAnchor;
use crate::party_config::PartyConfig;
use crate::runtime::ChainParts;

/// Directory of the chain index inside the state directory.
pub const INDEX_DIR: &str = "registry";
/// Directory of the service database (the audit log) inside the state directory.
pub const SERVICE_DB_DIR: &str = "service";

/// Why a service's state could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The state directory could not be prepared.
    #[error(transparent)]
    StateDir(#[from] FileError),
    /// The key or the Birth Certificate could not be loaded or created.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A database could not be opened.
    #[error("cannot open the database in {}: {detail}", path.display())]
    Db {
        /// The directory.
        path: PathBuf,
        /// Why.
        detail: String,
    },
}

/// A service's opened state: what its chain loop works on, and its database.
#[derive(Debug)]
pub struct ServiceBase {
    /// The identity, anchor, index and audit log, with the configuration of the loop.
    pub chain: ChainParts,
    /// The service database (holding the audit log).
    pub db: Arc<sled::Db>,
}

impl ServiceBase {
    /// Opens (creating what is missing) the state of the service of role and key file
    /// `kind` that `config` describes.
    pub fn open(kind: PartyKind, config: &PartyConfig) -> Result<Self, OpenError> {
        let state_dir = config.state_dir.as_path();
        files::create_private_dir(state_dir)?;
        let identity = PartyIdentity::load_or_create(
            kind,
            state_dir,
            &config.name,
            &config.public_url,
            crate::unix_now(),
        )?;
        let db_error = |path: &PathBuf, e: &dyn std::fmt::Display| OpenError::Db {
            path: path.clone(),
            detail: e.to_string(),
        };
        let index_dir = state_dir.join(INDEX_DIR);
        let index = RedbStore::open(&index_dir).map_err(|e| db_error(&index_dir, &e))?;
        let db_dir = state_dir.join(SERVICE_DB_DIR);
        let db =
            crate::sled_db::open_waiting_for_lock(&db_dir).map_err(|e| db_error(&db_dir, &e))?;
        let audit =
            Audit::open(&db, config.audit.origin.clone()).map_err(|e| db_error(&db_dir, &e))?;
        Ok(Self {
            chain: ChainParts {
                identity: Arc::new(identity),
                own_anchor: Arc::new(OwnAnchor::default()),
                status: Arc::default(),
                index: Arc::new(index),
                audit: Arc::new(audit),
                state_dir: state_dir.to_path_buf(),
                node: config.node.clone(),
                sync: config.sync.clone(),
                audit_config: config.audit.clone(),
                fee_rate: config.fee_rate,
            },
            db: Arc::new(db),
        })
    }
}
