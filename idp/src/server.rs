//! Starting and stopping an IdP: identity, keys, databases, HTTP server, chain loop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::{web, App};
use milagro_anchor::birth_certificate::Role;
use milagro_registry::redb_store::RedbStore;
use milagro_service::attempts::FailureLimiter;
use milagro_service::audit::Audit;
use milagro_service::chain_loop::{ChainLoop, ChainParts};
use milagro_service::files::{self, FileError};
use milagro_service::http::{self, Running, SpawnError};
use milagro_service::identity::{IdentityError, PartyIdentity, PartyKind};
use milagro_service::own_anchor::OwnAnchor;
use milagro_service::sync::Shutdown;
use milagro_service::work_gate::WorkGate;

use crate::clients::ClientStore;
use crate::config::Config;
use crate::device_grants::{
    DeviceGrants, DEVICE_ADDRESSES_TRACKED, DEVICE_FAILURES_PER_ADDRESS, DEVICE_FAILURE_WINDOW_SECS,
};
use crate::dpop::{SeenProofs, SEEN_CAPACITY};
use crate::grants::Grants;
use crate::keys::{KeyError, KeyRing};
use crate::passwords::Passwords;
use crate::state::AppState;
use crate::users::{SledUsers, UserStore};

/// File name of the IdP's secret key in the state directory.
pub const KEY_FILE: &str = "idp.key";
/// The IdP as a party: role `idp`, key in [`KEY_FILE`].
pub const KIND: PartyKind = PartyKind {
    role: Role::Idp,
    key_file: KEY_FILE,
};
/// Directory of the chain index inside the state directory.
pub const INDEX_DIR: &str = "registry";
/// Directory of the IdP database (users, clients, grants, the activity log).
pub const SERVICE_DB_DIR: &str = "service";
/// How many password checks may wait for a free slot (beyond one running per slot)
/// before `POST /login` and `POST /device` answer 503 with `Retry-After`: with about
/// 50 ms per check and two slots, the last one queued waits under a second.
pub const PASSWORD_CHECKS_QUEUED: usize = 32;

/// The IdP service. See the crate documentation.
#[derive(Debug)]
pub struct Idp;

