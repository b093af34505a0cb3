//! The TBS as a [`Service`]: what it opens (identity, index, tenants, enrolments, audit
//! log), its routes, its metrics and its chain work ([`crate::chain_hooks`]); the shared
//! runtime runs its HTTP server and chain loop.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_service::base::{OpenError, ServiceBase};
/// Directories of the record index and of the service database (sled: tenants,
/// enrolments and the audit log, kept apart from the index so that a reindex never
/// touches them) inside the state directory.
pub use milagro_service::base::{INDEX_DIR, SERVICE_DB_DIR};
use milagro_service::party_config::PartyConfig;
use milagro_service::runtime::{self, ChainParts, RunError, Running, Service, Signals};

use crate::audit::RegistrationLog as _;
use crate::chain_hooks::TbsChainWork;
use crate::config::Config;
use crate::enrolment::EnrolmentStore;
use crate::identity::{Identity, IdentityError, KIND};
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::tenants::store::TenantStore;

/// Per-request timeout of the API's node calls (the chain loop keeps the adapter's longer
/// default, sized for large block batches).
const API_RPC_TIMEOUT: Duration = Duration::from_secs(15);

/// Enrolment messages that may wait to be opened, beyond one being opened per core: about
/// a millisecond of work each (opening, checks, one sled write), so a core empties the
/// queue in a quarter of a second.
const ENVELOPES_QUEUED: usize = 256;

/// The TBS service. See the crate documentation.
#[derive(Debug)]
pub struct Tbs;

/// Why a TBS could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The state directory, the key and certificate, the index or the service database
    /// could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The TBS's own keys (funding pool, envelope) could not be derived.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The service database's stores (tenants, enrolments, audit) could not be opened.
    #[error("cannot open the service database in {}: {detail}", path.display())]
    ServiceDb {
        /// The database directory.
        path: std::path::PathBuf,
        /// Why.
        detail: String,
    },
    /// The HTTP server or a thread could not start.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl Tbs {
    /// Starts a TBS for embedding (tests, the demo): it serves until [`Running::stop`] or
    /// drop, and leaves process signals to its host.
    ///
    /// Creates the state directory, key and Birth Certificate if missing, opens the
    /// index, binds `config.party.listen`, and starts the chain loop, which anchors the
    /// certificate as soon as the node is reachable. Returns once the socket is bound.
    pub fn start(config: Config) -> Result<RunningTbs, StartError> {
        runtime::start::<AppState>(config, Signals::LeaveToHost)
    }
}

/// A running TBS: its address, its state, and the handles to stop it.
///
/// Dropping it stops the TBS at once (in-flight requests are cut); [`Running::stop`]
/// lets them finish (at most 10 s; idle keep-alive connections count until they expire,
/// 5 s after their last request). A clone of a part of its state kept past stopping
/// keeps that database open.
pub type RunningTbs = Running<AppState>;

impl Service for AppState {
    const NAME: &'static str = "tbs";
    type Config = Config;
    type Error = StartError;
    type Prepared = ();
    type Hooks = TbsChainWork;

    fn open(config: Config) -> Result<(Self, ()), StartError> {
        let base = ServiceBase::open(KIND, &config.party)?;
        let identity = Identity::from_party(base.chain.identity.clone())?;
        let service_dir = config.party.state_dir.join(SERVICE_DB_DIR);
        let service_error = |detail: String| StartError::ServiceDb {
            path: service_dir.clone(),
            detail,
        };
        let tenants = TenantStore::open(&base.db).map_err(|e| service_error(e.to_string()))?;
        let enrolments =
            EnrolmentStore::open(&base.db).map_err(|e| service_error(e.to_string()))?;
        let chain = base.chain;
        // Registrations a crash left unlogged, before the chain loop can stop watching them.
        chain
            .audit
            .catch_up(&enrolments)
            .map_err(|e| service_error(e.to_string()))?;
        let node =
            BitcoindRpc::with_cookie(&config.party.node.rpc_url, &config.party.node.rpc_cookie)
                .with_timeout(API_RPC_TIMEOUT);
        let state = AppState {
            enrolment_limits: Arc::new(crate::enrolment::EnrolmentLimits::new(&config.enrolment)),
            envelopes: Arc::new(milagro_service::work_gate::WorkGate::new(
                "enrolment envelopes",
                std::thread::available_parallelism().map_or(1, |n| n.get()),
                ENVELOPES_QUEUED,
            )),
            node: Arc::new(node),
            config: Arc::new(config),
            identity: Arc::new(identity),
            store: chain.index.clone(),
            tenants: Arc::new(tenants),
            enrolments: Arc::new(enrolments),
            audit: chain.audit.clone(),
            own_anchor: chain.own_anchor.clone(),
            metrics: Arc::new(Metrics::new()),
            chain,
        };
        Ok((state, ()))
    }

    fn party(&self) -> &PartyConfig {
        &self.config.party
    }

    fn routes(routes: &mut web::ServiceConfig) {
        crate::api::configure(routes);
    }

    fn chain_parts(&self) -> &ChainParts {
        &self.chain
    }

    fn hooks(&self) -> TbsChainWork {
        TbsChainWork::new(self.clone())
    }

    fn observe_request(&self, request: &HttpRequest, status: StatusCode) {
        self.metrics.observe_request(
            request.match_pattern(),
            request.method().as_str(),
            status.as_u16(),
        );
    }
}
