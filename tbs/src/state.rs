//! What the HTTP handlers share: [`AppState`], and the state the sync loop publishes.
//!
//! The sync loop is the only writer of [`SyncStatus`] and [`OwnAnchor`]; handlers read
//! them, the record index (redb, safe to share) and the node. New features add their own
//! field to [`AppState`] (e.g. tenants, enrolments) and their own routes in [`crate::api`].

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::redb_store::RedbStore;
use serde::Serialize;

use crate::audit::Audit;
use crate::config::Config;
use crate::enrolment::{EnrolmentLimits, EnrolmentStore};
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::tenants::store::TenantStore;
pub use milagro_service::own_anchor::{AnchorState, OwnAnchor, ServedAnchor};

/// Everything a request handler may use. Cheap to clone (shared pointers).
#[derive(Debug, Clone)]
pub struct AppState {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The TBS's key and Birth Certificate.
    pub identity: Arc<Identity>,
    /// The record index, as the sync loop last left it (authoritative for the node's
    /// active chain as of that step). Behind its own `Arc` so that stopping the TBS can
    /// wait until every user has let go and the database is closed.
    pub store: Arc<RedbStore>,
    /// Tenants, their token hashes and device groups (its own sled database, so the index
    /// can be rebuilt without touching them). Shared like `store`, for the same reason.
    pub tenants: Arc<TenantStore>,
    /// Device enrolments (same service database as `tenants`).
    pub enrolments: Arc<EnrolmentStore>,
    /// The enrolment API's rate limits.
    pub enrolment_limits: Arc<EnrolmentLimits>,
    /// The bounded queue in front of opening sealed enrolment messages (an ECDH and a
    /// decryption each, which anyone can send): [`milagro_service::work_gate`].
    pub envelopes: Arc<milagro_service::work_gate::WorkGate>,
    /// The audit log of registrations and its anchored checkpoints (same database).
    pub audit: Arc<Audit>,
    /// The node, for what the index does not hold (raw transactions, Merkle paths,
    /// headers). Calls block: make them inside `web::block`.
    pub node: Arc<BitcoindRpc>,
    /// What the sync loop last saw of the node.
    pub sync: Arc<SyncStatus>,
    /// The TBS's own anchor.
    pub own_anchor: Arc<OwnAnchor>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
}

/// The sync loop's view of the node, for `/v1/status` and `/metrics`.
#[derive(Debug, Default)]
pub struct SyncStatus(RwLock<SyncSnapshot>);

/// A copy of [`SyncStatus`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncSnapshot {
    /// Whether the last poll reached the node.
    pub node_reachable: bool,
    /// The node's tip height at the last successful poll.
    pub node_height: Option<u32>,
    /// Whether the index had reached the node's tip at the last successful poll.
    pub caught_up: bool,
    /// The last poll's error, if it failed.
    pub last_error: Option<String>,
    /// Failed polls since start.
    pub sync_errors: u64,
    /// The last failure of the TBS's own anchoring, if the latest attempt failed.
    pub anchor_error: Option<String>,
}

impl SyncStatus {
    /// The current snapshot.
    pub fn snapshot(&self) -> SyncSnapshot {
        self.read().clone()
    }

    pub(crate) fn update(&self, change: impl FnOnce(&mut SyncSnapshot)) {
        change(&mut self.0.write().unwrap_or_else(PoisonError::into_inner));
    }

    fn read(&self) -> RwLockReadGuard<'_, SyncSnapshot> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }
}