/// Why an IdP could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The state directory could not be prepared.
    #[error(transparent)]
    StateDir(#[from] FileError),
    /// The key or the Birth Certificate could not be loaded or created.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The signing keys could not be loaded or created.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// A database could not be opened.
    #[error("cannot open the database in {}: {detail}", path.display())]
    Db {
        /// The directory.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// The HTTP server could not start.
    #[error(transparent)]
    Http(#[from] SpawnError),
    /// The chain thread could not start.
    #[error("cannot start the chain thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Opens the IdP's service database (for `milagro idp user add` while it is stopped).
pub fn open_users(config: &Config) -> Result<SledUsers, StartError> {
    files::create_private_dir(&config.state_dir)?;
    let path = config.state_dir.join(SERVICE_DB_DIR);
    let db =
        milagro_service::sled_db::open_waiting_for_lock(&path).map_err(|e| StartError::Db {
            path: path.clone(),
            detail: e.to_string(),
        })?;
    let passwords = Arc::new(Passwords::new(crate::passwords::default_slots()));
    SledUsers::open(&db, passwords).map_err(|e| StartError::Db {
        path,
        detail: e.to_string(),
    })
}

impl Idp {
    /// Starts an IdP for embedding (tests, the demo): serves until [`RunningIdp::stop`]
    /// or drop. Creates the identity and signing keys if missing, binds, and starts the
    /// chain loop, which anchors the Birth Certificate as soon as the node is reachable.
    pub fn start(config: Config) -> Result<RunningIdp, StartError> {
        launch(config, false)
    }

    /// Like [`Idp::start`], but SIGTERM stops it gracefully and SIGINT or SIGQUIT at
    /// once; [`RunningIdp::wait`] returns then. For `milagro idp serve`.
    pub fn start_handling_signals(config: Config) -> Result<RunningIdp, StartError> {
        launch(config, true)
    }
}

/// A running IdP. Dropping it stops it at once; [`RunningIdp::stop`] lets requests finish.
#[derive(Debug)]
pub struct RunningIdp {
    state: AppState,
    running: Running,
}

impl RunningIdp {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// `http://` and the bound address.
    pub fn local_url(&self) -> String {
        self.running.local_url()
    }

    /// The state the handlers share.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops serving after the requests in flight, then stops the chain loop.
    pub fn stop(mut self) {
        self.halt(true);
    }

    /// Blocks until the server stops (a signal), then stops the chain loop.
    pub fn wait(mut self) {
        self.running.join_server();
        self.halt(true);
    }

    fn halt(&mut self, graceful: bool) {
        let state = &self.state;
        self.running.halt(graceful, || {
            Arc::strong_count(&state.db) > 1 || Arc::strong_count(&state.index) > 1
        });
    }
}

impl Drop for RunningIdp {
    fn drop(&mut self) {
        self.halt(false);
    }
}

fn launch(config: Config, handle_signals: bool) -> Result<RunningIdp, StartError> {
    files::create_private_dir(&config.state_dir)?;
    let now = milagro_service::unix_now();
    let identity = PartyIdentity::load_or_create(
        KIND,
        &config.state_dir,
        &config.name,
        &config.public_url,
        now,
    )?;
    let retain = config.tokens.id_token.max(config.tokens.access);
    let keys = KeyRing::open(&config.state_dir, config.keys, retain, now)?;
    let db_error = |path: PathBuf| move |detail: String| StartError::Db { path, detail };
    let index_dir = config.state_dir.join(INDEX_DIR);
    let index =
        RedbStore::open(&index_dir).map_err(|e| db_error(index_dir.clone())(e.to_string()))?;
    let db_dir = config.state_dir.join(SERVICE_DB_DIR);
    let fail = db_error(db_dir.clone());
    let db = milagro_service::sled_db::open_waiting_for_lock(&db_dir)
        .map_err(|e| fail(e.to_string()))?;
    let fail = |e: &dyn std::fmt::Display| StartError::Db {
        path: db_dir.clone(),
        detail: e.to_string(),
    };
    // One memory slot per password check the gate lets run: the gate answers 503 before
    // a check would wait for memory.
    let slots = crate::passwords::default_slots();
    let passwords = Arc::new(Passwords::new(slots));
    let users: Arc<dyn UserStore> =
        Arc::new(SledUsers::open(&db, passwords).map_err(|e| fail(&e))?);
    let state = AppState {
        clients: ClientStore::open(&db).map_err(|e| fail(&e))?,
        grants: Grants::open(&db).map_err(|e| fail(&e))?,
        devices: DeviceGrants::open(&db).map_err(|e| fail(&e))?,
        device_attempts: Arc::new(FailureLimiter::new(
            DEVICE_FAILURES_PER_ADDRESS,
            DEVICE_FAILURE_WINDOW_SECS,
            DEVICE_ADDRESSES_TRACKED,
        )),
        seen_proofs: Arc::new(SeenProofs::new(SEEN_CAPACITY)),
        audit: Arc::new(Audit::open(&db, config.audit.origin.clone()).map_err(|e| fail(&e))?),
        users,
        password_checks: Arc::new(WorkGate::new(
            "password checks",
            slots,
            PASSWORD_CHECKS_QUEUED,
        )),
        keys: Arc::new(keys),
        identity: Arc::new(identity),
        own_anchor: Arc::new(OwnAnchor::default()),
        index: Arc::new(index),
        db: Arc::new(db),
        config: Arc::new(config),
    };
    let for_http = state.clone();
    let factory = move || {
        App::new()
            .app_data(web::Data::new(for_http.clone()))
            .configure(crate::api::configure)
    };
    let spawned = http::spawn(
        state.config.listen,
        "idp-http",
        handle_signals,
        state.config.tls.as_ref(),
        factory,
    )?;
    tracing::info!(addr = %spawned.addr, digest = %state.identity.digest(), "IdP listening");
    let shutdown = Arc::new(Shutdown::default());
    let config = &state.config;
    let chain = ChainLoop::new(
        ChainParts {
            identity: state.identity.clone(),
            own_anchor: state.own_anchor.clone(),
            index: state.index.clone(),
            audit: state.audit.clone(),
            state_dir: config.state_dir.clone(),
            node: config.node.clone(),
            sync: config.sync.clone(),
            audit_config: config.audit.clone(),
            fee_rate: config.fee_rate,
        },
        shutdown.clone(),
    );
    let mut running = RunningIdp {
        state,
        running: Running::new(spawned, shutdown),
    };
    running
        .running
        .spawn_worker("idp-chain", move || chain.run())
        .map_err(StartError::Thread)?;
    Ok(running)
}
