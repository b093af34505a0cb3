//! Starting and stopping an authentication server: identity, databases, revocations, the
//! HTTP server, the chain loop and the thread that fetches the server secret.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use actix_web::{web, App};
use milagro_anchor::birth_certificate::Role;
use milagro_service::base::{start_chain_loop, BaseConfig, OpenError, ServiceBase};
use milagro_service::http::{self, Running, SpawnError};
use milagro_service::identity::PartyKind;
use milagro_service::peer_directory::IndexDirectory;
use milagro_service::work_gate::WorkGate;

use crate::config::Config;
use crate::guesses::Guesses;
use crate::login::Logins;
use crate::revocations::{RevocationError, Revocations};
use crate::server_secret::ServerSecretSlot;
use crate::state::AppState;

/// File name of the server's secret key in the state directory.
pub const KEY_FILE: &str = "authserver.key";
/// How many login passes (point checks and the pairing check, about 2 ms each) may wait
/// for a core before `POST /v1/login/*` answers 503 `busy` with `Retry-After`: the last
/// one queued waits about a quarter of a second on 2 cores, and a waiting pass holds no
/// thread, only its request.
pub const PAIRINGS_QUEUED: usize = 256;
/// The authentication server as a party: role `authserver`, key in [`KEY_FILE`].
pub const KIND: PartyKind = PartyKind {
    role: Role::AuthServer,
    key_file: KEY_FILE,
};

/// The authentication server. See the crate documentation.
#[derive(Debug)]
pub struct AuthServer;

/// Why an authentication server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The state directory, the identity or a database could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The revocation list could not be read.
    #[error(transparent)]
    Revocations(#[from] RevocationError),
    /// The guess counts could not be opened.
    #[error(transparent)]
    Guesses(#[from] crate::guesses::StorageError),
    /// The HTTP server could not start.
    #[error(transparent)]
    Http(#[from] SpawnError),
    /// A background thread could not start.
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl AuthServer {
    /// Starts an authentication server for embedding (tests, the demo): serves until
    /// [`RunningAuthServer::stop`] or drop. Creates the identity if missing, binds the
    /// socket, and starts the chain loop, which anchors the Birth Certificate as soon as
    /// the node is reachable; the server secret is fetched once that anchor is confirmed,
    /// and logins are refused (503 `not_ready`) until then.
    pub fn start(config: Config) -> Result<RunningAuthServer, StartError> {
        launch(config, false)
    }

    /// Like [`AuthServer::start`], but SIGTERM stops it gracefully and SIGINT or SIGQUIT
    /// at once; [`RunningAuthServer::wait`] returns then. For `milagro authserver serve`.
    pub fn start_handling_signals(config: Config) -> Result<RunningAuthServer, StartError> {
        launch(config, true)
    }
}

/// A running authentication server. Dropping it stops it at once;
/// [`RunningAuthServer::stop`] lets requests finish.
#[derive(Debug)]
pub struct RunningAuthServer {
    state: AppState,
    running: Running,
}

impl RunningAuthServer {
    /// The HTTP server's bound address.
    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// `http://` and the HTTP server's bound address.
    pub fn local_url(&self) -> String {
        self.running.local_url()
    }

    /// The state the handlers share.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops serving after the requests in flight, then stops the chain loop and the
    /// server-secret fetcher.
    pub fn stop(mut self) {
        self.halt(true);
    }

    /// Blocks until the server stops (a signal), then stops everything else.
    pub fn wait(mut self) {
        self.running.join_server();
        self.halt(true);
    }

    fn halt(&mut self, graceful: bool) {
        let state = &self.state;
        // Held here: `state` and its directory each own one reference to the index.
        self.running.halt(graceful, || {
            Arc::strong_count(&state.db) > 1
                || Arc::strong_count(&state.directory) > 1
                || Arc::strong_count(&state.index) > 2
        });
    }
}

impl Drop for RunningAuthServer {
    fn drop(&mut self) {
        self.halt(false);
    }
}

fn launch(config: Config, handle_signals: bool) -> Result<RunningAuthServer, StartError> {
    let base = ServiceBase::open(BaseConfig {
        kind: KIND,
        name: &config.name,
        public_url: &config.public_url,
        state_dir: &config.state_dir,
        node: &config.node,
        sync: &config.sync,
        audit: &config.audit,
        fee_rate: config.fee_rate,
    })?;
    let revocations = Revocations::open(&config.state_dir)?;
    let guesses = Guesses::open(&base.db, config.login.clone())?;
    let chain = base.chain;
    let state = AppState {
        directory: Arc::new(IndexDirectory::for_node(&config.node, chain.index.clone())),
        identity: chain.identity.clone(),
        own_anchor: chain.own_anchor.clone(),
        index: chain.index.clone(),
        audit: chain.audit.clone(),
        db: base.db,
        server_secret: Arc::new(ServerSecretSlot::new(&config.dtas)),
        logins: Arc::new(Mutex::new(Logins::new(config.login.clone()))),
        guesses: Arc::new(Mutex::new(guesses)),
        revocations: Arc::new(revocations),
        pairings: Arc::new(WorkGate::new(
            "login checks",
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            PAIRINGS_QUEUED,
        )),
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
        "authserver-http",
        handle_signals,
        state.config.tls.as_ref(),
        factory,
    )?;
    tracing::info!(addr = %spawned.addr, digest = %state.identity.digest(), "authentication server listening");
    let mut running =
        start_chain_loop(chain, spawned, "authserver-chain").map_err(StartError::Thread)?;
    let (fetching, shutdown) = (state.clone(), running.shutdown().clone());
    let fetcher = move || crate::server_secret::run(&fetching, &shutdown);
    if let Err(error) = running.spawn_worker("authserver-secret", fetcher) {
        running.halt(false, || false);
        return Err(StartError::Thread(error));
    }
    Ok(RunningAuthServer { state, running })
}
