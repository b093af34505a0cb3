//! Starting and stopping a D-TA: identity, sealed share, databases, the plain HTTP
//! server, the chain loop and the share API.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use actix_web::{web, App};
use milagro_anchor::birth_certificate::Role;
use milagro_service::base::{start_chain_loop, BaseConfig, OpenError, ServiceBase};
pub use milagro_service::base::{INDEX_DIR, SERVICE_DB_DIR};
use milagro_service::http::{self, Running, SpawnError};
use milagro_service::identity::PartyKind;
use milagro_service::peer_directory::IndexDirectory;

use crate::config::Config;
use crate::master::{self, SealError, SealingKey};
use crate::relying_party::CheckedIdps;
use crate::share_api::ShareApi;
use crate::state::AppState;

/// File name of the D-TA's secret key in the state directory.
pub const KEY_FILE: &str = "dta.key";
/// The D-TA as a party: role `dta`, key in [`KEY_FILE`].
pub const KIND: PartyKind = PartyKind {
    role: Role::Dta,
    key_file: KEY_FILE,
};

/// The D-TA service. See the crate documentation.
#[derive(Debug)]
pub struct Dta;

/// Why a D-TA could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The state directory, the identity or a database could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The master-secret share could not be opened or sealed (e.g. a wrong sealing key).
    #[error(transparent)]
    MasterShare(#[from] SealError),
    /// The share API's socket could not be bound.
    #[error("cannot listen on {addr} (tls_listen): {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The record of issued identities could not be opened.
    #[error(transparent)]
    Issued(#[from] crate::issued::IssuedError),
    /// The HTTP server could not start.
    #[error(transparent)]
    Http(#[from] SpawnError),
    /// A background thread could not start.
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The HTTP client of the trusted IdPs could not be made (`[outbound_http]`).
    #[error("[outbound_http]: {0}")]
    OutboundHttp(#[from] milagro_http_client::ClientError),
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
    let chain = base.chain;
    let (master, _) =
        master::load_or_create(&config.state_dir, &sealing_key, &chain.identity.digest())?;
    drop(sealing_key);
    let tls_listener =
        std::net::TcpListener::bind(config.tls_listen).map_err(|source| StartError::Bind {
            addr: config.tls_listen,
            source,
        })?;
    let state = AppState {
        directory: Arc::new(IndexDirectory::for_node(&config.node, chain.index.clone())),
        identity: chain.identity.clone(),
        own_anchor: chain.own_anchor.clone(),
        index: chain.index.clone(),
        audit: chain.audit.clone(),
        issued: Arc::new(crate::issued::IssuedIdentities::open(&base.db)?),
        db: base.db,
        master: Arc::new(master),
        checked_idps: Arc::new(CheckedIdps::new(&config.outbound_http)?),
        tls_addr: Arc::new(RwLock::new(None)),
        config: Arc::new(config),
    };
    let for_http = state.clone();
    let factory = move || {
        App::new()
            .app_data(web::Data::new(for_http.clone()))
            .configure(crate::api::configure_public)
    };
    let spawned = http::spawn(
        state.config.listen,
        "dta-http",
        handle_signals,
        state.config.tls.as_ref(),
        factory,
    )?;
    tracing::info!(addr = %spawned.addr, digest = %state.identity.digest(), "D-TA listening");
    let mut running = start_chain_loop(chain, spawned, "dta-chain").map_err(StartError::Thread)?;
    let share_api = match ShareApi::spawn(state.clone(), tls_listener) {
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
