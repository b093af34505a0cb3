//! What the HTTP handlers share: [`AppState`].
//!
//! The chain loop is the only writer of its status and of [`OwnAnchor`]; handlers read
//! them, the record index (redb, safe to share) and the node. New features add their own
//! field to [`AppState`] (e.g. tenants, enrolments) and their own routes in [`crate::api`].

use std::sync::Arc;

use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::redb_store::RedbStore;
use milagro_service::runtime::ChainParts;

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
    /// The record index, as the chain loop last left it (authoritative for the node's
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
    /// What the chain loop works on and publishes (`chain.status`: what it last saw of
    /// the node).
    pub chain: ChainParts,
    /// The TBS's own anchor.
    pub own_anchor: Arc<OwnAnchor>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
}
