//! Starting and stopping a D-TA: identity, sealed share, databases, the plain HTTP
//! server, the chain loop and the share API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use actix_web::{web, App};
use milagro_anchor::birth_certificate::Role;
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::sled_store::SledStore;
use milagro_service::audit::Audit;
use milagro_service::chain_loop::{ChainLoop, ChainParts};
use milagro_service::files::{self, FileError};
use milagro_service::http::{self, Running, SpawnError};
use milagro_service::identity::{IdentityError, PartyIdentity, PartyKind};
use milagro_service::own_anchor::OwnAnchor;
use milagro_service::peer_directory::IndexDirectory;
use milagro_service::sync::Shutdown;

use crate::config::Config;
use crate::master::{self, SealError, SealingKey};
use crate::share_api::ShareApi;
use crate::state::AppState;

/// File name of the D-TA's secret key in the state directory.
pub const KEY_FILE: &str = "dta.key";
/// The D-TA as a party: role `dta`, key in [`KEY_FILE`].
pub const KIND: PartyKind = PartyKind {
    role: Role::Dta,
    key_file: KEY_FILE,
};
/// Directory of the chain index inside the state directory.
pub const INDEX_DIR: &str = "registry";
/// Directory of the D-TA database (the issuance log).
pub const SERVICE_DB_DIR: &str = "service";

/// The D-TA service. See the crate documentation.
#[derive(Debug)]
pub struct Dta;

/// Why a D-TA could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The state directory could not be prepared.
    #[error(transparent)]
    StateDir(#[from] FileError),
    /// The key or the Birth Certificate could not be loaded or created.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The master-secret share could not be opened or sealed (e.g. a wrong sealing key).
    #[error(transparent)]
    MasterShare(#[from] SealError),
    /// A database could not be opened.
    #[error("cannot open the database in {}: {detail}", path.display())]
    Db {
        /// The directory.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// The share API's socket could not be bound.
    #[error("cannot listen on {addr} (tls_listen): {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server could not start.
    #[error(transparent)]
    Http(#[from] SpawnError),
    /// A background thread could not start.
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl Dta {
    /// Starts a D-TA for embedding (tests, the demo): serves until [`RunningDta::stop`] or
    /// drop. Creates the identity and the sealed share if missing, binds both sockets,
    /// and starts the chain loop, which anchors the Birth Certificate as soon as the node
    /// is reachable; the share API serves once that anchor is confirmed.
    pub fn start(config: Config) -> Result<RunningDta, StartError> {
        launch(config, false)
    }

    /// Like [`Dta::start`], but SIGTERM stops it gracefully and SIGINT or SIGQUIT at
    /// once; [`RunningDta::wait`] returns then. For `milagro dta serve`.
    pub fn start_handling_signals(config: Config) -> Result<RunningDta, StartError> {
        launch(config, true)
    }
}

/// A running D-TA. Dropping it stops it at once; [`RunningDta::stop`] lets requests
/// finish.
#[derive(Debug)]
pub struct RunningDta {
    state: AppState,
    share_api: ShareApi,
    running: Running,
}

impl RunningDta {
    /// The plain HTTP server's bound address.
    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// `http://` and the plain HTTP server's bound address.
    pub fn local_url(&self) -> String {
        self.running.local_url()
    }

    /// The share API's bound address (it serves once the anchor is confirmed).
    pub fn tls_addr(&self) -> SocketAddr {
        self.share_api.addr()
    }

    /// The state the handlers share.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops serving after the requests in flight, then stops the chain loop.
    pub fn stop(mut self) {
        self.halt(true);
    }

    /// Blocks until the server stops (a signal), then stops everything else.
    pub fn wait(mut self) {
        self.running.join_server();
        self.halt(true);
    }

    fn halt(&mut self, graceful: bool) {
        self.share_api.halt();
        let state = &self.state;
        // Held here: `state` and its directory each own one reference to the index.
        self.running.halt(graceful, || {
            Arc::strong_count(&state.db) > 1
                || Arc::strong_count(&state.directory) > 1
                || Arc::strong_count(&state.index) > 2
        });
    }
}

impl Drop for RunningDta {
    fn drop(&mut self) {
        self.halt(false);
    }
}

fn launch(config: Config, handle_signals: bool) -> Result<RunningDta, StartError> {
    // The sealing key first: a D-TA that cannot open its share creates nothing.
    let sealing_key = SealingKey::load(&config.master_key)?;
    files::create_private_dir(&config.state_dir)?;
    let identity = PartyIdentity::load_or_create(
        KIND,
        &config.state_dir,
        &config.name,
        &config.public_url,
        milagro_service::unix_now(),
    )?;
    let (master, _) = master::load_or_create(&config.state_dir, &sealing_key, &identity.digest())?;
    drop(sealing_key);
    let db_error = |path: &PathBuf, e: &dyn std::fmt::Display| StartError::Db {
        path: path.clone(),
        detail: e.to_string(),
    };
    let index_dir = config.state_dir.join(INDEX_DIR);
    let index = SledStore::open(&index_dir).map_err(|e| db_error(&index_dir, &e))?;
    let db_dir = config.state_dir.join(SERVICE_DB_DIR);
    let db = sled::open(&db_dir).map_err(|e| db_error(&db_dir, &e))?;
    let audit = Audit::open(&db, config.audit.origin.clone()).map_err(|e| db_error(&db_dir, &e))?;
    let tls_listener =
        std::net::TcpListener::bind(config.tls_listen).map_err(|source| StartError::Bind {
            addr: config.tls_listen,
            source,
        })?;
    let node = BitcoindRpc::with_cookie(&config.node.rpc_url, &config.node.rpc_cookie);
    let index = Arc::new(index);
    let directory = IndexDirectory::new(node, index.clone(), config.node.network);
    let state = AppState {
        directory: Arc::new(directory),
        identity: Arc::new(identity),
        own_anchor: Arc::new(OwnAnchor::default()),
        index,
        audit: Arc::new(audit),
        db: Arc::new(db),
        master: Arc::new(master),
        tls_addr: Arc::new(RwLock::new(None)),
        config: Arc::new(config),
    };
    let for_http = state.clone();
    let factory = move || {
        App::new()
            .app_data(web::Data::new(for_http.clone()))
            .configure(crate::api::configure_public)
    };
    let spawned = http::spawn(state.config.listen, "dta-http", handle_signals, factory)?;
    tracing::info!(addr = %spawned.addr, digest = %state.identity.digest(), "D-TA listening");
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
    let mut running = Running::new(spawned, shutdown);
    let started = running
        .spawn_worker("dta-chain", move || chain.run())
        .and_then(|()| ShareApi::spawn(state.clone(), tls_listener));
    let share_api = match started {
        Ok(share_api) => share_api,
        Err(error) => {
            // Nothing may keep serving a D-TA that failed to start.
            running.halt(false, || false);
            return Err(StartError::Thread(error));
        }
    };
    Ok(RunningDta {
        state,
        share_api,
        running,
    })
}
