//! Starting and stopping a TBS: identity, index, HTTP server, sync loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Service;
use actix_web::{web, App};
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::redb_store::RedbStore;
use milagro_registry::store::StoreError;
use milagro_service::http::{self, Running, SpawnError, Spawned};

use crate::audit::Audit;
use crate::audit::RegistrationLog as _;
use crate::config::Config;
use crate::enrolment::EnrolmentStore;
use crate::files::{self, FileError};
use crate::identity::{Identity, IdentityError};
use crate::metrics::Metrics;
use crate::state::{AppState, OwnAnchor, SyncStatus};
use crate::sync::{Shutdown, SyncLoop};
use crate::tenants::store::TenantStore;

/// Directory of the record index inside the state directory.
pub const INDEX_DIR: &str = "registry";

/// Directory, inside the state directory, of the service database (sled): tenants,
/// enrolments and the audit log, kept apart from the index so that a reindex never
/// touches them.
pub const SERVICE_DB_DIR: &str = "service";

/// Per-request timeout of the API's node calls (the sync loop keeps the adapter's longer
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
    /// The state directory could not be prepared.
    #[error(transparent)]
    StateDir(#[from] FileError),
    /// The key or the Birth Certificate could not be loaded or created.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The record index could not be opened.
    #[error("cannot open the index in {}: {source}", path.display())]
    Index {
        /// The index directory.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The service database (tenants, enrolments) could not be opened.
    #[error("cannot open the service database in {}: {detail}", path.display())]
    ServiceDb {
        /// The database directory.
        path: std::path::PathBuf,
        /// Why.
        detail: String,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Tbs {
    /// Starts a TBS for embedding (tests, the demo): it serves until
    /// [`RunningTbs::stop`] or drop, and leaves process signals to its host.
    ///
    /// Creates the state directory, key and Birth Certificate if missing, opens the
    /// index, binds `config.listen`, and starts the sync loop, which anchors the
    /// certificate as soon as the node is reachable. Returns once the socket is bound.
    pub fn start(config: Config) -> Result<RunningTbs, StartError> {
        launch(config, false)
    }

    /// Like [`Tbs::start`], but SIGTERM stops the TBS gracefully and SIGINT or SIGQUIT
    /// stop it at once; [`RunningTbs::wait`] returns then. For `milagro tbs serve`.
    pub fn start_handling_signals(config: Config) -> Result<RunningTbs, StartError> {
        launch(config, true)
    }
}

/// A running TBS: its address, its state, and the handles to stop it.
///
/// Dropping it stops the TBS at once (in-flight requests are cut); [`RunningTbs::stop`]
/// lets them finish.
#[derive(Debug)]
pub struct RunningTbs {
    state: AppState,
    running: Running,
}

impl RunningTbs {
    /// The bound address (the real port when `listen` asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// `http://` and the bound address: where to send requests on this machine.
    pub fn local_url(&self) -> String {
        self.running.local_url()
    }

    /// The state the handlers share. A clone of its `store` kept past [`RunningTbs::stop`]
    /// keeps the index open (stopping waits up to 10 s for it, then goes on).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops serving after the requests in flight (at most 10 s; idle keep-alive
    /// connections count until they expire, 5 s after their last request), then stops the
    /// sync loop. When it returns, the state directory can be opened again.
    pub fn stop(mut self) {
        self.halt(true);
    }

    /// Blocks until the server stops (a signal, see [`Tbs::start_handling_signals`]),
    /// then stops the sync loop.
    pub fn wait(mut self) {
        self.running.join_server();
        self.halt(true);
    }

    fn halt(&mut self, graceful: bool) {
        let state = &self.state;
        self.running.halt(graceful, || {
            Arc::strong_count(&state.store) > 1
                || Arc::strong_count(&state.tenants) > 1
                || Arc::strong_count(&state.enrolments) > 1
                || Arc::strong_count(&state.audit) > 1
        });
    }
}

impl Drop for RunningTbs {
    fn drop(&mut self) {
        self.halt(false);
    }
}

fn launch(config: Config, handle_signals: bool) -> Result<RunningTbs, StartError> {
    files::create_private_dir(&config.state_dir)?;
    let now = crate::unix_now();
    let identity =
        Identity::load_or_create(&config.state_dir, &config.name, &config.public_url, now)?;
    let index = config.state_dir.join(INDEX_DIR);
    let store = RedbStore::open(&index).map_err(|source| StartError::Index {
        path: index.clone(),
        source,
    })?;
    let service_dir = config.state_dir.join(SERVICE_DB_DIR);
    let service_error = |detail: String| StartError::ServiceDb {
        path: service_dir.clone(),
        detail,
    };
    let service_db = milagro_service::sled_db::open_waiting_for_lock(&service_dir)
        .map_err(|e| service_error(e.to_string()))?;
    let tenants = TenantStore::open(&service_db).map_err(|e| service_error(e.to_string()))?;
    let enrolments = EnrolmentStore::open(&service_db).map_err(|e| service_error(e.to_string()))?;
    let audit = Audit::open(&service_db, config.audit.origin.clone())
        .map_err(|e| service_error(e.to_string()))?;
    // Registrations a crash left unlogged, before the sync loop can stop watching them.
    audit
        .catch_up(&enrolments)
        .map_err(|e| service_error(e.to_string()))?;
    drop(service_db);
    let rpc = || BitcoindRpc::with_cookie(&config.node.rpc_url, &config.node.rpc_cookie);
    let sync_node = rpc();
    let state = AppState {
        enrolment_limits: Arc::new(crate::enrolment::EnrolmentLimits::new(&config.enrolment)),
        envelopes: Arc::new(milagro_service::work_gate::WorkGate::new(
            "enrolment envelopes",
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            ENVELOPES_QUEUED,
        )),
        node: Arc::new(rpc().with_timeout(API_RPC_TIMEOUT)),
        config: Arc::new(config),
        identity: Arc::new(identity),
        store: Arc::new(store),
        tenants: Arc::new(tenants),
        enrolments: Arc::new(enrolments),
        audit: Arc::new(audit),
        sync: Arc::new(SyncStatus::default()),
        own_anchor: Arc::new(OwnAnchor::default()),
        metrics: Arc::new(Metrics::new()),
    };
    let spawned = spawn_http(state.clone(), handle_signals)?;
    tracing::info!(addr = %spawned.addr, digest = %state.identity.digest(), "TBS listening");
    let shutdown = Arc::new(Shutdown::default());
    let sync_loop = SyncLoop::new(sync_node, state.clone(), shutdown.clone());
    let mut running = RunningTbs {
        state,
        running: Running::new(spawned, shutdown),
    };
    running
        .running
        .spawn_worker("tbs-sync", move || sync_loop.run())
        .map_err(|source| StartError::Thread {
            what: "sync",
            source,
        })?;
    Ok(running)
}

/// Runs the HTTP server on its own thread and actix system; returns once it is bound.
fn spawn_http(state: AppState, handle_signals: bool) -> Result<Spawned, StartError> {
    let listen = state.config.listen;
    let tls = state.config.tls.clone();
    let factory = move || {
        let metrics = state.metrics.clone();
        App::new()
            .app_data(web::Data::new(state.clone()))
            .configure(crate::api::configure)
            .wrap_fn(move |req, service| {
                let metrics = metrics.clone();
                let method = req.method().clone();
                let response = service.call(req);
                async move {
                    let response = response.await?;
                    metrics.observe_request(
                        response.request().match_pattern(),
                        method.as_str(),
                        response.status().as_u16(),
                    );
                    Ok(response)
                }
            })
    };
    http::spawn(listen, "tbs-http", handle_signals, tls.as_ref(), factory).map_err(|e| match e {
        SpawnError::Bind { addr, source } => StartError::Bind { addr, source },
        SpawnError::Thread(source) => StartError::Thread {
            what: "HTTP",
            source,
        },
        other => StartError::Thread {
            what: "HTTP",
            source: std::io::Error::other(other.to_string()),
        },
    })
}
